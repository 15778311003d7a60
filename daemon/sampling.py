"""What turns one slot's logits into text: its sampler chain, its logprobs, and where its text stops.

Every request gets its own llama.cpp sampler chain (penalties, grammar, then
greedy or top-k/top-p/min-p/temperature and a seeded draw), so a seed gives the
same tokens whatever else shares the batch.
"""

from __future__ import annotations

import codecs
import ctypes
from collections.abc import Callable
from dataclasses import dataclass, field

import llama_cpp
import numpy as np

from daemon.schema import APIError, SamplingParams

# As llama-cpp-python's `Llama` (last_n_tokens_size): the penalties look at the last 64 generated tokens.
PENALTY_LAST_N = 64


class Sampler:
    """One request's llama.cpp sampler chain; `sample` draws a token from one batch row and accepts it."""

    def __init__(self, vocab: llama_cpp.llama_vocab_p, n_vocab: int, p: SamplingParams, seed: int | None) -> None:
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = lambda s: llama_cpp.llama_sampler_chain_add(self.chain, s)  # noqa: E731  the chain owns each stage
        if p.logit_bias:  # first, as in llama.cpp's own server: a banned token stays banned whatever follows
            biases = (llama_cpp.llama_logit_bias * len(p.logit_bias))(
                *(llama_cpp.llama_logit_bias(token, bias) for token, bias in p.logit_bias.items())
            )
            add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(biases), biases))  # copies the array
        add(
            llama_cpp.llama_sampler_init_penalties(
                n_vocab, PENALTY_LAST_N, p.repetition_penalty, p.frequency_penalty, p.presence_penalty
            )
        )
        if p.grammar is not None:
            grammar = llama_cpp.llama_sampler_init_grammar(vocab, p.grammar.encode(), b"root")
            if not grammar:
                self.close()
                raise APIError(
                    400,
                    "response_format: the schema could not be turned into a grammar llama.cpp accepts; simplify it",
                    param="response_format",
                    code="unsupported_schema",
                )
            add(grammar)
        if p.temperature == 0:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            add(llama_cpp.llama_sampler_init_top_k(p.top_k))
            add(llama_cpp.llama_sampler_init_top_p(p.top_p, 1))
            add(llama_cpp.llama_sampler_init_min_p(p.min_p, 1))
            add(llama_cpp.llama_sampler_init_temp(p.temperature))
            add(llama_cpp.llama_sampler_init_dist(llama_cpp.LLAMA_DEFAULT_SEED if seed is None else seed & 0xFFFFFFFF))

    def sample(self, ctx: llama_cpp.llama_context_p, row: int) -> int:
        return llama_cpp.llama_sampler_sample(self.chain, ctx, row)

    def close(self) -> None:
        if self.chain:
            llama_cpp.llama_sampler_free(self.chain)
            self.chain = None


def check_logit_bias(n_vocab: int, p: SamplingParams) -> None:
    """Raise the 400 for a biased token id the model does not have."""
    beyond = [token for token in p.logit_bias if token >= n_vocab]
    if beyond:
        raise APIError(
            400,
            f"logit_bias: token id {beyond[0]} is not in this model's vocabulary (ids 0-{n_vocab - 1})",
            param="logit_bias",
            code="invalid_value",
        )


def check_grammar(vocab: llama_cpp.llama_vocab_p, n_vocab: int, p: SamplingParams) -> None:
    """Raise the 400 a request's grammar would cause, before the request takes a slot."""
    if p.grammar is not None:
        Sampler(vocab, n_vocab, p, 0).close()


@dataclass
class TokenLogprob:
    """One generated token in OpenAI's logprobs shape: its text, bytes, log-probability and the best alternatives."""

    token: str
    logprob: float
    bytes: list[int]
    top: list[tuple[str, float, list[int]]] = field(default_factory=list)

    def chat(self) -> dict:
        return {
            "token": self.token,
            "logprob": self.logprob,
            "bytes": self.bytes,
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": b} for t, lp, b in self.top],
        }


def _logsumexp(row: np.ndarray) -> float:
    peak = float(row.max())
    return peak + float(np.log(np.exp(row - peak).sum()))


def model_logprob(logits: ctypes.Array, n_vocab: int, token: int) -> float:
    """log p(token) under the model's own distribution at this row (the raw logits, as token_logprob)."""
    row = np.ctypeslib.as_array(logits, shape=(n_vocab,))
    return float(row[token]) - _logsumexp(row)


def token_logprob(
    logits: ctypes.Array, n_vocab: int, token: int, top: int, piece: Callable[[int], bytes]
) -> TokenLogprob:
    """The model's own distribution at this row (before penalties, grammar and temperature), as vLLM reports it."""
    row = np.ctypeslib.as_array(logits, shape=(n_vocab,))
    lse = _logsumexp(row)
    best: list[tuple[str, float, list[int]]] = []
    if top > 0:
        ids = np.argpartition(row, -top)[-top:]
        for i in sorted(ids.tolist(), key=lambda t: -row[t]):
            raw = piece(i)
            best.append((raw.decode("utf-8", errors="replace"), float(row[i]) - lse, list(raw)))
    raw = piece(token)
    return TokenLogprob(raw.decode("utf-8", errors="replace"), float(row[token]) - lse, list(raw), best)


class StopMatcher:
    """Cuts generated text at the first stop sequence, holding back what could be the start of one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buf = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add text; return (text safe to emit, whether a stop sequence was hit)."""
        self.buf += text
        if not self.stops:
            out, self.buf = self.buf, ""
            return out, False
        hits = [i for i in (self.buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buf = self.buf[: min(hits)], ""
            return out, True
        keep = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buf)), keep, -1):
                if self.buf.endswith(s[:k]):
                    keep = k
                    break
        cut = len(self.buf) - keep
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


class TextTracker:
    """A choice's text on its way out: decoded bytes, stop sequences, and logprob entries released with their text.

    A token's logprob entry leaves once all its text has left; at a stop sequence the
    entries of tokens that began before it leave, the others are dropped with it.
    """

    def __init__(self, stops: list[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = StopMatcher(stops)
        self._seen = 0  # characters decoded so far
        self._sent = 0  # characters released so far
        self._pending: list[tuple[int, int, TokenLogprob]] = []  # (first character, end, entry)

    def feed(self, raw: bytes, entry: TokenLogprob | None) -> tuple[str, list[TokenLogprob], bool]:
        """One token's bytes: (text to emit, logprob entries to emit with it, whether a stop sequence was hit)."""
        text = self._decoder.decode(raw)
        if entry is not None:
            self._pending.append((self._seen, self._seen + len(text), entry))
        self._seen += len(text)
        out, hit = self._stops.feed(text)
        self._sent += len(out)
        if hit:
            ready = [e for start, end, e in self._pending if start < self._sent or end <= self._sent]
            self._pending.clear()
        else:
            ready = [e for _, end, e in self._pending if end <= self._sent]
            self._pending = [p for p in self._pending if p[1] > self._sent]
        return out, ready, hit

    def finish(self) -> tuple[str, list[TokenLogprob]]:
        """At the end (no stop hit): what is still held back."""
        self._stops.feed(self._decoder.decode(b"", final=True))
        out = self._stops.flush()
        self._sent += len(out)
        entries = [e for _, _, e in self._pending]
        self._pending.clear()
        return out, entries
