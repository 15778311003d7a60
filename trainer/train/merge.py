"""What training leaves behind: the LoRA adapter (adapter/) and the base with it merged in (merged/)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from twin.files import atomic_dir


def _private(folder: Path) -> None:
    # save_pretrained creates files 0644; a twin's weights are derived from private messages.
    for path in folder.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o600)


def save_adapter(model: Any, final: Path, base_ref: str) -> None:
    """The peft adapter (adapter_config.json + adapter_model.safetensors), pointing at `base_ref`."""
    config = model.peft_config["default"]
    saved_ref = config.base_model_name_or_path
    config.base_model_name_or_path = base_ref
    try:
        with atomic_dir(final) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            _private(tmp)
    finally:
        config.base_model_name_or_path = saved_ref


def save_merged(model: Any, tokenizer: Any, final: Path, dtype: torch.dtype) -> None:
    """Merge the adapter into the base weights and save model, tokenizer and chat template, ready for conversion.

    Consumes `model`: its LoRA layers are folded away.
    """
    merged = model.merge_and_unload().to("cpu", dtype=dtype)
    merged.config.use_cache = True
    with atomic_dir(final) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        _private(tmp)
