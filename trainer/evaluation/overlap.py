"""Overlap between generated and real replies: ROUGE-L F1 (word level) and chrF (character level), both in [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trainer import style


class UnicodeTokenizer:
    """The tokenizer `rouge_score.RougeScorer(tokenizer=…)` expects, on trainer.style's words and emoji.

    `rouge_score`'s default tokenizer keeps only [a-z0-9], so two Russian replies always scored 0 whatever
    they said; this one keeps every script and treats each emoji as a token: emoji are part of how a person writes.
    """

    def tokenize(self, text: str) -> list[str]:
        return style.tokens(text)


@dataclass(frozen=True)
class Overlap:
    rouge_l: float  # mean ROUGE-L F1 over the pairs
    chrf: float  # corpus chrF (sacrebleu, β=2, character 6-grams), scaled to [0, 1]
    rouge_l_each: list[float]  # per pair, for the examples and plots
    chrf_each: list[float]


def rouge_l_scores(generated: Sequence[str], real: Sequence[str]) -> list[float]:
    """ROUGE-L F1 of each generated reply against its real one, on Unicode words (no stemming: it is English-only)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeTokenizer())
    return [
        float(scorer.score(target=r, prediction=g)["rougeL"].fmeasure) for g, r in zip(generated, real, strict=True)
    ]


def chrf_scores(generated: Sequence[str], real: Sequence[str]) -> tuple[float, list[float]]:
    """Corpus chrF and per-pair chrF, in [0, 1]."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    corpus = metric.corpus_score(list(generated), [list(real)]).score / 100
    each = [metric.sentence_score(g, [r]).score / 100 for g, r in zip(generated, real, strict=True)]
    return corpus, each


def overlap(generated: Sequence[str], real: Sequence[str]) -> Overlap:
    """ROUGE-L and chrF of generated replies against the real ones (same length, same order)."""
    if len(generated) != len(real):
        raise ValueError(f"{len(generated)} generated replies for {len(real)} real ones")
    if not real:
        return Overlap(0.0, 0.0, [], [])
    rouge = rouge_l_scores(generated, real)
    corpus, each = chrf_scores(generated, real)
    return Overlap(sum(rouge) / len(rouge), corpus, rouge, each)
