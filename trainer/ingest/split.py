"""Train/validation split by session: a conversation is never on both sides."""

from __future__ import annotations

import random
from collections.abc import Sequence

SPLITS = ("random", "time")


def choose_val(counts: Sequence[int], ends: Sequence[float], fraction: float, mode: str, seed: int) -> set[int]:
    """The sessions (indexes) that go to validation: about `fraction` of the samples.

    `random`: sessions in a seeded shuffle, each taken if it still fits under the
    target (the smallest one if none fits). `time`: the latest sessions, newest
    first, while they fit (the latest one even if it alone is over the target).
    With fewer than two sessions nothing is held out.
    """
    if mode not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {mode!r}")
    n = len(counts)
    if n < 2 or fraction <= 0:
        return set()
    target = round(fraction * sum(counts))
    val: set[int] = set()
    taken = 0
    if mode == "time":
        for i in sorted(range(n), key=lambda i: (ends[i], i), reverse=True):
            if taken + counts[i] <= target or not val:
                val.add(i)
                taken += counts[i]
            else:
                break
        return val
    order = list(range(n))
    random.Random(seed).shuffle(order)
    for i in order:
        if taken + counts[i] <= target:
            val.add(i)
            taken += counts[i]
    if not val:
        val.add(min(order, key=lambda i: counts[i]))
    return val
