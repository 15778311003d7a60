"""What an evaluation found: per variant and for the whole run; `as_json()` is report.json."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.evaluation.collapse import Collapse
from trainer.evaluation.evalset import EvalSample
from trainer.evaluation.generation import Decoding
from trainer.evaluation.overlap import Overlap
from trainer.evaluation.perplexity import Perplexity
from trainer.evaluation.ratings import RatingSummary
from trainer.evaluation.style import StyleComparison
from trainer.evaluation.variants import Variant
from trainer.style import FEATURES

# The rating mode calls the served GGUF `twin` and the persona variant `prompt`.
RATING_VARIANT = {"gguf": "twin", "prompt": "prompt"}


@dataclass
class VariantResult:
    variant: Variant
    perplexity: Perplexity | None = None
    replies: list[str] | None = None
    overlap: Overlap | None = None
    style: StyleComparison | None = None
    backends: dict[str, str] = field(default_factory=dict)  # perplexity / generation -> what ran it
    seconds: float = 0.0
    collapse: Collapse | None = None
    # the same replies written with the chat default (sampled, fixed seed) next to the evaluation's decoding
    sampled: VariantResult | None = None

    @property
    def key(self) -> str:
        return self.variant.key

    def summary(self) -> dict[str, Any]:
        """The headline figures (None where missing)."""
        ppl = self.perplexity.value if self.perplexity and math.isfinite(self.perplexity.value) else None
        return {
            "perplexity": ppl,
            "rouge_l": self.overlap.rouge_l if self.overlap else None,
            "chrf": self.overlap.chrf if self.overlap else None,
            "style_distance": self.style.distance if self.style else None,
            "vocabulary_overlap": self.style.vocabulary_overlap if self.style else None,
            "words_per_reply": self.style.means["words"] if self.style else None,
            "distinct_2": self.collapse.distinct_2 if self.collapse else None,
            "top_share": self.collapse.top_share if self.collapse else None,
            "speaker_share": self.collapse.speaker_share if self.collapse else None,
        }

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "label": self.variant.label,
            "status": "missing" if self.variant.missing else "measured",
        }
        if self.variant.missing:
            out["missing"] = self.variant.missing
            return out
        out.update(self.summary())
        out["backends"] = self.backends
        out["seconds"] = round(self.seconds, 1)
        if self.perplexity:
            out["perplexity_detail"] = {"tokens": self.perplexity.tokens, "samples": self.perplexity.samples}
        if self.style:
            out["style"] = {"means": self.style.means, "distances": self.style.distances}
        if self.collapse:
            out["collapse"] = self.collapse.as_dict()
        if self.sampled is not None:
            collapse = self.sampled.collapse
            out["sampled"] = {**self.sampled.summary(), "collapse": collapse.as_dict() if collapse else None}
        return out


@dataclass
class EvalResult:
    name: str
    created: str
    folder: Path  # twins/<name>/eval
    val_samples: int  # samples in val.jsonl
    samples: list[EvalSample]
    decoding: Decoding
    max_context_chars: int
    variants: list[VariantResult]
    real_style: dict[str, float]
    ratings: RatingSummary
    daemon: str  # how the served GGUF's replies were obtained
    examples: list[int] = field(default_factory=list)  # indices into samples
    real_collapse: Collapse | None = None  # my own replies' figures, the yardstick
    sampled_decoding: Decoding | None = None  # the chat default, when replies were also sampled with it

    def measured(self) -> list[VariantResult]:
        return [v for v in self.variants if not v.variant.missing]

    def as_json(self) -> dict[str, Any]:
        return {
            "twin": self.name,
            "created": self.created,
            "samples": len(self.samples),
            "val_samples": self.val_samples,
            "sample_lines": [s.line for s in self.samples],
            "decoding": {**self.decoding.as_dict(), "description": self.decoding.describe()},
            "max_context_chars": self.max_context_chars,
            "daemon": self.daemon,
            "real": {
                "style": self.real_style,
                "words_per_reply": self.real_style["words"],
                "collapse": self.real_collapse.as_dict() if self.real_collapse else None,
            },
            "sampled_decoding": (
                {**self.sampled_decoding.as_dict(), "description": self.sampled_decoding.describe()}
                if self.sampled_decoding
                else None
            ),
            "variants": {v.key: v.as_json() for v in self.variants},
            "ratings": self.ratings.as_dict(),
            "style_features": {name: what for name, (what, _) in FEATURES.items()},
        }

    def generations(self) -> list[dict[str, Any]]:
        """One row per sample: its line, context, real reply and every variant's reply with its scores."""
        rows = []
        for i, s in enumerate(self.samples):
            row: dict[str, Any] = {"line": s.line, "context": s.context, "real": s.real}
            for v in self.measured():
                row[v.key] = {
                    "reply": v.replies[i] if v.replies else None,
                    "sampled": v.sampled.replies[i] if v.sampled and v.sampled.replies else None,
                    "rouge_l": v.overlap.rouge_l_each[i] if v.overlap else None,
                    "chrf": v.overlap.chrf_each[i] if v.overlap else None,
                    "nll": v.perplexity.nll[i] if v.perplexity else None,
                }
            rows.append(row)
        return rows
