"""How the converter runs llama.cpp: its log captured instead of printed, and how many threads to give it."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator


def eval_threads(requested: int = 0) -> int:
    """Threads for llama.cpp evaluation: `requested`, or half the logical CPUs.

    llama.cpp's workers spin while waiting; with more threads than free physical
    cores they slow each other down badly (measured here: 1 thread 6x faster
    than 2 on a busy 2-core machine), and SMT doubles the logical count.
    """
    if requested > 0:
        return requested
    return max(1, (os.cpu_count() or 2) // 2)


@contextlib.contextmanager
def llama_log() -> Iterator[list[str]]:
    """Collect llama.cpp's log lines instead of printing them; llama-cpp-python's own logger is restored after."""
    import llama_cpp

    from twin import llamacpp

    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(llamacpp.library_log_callback(), ctypes.c_void_p(0))
