"""How I write, measured over the replies that made it into the dataset: length, emoji, punctuation (trainer.style)."""

from __future__ import annotations

from collections import Counter

from trainer import style


class ReplyHabits:
    """Accumulates one reply at a time; `summary()` is the part of stats.json about my style."""

    def __init__(self) -> None:
        self.count = 0
        self.chars = 0
        self.words = 0
        self.lowercase = 0
        self.with_emoji = 0
        self.emoji: Counter = Counter()
        self.endings: Counter = Counter()

    def add(self, text: str) -> None:
        self.count += 1
        self.chars += style.chars(text)
        self.words += len(style.words(text))
        if style.first_letter(text).islower():
            self.lowercase += 1
        found = style.emoji(text)
        if found:
            self.with_emoji += 1
            self.emoji.update(found)
        self.endings[style.ending(text)] += 1

    def summary(self) -> dict:
        n = self.count or 1
        return {
            "replies": self.count,
            "mean_chars": round(self.chars / n, 1),
            "mean_words": round(self.words / n, 2),
            "lowercase_start": round(self.lowercase / n, 3),
            "with_emoji": round(self.with_emoji / n, 3),
            "ends_with": {k: round(v / n, 3) for k, v in self.endings.most_common()},
            "top_emoji": [[e, c] for e, c in self.emoji.most_common(10)],
        }
