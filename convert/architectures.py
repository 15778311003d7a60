"""What each supported architecture needs: its GGUF hyper-parameters and how its HF tensors become llama.cpp's.

Supported: llama (TinyLlama, SmolLM2), phi3 (fused qkv and gate_up, kept fused as
llama.cpp expects), qwen2 (attention biases), gpt2 (Conv1D weights, transposed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gguf
import numpy as np

from twin.errors import UserError

Config = dict[str, Any]


@dataclass(frozen=True)
class Architecture:
    """One HF architecture: its llama.cpp name, its hyper-parameters, and per-tensor fixes."""

    gguf_arch: gguf.MODEL_ARCH
    write_hparams: Callable[[gguf.GGUFWriter, Config], None]
    # (HF tensor name, array, config) -> array in llama.cpp's layout
    transform: Callable[[str, np.ndarray, Config], np.ndarray]
    # (HF tensor name, shape) -> shape after `transform`, known before any tensor is read
    transformed_shape: Callable[[str, tuple[int, ...]], tuple[int, ...]]
    tied_by_default: bool = False
    ignored_suffixes: tuple[str, ...] = ("rotary_emb.inv_freq",)

    @property
    def name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.gguf_arch]


def rope_theta(config: Config, default: float = 10000.0) -> float:
    # transformers 5 moved rope_theta into `rope_parameters`; older configs keep it at the top.
    params: dict[str, Any] = config.get("rope_parameters") or {}
    return float(params.get("rope_theta", config.get("rope_theta", default)))  # type: ignore[arg-type]  # a number in every config.json


def _write_rope_scaling(w: gguf.GGUFWriter, config: Config, arch: str) -> None:
    scaling = config.get("rope_scaling") or {}
    params = config.get("rope_parameters") or {}
    kind = scaling.get("rope_type") or scaling.get("type") or params.get("rope_type") or "default"
    factor = scaling.get("factor", params.get("factor"))
    if kind == "default":
        return
    if kind == "linear" and factor:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(factor))
        return
    raise UserError(
        f"{arch} with rope scaling {kind!r} is not supported by twin's converter: "
        "use a base without rope scaling (e.g. Phi-3-mini-4k, not the 128k variant)"
    )


def head_dim(config: Config) -> int:
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def _write_decoder_hparams(w: gguf.GGUFWriter, config: Config, arch: str) -> None:
    """The keys llama-style decoders (llama, qwen2, phi3) share."""
    n_head = int(config["num_attention_heads"])
    w.add_context_length(int(config["max_position_embeddings"]))
    w.add_embedding_length(int(config["hidden_size"]))
    w.add_block_count(int(config["num_hidden_layers"]))
    w.add_feed_forward_length(int(config["intermediate_size"]))
    w.add_head_count(n_head)
    w.add_head_count_kv(int(config.get("num_key_value_heads") or n_head))
    w.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    w.add_rope_freq_base(rope_theta(config))
    if head_dim(config) != config["hidden_size"] // n_head:
        w.add_key_length(head_dim(config))
        w.add_value_length(head_dim(config))
    _write_rope_scaling(w, config, arch)


def _llama_hparams(w: gguf.GGUFWriter, config: Config) -> None:
    _write_decoder_hparams(w, config, "llama")
    w.add_rope_dimension_count(head_dim(config))


def _qwen2_hparams(w: gguf.GGUFWriter, config: Config) -> None:
    if config.get("use_sliding_window"):
        raise UserError(
            "qwen2 with use_sliding_window=true is not supported by llama.cpp's qwen2: use a base without it"
        )
    _write_decoder_hparams(w, config, "qwen2")
    w.add_rope_dimension_count(head_dim(config))


def _phi3_hparams(w: gguf.GGUFWriter, config: Config) -> None:
    _write_decoder_hparams(w, config, "phi3")
    w.add_rope_dimension_count(int(head_dim(config) * float(config.get("partial_rotary_factor", 1.0))))
    if config.get("sliding_window"):
        w.add_sliding_window(int(config["sliding_window"]))


def _gpt2_hparams(w: gguf.GGUFWriter, config: Config) -> None:
    n_embd = int(config["n_embd"])
    w.add_context_length(int(config["n_positions"]))
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(int(config.get("n_inner") or 4 * n_embd))
    w.add_block_count(int(config["n_layer"]))
    w.add_head_count(int(config["n_head"]))
    w.add_layer_norm_eps(float(config.get("layer_norm_epsilon", 1e-5)))


def _unchanged(name: str, array: np.ndarray, config: Config) -> np.ndarray:
    return array


def _same_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape


def _rotate_halves_to_pairs(array: np.ndarray, n_head: int) -> np.ndarray:
    """HF's llama rotates the two halves of each head; llama.cpp's llama rope rotates adjacent pairs.

    Reordering each head's rows (or bias entries) from [x0..x(d/2-1), y0..] to [x0, y0, x1, y1, …]
    makes the same rotation act on the same values.
    """
    rows = array.shape[0]
    rest = array.shape[1:]
    return array.reshape(n_head, 2, rows // n_head // 2, *rest).swapaxes(1, 2).reshape(array.shape)


def _llama_transform(name: str, array: np.ndarray, config: Config) -> np.ndarray:
    n_head = int(config["num_attention_heads"])
    if name.endswith(("q_proj.weight", "q_proj.bias")):
        return _rotate_halves_to_pairs(array, n_head)
    if name.endswith(("k_proj.weight", "k_proj.bias")):
        return _rotate_halves_to_pairs(array, int(config.get("num_key_value_heads") or n_head))
    return array


_GPT2_CONV1D = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")


def _gpt2_transform(name: str, array: np.ndarray, config: Config) -> np.ndarray:
    # GPT-2's Conv1D stores weights as (in, out); llama.cpp wants (out, in) like nn.Linear.
    return np.ascontiguousarray(array.T) if name.endswith(_GPT2_CONV1D) else array


def _gpt2_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(reversed(shape)) if name.endswith(_GPT2_CONV1D) else shape


ARCHITECTURES: dict[str, Architecture] = {
    "LlamaForCausalLM": Architecture(gguf.MODEL_ARCH.LLAMA, _llama_hparams, _llama_transform, _same_shape),
    "Qwen2ForCausalLM": Architecture(gguf.MODEL_ARCH.QWEN2, _qwen2_hparams, _unchanged, _same_shape),
    "Phi3ForCausalLM": Architecture(gguf.MODEL_ARCH.PHI3, _phi3_hparams, _unchanged, _same_shape),
    "GPT2LMHeadModel": Architecture(
        gguf.MODEL_ARCH.GPT2,
        _gpt2_hparams,
        _gpt2_transform,
        _gpt2_shape,
        tied_by_default=True,
        ignored_suffixes=(".attn.bias", ".attn.masked_bias"),  # causal-mask buffers, not weights
    ),
}


def architecture_for(name: str) -> Architecture:
    """The converter's entry for an HF architecture name; a UserError naming it and the supported ones otherwise."""
    arch = ARCHITECTURES.get(name)
    if arch is None:
        known = ", ".join(sorted(ARCHITECTURES))
        raise UserError(f"architecture {name!r} is not supported by `twin convert`: it converts {known}")
    return arch
