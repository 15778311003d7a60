"""A Hugging Face checkpoint directory as the converter sees it: config.json, safetensors shards, tokenizer files.

Only headers are read here; tensors are loaded one at a time by `Checkpoint.tensor`,
so a model of any size costs the memory of its largest tensor. The safetensors
library only offers memory-mapped access, whose touched pages stay in the
process's resident set until the file is closed (the whole model, by the end);
the format is a JSON header and raw little-endian arrays, so each tensor is read
here with one plain read instead.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import UserError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
# safetensors dtype -> numpy dtype of the stored bytes (BF16 is widened by hand: numpy has no bfloat16)
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}


@dataclass(frozen=True)
class TensorHeader:
    name: str
    shape: tuple[int, ...]
    dtype: str  # safetensors' name: "F32", "F16", "BF16", …
    file: Path
    start: int  # byte offset of the data in the file
    nbytes: int


@dataclass
class Checkpoint:
    """An HF model directory with its config and the headers of every tensor in its safetensors files."""

    path: Path
    config: dict[str, Any]
    tensors: dict[str, TensorHeader]

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or []
        return archs[0] if archs else str(self.config.get("model_type", "?"))

    def tensor(self, name: str) -> np.ndarray:
        """One tensor as float32 numpy, read from disk (f16 and bf16 are widened; the writer narrows later)."""
        header = self.tensors[name]
        dtype = np.dtype(_DTYPES[header.dtype])
        count = header.nbytes // dtype.itemsize
        with open(header.file, "rb") as f:
            f.seek(header.start)
            array = np.fromfile(f, dtype=dtype, count=count)
        if array.size != count:
            raise UserError(
                f"{header.file}: tensor {name!r} is cut short: the file is incomplete, copy the model again"
            )
        array = array.reshape(header.shape)
        if header.dtype == "BF16":
            return (array.astype(np.uint32) << 16).view(np.float32)
        return array.astype(np.float32, copy=False)


def open_checkpoint(path: Path) -> Checkpoint:
    """Read a model directory's config and tensor headers; a UserError naming the problem when it is not a model."""
    path = path.expanduser()
    if not path.is_dir():
        raise UserError(
            f"{path} is not a directory: pass the folder of a Hugging Face model (with config.json and *.safetensors)"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UserError(
            f"{path} is not a Hugging Face model: it has no config.json (pass the model's folder, e.g. twins/<name>/merged)"
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{config_file}: cannot read it as JSON ({e}): restore the model's config.json") from None
    if not isinstance(config, dict):
        raise UserError(f"{config_file}: not a model config (expected a JSON object): restore the model's config.json")
    files = _safetensors_files(path)
    tensors: dict[str, TensorHeader] = {}
    for file in files:
        tensors.update(_read_header(file))
    if not tensors:
        raise UserError(f"{path}: its safetensors files hold no tensors: re-save the model with `save_pretrained`")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(
            f"{path} has no tokenizer (tokenizer.json, tokenizer.model or vocab.json): "
            "copy the base model's tokenizer files into it (`tokenizer.save_pretrained`)"
        )
    return Checkpoint(path, config, tensors)


def _read_header(file: Path) -> dict[str, TensorHeader]:
    """The tensor table of one safetensors file: an 8-byte little-endian length, then that much JSON."""

    def bad(reason: str) -> UserError:
        return UserError(
            f"{file}: not a readable safetensors file ({reason}): re-save the model with `save_pretrained`"
        )

    try:
        with open(file, "rb") as f:
            size = file.stat().st_size
            raw = f.read(8)
            if len(raw) < 8:
                raise bad("shorter than its header")
            (length,) = struct.unpack("<Q", raw)
            if length > size - 8:
                raise bad("header longer than the file")
            header = json.loads(f.read(length))
    except OSError as e:
        raise bad(e.strerror or str(e)) from None
    except ValueError:
        raise bad("header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("header is not a table")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(int(n) for n in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise bad(f"entry {name!r} is malformed") from None
        if dtype not in _DTYPES:
            raise UserError(
                f"{file}: tensor {name!r} is {dtype}: `twin convert` reads float checkpoints (F32, F16, BF16) only"
            )
        start = 8 + length + int(begin)
        nbytes = int(end) - int(begin)
        if start + nbytes > size or nbytes != np.dtype(_DTYPES[dtype]).itemsize * int(np.prod(shape, dtype=np.int64)):
            raise bad(f"tensor {name!r} lies outside the file")
        out[name] = TensorHeader(name, shape, dtype, file, start, nbytes)
    return out


def _safetensors_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError) as e:
            raise UserError(
                f"{index}: not a safetensors index ({e}): re-save the model with `save_pretrained`"
            ) from None
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
