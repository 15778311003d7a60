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
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path
