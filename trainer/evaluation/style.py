"""Style of a set of replies (length, emoji, punctuation, capitals, full stops) and how far a variant's is from mine.

Each feature (trainer.style.FEATURES) is measured per reply; a variant's distance on a feature is the
standardized mean difference |mean(gen) − mean(real)| / pooled std (0 = same on
average; around 1 = as far apart as the replies typically differ). The style
distance is the mean of those over the features. Vocabulary overlap is the
Jaccard index of the two sets of words used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from trainer.style import FEATURES, feature_values, tokens


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _std(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def smd(generated: Sequence[float], real: Sequence[float]) -> float:
    """|Δ mean| / std of both samples pooled; 0 when all values are equal (then the means are too)."""
    spread = _std([*generated, *real])
    return abs(_mean(generated) - _mean(real)) / spread if spread else 0.0


def vocabulary_overlap(generated: Sequence[str], real: Sequence[str]) -> float:
    """Jaccard index of the sets of words (and emoji) used in the two sets of replies."""
    a = {w for t in generated for w in tokens(t)}
    b = {w for t in real for w in tokens(t)}
    return len(a & b) / len(a | b) if a | b else 1.0


@dataclass(frozen=True)
class StyleComparison:
    means: dict[str, float]  # feature -> mean over the generated replies
    distances: dict[str, float]  # feature -> standardized mean difference from the real replies
    distance: float  # mean of `distances`
    vocabulary_overlap: float


def style_means(replies: Sequence[str]) -> dict[str, float]:
    return {name: _mean(values) for name, values in feature_values(replies).items()}


def compare_style(generated: Sequence[str], real: Sequence[str]) -> StyleComparison:
    """How far the style of `generated` is from that of `real` (same samples)."""
    gen, ref = feature_values(generated), feature_values(real)
    distances = {name: smd(gen[name], ref[name]) for name in FEATURES}
    return StyleComparison(
        means={name: _mean(v) for name, v in gen.items()},
        distances=distances,
        distance=_mean(list(distances.values())),
        vocabulary_overlap=vocabulary_overlap(generated, real),
    )
