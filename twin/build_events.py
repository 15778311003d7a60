"""The machine-readable progress of `twin build`: one JSON object a line, appended to a file as it happens.

A daemon's fine-tuning job passes `twin build --events FILE` and follows the
file; each line is `{"event": KIND, "time": unix seconds, ...}`. Kinds:
`stage` (stage, number, of), `ingested` (train_samples, val_samples), `step`
(step, total_steps, loss, tokens_per_s, eta_seconds), `train` (the trainer's
windowed log line), `eval` (step, val_loss, val_ppl), `checkpoint` (step,
train_loss, val_loss), `converted` (quant, gguf, bytes), `done` (name, gguf,
trained_tokens, val_perplexity) and `error` (message: the line the CLI prints).
A file, not a pipe: the build keeps writing if its reader dies, and a
restarted reader reads it from where it left off.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class BuildEvents:
    """Appends events to `path` (created 0600), flushed line by line; with no path it drops them."""

    def __init__(self, path: Path | None) -> None:
        self._file = None
        if path is not None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8")

    def __call__(self, event: dict[str, Any]) -> None:
        if self._file is None:
            return
        line = json.dumps({"time": round(time.time(), 3), **event}, ensure_ascii=False, separators=(",", ":"))
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
