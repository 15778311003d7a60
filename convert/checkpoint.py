"""A Hugging Face checkpoint directory as the converter sees it: config.json, safetensors shards, tokenizer files.

Only headers are read here; tensors are loaded one at a time by `Checkpoint.tensor`,
so a model of any size costs the memory of its largest tensor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import UserError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


@dataclass(frozen=True)
class TensorHeader:
    name: str
    shape: tuple[int, ...]
    dtype: str  # safetensors' name: "F32", "F16", "BF16", …
    file: Path


@dataclass
class Checkpoint:
    """An HF model directory with its config and the headers of every tensor in its safetensors files."""

    path: Path
    config: dict[str, Any]
    tensors: dict[str, TensorHeader]
    _files: ExitStack = field(default_factory=ExitStack, repr=False)
    _open: dict[Path, Any] = field(default_factory=dict, repr=False)

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or []
        return archs[0] if archs else str(self.config.get("model_type", "?"))

    def tensor(self, name: str) -> np.ndarray:
        """One tensor as float32 numpy (bf16 and f16 are widened: numpy has no bf16, and the writer narrows later)."""
        import torch
        from safetensors import safe_open

        header = self.tensors[name]
        handle = self._open.get(header.file)
        if handle is None:
            handle = self._files.enter_context(safe_open(str(header.file), framework="pt"))
            self._open[header.file] = handle
        return handle.get_tensor(name).to(torch.float32).numpy()

    def close(self) -> None:
        self._files.close()
        self._open.clear()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_checkpoint(path: Path) -> Checkpoint:
    """Read a model directory's config and tensor headers; a UserError naming the problem when it is not a model."""
    from safetensors import SafetensorError, safe_open

    path = path.expanduser()
    if not path.is_dir():
        raise UserError(f"{path} is not a directory: pass the folder of a Hugging Face model (with config.json and *.safetensors)")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UserError(f"{path} is not a Hugging Face model: it has no config.json (pass the model's folder, e.g. twins/<name>/merged)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{config_file}: cannot read it as JSON ({e}): restore the model's config.json") from None
    if not isinstance(config, dict):
        raise UserError(f"{config_file}: not a model config (expected a JSON object): restore the model's config.json")
    files = _safetensors_files(path)
    tensors: dict[str, TensorHeader] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                for name in f.keys():
                    sl = f.get_slice(name)
                    tensors[name] = TensorHeader(name, tuple(sl.get_shape()), sl.get_dtype(), file)
        except (SafetensorError, OSError) as e:
            raise UserError(f"{file}: not a readable safetensors file ({e}): re-save the model with `save_pretrained`") from None
    if not tensors:
        raise UserError(f"{path}: its safetensors files hold no tensors: re-save the model with `save_pretrained`")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(
            f"{path} has no tokenizer (tokenizer.json, tokenizer.model or vocab.json): "
            "copy the base model's tokenizer files into it (`tokenizer.save_pretrained`)"
        )
    return Checkpoint(path, config, tensors)


def _safetensors_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{index}: not a safetensors index ({e}): re-save the model with `save_pretrained`") from None
        files = [path / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise UserError(f"{path}: shard {missing[0]} named in {index.name} is missing: copy the whole model folder")
        return files
    files = sorted(path.glob("*.safetensors"))
    if files:
        return files
    if any(path.glob("pytorch_model*.bin")):
        raise UserError(
            f"{path} holds pytorch_model.bin, not safetensors: re-save it with `model.save_pretrained(dir)` (safetensors is the default)"
        )
    raise UserError(f"{path} is not a Hugging Face model: it has no *.safetensors weights")


def iter_names(checkpoint: Checkpoint) -> Iterator[str]:
    """Tensor names in file order, then name order: stable output whatever the shard layout."""
    yield from sorted(checkpoint.tensors, key=lambda n: (checkpoint.tensors[n].file.name, n))
