"""How I write, measured one way: words, emoji, endings, first letters and the per-reply style features.

Every report of style counts with these: ingest's summary (stats.json), the
persona's description and the evaluation (its style features, length, overlap
tokens, the length calibration). A word is a run of letters, marks and digits
in any script, with inner apostrophes (don't, п'ять); an emoji is one cluster as
a person sees it (👍🏽, 👨‍👩‍👧 and 🇷🇺 count once) and is never a word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import regex

WORD = r"[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}]+)*"
# One emoji as a person sees it: a pictograph with its modifiers and joined parts, or a flag.
EMOJI_CLUSTER = (
    r"\p{Regional_Indicator}{2}"
    r"|\p{Extended_Pictographic}[\uFE0F\p{Emoji_Modifier}]*(?:\u200D\p{Extended_Pictographic}[\uFE0F\p{Emoji_Modifier}]*)*"
)
_WORD_RE = regex.compile(WORD)
_EMOJI_RE = regex.compile(EMOJI_CLUSTER)
_TOKEN_RE = regex.compile(f"{WORD}|{EMOJI_CLUSTER}")
# Everything an emoji is made of, for removing them (with keycaps' U+20E3).
EMOJI_PARTS = regex.compile(r"[\p{Extended_Pictographic}\p{Emoji_Modifier}\p{Regional_Indicator}\uFE0F\u200D\u20E3]+")
# Every pictograph lies at or above U+203C; ordinary text (Latin, Cyrillic) lies below and skips the emoji scan.
_HIGH = re.compile("[\u203c-\U0010ffff]")
_LETTER_RE = regex.compile(r"\p{L}")
_UPPER_RE = regex.compile(r"\p{Lu}")
_PUNCT_RE = regex.compile(r"\p{P}")

# How a reply ends: the label of its last mark (checked in this order), "emoji" or "no mark".
ENDINGS = (("…", "..."), ("..", "..."), (")", ")"), ("(", "("), (".", "."), ("!", "!"), ("?", "?"))
ENDS_WITH_EMOJI, NO_MARK = "emoji", "no mark"


def words(text: str) -> list[str]:
    """The lowercased words of `text`, in order (emoji are not words)."""
    return [w.casefold() for w in _WORD_RE.findall(text)]


def emoji(text: str) -> list[str]:
    """The emoji of `text`, each as one cluster, in order."""
    if _HIGH.search(text) is None:
        return []
    return _EMOJI_RE.findall(text)


def tokens(text: str) -> list[str]:
    """The lowercased words and emoji of `text`, in order: what the overlap metrics compare."""
    return [t.casefold() for t in _TOKEN_RE.findall(text)]


def strip_emoji(text: str) -> str:
    """`text` without its emoji (spaces around them left as they were)."""
    return EMOJI_PARTS.sub("", text) if _HIGH.search(text) else text


def mean_words(texts: Sequence[str]) -> float:
    """The mean number of words in `texts` (0 for none): the length every report and the calibration compare."""
    return sum(len(words(t)) for t in texts) / len(texts) if texts else 0.0


def chars(text: str) -> int:
    return len(text.strip())


def first_letter(text: str) -> str:
    """The first letter of `text` ('' when it has none): what "starts with a capital" looks at."""
    m = _LETTER_RE.search(text)
    return m.group() if m else ""


def ending(text: str) -> str:
    """How `text` ends: one of ENDINGS' labels, "emoji" or "no mark"."""
    text = text.rstrip()
    found = emoji(text)
    if found and text.endswith(found[-1]):
        return ENDS_WITH_EMOJI
    for suffix, name in ENDINGS:
        if text.endswith(suffix):
            return name
    return NO_MARK


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


# The evaluation's features, each measured per reply: name -> (what it measures, function of one reply).
FEATURES: dict[str, tuple[str, Callable[[str], float]]] = {
    "words": ("words per reply", lambda t: float(len(words(t)))),
    "chars": ("characters per reply", lambda t: float(chars(t))),
    "emoji": ("emoji per reply", lambda t: float(len(emoji(t)))),
    "punctuation": ("punctuation marks per character", lambda t: _ratio(len(_PUNCT_RE.findall(t)), chars(t))),
    "capitals": (
        "share of letters in upper case",
        lambda t: _ratio(len(_UPPER_RE.findall(t)), len(_LETTER_RE.findall(t))),
    ),
    "starts_upper": ("replies starting with a capital", lambda t: float(first_letter(t).isupper())),
    "full_stop": ("replies ending with '.'", lambda t: float(ending(t) == ".")),
}


def feature_values(replies: Sequence[str]) -> dict[str, list[float]]:
    return {name: [fn(r) for r in replies] for name, (_, fn) in FEATURES.items()}
