"""Loading a transformers variant: the merged LoRA checkpoint, or the base model the persona runs on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.evaluation.variants import Variant
from twin import embedded
from twin.chatformat import PLAIN_TEMPLATE
from twin.errors import UserError


def load(variant: Variant) -> tuple[Any, Any]:
    """(model, tokenizer) in fp32 on the CPU, in eval mode, with a chat template (the plain one if it had none)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the evaluation shows its own progress

    if variant.hf_dir is not None:
        folder, kwargs = variant.hf_dir, dict[str, Any]()
    elif variant.hf_base in embedded.ALIASES:
        from trainer.bases import resolve_base

        folder, kwargs = resolve_base(variant.hf_base), {}
    else:
        gguf = Path(variant.hf_base).expanduser()
        folder, kwargs = gguf.parent, {"gguf_file": gguf.name}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load the {variant.key} variant's model from {folder} ({e}): rebuild it") from None
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = PLAIN_TEMPLATE
    model.eval()
    return model, tokenizer
