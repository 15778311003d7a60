"""Sampling for the ONNX backend, on the logits onnxruntime-genai hands back: the same chain the GGUF's requests get.

As daemon/sampling.py builds it in llama.cpp: penalties over the last 64
generated tokens, then greedy (temperature 0) or top-k → top-p → min-p →
temperature → a seeded draw. Only what needs llama.cpp itself (GBNF grammars
for response_format, token-level logprobs) is refused, with a 400 naming it.
"""

from __future__ import annotations

from collections import Counter, deque

import numpy as np

from daemon.sampling import PENALTY_LAST_N
from daemon.schema import APIError, SamplingParams


def check_onnx_params(p: SamplingParams, model_id: str) -> None:
    """The 400 for a parameter the ONNX backend cannot honour, naming it and what serves it instead."""
    instead = f"drop it, or ask the GGUF model '{model_id.removesuffix('-onnx')}'"
    if p.grammar is not None:
        raise APIError(
            400,
            f"response_format (a grammar) is not supported by the ONNX backend: {instead}",
            param="response_format",
            code="unsupported_parameter",
        )
    if p.logprobs:
        raise APIError(
            400,
            f"logprobs are not supported by the ONNX backend: {instead}",
            param="logprobs",
            code="unsupported_parameter",
        )


class LogitSampler:
    """One choice's sampling state: its parameters, its seeded generator, the tokens it generated lately."""

    def __init__(self, p: SamplingParams, seed: int | None) -> None:
        self.p = p
        self.rng = np.random.default_rng(seed)
        self.recent: deque[int] = deque(maxlen=PENALTY_LAST_N)

    def sample(self, logits: np.ndarray) -> int:
        p = self.p
        x = logits.astype(np.float64, copy=True)
        if p.logit_bias:
            x[list(p.logit_bias)] += list(p.logit_bias.values())
        for token, count in Counter(self.recent).items():
            if p.repetition_penalty != 1.0:
                x[token] = x[token] / p.repetition_penalty if x[token] > 0 else x[token] * p.repetition_penalty
            x[token] -= count * p.frequency_penalty + p.presence_penalty
        token = int(np.argmax(x)) if p.temperature == 0 else self._draw(x)
        self.recent.append(token)
        return token

    def _draw(self, x: np.ndarray) -> int:
        p = self.p
        ids = np.argsort(-x)
        if p.top_k > 0:
            ids = ids[: p.top_k]
        kept = x[ids]
        probs = np.exp(kept - kept[0])
        probs /= probs.sum()
        if p.top_p < 1.0:  # the smallest head whose probability reaches top_p (at least one token)
            ids, kept, probs = (a[: int(np.searchsorted(np.cumsum(probs), p.top_p)) + 1] for a in (ids, kept, probs))
        if p.min_p > 0:
            keep = probs >= p.min_p * probs[0]
            ids, kept = ids[keep], kept[keep]
        scaled = (kept - kept[0]) / p.temperature
        weights = np.exp(scaled)
        return int(ids[self.rng.choice(len(ids), p=weights / weights.sum())])
