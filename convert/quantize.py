"""Quantization with llama.cpp's own quantizer (`llama_model_quantize` through llama-cpp-python)."""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path

from convert.llama_runtime import llama_log
from twin.errors import UserError

# name -> llama_ftype. f16/f32 are what the writer produces directly.
QUANTS: dict[str, int] = {
    "q4_k_m": 15,
    "q4_1": 3,
    "q4_0": 2,
    "q5_k_m": 17,
    "q8_0": 7,
    "f16": 1,
    "f32": 0,
}
FOUR_BIT = ("q4_k_m", "q4_1", "q4_0")
# Not a llama.cpp type: the base's own 4-bit GGUF plus the LoRA as an adapter file (convert.lora_gguf).
ADAPTER = "adapter"
CHOICES = ("auto", *QUANTS, ADAPTER)


def check_quant(name: str) -> str:
    """A known quant name (case-insensitive), or a UserError listing them."""
    key = name.lower()
    if key not in CHOICES:
        raise UserError(f"unknown quant {name!r}: pick one of {', '.join(CHOICES)}")
    return key


def quantize(src: Path, dst: Path, quant: str, threads: int = 0, requantize: bool = False) -> None:
    """Quantize the f16/f32 GGUF `src` into `dst` with llama.cpp; a UserError for a full disk, RuntimeError otherwise.

    `requantize`: `src` may itself be quantized (llama.cpp's allow_requantize; the daemon's q8_0 copies).
    """
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANTS[quant]
    params.allow_requantize = requantize
    params.nthread = threads or os.cpu_count() or 1
    with llama_log() as log:
        code = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if code == 0:
        return
    # llama.cpp reports a failed write as "iostream error" whatever the cause; a disk left (almost) full says which.
    nearly_full = max(src.stat().st_size // 100, 2**20) if src.exists() else 2**20
    if shutil.disk_usage(dst.parent).free < nearly_full:
        raise UserError(
            f"no space left on the disk of {dst.parent} while quantizing to {quant}: free some space or write elsewhere with -o FILE"
        )
    last = next((line.strip() for line in reversed(log) if line.strip()), "no message")
    raise RuntimeError(f"llama.cpp could not quantize {src.name} to {quant}: {last}")
