"""Write an HF checkpoint as an f16 or f32 GGUF, one tensor at a time.

gguf-py's writer normally holds every tensor until the end; here the tensor
table is planned from the safetensors headers first (names, shapes, types), the
header, metadata and table are written, and then each tensor is read, fixed up
and written before the next one is touched: peak memory is one tensor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from pathlib import Path

import gguf
import numpy as np

from convert.architectures import Architecture
from convert.checkpoint import Checkpoint, iter_names
from convert.vocab import Vocabulary
from twin.errors import UserError
from twin.files import write_error

OUTPUT_ELSEWHERE = "write elsewhere with -o FILE"

# gguf-py announces every file at INFO ("This GGUF file is for Little Endian only"): noise for our users.
logging.getLogger("gguf").setLevel(logging.WARNING)

FLOAT_TYPES = {"f32": (np.float32, gguf.LlamaFileType.ALL_F32), "f16": (np.float16, gguf.LlamaFileType.MOSTLY_F16)}


@dataclass(frozen=True)
class PlannedTensor:
    hf_name: str
    gguf_name: str
    shape: tuple[int, ...]
    dtype: type[np.floating]

    @property
    def nbytes(self) -> int:
        return prod(self.shape) * np.dtype(self.dtype).itemsize


def block_count(config: dict) -> int:
    return int(config.get("num_hidden_layers") or config.get("n_layer") or 0)


def plan_tensors(ckpt: Checkpoint, arch: Architecture, float_type: str) -> list[PlannedTensor]:
    """The GGUF tensor table, from headers only; a UserError for a tensor llama.cpp has no place for."""
    dtype = FLOAT_TYPES[float_type][0]
    names = gguf.get_tensor_name_map(arch.gguf_arch, block_count(ckpt.config))
    tied = bool(ckpt.config.get("tie_word_embeddings", arch.tied_by_default))
    plan = []
    for hf_name in iter_names(ckpt):
        if hf_name.endswith(arch.ignored_suffixes):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise UserError(
                f"{ckpt.path}: tensor {hf_name!r} has no place in llama.cpp's {arch.name}: "
                "the weights do not match config.json's architecture (re-save the model with `save_pretrained`)"
            )
        if gguf_name == "output.weight" and tied:
            continue  # llama.cpp reuses token_embd when output is absent
        shape = arch.transformed_shape(hf_name, ckpt.tensors[hf_name].shape)
        # 1-D tensors (norms, biases) stay f32: llama.cpp's kernels expect it, and they are tiny.
        plan.append(PlannedTensor(hf_name, gguf_name, shape, np.float32 if len(shape) == 1 else dtype))
    return plan


def embedding_rows(ckpt: Checkpoint, arch: Architecture) -> int:
    names = gguf.get_tensor_name_map(arch.gguf_arch, block_count(ckpt.config))
    for hf_name, header in ckpt.tensors.items():
        if names.get_name(hf_name, try_suffixes=(".weight",)) == "token_embd.weight":
            return header.shape[0]
    raise UserError(f"{ckpt.path}: no token embedding tensor: the checkpoint is incomplete (re-save the model)")


def write_gguf(
    ckpt: Checkpoint,
    arch: Architecture,
    vocab: Vocabulary,
    out: Path,
    float_type: str,
    name: str,
    advance: Callable[[int], None] = lambda nbytes: None,
) -> list[PlannedTensor]:
    """Write `ckpt` to `out` as a `float_type` ("f16" or "f32") GGUF; `advance(bytes)` reports progress."""
    plan = plan_tensors(ckpt, arch, float_type)
    w = gguf.GGUFWriter(None, arch.name)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(name)
    arch.write_hparams(w, ckpt.config)
    w.add_vocab_size(len(vocab.tokens))
    w.add_file_type(FLOAT_TYPES[float_type][1])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab.write(w)
    for t in plan:
        w.add_tensor_info(t.gguf_name, t.shape, np.dtype(t.dtype), t.nbytes)
    remaining = sum(t.nbytes for t in plan)
    try:
        w.open_output_file(out)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for t in plan:
            array = arch.transform(t.hf_name, ckpt.tensor(t.hf_name), ckpt.config).astype(t.dtype, copy=False)
            if array.shape != t.shape:
                raise RuntimeError(f"{t.hf_name}: planned shape {t.shape}, got {array.shape}")
            if t.dtype is np.float16 and not np.isfinite(array).all():
                raise UserError(f"tensor {t.hf_name!r} overflows f16: convert with `--quant f32`")
            w.write_tensor_data(np.ascontiguousarray(array))
            remaining -= t.nbytes
            advance(t.nbytes)
        assert w.fout is not None
        for f in w.fout:
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise disk_error(e, out, remaining) from None
    finally:
        w.close()
    return plan


def disk_error(e: OSError, path: Path, needed: int = 1, doing: str = "writing the GGUF") -> UserError:
    """A failed GGUF write as one line: the project's one way (`twin.files.write_error`), with convert's fix."""
    return write_error(e, path, doing, OUTPUT_ELSEWHERE, needed)
