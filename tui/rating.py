"""Human rating of a twin: validation samples, rounds of shuffled candidate replies, and their rows in chat.db.

A round shows one context from `twins/<name>/dataset/val.jsonl` (every message
but the last) and, in random order and unlabelled, the twin's reply (model
`<name>`), the persona variant's (`<name>-prompt`) and the person's real reply
(the last message). Each gets a score 1–5 and one is marked most like the person.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from dataclasses import dataclass, field

from tui.database import now
from twin import paths, registry
from twin.dataset import VAL, read, val_path
from twin.errors import UserError
from twin.sqlitedb import transaction

VARIANTS = ("twin", "prompt", "real")


@dataclass(frozen=True)
class Sample:
    """One validation conversation: `line` is its 1-based line number in val.jsonl."""

    line: int
    sha256: str
    context: list[dict[str, str]]
    real: str


@dataclass
class Candidate:
    variant: str  # "twin", "prompt" or "real": never shown to the person rating
    model: str  # model id that writes it; "" for the real reply
    text: str | None = None  # None while it is being generated
    missing: str = ""  # why there is no reply (the daemon does not serve the model, or failed)
    score: int | None = None
    best: bool = False

    @property
    def ready(self) -> bool:
        return self.text is not None and not self.missing


@dataclass
class Round:
    twin: str
    sample: Sample
    candidates: list[Candidate]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    rater: str = ""  # "" = the person themself; "telegram:<id>" = a friend in the bot's survey

    @property
    def rateable(self) -> list[Candidate]:
        return [c for c in self.candidates if c.ready]

    def problem(self) -> str:
        """What still keeps this round from being saved, or "" when it is complete."""
        if any(c.text is None and not c.missing for c in self.candidates):
            return "wait until every reply is written"
        unscored = [chr(ord("A") + i) for i, c in enumerate(self.candidates) if c.ready and c.score is None]
        if unscored:
            return f"score reply {', '.join(unscored)} (keys 1–5)"
        if sum(c.best for c in self.rateable) != 1:
            return "mark the reply most like you (key b)"
        return ""


def pick_twin(name: str | None) -> str:
    """The twin to rate: `name`, or the only twin with a validation split; a UserError naming the fix otherwise."""
    if name is not None:
        paths.check_name(name)
        if not val_path(name).is_file():
            known = registry.twins_with(VAL)
            hint = f" (twins with one: {', '.join(known)})" if known else ""
            raise UserError(
                f"twin {name!r} has no validation split at {val_path(name)}{hint}: build it with `twin ingest`"
            )
        return name
    return registry.resolve_name(None, VAL)


def load_samples(name: str) -> list[Sample]:
    """Every sample of the twin's val.jsonl; a UserError naming the file and line of anything malformed."""
    path = val_path(name)
    samples = [
        Sample(line.number, line.sha256, line.messages[:-1], line.messages[-1]["content"]) for line in read(path)
    ]
    if not samples:
        raise UserError(f"{path} holds no samples: rebuild the dataset with `twin ingest` (it needs more chat history)")
    return samples


def new_round(name: str, sample: Sample, served: set[str], rng: random.Random) -> Round:
    """The three candidates in random order; a variant whose model the daemon does not serve is marked missing."""
    candidates = [Candidate("real", "", text=sample.real)]
    for variant, model in (("twin", name), ("prompt", f"{name}-prompt")):
        missing = "" if model in served else f"the daemon does not serve the model {model!r}"
        candidates.append(Candidate(variant, model, missing=missing))
    rng.shuffle(candidates)
    return Round(name, sample, candidates)


def rated(db: sqlite3.Connection, name: str, rater: str = "") -> set[tuple[int, str]]:
    """(sample_id, sample_sha256) of the samples this rater already rated for this twin."""
    rows = db.execute(
        "SELECT DISTINCT sample_id, sample_sha256 FROM ratings WHERE twin = ? AND rater = ?", (name, rater)
    ).fetchall()
    return {(r["sample_id"], r["sample_sha256"]) for r in rows}


def save_round(db: sqlite3.Connection, rnd: Round, decoding: str) -> int:
    """Store one row per rated candidate; returns how many. Refuses an incomplete round."""
    problem = rnd.problem()
    if problem:
        raise ValueError(f"round not complete: {problem}")
    stamp = now()
    rows = [
        (
            rnd.id,
            rnd.twin,
            rnd.sample.line,
            rnd.sample.sha256,
            c.variant,
            c.model,
            c.text,
            position,
            c.score,
            int(c.best),
            decoding if c.model else "{}",
            stamp,
            rnd.rater,
        )
        for position, c in enumerate(rnd.candidates)
        if c.ready
    ]
    with transaction(db):
        db.executemany(
            "INSERT INTO ratings (round_id, twin, sample_id, sample_sha256, variant, model, reply, position, score, best,"
            " decoding, rated_at, rater) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)
