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

    nlls: list[float | None] = []
    counts: list[int] = []
    model.eval()
    with torch.inference_mode():
        for sample in samples:
            parts = split_reply(render, conversation(sample, system_prompt))
            advance()
            if parts is None:
                nlls.append(None)
                counts.append(0)
                continue
            prefix, reply = _fit(
                tokenizer(parts[0], add_special_tokens=False)["input_ids"],
                tokenizer(parts[1], add_special_tokens=False)["input_ids"],
            )
            ids = torch.tensor([prefix + reply])
            logits = model(input_ids=ids, logits_to_keep=len(reply) + 1).logits[0, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits, torch.tensor(reply), reduction="mean")
            nlls.append(float(nll))
            counts.append(len(reply))
    return _result(nlls, counts)


def gguf_perplexity(
    gguf: Path,
    samples: Sequence[EvalSample],
    system_prompt: str | None = None,
    threads: int = 0,
    advance: Callable[[], None] = lambda: None,
) -> Perplexity:
    """Reply perplexity under a GGUF in llama.cpp, rendered with the GGUF's own chat template as the daemon does."""
    import llama_cpp
    import numpy as np
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from twin.chatformat import PLAIN_TEMPLATE

    llm = llama_cpp.Llama(
        model_path=str(gguf),
        n_ctx=MAX_TOKENS,
        n_batch=MAX_TOKENS,
        logits_all=True,
        n_threads=threads or None,
        n_threads_batch=threads or None,
        verbose=False,
    )
    try:
        vocab = llm._model
        eos = vocab.token_get_text(llm.token_eos()) if llm.token_eos() >= 0 else ""
        bos = vocab.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
        template = llm.metadata.get("tokenizer.chat_template") or PLAIN_TEMPLATE
        formatters = {
            gen: Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=gen) for gen in (True, False)
        }

        def render(messages: Messages, gen: bool) -> str:
            return formatters[gen](messages=messages).prompt

        def tokens(text: str) -> list[int]:
            return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

        nlls: list[float | None] = []
        counts: list[int] = []
        for sample in samples:
            parts = split_reply(render, conversation(sample, system_prompt))
            advance()
            if parts is None:
                nlls.append(None)
                counts.append(0)
                continue
            prefix, reply = _fit(tokens(parts[0]), tokens(parts[1]))
            llm.reset()
            llm.eval(prefix + reply)
            logits = np.asarray(llm.scores[len(prefix) - 1 : len(prefix) + len(reply) - 1], dtype=np.float64)
            top = logits.max(axis=1, keepdims=True)
            log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            nlls.append(float((log_norm - logits[np.arange(len(reply)), reply]).mean()))
            counts.append(len(reply))
    finally:
        llm.close()
    return _result(nlls, counts)
