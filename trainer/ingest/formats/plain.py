"""The plain format of the original plan: `{"messages": [{"user": "Привет!", "bot": "Здравствуй!"}, …]}`.

`bot` is me. Each pair is a sample of its own: the format carries no time to find conversations by.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.ingest.formats.base import Format, Peek, syntax_error
from trainer.ingest.formats.jsonstream import JsonStream, JsonSyntaxError
from trainer.ingest.messages import Sample, Tally
from twin.errors import UserError

if TYPE_CHECKING:
    from trainer.ingest.reading import Reading

KNOWN_FIELDS = frozenset({"user", "bot"})


class PlainExport:
    def __init__(self, stream: JsonStream, tally: Tally) -> None:
        self.stream = stream
        self.tally = tally
        self.position = ""
        self.replies = 0  # pairs with a reply of mine, for "no messages from me"

    def samples(self) -> Iterator[Sample]:
        s = self.stream
        for key in s.members():
            if key != "messages" or s.peek() != "[":
                s.skip()
                continue
            for index in s.elements():
                self.position = f"message #{index + 1}"
                pair = s.value()
                self.tally.read += 1
                if type(pair) is not dict:
                    self.tally.skipped["malformed"] += 1
                    continue
                unknown = pair.keys() - KNOWN_FIELDS
                if unknown:
                    self.tally.unknown_fields.update(unknown)
                user, bot = pair.get("user"), pair.get("bot")
                if type(bot) is not str or (user is not None and type(user) is not str):
                    self.tally.skipped["malformed"] += 1
                    continue
                if not bot.strip():
                    self.tally.skipped["empty"] += 1
                    continue
                self.replies += 1
                if not user or not user.strip():
                    self.tally.skipped["no context"] += 1
                    continue
                yield Sample([("user", user), ("assistant", bot)], self.position)
        s.end()


def detect(peek: Peek) -> str | None:
    """A "messages" list whose first entry is a user/bot pair; an empty list without a Telegram chat header."""
    shape = peek.json()
    if shape is None or shape.key != "messages":
        return None
    if not shape.has_first:
        return None if {"type", "id"} & shape.header.keys() else "plain"
    first = shape.first
    return "plain" if isinstance(first, dict) and ("bot" in first or "user" in first) else None


def read(path: Path, kind: str, r: Reading) -> int:
    with open(path, "rb") as f:
        plain = PlainExport(JsonStream(f, r.progress.advance), r.tally)
        try:
            for sample in plain.samples():
                r.add_sample(sample)
        except JsonSyntaxError as e:
            raise syntax_error(path, e, plain.position) from None
    if not plain.replies:
        raise UserError(f'{path}: no replies of mine: every "bot" is empty or missing: fill in "bot" (that is you)')
    return plain.replies


FORMAT = Format(("plain",), detect, read, order=30)
