"""The plain format of the original plan: `{"messages": [{"user": "Привет!", "bot": "Здравствуй!"}, …]}`.

`bot` is me. Each pair is a sample of its own: the format carries no time to find conversations by.
"""

from __future__ import annotations

from collections.abc import Iterator

from trainer.ingest.formats.jsonstream import JsonStream
from trainer.ingest.messages import Sample, Tally

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
