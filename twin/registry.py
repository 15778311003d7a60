"""The registry of built twins: each `twins/<name>/twin.toml` says what the twin is made of.

Each stage owns one table and writes only that one: `[dataset]` (ingest),
`[train]` (train), `[persona]` (persona), `[model]` (convert: the GGUF the daemon
serves). Reads tolerate missing tables: a twin is built step by step.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomli_w

from twin import paths
from twin.dataset import DATASET_DIR, TRAIN, VAL
from twin.errors import UserError
from twin.files import read_toml, write_text

TWIN_TOML = "twin.toml"


def toml_path(name: str) -> Path:
    return paths.twin_dir(name) / TWIN_TOML


def read(name: str) -> dict[str, Any]:
    """The twin's twin.toml as a dict ({} when the twin has none yet)."""
    return read_toml(toml_path(name), "fix it or rebuild the twin")


def update(name: str, table: str, values: dict[str, Any]) -> None:
    """Replace one table of the twin's twin.toml (atomically), stamping when it was written."""
    data = read(name)
    data.setdefault("twin", {"name": name, "created": _now()})
    data[table] = {**values, "updated": _now()}
    paths.private_dir(paths.twin_dir(name))
    write_text(toml_path(name), tomli_w.dumps(data))


def names() -> list[str]:
    """Names of the twins that have a twin.toml, sorted."""
    root = paths.twins_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{TWIN_TOML}"))


def twins_with(filename: str) -> list[str]:
    """Names of the twins whose dataset holds `filename` (twin.dataset.TRAIN or VAL), sorted."""
    root = paths.twins_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.parent.name for p in root.glob(f"*/{DATASET_DIR}/{filename}"))


def resolve_name(name: str | None, filename: str = TRAIN) -> str:
    """`name` checked, or, when `--name` is left out, the only twin whose dataset holds `filename`."""
    if name:
        return paths.check_name(name)
    found = twins_with(filename)
    if len(found) == 1:
        return found[0]
    what = "a validation split" if filename == VAL else "a dataset"
    if not found:
        raise UserError(f"no twin with {what} under {paths.twins_dir()}: build one with `twin ingest EXPORT` first")
    raise UserError(f"several twins have {what} ({', '.join(found)}): pick one with --name")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
