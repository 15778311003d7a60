"""Reranking sampled candidates: of several sampled replies of one choice, the one to return.

Two picks, both served by the daemon (its `rerank` field) and measured by `twin eval`:

- **mmi** (the default): mutual information, the classic fix for generic dialogue replies. Each candidate r is
  scored log p(r | context) − λ·log p(r | a bare context), the bare context being the conversation's system
  lines and a user saying only BARE_MESSAGE: a stock line ("oh, im sorry.") is likely after anything, so it
  loses to a reply that is likely *here*. Measured by bench/mmi.py on the development twin (6 draws, λ = 1,
  summed over the reply's tokens): ROUGE-L 0.069 against 0.046–0.062 for single draws, the most frequent reply
  0.7% of replies against 2–7%, 10.2 words against the person's 9.6 (README § Evaluation).
- **consensus**: minimum Bayes risk, the candidate closest to all the others (below).

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
RERANKS = ("mmi", "consensus")
MMI_WEIGHT = 1.0  # λ, of 0.5 to 1.5 in bench/mmi.py: above 1 replies outgrow the person's, below 1 shrink
BARE_MESSAGE = "hey"  # the bare context's only user turn: a chat template needs one before the twin's reply
TWIN_CANDIDATES = 6  # what `twin build` writes as a twin's served default ([serve] candidates in twin.toml)
# How much longer MMI's pick of several draws is than one draw, on the development corpus's twins: bench/mmi.py
# 7.8 words a draw, 10.2 the pick; bench/style.py 7.8 and 9.9 (one twin), 10.1 expected of one draw and 12.1
# served (another). The length calibration measures one draw a context (six would cost six times the decoding)
# and aims it this much shorter than my replies when the twin is served reranked (trainer.evaluation.calibration).
MMI_LENGTHENING = 1.25


def bare_context(messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """The context a candidate's unconditional likelihood is measured in: the system lines (who the twin is, who it
    talks to) and a user who says nothing in particular."""
    return [*(dict(m) for m in messages if m["role"] == "system"), {"role": "user", "content": BARE_MESSAGE}]


def pick_mmi(given: Sequence[float], bare: Sequence[float], weight: float = MMI_WEIGHT) -> int:
    """The index of the candidate with the highest log p(r | context) − weight·log p(r | bare context) (both summed
    log-probabilities of the reply's tokens, its end token included); the first one on a tie."""
    if len(given) != len(bare) or not given:
        raise ValueError(f"pick_mmi needs one bare score per candidate, got {len(given)} and {len(bare)}")
    return max(range(len(given)), key=lambda i: given[i] - weight * bare[i])


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
