"""Perplexity of my real replies given their context: only the reply's tokens are scored.

One definition for both backends: the conversation is rendered with the
model's chat template with and without the reply (the context ending in a
generation prompt); the reply's tokens are what the full rendering adds — the
reply text and the template's end of turn. Transformers scores the merged and
the base model, llama.cpp the served GGUF.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.evaluation.evalset import EvalSample, Messages

MAX_TOKENS = 1024  # context + reply per sample; the oldest context tokens go first
MAX_REPLY_TOKENS = 256


@dataclass(frozen=True)
class Perplexity:
    value: float  # exp(mean NLL per reply token)
    tokens: int  # reply tokens scored
    samples: int  # samples scored (a template that cannot be split leaves one out)
    nll: list[float | None]  # mean NLL per sample, None where it was left out


def conversation(sample: EvalSample, system_prompt: str | None) -> Messages:
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*system, *sample.context, {"role": "assistant", "content": sample.real}]


def split_reply(render: Callable[[Messages, bool], str], messages: Messages) -> tuple[str, str] | None:
    """(context rendering with generation prompt, the text the reply adds), or None if the template refuses or does not extend."""
    from jinja2 import TemplateError

    try:
        prefix = render(messages[:-1], True)
        full = render(messages, False)
    except TemplateError:  # a template's raise_exception(), e.g. roles that must alternate
        return None
    if not full.startswith(prefix) or len(full) == len(prefix):
        return None
    return prefix, full[len(prefix) :]


def _fit(prefix: list[int], reply: list[int]) -> tuple[list[int], list[int]]:
    reply = reply[:MAX_REPLY_TOKENS]
    return prefix[-(MAX_TOKENS - len(reply)) :], reply


def _measure(
    samples: Sequence[EvalSample],
    system_prompt: str | None,
    render: Callable[[Messages, bool], str],
    tokenize: Callable[[str], list[int]],
    score: Callable[[list[int], list[int]], float],
    advance: Callable[[], None],
) -> Perplexity:
    """The loop both backends share; `score(prefix, reply)` is the backend's mean NLL of the reply tokens."""
    nlls: list[float | None] = []
    counts: list[int] = []
    for sample in samples:
        parts = split_reply(render, conversation(sample, system_prompt))
        advance()
        if parts is None:
            nlls.append(None)
            counts.append(0)
            continue
        prefix, reply = _fit(tokenize(parts[0]), tokenize(parts[1]))
        nlls.append(score(prefix, reply))
        counts.append(len(reply))
    return _result(nlls, counts)


def _result(nlls: list[float | None], counts: list[int]) -> Perplexity:
    total = sum(n * c for n, c in zip(nlls, counts) if n is not None)
    tokens = sum(c for n, c in zip(nlls, counts) if n is not None)
    scored = sum(n is not None for n in nlls)
    value = math.exp(total / tokens) if tokens else math.nan
    return Perplexity(value, tokens, scored, nlls)


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

    def score(prefix: list[int], reply: list[int]) -> float:
        ids = torch.tensor([prefix + reply])
        logits = model(input_ids=ids, logits_to_keep=len(reply) + 1).logits[0, :-1].float()
        return float(torch.nn.functional.cross_entropy(logits, torch.tensor(reply), reduction="mean"))

    model.eval()
    with torch.inference_mode():
        return _measure(samples, system_prompt, render, tokenize, score, advance)


def gguf_perplexity(
    gguf: Path,
    samples: Sequence[EvalSample],
    system_prompt: str | None = None,
    threads: int = 0,
    advance: Callable[[], None] = lambda: None,
) -> Perplexity:
    """Reply perplexity under a GGUF in llama.cpp, rendered with the GGUF's own chat template as the daemon does."""
    from convert.perplexity import open_scorer

    with open_scorer(gguf, MAX_TOKENS, threads or None) as scorer:
        return _measure(
            samples,
            system_prompt,
            scorer.render,
            scorer.tokenize,
            lambda prefix, reply: scorer.reply_nll(prefix, reply) / len(reply),
            advance,
        )
