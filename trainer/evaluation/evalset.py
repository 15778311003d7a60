"""The validation samples an evaluation runs on: context (every message but the last) and my real reply.

Line numbers and hashes are those of `twin chat --rate` (1-based line of
val.jsonl, sha256 of the stripped line), so ratings can be matched to samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twin import dataset
from twin.dataset import Messages, val_path
from twin.errors import UserError


@dataclass(frozen=True)
class EvalSample:
    line: int  # 1-based line number in val.jsonl
    context: Messages  # trimmed to the evaluation's context budget, oldest messages first dropped
    real: str  # my reply


def line_hashes(path: Path) -> dict[int, str]:
    """line number -> sha256 of the stripped line, for every non-empty line (as the rating mode stores them)."""
    return {line.number: line.sha256 for line in dataset.read(path)}


def trim_context(context: Messages, max_chars: int) -> Messages:
    """The newest messages whose text fits in `max_chars`; the newest one is kept (its end) even when alone too long."""
    kept: Messages = []
    used = 0
    for m in reversed(context):
        if kept and used + len(m["content"]) > max_chars:
            break
        content = m["content"] if kept or len(m["content"]) <= max_chars else m["content"][-max_chars:]
        kept.append({"role": m["role"], "content": content})
        used += len(content)
    return kept[::-1]


def load_samples(name: str, limit: int, max_context_chars: int) -> list[EvalSample]:
    """Up to `limit` validation samples of twin `name`, spread evenly over val.jsonl; UserError when there are none."""
    path = val_path(name)
    if not path.is_file():
        raise UserError(
            f"twin {name!r} has no dataset ({path} is missing): build it with `twin ingest EXPORT --name {name}`"
        )
    samples = [
        EvalSample(line.number, trim_context(line.messages[:-1], max_context_chars), line.messages[-1]["content"])
        for line in dataset.read(path)
    ]
    if not samples:
        raise UserError(
            f"{path} holds no samples: ingest more chat history with `twin ingest` (the validation split is empty)"
        )
    return dataset.spread(samples, limit)
