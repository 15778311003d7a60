"""The human ratings of `twin chat --rate`, read from the TUI's chat.db and summed up per variant.

The TUI owns the file (`tui/database.py`): table `ratings`, one row per reply
shown in a round (variant `twin` = the served GGUF, `prompt` = the persona
variant, `real` = what I wrote), with a 1–5 score and one reply per round marked
most like me. This module only reads it, never creating or upgrading the file.

From schema version 3 each row names its rater: '' for me (`twin chat --rate`),
`telegram:<id>` for a friend who took the bot's blind survey ("which one did
they write?" is their `best`). Mine and the friends' are summed up apart.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from twin import paths

DB_NAME = "chat.db"
KNOWN_SCHEMA = 1  # the ratings columns below exist from version 1 on
RATER_SCHEMA = 3  # the `rater` column exists from version 3 on
VARIANTS = ("twin", "prompt", "real")


@dataclass(frozen=True)
class VariantRating:
    variant: str
    ratings: int
    mean_score: float
    best_share: float  # rounds where it was picked as most like me / rounds it appeared in
    at_least_real_share: float | None  # rounds where it scored >= the real reply / rounds with both (None for `real`)


@dataclass
class RatingSummary:
    rounds: int = 0
    variants: list[VariantRating] = field(default_factory=list)
    stale: int = 0  # rows about samples of an older val.jsonl (its line no longer matches), left out
    note: str = ""  # why there is nothing, and what to run
    friends: RatingSummary | None = None  # the bot's survey, taken by others (None: nobody took it)
    raters: int = 0  # how many people these ratings come from (friends' summary)
    chance: float = 0.0  # the share of rounds a blind guess would pick the real reply in

    def as_dict(self) -> dict:
        out = {
            "rounds": self.rounds,
            "stale": self.stale,
            "note": self.note,
            "variants": [asdict(v) for v in self.variants],
        }
        if self.friends is not None:
            out["friends"] = {**self.friends.as_dict(), "raters": self.friends.raters, "chance": self.friends.chance}
        return out

    def share(self, variant: str) -> float | None:
        """How often `variant` was picked (as most like me, or by friends as the one I wrote)."""
        return next((v.best_share for v in self.variants if v.variant == variant), None)


def db_path() -> Path:
    return paths.data_dir() / DB_NAME


def summarize(name: str, current: dict[int, str], path: Path | None = None) -> RatingSummary:
    """Ratings of twin `name`; `current` maps val.jsonl line numbers to the sha256 of their text.

    Rows whose line and hash no longer match the current dataset were rated on
    an older one and are counted as stale, not summed.
    """
    path = path or db_path()
    hint = f"rate replies with `twin chat --rate --name {name}`"
    if not path.is_file():
        return RatingSummary(note=f"no ratings yet: {hint}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        return RatingSummary(note=f"cannot open {path} ({e}); ratings left out")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version < KNOWN_SCHEMA:
            return RatingSummary(note=f"no ratings yet: {hint}")
        rater = "rater" if version >= RATER_SCHEMA else "''"
        rows = db.execute(
            f"SELECT round_id, sample_id, sample_sha256, variant, score, best, {rater} FROM ratings WHERE twin = ?",
            (name,),
        ).fetchall()
    except sqlite3.Error as e:
        return RatingSummary(note=f"cannot read the ratings in {path} ({e}); ratings left out")
    finally:
        db.close()

    mine: dict[str, dict[str, tuple[int, bool]]] = defaultdict(dict)
    theirs: dict[str, dict[str, tuple[int, bool]]] = defaultdict(dict)
    raters: set[str] = set()
    stale = 0
    for round_id, sample_id, sha, variant, score, best, who in rows:
        if current.get(sample_id) != sha:
            stale += 1
            continue
        (theirs if who else mine)[round_id][variant] = (int(score), bool(best))
        if who:
            raters.add(who)
    friends = None
    if theirs:
        friends = RatingSummary(
            rounds=len(theirs),
            variants=_per_variant(theirs),
            raters=len(raters),
            chance=sum(1 / len(r) for r in theirs.values()) / len(theirs),
        )
    if not mine:
        note = f"no ratings of the current dataset: {hint}" if stale else f"no ratings yet: {hint}"
        return RatingSummary(stale=stale, note=note, friends=friends)
    return RatingSummary(rounds=len(mine), variants=_per_variant(mine), stale=stale, friends=friends)


def _per_variant(rounds: dict[str, dict[str, tuple[int, bool]]]) -> list[VariantRating]:
    out = []
    for variant in VARIANTS:
        shown = [r for r in rounds.values() if variant in r]
        if not shown:
            continue
        scores = [r[variant][0] for r in shown]
        with_real = [r for r in shown if "real" in r]
        at_least = None
        if variant != "real":
            at_least = sum(r[variant][0] >= r["real"][0] for r in with_real) / len(with_real) if with_real else None
        out.append(
            VariantRating(
                variant=variant,
                ratings=len(shown),
                mean_score=sum(scores) / len(scores),
                best_share=sum(r[variant][1] for r in shown) / len(shown),
                at_least_real_share=at_least,
            )
        )
    return out
