"""The persona's style line: my replies' figures (trainer.style's words, emoji, endings) and words describing them."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from typing import Any

from trainer import style as features

_CYRILLIC_RE = re.compile(r"[\u0400-\u04FF]")
_LATIN_RE = re.compile(r"[A-Za-z]")
# A closing bracket not opened before it: the Russian-chat smile ")" / ")))".
_PAREN_SMILE_RE = re.compile(r"(?<![(\w])\)+|(?<=\w)\)+(?=\s|$)")

STOPWORDS = {
    "ru": set(
        [
            "и",
            "в",
            "во",
            "не",
            "что",
            "он",
            "на",
            "я",
            "с",
            "со",
            "как",
            "а",
            "то",
            "все",
            "она",
            "так",
            "его",
            "но",
            "да",
            "ты",
            "к",
            "у",
            "же",
            "вы",
            "за",
            "бы",
            "по",
            "только",
            "ее",
            "мне",
            "было",
            "вот",
            "от",
            "меня",
            "еще",
            "нет",
            "о",
            "из",
            "ему",
            "теперь",
            "когда",
            "даже",
            "ну",
            "вдруг",
            "ли",
            "если",
            "уже",
            "или",
            "ни",
            "быть",
            "был",
            "него",
            "до",
            "вас",
            "нибудь",
            "опять",
            "уж",
            "вам",
            "ведь",
            "там",
            "потом",
            "себя",
            "ничего",
            "ей",
            "может",
            "они",
            "тут",
            "где",
            "есть",
            "надо",
            "ней",
            "для",
            "мы",
            "тебя",
            "их",
            "чем",
            "была",
            "сам",
            "чтоб",
            "без",
            "будто",
            "чего",
            "раз",
            "тоже",
            "себе",
            "под",
            "будет",
            "ж",
            "тогда",
            "кто",
            "этот",
            "того",
            "потому",
            "этого",
            "какой",
            "совсем",
            "ним",
            "здесь",
            "этом",
            "один",
            "почти",
            "мой",
            "тем",
            "чтобы",
            "нее",
            "сейчас",
            "были",
            "куда",
            "зачем",
            "всех",
            "никогда",
            "можно",
            "при",
            "наконец",
            "два",
            "об",
            "другой",
            "хоть",
            "после",
            "над",
            "больше",
            "тот",
            "через",
            "эти",
            "нас",
            "про",
            "всего",
            "них",
            "какая",
            "много",
            "разве",
            "три",
            "эту",
            "моя",
            "впрочем",
            "хорошо",
            "свою",
            "этой",
            "перед",
            "иногда",
            "лучше",
            "чуть",
            "том",
            "нельзя",
            "такой",
            "им",
            "более",
            "всегда",
            "конечно",
            "всю",
            "между",
            "это",
        ]
    ),
    "en": set(
        [
            "a",
            "an",
            "the",
            "and",
            "or",
            "but",
            "if",
            "then",
            "so",
            "to",
            "of",
            "in",
            "on",
            "at",
            "by",
            "for",
            "with",
            "from",
            "up",
            "about",
            "into",
            "over",
            "after",
            "is",
            "are",
            "was",
            "were",
            "be",
            "been",
            "being",
            "i",
            "me",
            "my",
            "we",
            "our",
            "you",
            "your",
            "he",
            "him",
            "his",
            "she",
            "her",
            "it",
            "its",
            "they",
            "them",
            "their",
            "this",
            "that",
            "these",
            "those",
            "am",
            "do",
            "does",
            "did",
            "have",
            "has",
            "had",
            "not",
            "no",
            "yes",
            "can",
            "will",
            "would",
            "should",
            "could",
            "just",
            "than",
            "too",
            "very",
            "what",
            "which",
            "who",
            "whom",
            "how",
            "when",
            "where",
            "why",
            "all",
            "any",
            "both",
            "each",
            "few",
            "more",
            "most",
            "other",
            "some",
            "such",
            "only",
            "own",
            "same",
            "there",
            "here",
            "as",
            "also",
            "i'm",
            "it's",
            "don't",
            "im",
            "dont",
        ]
    ),
}


def language(texts: list[str]) -> str:
    """'ru', 'en' or 'mixed', by the share of Cyrillic among the letters."""
    joined = " ".join(texts)
    cyr, lat = len(_CYRILLIC_RE.findall(joined)), len(_LATIN_RE.findall(joined))
    if cyr + lat == 0:
        return "mixed"
    share = cyr / (cyr + lat)
    return "ru" if share >= 0.7 else "en" if share <= 0.3 else "mixed"


def _share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else 0.0


def describe(replies: list[str]) -> dict[str, Any]:
    """Figures of the style of `replies` (my messages); `describe(...)["description"]` says it in words."""
    replies = [r.strip() for r in replies if r.strip()]
    if not replies:
        raise ValueError("no replies to describe")
    lang = language(replies)
    tokens = [features.words(r) for r in replies]
    words_per = [len(ts) for ts in tokens]
    emojis = [features.emoji(r) for r in replies]
    plain = [features.strip_emoji(r).strip() for r in replies]
    ends = Counter(features.ending(r) for r in replies)
    letters = [features.first_letter(r) for r in replies]
    starts_upper = [c.isupper() for c in letters if c]

    stop = STOPWORDS["ru"] | STOPWORDS["en"]
    words = Counter(w for ts in tokens for w in ts if w not in stop and len(w) > 1)
    phrases = Counter(
        " ".join(ts[i : i + n])
        for ts in tokens
        for n in (2, 3)
        for i in range(len(ts) - n + 1)
        if ts[i] not in stop and ts[i + n - 1] not in stop  # "норм а" is no phrase of mine
    )
    style: dict[str, Any] = {
        "replies": len(replies),
        "language": lang,
        "words_median": statistics.median(words_per),
        "chars_median": statistics.median(len(r) for r in replies),
        "emoji_share": _share([bool(e) for e in emojis]),
        "top_emoji": [e for e, _ in Counter(e for es in emojis for e in es).most_common(3)],
        "paren_smile_share": _share([bool(_PAREN_SMILE_RE.search(p)) for p in plain]),
        "ends_with": {k: round(v / len(plain), 3) for k, v in ends.most_common()},
        "exclamation_share": _share(["!" in p for p in plain]),
        "question_share": _share(["?" in p for p in plain]),
        "capital_start_share": _share(starts_upper),
        "frequent_words": [w for w, c in words.most_common(6) if c >= 2],
        "frequent_phrases": [p for p, c in phrases.most_common(4) if c >= 2],
    }
    style["description"] = _words(style)
    return style


_PHRASES = {
    "ru": {
        "short": "короткие фразы (обычно {w} {words})",
        "long": "развёрнутые сообщения (обычно {w} {words})",
        "emoji": "смайлики {e}",
        "no_emoji": "без эмодзи",
        "paren": "скобочки-смайлики «)»",
        "lower": "пишу с маленькой буквы",
        "upper": "начинаю с заглавной",
        "no_period": "без точки в конце",
        "period": "ставлю точку в конце",
        "excl": "часто «!»",
        "words": "мои словечки: {v}",
        "lang": "язык: русский",
    },
    "en": {
        "short": "short messages (usually {w} {words})",
        "long": "longer messages (usually {w} {words})",
        "emoji": "emoji {e}",
        "no_emoji": "no emoji",
        "paren": "')' as a smile",
        "lower": "mostly lowercase",
        "upper": "capitalised",
        "no_period": "no full stop at the end",
        "period": "full stops at the end",
        "excl": "often '!'",
        "words": "words I use: {v}",
        "lang": "language: {l}",
    },
}
_LANG_NAMES = {"ru": "Russian", "en": "English", "mixed": "Russian and English mixed"}


def _word_forms(n: int, lang: str) -> str:
    if lang != "ru":
        return "word" if n == 1 else "words"
    if n % 10 == 1 and n % 100 != 11:
        return "слово"
    return "слова" if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else "слов"


def _words(s: dict[str, Any]) -> str:
    p = _PHRASES["ru" if s["language"] == "ru" else "en"]
    w = round(s["words_median"])
    parts = [p["short" if w <= 8 else "long"].format(w=w, words=_word_forms(w, s["language"]))]
    parts.append(
        p["emoji"].format(e="".join(s["top_emoji"])) if s["emoji_share"] >= 0.15 and s["top_emoji"] else p["no_emoji"]
    )
    if s["paren_smile_share"] >= 0.15:
        parts.append(p["paren"])
    parts.append(p["lower"] if s["capital_start_share"] < 0.4 else p["upper"] if s["capital_start_share"] > 0.7 else "")
    parts.append(
        p["period"] if s["ends_with"].get(".", 0) >= 0.4 else p["no_period"] if s["ends_with"].get(".", 0) < 0.1 else ""
    )
    if s["exclamation_share"] >= 0.25:
        parts.append(p["excl"])
    phrases = s["frequent_phrases"][:2]
    vocab = (phrases + [w for w in s["frequent_words"] if not any(w in p.split() for p in phrases)])[:5]
    if vocab:
        parts.append(p["words"].format(v=", ".join(vocab)))
    parts.append(p["lang"].format(l=_LANG_NAMES[s["language"]]))
    return ", ".join(x for x in parts if x)
