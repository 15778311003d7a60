"""Perplexity of my real replies through llama.cpp: how surprised a GGUF is by what I actually answered.

Each validation conversation is rendered with the GGUF's own chat template (as the
daemon renders it); only the tokens of the last message, my reply, are scored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convert.llama_runtime import eval_threads, llama_log
from twin.chatformat import PLAIN_TEMPLATE
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
        raise UserError(f"{path} does not exist: `--quant auto` measures each quant on validation replies; pass --val FILE or pick a --quant")
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
                    and all(isinstance(m, dict) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str) for m in messages)
                )
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                raise UserError(f'{path}:{lineno}: expected {{"messages": [{{"role": …, "content": …}}, …]}}: fix the line or rebuild the dataset')
            if messages[-1]["role"] == "assistant" and messages[-1]["content"].strip():
                conversations.append(messages)
    if not conversations:
        raise UserError(f"{path} holds no conversation ending in a reply of yours: rebuild the dataset or pick a --quant")
    step = max(1, len(conversations) / limit)
    return [conversations[int(i * step)] for i in range(min(limit, len(conversations)))]


def _split_reply(formatter_prefix: Any, formatter_full: Any, messages: Messages) -> tuple[str, str] | None:
    """(everything before my reply, my reply as the template renders it), or None when the template cannot split it."""
    try:
        prefix = formatter_prefix(messages=messages[:-1]).prompt
        full = formatter_full(messages=messages).prompt
    except Exception:  # a template's raise_exception() on a conversation it refuses (e.g. roles out of order)
        return None
    if not full.startswith(prefix):
        return None
    return prefix, full[len(prefix):]


def reply_perplexity(
    gguf_path: Path,
    conversations: Sequence[Messages],
    n_ctx: int = 512,
    threads: int = 0,
    advance: Callable[[], None] = lambda: None,
) -> Perplexity:
    """exp(mean negative log-likelihood) of the reply tokens of `conversations` under the GGUF at `gguf_path`."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    threads = eval_threads(threads)
    nll_sum, count, used = 0.0, 0, 0
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
            model = llm._model
            template = llm.metadata.get("tokenizer.chat_template") or PLAIN_TEMPLATE
            eos = model.token_get_text(llm.token_eos()) if llm.token_eos() >= 0 else ""
            bos = model.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
            prefix_fmt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
            full_fmt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=False)
            for messages in conversations:
                parts = _split_reply(prefix_fmt, full_fmt, messages)
                advance()
                if parts is None:
                    continue
                prefix = llm.tokenize(parts[0].encode("utf-8"), add_bos=False, special=True)
                reply = llm.tokenize(parts[1].encode("utf-8"), add_bos=False, special=True)[: n_ctx // 2]
                prefix = prefix[-(n_ctx - len(reply)):]
                if not prefix or not reply:
                    continue
                llm.reset()
                llm.eval(prefix + reply)
                logits = np.asarray(llm.scores[len(prefix) - 1 : len(prefix) + len(reply) - 1], dtype=np.float64)
                top = logits.max(axis=1, keepdims=True)
                log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
                nll_sum += float((log_norm - logits[np.arange(len(reply)), reply]).sum())
                count += len(reply)
                used += 1
        finally:
            llm.close()
    if count == 0:
        raise UserError("no validation reply could be scored with this model's chat template: pick a --quant instead of auto")
    return Perplexity(math.exp(nll_sum / count), count, used)
