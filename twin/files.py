"""Atomic writes: a reader never sees a half-written file or directory.

Every artifact is written next to its final place under a temporary name and
renamed into place; files are created 0600 and directories 0700 because they
hold someone's private messages.

Temporary names carry the writer's pid (`.merged.pid1234.x8k2.tmp`): a run
killed halfway leaves them behind, and the next write into the same folder
removes those whose process is gone. A failed write (full disk, read-only or
unwritable folder) becomes one UserError naming the folder: `writing()` and
`write_error()` are the one way every stage reports it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from twin.errors import UserError
from twin.paths import private_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Errors of a write the user can fix: full disk or quota, file-size limit, read-only or unwritable place.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})
# Where the pipeline's files go can be moved; say so in the fix.
MOVE_HOME = "set TWIN_HOME to another folder"
_ORPHAN = re.compile(r"^\..+\.pid(?P<pid>\d+)\.[^/]*\.tmp$")


def read_toml(path: Path, fix: str) -> dict[str, Any]:
    """A TOML file as a dict, {} when it does not exist; a broken one is a UserError ending in `fix`."""
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e}): {fix}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror}): check its permissions") from None


def _free_bytes(folder: Path) -> int:
    for place in (folder, *folder.parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(place).free
    return 0


def disk_full(e: BaseException, folder: Path, needed: int = 1) -> bool:
    """Whether `e` is a write that failed for lack of room.

    Not every writer says so with ENOSPC: numpy's tofile raises an OSError
    without errno, safetensors a SafetensorError ("os error 28"), torch.save a
    RuntimeError ("file write failed"); then a disk with less room than was left
    to write is the cause.
    """
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "os error 28" in str(e) or "No space left" in str(e):
        return True
    return (not isinstance(e, OSError) or e.errno is None) and _free_bytes(folder) < max(needed, 1 << 16)


def is_write_error(e: BaseException, folder: Path, needed: int = 1) -> bool:
    """A failed write the user can fix (see WRITE_ERRNOS), or one of the disguised full disks of `disk_full`."""
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
        return True
    return disk_full(e, folder, needed)


def write_error(e: BaseException, path: Path, doing: str, elsewhere: str = MOVE_HOME, needed: int = 1) -> UserError:
    """A write that failed for a reason the user can fix, as one line naming the folder and the fix."""
    folder = path if path.is_dir() else path.parent
    if disk_full(e, folder, needed):
        return UserError(f"no space left on the disk of {folder} while {doing}: free some space or {elsewhere}")
    errno_ = e.errno if isinstance(e, OSError) else None
    reason = (e.strerror if isinstance(e, OSError) else None) or str(e)
    if errno_ == errno.EFBIG:
        return UserError(
            f"{path}: file too large for this filesystem or your file-size limit while {doing}: {elsewhere}"
        )
    if errno_ == errno.EROFS:
        return UserError(f"cannot write in {folder}: the filesystem is read-only ({doing}): {elsewhere}")
    return UserError(
        f"cannot write in {folder} ({reason}) while {doing}: check that folder's permissions or {elsewhere}"
    )


@contextlib.contextmanager
def writing(folder: Path, doing: str, elsewhere: str = MOVE_HOME) -> Iterator[None]:
    """Turn a failed write inside the block into one UserError about `folder` (or the file the error names)."""
    try:
        yield
    except UserError:
        raise
    except Exception as e:
        where = Path(e.filename) if isinstance(e, OSError) and e.filename else folder
        if is_write_error(e, where if where.is_dir() else where.parent):
            raise write_error(e, where, doing, elsewhere) from None
        raise


def temp_name(final: Path) -> str:
    """The prefix of a temporary sibling of `final`: hidden, and naming this process so orphans can be told."""
    return f".{final.name}.pid{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_orphans(folder: Path) -> list[str]:
    """Delete temporary files and folders of `folder` whose writer process is gone; their names."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _ORPHAN.match(entry.name)
        if m is None or _alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
    return removed


def _ready_parent(final: Path) -> None:
    # A missing parent is created private; an existing one keeps its mode
    # (`twin convert -o ~/models/x.gguf` must not lock the user out of ~/models).
    if not final.parent.is_dir():
        private_dir(final.parent)
    remove_orphans(final.parent)


@contextlib.contextmanager
def scratch_file(final: Path, suffix: str = "") -> Iterator[Path]:
    """A hidden temporary file beside `final` (so renames stay on one disk), always removed on exit."""
    _ready_parent(final)
    fd, tmp = tempfile.mkstemp(prefix=temp_name(final), suffix=suffix + ".tmp", dir=final.parent)
    os.close(fd)
    os.chmod(tmp, 0o600)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(final: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary file path beside `final`; on success rename it into place, on error delete it."""
    with scratch_file(final, suffix) as tmp:
        yield tmp
        os.replace(tmp, final)


def write_bytes(final: Path, data: bytes) -> None:
    with atomic_path(final) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(final: Path, text: str) -> None:
    write_bytes(final, text.encode("utf-8"))


def write_json(final: Path, obj: object) -> None:
    write_text(final, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def temp_dir(final: Path) -> Path:
    """A new private, empty temporary directory beside `final` (the caller renames or removes it)."""
    private_dir(final.parent)
    remove_orphans(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=temp_name(final), suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o700)
    return tmp


def replace_dir(tmp: Path, final: Path) -> None:
    """Put the complete directory `tmp` in the place of `final`; an earlier `final` is removed only after the swap."""
    old = None
    if final.exists():
        old = final.with_name(f"{temp_name(final)}old.tmp")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside `final`; on success it replaces `final` as a whole.

    An earlier `final` stays untouched until the new one is complete, and is
    removed only after the swap.
    """
    tmp = temp_dir(final)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, final)
