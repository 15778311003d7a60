"""Reply perplexity in `twin eval`: the shared measure (convert.perplexity) on evaluation samples.

Transformers scores the merged and the base model, llama.cpp the served GGUF,
onnxruntime-genai the served ONNX export; all go through `convert.perplexity.measure`, so they follow the same rules
(window, reply cap, what is left out) as `twin convert --quant auto`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from convert.perplexity import EVAL_WINDOW, Perplexity, measure, reply_perplexity, split_reply
from trainer.evaluation.evalset import EvalSample, Messages, with_system

__all__ = ["Perplexity", "conversation", "gguf_perplexity", "hf_perplexity", "onnx_perplexity", "split_reply"]


def conversation(sample: EvalSample, system_prompt: str | None) -> Messages:
    return [*with_system(sample.context, system_prompt), {"role": "assistant", "content": sample.real}]


def hf_perplexity(
    model: Any,
    tokenizer: Any,
    samples: Sequence[EvalSample],
    system_prompt: str | None,
    advance: Callable[[], None] = lambda: None,
) -> Perplexity:
    """Reply perplexity under a transformers causal LM (logits computed only for the reply positions)."""
    import torch

    def render(messages: Messages, gen: bool) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)

    def tokenize(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def reply_nll(prefix: list[int], reply: list[int]) -> float:
        ids = torch.tensor([prefix + reply])
        logits = model(input_ids=ids, logits_to_keep=len(reply) + 1).logits[0, :-1].float()
        return float(torch.nn.functional.cross_entropy(logits, torch.tensor(reply), reduction="sum"))

    model.eval()
    with torch.inference_mode():
        return measure(
            [conversation(s, system_prompt) for s in samples], render, tokenize, reply_nll, EVAL_WINDOW, advance
        )


def gguf_perplexity(
    gguf: Path,
    samples: Sequence[EvalSample],
    system_prompt: str | None = None,
    threads: int = 0,
    advance: Callable[[], None] = lambda: None,
    lora: Path | None = None,
) -> Perplexity:
    """Reply perplexity under a GGUF (and its LoRA adapter GGUF) in llama.cpp, rendered with the GGUF's own chat
    template as the daemon does."""
    conversations = [conversation(s, system_prompt) for s in samples]
    return reply_perplexity(gguf, conversations, EVAL_WINDOW, threads or None, advance, lora)


def onnx_perplexity(
    folder: Path,
    samples: Sequence[EvalSample],
    system_prompt: str | None = None,
    advance: Callable[[], None] = lambda: None,
) -> Perplexity:
    """Reply perplexity under an exported ONNX folder in onnxruntime-genai, rendered with its template as served."""
    from convert.onnx_perplexity import onnx_reply_perplexity

    return onnx_reply_perplexity(folder, [conversation(s, system_prompt) for s in samples], EVAL_WINDOW, advance)
