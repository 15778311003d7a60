"""The blind survey: friends see a conversation from the twin's validation split and, unlabelled and shuffled,
what the owner really wrote, the twin's reply and the persona variant's; they pick the one the owner wrote and
score each 1–5. Answers go to chat.db's `ratings` (the table `twin chat --rate` writes, `twin eval` reads),
marked with the rater.

The owner opens it once for a twin, after agreeing that validation messages may be shown; nothing else of
the dataset is ever sent.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.store import BotStore
from tui import database
from tui.client import DaemonClient, DaemonError, DaemonUnreachable, Sampling
from tui.rating import Round, load_samples, new_round, pick_twin, rated, save_round
from twin.errors import UserError

LETTERS = "ABC"


@dataclass
class Open:
    """A round shown to one rater, waiting for their answers (kept in memory: a restart drops it)."""

    round: Round
    rater_id: int
    pick: int | None = None
    scores: dict[int, int] = field(default_factory=dict)

    def complete(self) -> bool:
        return self.pick is not None and len(self.scores) == len(self.round.candidates)


class Survey:
    def __init__(self, store: BotStore, client: DaemonClient, sampling: Sampling) -> None:
        self.store, self.client, self.sampling = store, client, sampling
        self.rounds: dict[str, Open] = {}
        self.rng = random.Random()

    # the owner's side
    @property
    def twin(self) -> str:
        return self.store.get("survey_twin")

    @property
    def consented(self) -> bool:
        return self.store.get("survey_consent") == "yes"

    def check_twin(self, name: str | None) -> str:
        """The twin to survey (`name`, or the only one with a validation split); a UserError otherwise."""
        return pick_twin(name)

    def open(self, name: str) -> str:
        """Open the survey for twin `name` (the owner has agreed to show validation messages)."""
        self.store.put("survey_consent", "yes")
        self.store.put("survey_twin", name)
        count = len(load_samples(name))
        return f"The survey is open for twin {name} ({count} conversations). People with the rate role send /survey."

    def close(self) -> str:
        self.store.put("survey_twin", "")
        self.rounds.clear()
        return "The survey is closed."

    # the rater's side
    async def start_round(self, rater_id: int) -> Open:
        """A new round for this rater: a sample they have not rated, its candidate replies generated now."""
        name = self.twin
        if not name:
            raise UserError("The survey is not open now: the owner opens it with /survey on.")
        samples = load_samples(name)
        db = database.connect()
        try:
            done = rated(db, name, rater(rater_id))
        finally:
            db.close()
        fresh = [s for s in samples if (s.line, s.sha256) not in done]
        if not fresh:
            raise UserError("You have rated every conversation of this survey. Thank you!")
        sample = self.rng.choice(fresh)
        served = {m.id for m in await self.client.models()}
        rnd = new_round(name, sample, served, self.rng)
        for c in rnd.candidates:
            if c.model and not c.missing:
                try:
                    c.text = (await self.client.complete_chat(c.model, sample.context, self.sampling)).strip()
                except DaemonError as e:
                    c.missing = str(e)
                if not c.text:
                    c.missing = c.missing or "empty reply"
        rnd.candidates = [c for c in rnd.candidates if c.ready]
        if len(rnd.candidates) < 2:
            raise DaemonUnreachable(f"the daemon does not serve twin {name!r} or its -prompt variant now")
        rnd.rater = rater(rater_id)
        key = secrets.token_hex(4)
        self.rounds[key] = Open(rnd, rater_id)
        return self.rounds[key]

    def key_of(self, opened: Open) -> str:
        return next(k for k, v in self.rounds.items() if v is opened)

    def answer(self, key: str, rater_id: int, data: list[str]) -> Open | None:
        """Record one button press (`p <i>` or `s <i> <score>`); None if the round is gone or not theirs."""
        opened = self.rounds.get(key)
        if opened is None or opened.rater_id != rater_id:
            return None
        kind, index = data[0], int(data[1])
        if not 0 <= index < len(opened.round.candidates):
            return None
        if kind == "p":
            opened.pick = index
        elif kind == "s" and 1 <= int(data[2]) <= 5:
            opened.scores[index] = int(data[2])
        return opened

    def save(self, key: str) -> int:
        """Store a complete round in chat.db; how many rows."""
        opened = self.rounds.pop(key)
        for i, c in enumerate(opened.round.candidates):
            c.score, c.best = opened.scores[i], i == opened.pick
        db = database.connect()
        try:
            return save_round(db, opened.round, self.sampling.as_json())
        finally:
            db.close()


def rater(user_id: int) -> str:
    return f"telegram:{user_id}"


def round_text(opened: Open, owner: str) -> str:
    lines = ["A conversation:"]
    for m in opened.round.sample.context:
        who = owner if m["role"] == "assistant" else "them"
        lines.append(f"{who}: {m['content']}")
    lines += ["", "Replies:"]
    lines += [f"{LETTERS[i]}) {c.text}" for i, c in enumerate(opened.round.candidates)]
    lines += ["", f"Which one did {owner} write? And how much does each sound like {owner}, 1–5?"]
    return "\n".join(lines)


def keyboard(key: str, opened: Open, owner: str) -> InlineKeyboardMarkup:
    n = len(opened.round.candidates)
    pick = [
        InlineKeyboardButton(
            ("✅ " if opened.pick == i else "") + f"{owner} wrote {LETTERS[i]}", callback_data=f"sv:{key}:p:{i}"
        )
        for i in range(n)
    ]
    rows = [pick]
    for i in range(n):
        rows.append(
            [
                InlineKeyboardButton(
                    f"{LETTERS[i]} {s}" + (" ✅" if opened.scores.get(i) == s else ""),
                    callback_data=f"sv:{key}:s:{i}:{s}",
                )
                for s in range(1, 6)
            ]
        )
    return InlineKeyboardMarkup(rows)
