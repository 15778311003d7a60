"""The validation samples an evaluation runs on: context (every message but the last) and my real reply.

Line numbers and hashes are those of `twin chat --rate` (1-based line of
val.jsonl, sha256 of the stripped line), so ratings can be matched to samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twin import dataset
from twin.conditioning import record_line, with_line
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


def with_system(context: Messages, system_prompt: str | None) -> Messages:
    """The context with a variant's system prompt first; a sample's own system line (who I talk to) goes under it."""
    line = context[0]["content"] if context and context[0]["role"] == "system" else ""
    rest = context[1:] if line else context
    return with_line([{"role": "system", "content": system_prompt}, *rest] if system_prompt else rest, line)


def load_samples(name: str, limit: int, max_context_chars: int, condition: bool = True) -> list[EvalSample]:
    """Up to `limit` validation samples of twin `name`, spread evenly over val.jsonl; UserError when there are none.

    With `condition`, a sample whose line names its chat and addressee starts its
    context with that system line (twin.conditioning), as training saw it.
    """
    path = val_path(name)
    if not path.is_file():
        raise UserError(
            f"twin {name!r} has no dataset ({path} is missing): build it with `twin ingest EXPORT --name {name}`"
        )
    samples = []
    for line in dataset.read(path):
        context = trim_context(line.messages[:-1], max_context_chars)
        if condition:
            context = with_line(context, record_line(line.record))
        samples.append(EvalSample(line.number, context, line.messages[-1]["content"]))
    if not samples:
        raise UserError(
            f"{path} holds no samples: ingest more chat history with `twin ingest` (the validation split is empty)"
        )
    return dataset.spread(samples, limit)
