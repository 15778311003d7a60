"""A twin's dataset files and their one reader: `twins/<name>/dataset/{train,val}.jsonl`.

Ingest writes them (trainer.ingest.dataset); training, the persona, convert's
`--quant auto`, the evaluation, the demo and the TUI's rating mode read them here.
A line is `{"messages": [{"role", "content"}, …]}` whose last message is my
reply; line numbers and hashes are what ratings store (1-based line, sha256 of
the stripped line), so a rating can be matched to its sample.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin import paths
from twin.errors import UserError

DATASET_DIR = "dataset"  # inside the twin's directory
TRAIN = "train.jsonl"
VAL = "val.jsonl"
STATS = "stats.json"
ROLES = ("system", "user", "assistant")
FIX = "rebuild the dataset with `twin ingest`"

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Line:
    number: int  # 1-based line number in the file
    sha256: str  # of the stripped line
    messages: Messages  # role and content only; the last one is my reply
    record: dict[str, Any]  # the whole JSON object, for fields beside "messages"


def dataset_dir(name: str) -> Path:
    return paths.twin_dir(name) / DATASET_DIR


def train_path(name: str) -> Path:
    return dataset_dir(name) / TRAIN


def val_path(name: str) -> Path:
    return dataset_dir(name) / VAL


def read(path: Path) -> list[Line]:
    """Every conversation of a dataset file, in order; a UserError naming file and line for anything malformed."""
    if not path.is_file():
        raise UserError(f"{path} does not exist: run `twin ingest` first")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path} ({e}): {FIX}") from None
    return [_line(raw, number, f"{path}:{number}") for number, raw in enumerate(text.splitlines(), 1) if raw.strip()]


def spread(items: list[Any], limit: int) -> list[Any]:
    """Up to `limit` of `items`, evenly spaced over the whole list (the first one included)."""
    count = min(limit, len(items))
    step = len(items) / count if count else 1
    return [items[int(i * step)] for i in range(count)]


def _line(raw: str, number: int, where: str) -> Line:
    try:
        record = json.loads(raw)
    except ValueError as e:
        raise UserError(f"{where}: not valid JSON ({e}): {FIX}") from None
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list) or not messages:
        raise UserError(f'{where}: expected {{"messages": [{{"role", "content"}}, …]}}: {FIX}')
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise UserError(
                f'{where}: expected {{"messages": [{{"role", "content"}}, …]}}: message {i} needs a role'
                f" ({'/'.join(ROLES)}) and a text content: {FIX}"
            )
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise UserError(f"{where}: the last message must be my non-empty reply (role assistant): {FIX}")
    sha = hashlib.sha256(raw.strip().encode("utf-8")).hexdigest()
    return Line(number, sha, [{"role": m["role"], "content": m["content"]} for m in messages], record)
