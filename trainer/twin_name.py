"""Which twin a command works on when `--name` is left out: the only one that has a dataset."""

from __future__ import annotations

from twin import paths
from twin.errors import UserError


def resolve_name(name: str | None) -> str:
    """`name` checked, or the single twin with a dataset; a UserError listing the choices otherwise."""
    if name:
        return paths.check_name(name)
    root = paths.twins_dir()
    found = sorted(p.parent.parent.name for p in root.glob("*/dataset/train.jsonl")) if root.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError("no twin has a dataset yet: run `twin ingest` first (or pass --name)")
    raise UserError(f"several twins have a dataset ({', '.join(found)}): pass --name")
