"""The `adapter` quant: the base's own 4-bit GGUF, as it is, with the trained LoRA applied by llama.cpp at run time.

The embedded base already is a 4-bit GGUF (Q4_1), and training starts from its
dequantized weights. Merging the LoRA and quantizing again rounds every weight a
second time, and the small LoRA delta is mostly lost in that rounding. Measured on
the development corpus's twin (64 validation conversations, reply perplexity): the
merged f16 GGUF 23.106; merged q4_k_m 24.116 (x1.044); merged q4_1 x1.43; the
base's Q4_1 file with the LoRA as an f16 adapter GGUF 23.072 (x0.999). The adapter
costs about a quarter of the decoding speed (56 against 76 tokens/s on 2 threads),
so `twin convert --quant auto` measures it with the others and keeps the best.

The adapter file is llama.cpp's LoRA GGUF (what its convert_lora_to_gguf.py
writes): `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`,
and for each adapted weight `<gguf name>.lora_a` (r x in) and `.lora_b` (out x r),
B's rows in llama.cpp's order (the architecture's transform: llama's q and k rows
are reordered for its rope).

Its tensors are q8_0, the rank padded with zeros to a multiple of q8_0's 32-value
block (and alpha scaled with it, so alpha / r is the trained scale). In f16 or
f32, llama.cpp's CPU backend multiplies one token by the LoRA with another kernel
than a batch of tokens, so a served twin's logits depended on what else was in the
batched daemon's step: up to 0.55 apart for the development twin with 1 to 5
other sequences beside it (0.46 in f32), enough to change a seeded reply. In q8_0
the products are integer dot products and the logits are the same to the bit
whatever runs beside them, as the base's q8_0 copy's are (daemon/weights.py). The
cost: reply perplexity x1.003 of the f16 adapter's, on 20 validation
conversations (the adapter's gain over the base, 0.126 nats, keeps 0.123).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from convert.architectures import Architecture
from twin import embedded

LORA_SUFFIX = ".lora.gguf"  # the adapter beside `model-adapter.gguf` is `model-adapter.lora.gguf`
# Architectures whose transform touches weight rows only, so that it applies to B alone (gpt2 transposes).
_ROW_TRANSFORMS = ("llama", "qwen2", "phi3")
QUANT = gguf.GGMLQuantizationType.Q8_0
BLOCK = gguf.GGML_QUANT_SIZES[QUANT][0]  # values per q8_0 block: A's rows (the input size) and B's (the rank)


def lora_path(gguf_path: Path) -> Path:
    return gguf_path.with_name(gguf_path.name.removesuffix(".gguf") + LORA_SUFFIX)


def base_gguf(train: dict[str, Any]) -> Path | None:
    """The 4-bit GGUF the twin's base was dequantized from (the embedded model), or None for an HF base."""
    return embedded.embedded_gguf() if str(train.get("base", "")) in embedded.ALIASES else None


def unsupported(adapter_dir: Path, arch: Architecture) -> str:
    """Why this PEFT adapter cannot be served as a llama.cpp LoRA ('' when it can)."""
    if arch.name not in _ROW_TRANSFORMS:
        return f"llama.cpp adapters for {arch.name} are not written by twin"
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"cannot read {adapter_dir / 'adapter_config.json'} ({e})"
    if config.get("peft_type") != "LORA":
        return f"the adapter is {config.get('peft_type')}, not LoRA"
    for key, why in (
        ("use_dora", "DoRA"),
        ("modules_to_save", "fully trained modules"),
        ("rank_pattern", "per-module ranks"),
        ("alpha_pattern", "per-module alphas"),
        ("fan_in_fan_out", "fan-in-fan-out weights"),
    ):
        if config.get(key):
            return f"the adapter uses {why}, which a llama.cpp LoRA file cannot hold"
    if config.get("bias", "none") != "none":
        return "the adapter trains biases, which a llama.cpp LoRA file cannot hold"
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        return f"{adapter_dir} has no adapter_model.safetensors"
    return ""


def write_lora_gguf(adapter_dir: Path, config: dict[str, Any], arch: Architecture, out: Path) -> int:
    """Write the PEFT adapter in `adapter_dir` (for a model with HF `config`) as llama.cpp's q8_0 LoRA GGUF; its size."""
    from safetensors.numpy import load_file

    peft = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    rank = int(peft["r"])
    alpha = float(peft["lora_alpha"])
    if peft.get("use_rslora"):
        alpha *= math.sqrt(rank)  # rsLoRA scales by alpha/sqrt(r); llama.cpp by alpha/r
    padded = -(-rank // BLOCK) * BLOCK
    alpha *= padded / rank  # llama.cpp reads r from the tensors: the padded rank, with the same alpha / r
    names = gguf.get_tensor_name_map(arch.gguf_arch, int(config["num_hidden_layers"]))
    w = gguf.GGUFWriter(None, arch.name)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for key, array in sorted(load_file(str(adapter_dir / "adapter_model.safetensors")).items()):
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
        module, _, part = key.removeprefix("base_model.model.").rpartition(".lora_")
        weight = module + ".weight"
        name = names.get_name(weight, try_suffixes=(".weight",))
        if name is None or part not in ("A.weight", "B.weight"):
            raise ValueError(f"{key}: not a LoRA weight of a {arch.name} tensor")
        if part == "B.weight":
            array = arch.transform(weight, array, config)
        w.add_tensor(f"{name}.lora_{part[0].lower()}", _q8_0(array, padded, b=part == "B.weight"), raw_dtype=QUANT)
    w.write_header_to_file(out)
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    assert w.fout is not None
    for f in w.fout:
        f.flush()
        os.fsync(f.fileno())
    w.close()
    return out.stat().st_size


def _q8_0(array: np.ndarray, rank: int, b: bool) -> np.ndarray:
    """A LoRA matrix, A (r x in) or B (out x r), with its rank padded with zeros to `rank`, quantized to q8_0."""
    array = np.asarray(array, dtype=np.float32)
    pad = ((0, 0), (0, rank - array.shape[1])) if b else ((0, rank - array.shape[0]), (0, 0))
    array = np.pad(array, pad)
    if array.shape[1] % BLOCK:
        raise ValueError(f"a LoRA matrix of {array.shape[1]} columns cannot be q8_0 (blocks of {BLOCK})")
    return gguf.quants.quantize(np.ascontiguousarray(array), QUANT)
