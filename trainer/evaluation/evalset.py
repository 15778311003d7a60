"""The validation samples an evaluation runs on: context (every message but the last) and my real reply.

Line numbers and hashes are those of `twin chat --rate` (1-based line of
val.jsonl, sha256 of the stripped line), so ratings can be matched to samples.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from twin import paths
from twin.errors import UserError

Messages = list[dict[str, str]]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class EvalSample:
    line: int  # 1-based line number in val.jsonl
    context: Messages  # trimmed to the evaluation's context budget, oldest messages first dropped
    real: str  # my reply


def val_path(name: str) -> Path:
    return paths.twin_dir(name) / "dataset" / "val.jsonl"


def line_hashes(path: Path) -> dict[int, str]:
    """line number -> sha256 of the stripped line, for every non-empty line (as the rating mode stores them)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {i: hashlib.sha256(t.strip().encode("utf-8")).hexdigest() for i, t in enumerate(lines, 1) if t.strip()}


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
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path} ({e}): rebuild the dataset with `twin ingest`") from None
    samples = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        messages = _messages(text, f"{path}:{number}")
        context = trim_context(messages[:-1], max_context_chars)
        samples.append(EvalSample(number, context, messages[-1]["content"]))
    if not samples:
        raise UserError(
            f"{path} holds no samples: ingest more chat history with `twin ingest` (the validation split is empty)"
        )
    step = len(samples) / min(limit, len(samples))
    return [samples[int(i * step)] for i in range(min(limit, len(samples)))]


def _messages(text: str, where: str) -> Messages:
    try:
        record = json.loads(text)
    except ValueError as e:
        raise UserError(f"{where}: not valid JSON ({e}): rebuild the dataset with `twin ingest`") from None
    messages = record.get("messages") if isinstance(record, dict) else None
    if (
        not isinstance(messages, list)
        or len(messages) < 2
        or not all(
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in messages
        )
    ):
        raise UserError(
            f'{where}: expected {{"messages": [{{"role", "content"}}, …]}} with a context and a reply: rebuild the dataset with `twin ingest`'
        )
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise UserError(
            f"{where}: the last message must be my non-empty reply (role assistant): rebuild the dataset with `twin ingest`"
        )
    return [{"role": m["role"], "content": m["content"]} for m in messages]
