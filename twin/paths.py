"""Where twin keeps its files: XDG base directories, or everything under $TWIN_HOME.

With TWIN_HOME set, data lives in TWIN_HOME itself and config and cache in its
`config/` and `cache/` subfolders: one variable moves everything (tests rely on it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from twin.errors import UserError

APP = "twin"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _home_override() -> Path | None:
    value = os.environ.get("TWIN_HOME")
    return Path(value).expanduser() if value else None


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    # The XDG spec says relative paths are invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def data_dir() -> Path:
    """Twins, chat history and ratings: $TWIN_HOME or $XDG_DATA_HOME/twin."""
    home = _home_override()
    return home if home else _xdg("XDG_DATA_HOME", ".local/share") / APP


def config_dir() -> Path:
    """Settings (config.toml): $TWIN_HOME/config or $XDG_CONFIG_HOME/twin."""
    home = _home_override()
    return home / "config" if home else _xdg("XDG_CONFIG_HOME", ".config") / APP


def cache_dir() -> Path:
    """Rebuildable files (the dequantized embedded model): $TWIN_HOME/cache or $XDG_CACHE_HOME/twin."""
    home = _home_override()
    return home / "cache" if home else _xdg("XDG_CACHE_HOME", ".cache") / APP


def config_file() -> Path:
    return config_dir() / "config.toml"


def twins_dir() -> Path:
    return data_dir() / "twins"


def check_name(name: str) -> str:
    """A twin's name becomes a directory and a model id: letters, digits, '.', '_' and '-'."""
    if not _NAME_RE.match(name):
        raise UserError(
            f"invalid twin name {name!r}: use letters, digits, '.', '_' or '-' (up to 64, starting with a letter or digit)"
        )
    return name


def twin_dir(name: str) -> Path:
    return twins_dir() / check_name(name)


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only: twins hold private messages."""
    # mode= applies only to the last folder and through the umask: each missing parent is made 0700 too.
    # A failure stays an OSError (callers such as the TUI catch it); the CLI turns it into one line.
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    if not missing:
        os.chmod(path, 0o700)
    return path


def private_umask() -> None:
    """Make every file and folder this process creates readable by its owner only, whatever the user's umask.

    The CLI sets it first: files written by libraries (torch.save, save_pretrained)
    and scratch files opened with plain `open()` are then 0600 from their creation.
    """
    os.umask(0o077)


def others_can_write(path: Path) -> str | None:
    """Why another local user could replace what `path` holds (a reason to refuse loading it), or None.

    True of a path writable by group or others, or owned by someone else: they
    could plant a model there that the daemon would load.
    """
    try:
        st = path.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid():
        return f"{path} belongs to another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return f"{path} can be written by other users (mode {oct(st.st_mode & 0o777)[2:]})"
    return None
