"""The training loss with logits only where there are labels.

The LM head projects onto the whole vocabulary (49,152 tokens for SmolLM2), a
large share of each step; context tokens carry no labels, so the head runs on
the hidden states of labelled positions only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from trainer.train.batches import Batch
from trainer.train.samples import IGNORE


def backbone_and_head(model: Any) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The transformer body (hidden states) and the LM head of a causal LM (also inside a peft wrapper)."""
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(hf, hf.base_model_prefix), hf.get_output_embeddings()


def label_loss(backbone: torch.nn.Module, head: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the labelled next-token predictions, and how many there were."""
    hidden = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).last_hidden_state
    targets = batch.labels[:, 1:]
    keep = targets != IGNORE
    logits = head(hidden[:, :-1][keep]).float()
    return F.cross_entropy(logits, targets[keep], reduction="sum"), int(keep.sum())
