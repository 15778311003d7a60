"""Perplexity of my real replies given their context: how surprised a model is by what I actually answered.

One measure for `twin convert --quant auto` and `twin eval`: each conversation is
rendered with the model's chat template with and without the reply (the context
ending in a generation prompt); the reply's tokens are what the full rendering adds
(the reply text and the template's end of turn), and only they are scored.
`measure` is the loop and its rules; llama.cpp (GGUFScorer, here) and transformers
(trainer.evaluation.perplexity) are its backends.
"""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convert.llama_runtime import eval_threads, llama_log
from twin import dataset, llamacpp
from twin.chatformat import ChatTokenizer
from twin.errors import UserError

Messages = list[dict[str, str]]


# Context + reply tokens per conversation. `twin convert --quant auto` ranks quants on a shorter window than
# `twin eval` measures with: the ranking needs many conversations quickly, not their long histories.
QUANT_WINDOW = 512
EVAL_WINDOW = 1024
MAX_REPLY_TOKENS = 256  # the rest of a long reply is left out


@dataclass(frozen=True)
class Perplexity:
    value: float  # exp(mean NLL per reply token); nan when nothing could be scored
    tokens: int  # reply tokens scored
    samples: int  # conversations scored (a template that cannot split one leaves it out)
    nll: list[float | None]  # mean NLL per conversation, None where it was left out


def load_conversations(path: Path, limit: int = 40) -> list[Messages]:
    """Up to `limit` conversations of a val.jsonl, spread over the file."""
    if not path.is_file():
        raise UserError(
            f"{path} does not exist: `--quant auto` measures each quant on validation replies; pass --val FILE or pick a --quant"
        )
    conversations = [line.messages for line in dataset.read(path)]
    if not conversations:
        raise UserError(
            f"{path} holds no conversation ending in a reply of yours: rebuild the dataset or pick a --quant"
        )
    return dataset.spread(conversations, limit)


class GGUFScorer:
    """A GGUF open in llama.cpp for scoring replies, its chats rendered and tokenized as the daemon does.

    As in the daemon (twin.chatformat.ChatTokenizer), only the template's own
    markers become special tokens: a reply (or context) holding `<|im_end|>` is
    scored as the text it is. So `render` writes each message's content as a
    placeholder and `tokenize` reads the placeholders back as plain text; the
    contents are those of the conversation rendered last (`measure` renders a
    conversation, then tokenizes its parts).
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._chat = {gen: ChatTokenizer.from_llama(llm, add_generation_prompt=gen) for gen in (True, False)}
        self._nonce = secrets.token_hex(8)
        self._contents: list[str] = []

    def render(self, messages: Messages, add_generation_prompt: bool) -> str:
        self._contents = [m["content"] for m in messages]
        return self._chat[add_generation_prompt].masked(messages, self._nonce)

    def tokenize(self, text: str) -> list[int]:
        return self._chat[True].tokenize_masked(text, self._contents, self._nonce)

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
def open_scorer(gguf_path: Path, n_ctx: int, threads: int | None, lora: Path | None = None) -> Iterator[GGUFScorer]:
    """The GGUF (with its LoRA adapter GGUF, if any) loaded with every position's logits kept; llama.cpp's log captured."""
    with llama_log():
        llm = llamacpp.open_llama(
            gguf_path,
            n_ctx=n_ctx,
            n_batch=n_ctx,
            logits_all=True,
            n_threads=threads,
            n_threads_batch=threads,
            lora_path=None if lora is None else str(lora),
            verbose=False,
        )
        try:
            yield GGUFScorer(llm)
        finally:
            llm.close()


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


def measure(
    conversations: Iterable[Messages],
    render: Callable[[Messages, bool], str],
    tokenize: Callable[[str], list[int]],
    reply_nll: Callable[[list[int], list[int]], float],
    window: int,
    advance: Callable[[], None] = lambda: None,
) -> Perplexity:
    """The one reply-perplexity loop, whatever the backend: `reply_nll(prefix, reply)` sums the reply tokens' NLL.

    Rules: the reply is cut to MAX_REPLY_TOKENS, the context keeps its newest tokens so that both fit in `window`;
    a conversation the template cannot split, or with nothing left to score, is left out (None in `nll`).
    """
    nlls: list[float | None] = []
    total, tokens = 0.0, 0
    for messages in conversations:
        parts = split_reply(render, messages)
        advance()
        if parts is None:
            nlls.append(None)
            continue
        reply = tokenize(parts[1])[:MAX_REPLY_TOKENS]
        prefix = tokenize(parts[0])[-(window - len(reply)) :]
        if not prefix or not reply:
            nlls.append(None)
            continue
        nll = reply_nll(prefix, reply)
        nlls.append(nll / len(reply))
        total += nll
        tokens += len(reply)
    value = math.exp(total / tokens) if tokens else math.nan
    return Perplexity(value, tokens, sum(n is not None for n in nlls), nlls)


def reply_perplexity(
    gguf_path: Path,
    conversations: Sequence[Messages],
    window: int = QUANT_WINDOW,
    threads: int | None = 0,
    advance: Callable[[], None] = lambda: None,
    lora: Path | None = None,
) -> Perplexity:
    """exp(mean negative log-likelihood) of the reply tokens of `conversations` under the GGUF at `gguf_path`.

    `threads`: 0 = eval_threads()'s choice, None = llama.cpp's own default. `lora`: a LoRA adapter GGUF to apply.
    """
    with open_scorer(gguf_path, window, None if threads is None else eval_threads(threads), lora) as scorer:
        return measure(conversations, scorer.render, scorer.tokenize, scorer.reply_nll, window, advance)
