"""One writer per twin: `twin ingest/train/persona/convert/build` (and the jobs that run them) hold its lock.

The lock is an advisory `flock` on `twins/.<name>.lock`: the kernel drops it
when its process ends however it ends, so a lock file left by a killed run is
taken over by the next one with no clean-up; a clean exit removes the file. The file says who holds it (pid,
command, since when), so a refused second writer can name the holder. A
process may take the same lock again (`twin build` runs the stages in one
process).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from twin import paths
from twin.errors import UserError

_held: dict[str, tuple[int, int]] = {}  # name → (fd, depth) of the locks this process holds


@dataclass(frozen=True)
class Holder:
    """Who holds a twin's lock."""

    pid: int
    command: str
    since: str  # UTC, ISO 8601

    def describe(self) -> str:
        return f"pid {self.pid}, `{self.command}`, since {self.since}"


def lock_path(name: str) -> Path:
    return paths.twins_dir() / f".{paths.check_name(name)}.lock"


def _read_holder(fd: int) -> Holder | None:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode("utf-8"))
        return Holder(int(data["pid"]), str(data["command"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def holder(name: str) -> Holder | None:
    """Who holds the twin's lock now, or None when nobody does (a stale file from a dead process is nobody)."""
    path = lock_path(name)
    if name in _held:
        return _read_holder(_held[name][0])
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or Holder(0, "unknown", "unknown")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def twin_lock(name: str, command: str) -> Iterator[None]:
    """Hold the twin's lock inside the block; a UserError naming the holder when another process has it."""
    if name in _held:
        fd, depth = _held[name]
        _held[name] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[name]
            _held[name] = (fd, depth - 1)
        return
    path = lock_path(name)
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    paths.private_dir(path.parent)
    fd = _acquire(name, path)
    try:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": since}).encode(), 0)
        _held[name] = (fd, 1)
        yield
    finally:
        _held.pop(name, None)
        # Unlinking while still holding the flock is safe: a process that opened the old file sees the
        # inode change after its own flock and starts again (_acquire). A killed holder leaves the file,
        # whose flock the kernel has already dropped: the next run simply takes it.
        with contextlib.suppress(OSError):
            os.unlink(path)
            for folder in made:  # nothing else was made: leave no trace of the attempt
                folder.rmdir()
        os.close(fd)  # closing drops the flock


def _acquire(name: str, path: Path) -> int:
    """An fd holding the flock of `path`, retried when the file was unlinked by its last holder meanwhile."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _read_holder(fd)
            os.close(fd)
            shown = who.describe() if who else "another process"
            raise UserError(
                f"twin {name!r} is being built by {shown}: wait until it ends (or stop it), then run this again"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
