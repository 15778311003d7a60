"""One build of a twin at a time: `twin build` (from the CLI or a daemon's fine-tuning job) holds this lock.

An advisory `flock` on `locks/<name>.lock` in the data directory: the kernel
drops it when the holder exits, even on SIGKILL, so a crash never leaves a
stale lock behind. The file holds the holder's pid, for the error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from twin import paths
from twin.errors import UserError


def lock_path(name: str) -> Path:
    return paths.data_dir() / "locks" / f"{paths.check_name(name)}.lock"


def _open(name: str) -> int:
    path = lock_path(name)
    paths.private_dir(path.parent)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """Hold the build lock of twin `name` inside the block; a UserError at once when someone else holds it."""
    fd = _open(name)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(
                f"twin {name!r} is being built by another process (pid {holder}): wait until it ends "
                f"(`twin jobs` lists the daemon's builds) or build under another --name"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def is_locked(name: str) -> bool:
    """Whether some process holds the build lock of `name` now."""
    fd = _open(name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
