"""Does a set of replies collapse onto stock lines, keep my length, and speak as me?

- distinct-1/-2: distinct word unigrams/bigrams over all unigrams/bigrams of
  the set (a twin that says "oh, i'm sorry." to everything scores low);
- the share of the most frequent reply (normalized: lowercased words only) and
  the five most frequent with their counts;
- mean words per reply and its ratio to my real replies' mean;
- the share of replies that begin with another participant's name as their
  speaker ("Monica: …"): the model writing someone else's turn.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import regex

from trainer.style import mean_words, tokens

TOP = 5
# "Name:" or "Name Surname:" at the start of a reply (or of its first line)
_SPEAKER_RE = regex.compile(r"^\s*([\p{L}][\p{L}\p{M}.'’ -]{0,40}?)\s*:")
GENERIC_SPEAKERS = frozenset({"user", "bot", "assistant", "me", "them"})


@dataclass(frozen=True)
class Collapse:
    distinct_1: float
    distinct_2: float
    top_share: float  # share of replies equal to the most frequent one
    top: list[tuple[str, int]] = field(default_factory=list)  # the TOP most frequent normalized replies
    words: float = 0.0  # mean words per reply
    length_ratio: float = 0.0  # words / my replies' mean words (1 = same length)
    speaker_share: float = 0.0  # replies that start with another participant's name and a colon

    def as_dict(self) -> dict:
        return {
            "distinct_1": self.distinct_1,
            "distinct_2": self.distinct_2,
            "top_share": self.top_share,
            "top": [{"reply": r, "count": n} for r, n in self.top],
            "words": self.words,
            "length_ratio": self.length_ratio,
            "speaker_share": self.speaker_share,
        }


def normalized(reply: str) -> str:
    """A reply as the collapse counts see it: its lowercased words, space-separated ('' for none)."""
    return " ".join(tokens(reply))


def distinct(replies: Sequence[str], n: int) -> float:
    """Distinct word n-grams over all word n-grams of the set (0 when there are none)."""
    grams: list[tuple[str, ...]] = []
    for r in replies:
        w = tokens(r)
        grams.extend(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def participants(contexts: Sequence[Sequence[dict[str, str]]]) -> frozenset[str]:
    """Names that label others' turns in the contexts (group chats write 'Name: text'), casefolded."""
    names = set()
    for context in contexts:
        for m in context:
            if m["role"] == "user":
                found = _SPEAKER_RE.match(m["content"])
                if found:
                    names.add(found.group(1).strip().casefold())
    return frozenset(names)


def names_speaker(reply: str, names: frozenset[str]) -> bool:
    found = _SPEAKER_RE.match(reply)
    return bool(found) and found.group(1).strip().casefold() in names | GENERIC_SPEAKERS


def measure(replies: Sequence[str], real: Sequence[str], names: frozenset[str] = frozenset()) -> Collapse:
    """The collapse, length and speaker figures of `replies` against my `real` ones."""
    n = len(replies)
    counts = Counter(normalized(r) for r in replies)
    mine, real_words = mean_words(replies), mean_words(real)
    return Collapse(
        distinct_1=distinct(replies, 1),
        distinct_2=distinct(replies, 2),
        top_share=counts.most_common(1)[0][1] / n if n else 0.0,
        top=counts.most_common(TOP),
        words=mine,
        length_ratio=mine / real_words if real_words else 0.0,
        speaker_share=sum(names_speaker(r, names) for r in replies) / n if n else 0.0,
    )
