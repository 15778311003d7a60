"""Words as the metrics see them: Unicode letters and digits (any script) and single emoji.

`rouge_score`'s default tokenizer keeps only [a-z0-9], so two Russian replies
always scored 0 whatever they said; this one keeps Cyrillic, Greek, CJK, … and
treats each emoji as a word, because emoji are part of how a person writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import regex

# A word: letters/digits with inner apostrophes (don't, п'ять); or one pictographic emoji.
WORD_RE = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}]+)*|\p{Extended_Pictographic}")
EMOJI_RE = regex.compile(r"\p{Extended_Pictographic}")


def words(text: str) -> list[str]:
    """The lowercased words and emoji of `text`, in order."""
    return [w.casefold() for w in WORD_RE.findall(text)]


def mean_words(texts: Sequence[str]) -> float:
    """The mean number of words in `texts` (0 for none): the length every report and the calibration compare."""
    return sum(len(words(t)) for t in texts) / len(texts) if texts else 0.0


class UnicodeTokenizer:
    """The tokenizer interface `rouge_score.RougeScorer(tokenizer=…)` expects."""

    def tokenize(self, text: str) -> list[str]:
        return words(text)
