"""What a format's reader writes into: one input file's way into the dataset builder.

The readers in `trainer/ingest/formats/` turn a file into messages (then into
conversations here) or into ready samples; this is the one place both kinds
reach the builder, advance the progress bar, and explain an empty file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.ingest.messages import Message, Sample, Tally
from trainer.ingest.progress import ReadProgress
from trainer.ingest.sessions import Conversation
from trainer.ingest.who import Senders
from twin.errors import UserError

if TYPE_CHECKING:
    from trainer.ingest.clean import Cleaner
    from trainer.ingest.dataset import DatasetBuilder
    from trainer.ingest.run import IngestConfig


@dataclass
class Reading:
    """One input file being read: where its messages go and what is counted about it."""

    path: Path
    config: IngestConfig
    builder: DatasetBuilder
    cleaner: Cleaner
    tally: Tally
    progress: ReadProgress
    senders: Senders
    read_before: int = field(init=False)

    def __post_init__(self) -> None:
        self.read_before = self.tally.read

    @property
    def read(self) -> int:
        """Messages read from this file so far."""
        return self.tally.read - self.read_before

    def feed(self, messages: Iterator[Message], on_chat: Callable[[], None] | None = None) -> None:
        """Messages of one file, chat after chat, into conversations."""
        builder, tally = self.builder, self.tally
        skipped = tally.skipped
        is_me = self.senders.is_me
        conv: Conversation | None = None
        chat = None
        for msg in messages:
            if msg.chat is not chat:
                if conv is not None:
                    builder.finish_conversation(conv)
                if on_chat is not None:
                    on_chat()
                chat = msg.chat
                conv = builder.conversation(chat)
            mine = is_me(msg.sender_id, msg.sender)
            if mine and msg.forwarded:
                skipped["forwarded by me"] += 1
                continue
            conv.add(msg, mine)  # type: ignore[union-attr]  # set with the first message's chat
        if conv is not None:
            builder.finish_conversation(conv)

    def add_sample(self, sample: Sample) -> None:
        """A ready sample (plain pairs, JSONL lines), cleaned like any conversation's."""
        cleaned = [(role, self.cleaner(content).strip()) for role, content in sample.messages]
        if not cleaned[-1][1]:
            self.builder.dropped["empty after cleaning"] += 1
            return
        context = [(r, c) for r, c in cleaned[:-1] if c]
        self.builder.add_sample(Sample([*context, cleaned[-1]], sample.where), self.path.name)

    def lines(self, f) -> Iterator[str]:
        """The lines of a text file, advancing the progress bar by about the bytes they took."""
        size = self.path.stat().st_size
        done = 0
        for i, line in enumerate(f):
            if i % 4096 == 0:
                pos = min(f.buffer.tell(), size)  # inside a zip: uncompressed bytes, capped at the file
                self.progress.advance(pos - done)
                done = pos
            yield line
        self.progress.advance(size - done)

    def my_messages(self, fix: str) -> int:
        """After a by-sender read: how many messages are mine; a UserError if none was read or --me is unclear."""
        if not self.senders.counts:
            raise UserError(self.nothing_read(fix))
        self.senders.check(needs_me=True)
        return self.senders.mine

    def nothing_read(self, fix: str) -> str:
        """Why a file gave no message at all, instead of an empty list of senders."""
        tally = self.tally
        seen = self.read
        found = []
        if seen:
            found.append(
                f"{seen} messages, none usable: " + ", ".join(f"{n} {why}" for why, n in tally.skipped.most_common(4))
            )
            if tally.skipped.get("malformed"):
                found.append("a message needs a date (date_unixtime or date), a sender and a text")
        found.extend(f"{why} ({n})" for why, n in tally.chats_skipped.most_common(4))
        return f"{self.path}: no message could be read ({'; '.join(found) or 'no messages in it'}): {fix}"
