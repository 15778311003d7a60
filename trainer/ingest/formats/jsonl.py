"""JSONL that is already a dataset: one `{"messages": [{"role", "content"}, …]}` a line, passed through.

Each line is still cleaned, capped and de-duplicated like any other sample, and is its own session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.ingest.formats.base import Format, Peek, text_lines, where
from trainer.ingest.messages import Sample, Tally
from twin.errors import UserError

if TYPE_CHECKING:
    from trainer.ingest.reading import Reading

ROLES = frozenset({"system", "user", "assistant"})


class JsonlError(Exception):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


def is_sample(obj: object) -> bool:
    """Whether a decoded line looks like a dataset sample (used to detect the format)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list) or not obj["messages"]:
        return False
    first = obj["messages"][0]
    return isinstance(first, dict) and "role" in first and "content" in first


def read_jsonl(lines: Iterable[str], tally: Tally) -> Iterator[Sample]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        tally.read += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise JsonlError(number, f"not JSON ({e.msg} at column {e.colno})") from None
        except RecursionError:
            raise JsonlError(number, "values nested too deeply") from None
        messages = obj.get("messages") if isinstance(obj, dict) else None
        if not isinstance(messages, list) or not messages:
            raise JsonlError(number, 'not a {"messages": [...]} sample')
        pairs = []
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise JsonlError(number, 'each message needs "role" (system, user or assistant) and "content" (text)')
            pairs.append((m["role"], m["content"]))
        if pairs[-1][0] != "assistant":
            raise JsonlError(number, "the last message must be the assistant's reply")
        yield Sample(pairs, f"line {number}")


def detect(peek: Peek) -> str | None:
    """UTF-8 text whose first line is a whole sample."""
    if not peek.utf8 or peek.zipped or not peek.starts_json:
        return None
    try:
        return "jsonl" if is_sample(json.loads(peek.first_line)) else None
    except (ValueError, RecursionError):
        return None


def read(path: Path, kind: str, r: Reading) -> int:
    with text_lines(path) as f:
        try:
            for sample in read_jsonl(r.lines(f), r.tally):
                r.add_sample(sample)
        except JsonlError as e:
            raise UserError(f"{where(path, f'line {e.line}')}: {e.problem}: fix or remove that line") from None
    return r.read


# Before the JSON documents: a JSONL file is not one JSON value, and its first line alone tells it.
FORMAT = Format(("jsonl",), detect, read, order=20)
