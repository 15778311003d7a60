"""Perplexity of my real replies through llama.cpp: how surprised a GGUF is by what I actually answered.

Each validation conversation is rendered with the GGUF's own chat template (as the
daemon renders it); only the tokens of the last message, my reply, are scored.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convert.llama_runtime import eval_threads, llama_log
from twin.chatformat import gguf_chat_formatter
from twin.errors import UserError

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Perplexity:
    value: float
    tokens: int
    conversations: int


def load_conversations(path: Path, limit: int = 40) -> list[Messages]:
    """Up to `limit` conversations of a val.jsonl ({"messages": [...]} per line, last = my reply), spread over the file."""
    if not path.is_file():
        raise UserError(
            f"{path} does not exist: `--quant auto` measures each quant on validation replies; pass --val FILE or pick a --quant"
        )
    conversations: list[Messages] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                messages = json.loads(line)["messages"]
                ok = (
                    isinstance(messages, list)
                    and messages
                    and all(
                        isinstance(m, dict) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str)
                        for m in messages
                    )
                )
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                raise UserError(
                    f'{path}:{lineno}: expected {{"messages": [{{"role": …, "content": …}}, …]}}: fix the line or rebuild the dataset'
                )
            if messages[-1]["role"] == "assistant" and messages[-1]["content"].strip():
                conversations.append(messages)
    if not conversations:
        raise UserError(
            f"{path} holds no conversation ending in a reply of yours: rebuild the dataset or pick a --quant"
        )
    step = max(1, len(conversations) / limit)
    return [conversations[int(i * step)] for i in range(min(limit, len(conversations)))]


class GGUFScorer:
    """A GGUF open in llama.cpp for scoring replies, rendering chats with its own template as the daemon does."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._formatters = {gen: gguf_chat_formatter(llm, add_generation_prompt=gen) for gen in (True, False)}

    def render(self, messages: Messages, add_generation_prompt: bool) -> str:
        return self._formatters[add_generation_prompt](messages=messages).prompt

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def reply_nll(self, prefix: list[int], reply: list[int]) -> float:
        """Summed negative log-likelihood of the `reply` tokens after `prefix` (which must not be empty)."""
        llm = self.llm
        llm.reset()
        llm.eval(prefix + reply)
        logits = np.asarray(llm.scores[len(prefix) - 1 : len(prefix) + len(reply) - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        return float((log_norm - logits[np.arange(len(reply)), reply]).sum())


@contextlib.contextmanager
def open_scorer(gguf_path: Path, n_ctx: int, threads: int | None) -> Iterator[GGUFScorer]:
    """The GGUF loaded with every position's logits kept; llama.cpp's log captured, not printed."""
    import llama_cpp

    with llama_log():
        llm = llama_cpp.Llama(
            model_path=str(gguf_path),
            n_ctx=n_ctx,
            n_batch=n_ctx,
            logits_all=True,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        try:
            yield GGUFScorer(llm)
        finally:
            llm.close()


def _split_reply(render: Callable[[Messages, bool], str], messages: Messages) -> tuple[str, str] | None:
    """(everything before my reply, my reply as the template renders it), or None when the template cannot split it."""
    try:
        prefix = render(messages[:-1], True)
        full = render(messages, False)
    except Exception:  # a template's raise_exception() on a conversation it refuses (e.g. roles out of order)
        return None
    if not full.startswith(prefix):
        return None
    return prefix, full[len(prefix) :]


def reply_perplexity(
    gguf_path: Path,
    conversations: Sequence[Messages],
    n_ctx: int = 512,
    threads: int = 0,
    advance: Callable[[], None] = lambda: None,
) -> Perplexity:
    """exp(mean negative log-likelihood) of the reply tokens of `conversations` under the GGUF at `gguf_path`."""
    nll_sum, count, used = 0.0, 0, 0
    with open_scorer(gguf_path, n_ctx, eval_threads(threads)) as scorer:
        for messages in conversations:
            parts = _split_reply(scorer.render, messages)
            advance()
            if parts is None:
                continue
            prefix = scorer.tokenize(parts[0])
            reply = scorer.tokenize(parts[1])[: n_ctx // 2]
            prefix = prefix[-(n_ctx - len(reply)) :]
            if not prefix or not reply:
                continue
            nll_sum += scorer.reply_nll(prefix, reply)
            count += len(reply)
            used += 1
    if count == 0:
        raise UserError(
            "no validation reply could be scored with this model's chat template: pick a --quant instead of auto"
        )
    return Perplexity(math.exp(nll_sum / count), count, used)
