"""Consensus decoding: of several sampled replies, the one closest to all the others (minimum Bayes risk).

One sampled reply is a single draw from the twin's distribution, and a small model's draws stray: a
line that fits no context, a word salad, a sudden long ramble. Sampling a few candidates and keeping
the one with the highest mean chrF against the others (sacrebleu's character 6-grams, at β = 1: the
recall-weighted β = 2 that `twin eval` reports would prefer the longest candidate) keeps what most draws
agree on, so the reply still varies from seed to seed but sits nearer to what the person would say
(measured in README § Evaluation). The daemon and `twin eval` both pick with `pick`.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_CANDIDATES = 8  # per choice, in a request to the daemon and in `twin eval --candidates`


def pick(candidates: Sequence[str]) -> int:
    """The index of the candidate with the highest summed chrF against the others (the first one on a tie)."""
    if len(candidates) <= 1:
        return 0
    from sacrebleu.metrics import CHRF

    metric = CHRF(beta=1)
    best, best_score = 0, float("-inf")
    for i, hypothesis in enumerate(candidates):
        score = sum(metric.sentence_score(hypothesis, [other]).score for j, other in enumerate(candidates) if j != i)
        if score > best_score:
            best, best_score = i, score
    return best
