"""The dataset's per-sample chat and addressee, read back as each sample's system line (twin.conditioning)."""

from __future__ import annotations

from pathlib import Path

from twin import dataset
from twin.conditioning import record_line, with_line

Messages = list[dict[str, str]]


def lines(path: Path) -> list[str]:
    """The system line of every sample of a dataset file, in order ('' for a sample without chat fields)."""
    return [record_line(line.record) for line in dataset.read(path)]


def conditioned(path: Path, conversations: list[Messages]) -> list[Messages]:
    """`conversations` (the first ones of `path`) with their system lines first."""
    found = lines(path)[: len(conversations)]
    return [with_line(c, line) for c, line in zip(conversations, found, strict=True)]
