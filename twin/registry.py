"""The registry of built twins: each `twins/<name>/twin.toml` says what the twin is made of.

Each stage owns one table and writes only that one: `[dataset]` (ingest),
`[train]` (train), `[persona]` (persona), `[model]` (convert: the GGUF the daemon
serves). Reads tolerate missing tables: a twin is built step by step.

A stage whose output is several entries (train: adapter/ and merged/; ingest:
dataset/; persona: persona.json) replaces them and its table as one unit with
`replacing()`: the new entries are staged in a hidden folder, renamed to
`.pending` once complete (the commit), then moved into place; a run killed
after the commit is finished by the next stage that takes the twin's lock.
Until the commit the old twin stays whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomli_w

from twin import paths
from twin.dataset import DATASET_DIR, TRAIN, VAL
from twin.errors import UserError
from twin.files import read_toml, temp_dir, write_text

TWIN_TOML = "twin.toml"
PENDING = ".pending"  # a committed unit not yet moved into place
_TABLES = "tables.toml"  # inside a unit: the registry tables it sets


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


def drop(name: str, table: str) -> None:
    """Remove one table of the twin's twin.toml (atomically), if it has it."""
    data = read(name)
    if data.pop(table, None) is not None:
        write_text(toml_path(name), tomli_w.dumps(data))


def end_bias(name: str, data: dict[str, Any] | None = None) -> float:
    """The end-of-reply bias `twin calibrate` chose for the twin's current GGUF (0 when none, or for another GGUF)."""
    data = read(name) if data is None else data
    decoding = data.get("decoding", {})
    bias = decoding.get("end_bias", 0.0)
    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -100 <= bias <= 100:
        raise UserError(
            f"twin {name!r}: [decoding] end_bias must be a number from -100 to 100, got {bias!r}: "
            f"rerun `twin calibrate --name {name}`"
        )
    if decoding.get("gguf") != data.get("model", {}).get("gguf"):
        return 0.0  # calibrated on a GGUF since replaced
    return float(bias)


def candidates(name: str, data: dict[str, Any] | None = None) -> int:
    """The sampled replies per choice the twin is served with by default (twin.toml [serve] candidates; 1 when
    none): `twin build` writes twin.consensus.TWIN_CANDIDATES, reranked by mutual information."""
    from twin.consensus import MAX_CANDIDATES

    data = read(name) if data is None else data
    k = data.get("serve", {}).get("candidates", 1)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_CANDIDATES:
        raise UserError(
            f"twin {name!r}: [serve] candidates must be a whole number from 1 to {MAX_CANDIDATES}, got {k!r}: "
            f"fix it in {toml_path(name)}"
        )
    return k


class Unit:
    """New entries of a twin's folder (`unit.dir / "adapter"`, …) and the registry tables that go with them."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.dir = folder
        self.tables: dict[str, dict[str, Any]] = {}

    def set(self, table: str, values: dict[str, Any]) -> None:
        self.tables[table] = {**values, "updated": _now()}


@contextlib.contextmanager
def replacing(name: str) -> Iterator[Unit]:
    """Stage entries and tables in the block; when it succeeds they replace the old ones as one unit.

    Call it holding the twin's lock (`twin.lock.twin_lock`). A failure inside
    the block leaves the twin as it was.
    """
    folder = paths.private_dir(paths.twin_dir(name))
    finish_pending(name)
    read(name)  # a broken twin.toml fails before any work
    unit = Unit(name, temp_dir(folder / "unit"))
    try:
        yield unit
        write_text(unit.dir / _TABLES, tomli_w.dumps(unit.tables))
        os.replace(unit.dir, folder / PENDING)  # the commit: from here on the new twin wins
    except BaseException:
        shutil.rmtree(unit.dir, ignore_errors=True)
        raise
    finish_pending(name)


def finish_pending(name: str) -> None:
    """Move a committed unit's entries into place and write its tables (again: each step may be repeated)."""
    folder = paths.twin_dir(name)
    pending = folder / PENDING
    if not pending.is_dir():
        return
    for entry in sorted(pending.iterdir()):
        if entry.name.startswith(".") or entry.name == _TABLES:
            continue
        target = folder / entry.name
        if target.exists() or target.is_symlink():
            old = pending / f".{entry.name}.old"
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            elif old.exists() or old.is_symlink():
                old.unlink()
            os.replace(target, old)
        os.replace(entry, target)
    tables = read_toml(pending / _TABLES, "delete it and rebuild the twin")
    if tables:
        data = read(name)
        data.setdefault("twin", {"name": name, "created": _now()})
        data.update(tables)
        write_text(toml_path(name), tomli_w.dumps(data))
    shutil.rmtree(pending)


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
