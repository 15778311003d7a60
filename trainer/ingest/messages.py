"""What every export format yields: chats and their messages, or ready-made samples."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Chat:
    """One dialog of an export. `group` chats prefix each other person's turn with their name."""

    name: str
    group: bool
    kind: str = ""  # the export's own word for it: personal_chat, private_supergroup, whatsapp, …


@dataclass(slots=True)
class Message:
    """One text message, in the order the chat shows them. `time` is seconds (only differences matter)."""

    chat: Chat
    id: int | None
    time: float
    sender_id: str  # Telegram `user123`; the display name where the export has no ids
    sender: str
    text: str
    reply_to: int | None = None
    forwarded: bool = False


@dataclass(slots=True)
class Sample:
    """A finished training sample from a format that already pairs messages (plain, JSONL).

    Each one is its own session: these formats carry no time to find conversations by.
    """

    messages: list[tuple[str, str]]  # (role, content), the last one the assistant's reply
    where: str  # "line 12", "message 3": for error messages


@dataclass
class Tally:
    """What a parser saw besides the messages it yields: skips by reason, unknown names."""

    read: int = 0
    skipped: Counter = field(default_factory=Counter)
    unknown_fields: Counter = field(default_factory=Counter)
    chats_skipped: Counter = field(default_factory=Counter)
