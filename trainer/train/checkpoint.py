"""The resumable training state: adapter weights, optimizer, scheduler, RNG and the position in the data.

It lives in twins/<name>/checkpoint/ and is replaced as a whole on every save,
so an interruption at any moment leaves either the previous checkpoint or the
new one. A finished run removes it.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from twin.errors import UserError
from twin.files import atomic_dir

CHECKPOINT_DIR = "checkpoint"
STATE = "state.pt"
ADAPTER = "adapter.safetensors"
BEST = "best.safetensors"


@dataclass
class Progress:
    """Where training stands: the next optimizer step starts at batch group `group` of `epoch`."""

    step: int = 0
    epoch: int = 0
    group: int = 0
    tokens: int = 0  # real (non-padding) tokens trained on
    seconds: float = 0.0  # time spent in training steps
    best_loss: float | None = None
    best_step: int = 0
    bad_evals: int = 0  # evaluations in a row without improvement (early stopping)
    last_eval_step: int = -1
    first_val_loss: float | None = None
    last_val_loss: float | None = None
    planned_steps: int = 0  # the step count a time budget chose (0: none chosen yet)


def fingerprint(*files: Path) -> str:
    """A hash of the dataset files: resuming on different data would not end where the first run would."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def save(
    folder: Path,
    *,
    adapter: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    progress: Progress,
    config: dict[str, Any],
    data_hash: str,
) -> None:
    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "progress": progress.__dict__,
        "config": config,
        "data_hash": data_hash,
    }
    with atomic_dir(folder) as tmp:
        save_file(_cpu(adapter), str(tmp / ADAPTER))
        if best is not None:
            save_file(_cpu(best), str(tmp / BEST))
        torch.save(state, tmp / STATE)


def exists(folder: Path) -> bool:
    return (folder / STATE).is_file() and (folder / ADAPTER).is_file()


def load(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """(state, adapter weights, best adapter weights or None) of a checkpoint folder."""
    if not exists(folder):
        raise UserError(f"no checkpoint to resume in {folder}: run `twin train` without --resume to start over")
    try:
        state = torch.load(folder / STATE, map_location="cpu", weights_only=True)
        adapter = load_file(str(folder / ADAPTER))
        best = load_file(str(folder / BEST)) if (folder / BEST).is_file() else None
    except Exception as e:  # a damaged checkpoint is the user's to delete, not a bug
        raise UserError(
            f"checkpoint {folder} is damaged ({e.__class__.__name__}): delete it and train without --resume"
        ) from None
    return state, adapter, best


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _cpu(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in weights.items()}
