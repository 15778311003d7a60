"""LoRA on every linear projection of the supported architectures (peft)."""

from __future__ import annotations

import warnings
from typing import Any

from twin.errors import UserError

# Every linear projection of the transformer blocks; the LM head stays frozen (it is tied to the embeddings).
TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}


def target_modules(model_type: str, override: list[str] | None = None) -> list[str]:
    """The module names LoRA wraps for this architecture, or the user's own list."""
    if override:
        return list(override)
    if model_type not in TARGETS:
        raise UserError(
            f"architecture {model_type!r} has no LoRA target map (supported: {', '.join(TARGETS)}): "
            "pick a supported --base or name its projections with --lora-target"
        )
    return TARGETS[model_type]


def add_lora(model: Any, r: int, alpha: int, dropout: float, targets: list[str] | None = None) -> Any:
    """Wrap `model` with fresh LoRA adapters (peft); only the adapters are trainable."""
    from peft import LoraConfig, get_peft_model

    model_type = model.config.model_type
    modules = target_modules(model_type, targets)
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=modules,
        bias="none",
        task_type="CAUSAL_LM",
        # GPT-2 stores its projections as Conv1D (weights transposed).
        fan_in_fan_out=model_type == "gpt2",
    )
    try:
        with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for the user to do
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(model, config)
    except ValueError as e:
        raise UserError(f"LoRA targets {modules} do not match this model ({e}): fix --lora-target") from None
