"""Telegram Desktop's JSON export (`result.json`): one chat, or the whole account.

One chat is the dialog itself at the top level (`name`, `type`, `id`, `messages`);
the whole account has `personal_information` (the owner's `user_id`) and
`chats.list` / `left_chats.list` of such dialogs. Both are read as a stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.ingest.formats.base import TELEGRAM_FIX, Format, Peek, syntax_error
from trainer.ingest.formats.jsonstream import JsonStream, JsonSyntaxError
from trainer.ingest.messages import Chat, Message, Tally

if TYPE_CHECKING:
    from trainer.ingest.reading import Reading

ACCOUNT_KEYS = frozenset({"personal_information", "chats", "left_chats"})

# Chat types read by default; channels and bots only on request, anything else is counted and skipped.
DIALOG_TYPES = frozenset(
    {"personal_chat", "private_group", "private_supergroup", "public_supergroup", "saved_messages"}
)
CHANNEL_TYPES = frozenset({"private_channel", "public_channel"})
BOT_TYPES = frozenset({"bot_chat"})

# Entities Telegram itself recognised: replaced by the same placeholders as the text cleaner's.
ENTITY_KINDS = {"link": "url", "email": "email", "phone": "phone", "bank_card": "card", "mention": "username"}

KNOWN_FIELDS = frozenset(
    {
        "id",
        "type",
        "date",
        "date_unixtime",
        "edited",
        "edited_unixtime",
        "from",
        "from_id",
        "text",
        "text_entities",
        "forwarded_from",
        "forwarded_from_id",
        "saved_from",
        "reply_to_message_id",
        "reply_to_peer_id",
        "via_bot",
        "author",
        "media_type",
        "sticker_emoji",
        "photo",
        "photo_file_size",
        "file",
        "file_name",
        "file_size",
        "thumbnail",
        "thumbnail_file_size",
        "mime_type",
        "duration_seconds",
        "width",
        "height",
        "poll",
        "location_information",
        "contact_information",
        "contact_vcard",
        "live_location_period_seconds",
        "place_name",
        "address",
        "game_title",
        "game_description",
        "game_link",
        "invoice_information",
        "self_destruct_period_seconds",
        "inline_bot_buttons",
        "media_spoiler",
        "reactions",
        "performer",
        "title",
        "todo_list",
        "giveaway_information",
        "giveaway_results",
        "paid_stars_amount",
        "story",
        "actor",
        "actor_id",
        "action",
    }
)
MEDIA_FIELDS = ("media_type", "photo", "file", "poll", "location_information", "contact_information")

EntityText = Callable[[str, str], str]
_MAX_TIME = 1e12  # seconds: about 30,000 years either side of 1970; beyond that a stamp is garbage


class _Malformed(Exception):
    """A message whose fields have the wrong types: counted and skipped, never fatal."""


class TelegramExport:
    """Reads one Telegram Desktop export; `owner_id` is known once the account's personal_information is read."""

    def __init__(
        self,
        stream: JsonStream,
        tally: Tally,
        entity_text: EntityText,
        include_channels: bool = False,
        include_bots: bool = False,
    ) -> None:
        self.stream = stream
        self.tally = tally
        self.entity_text = entity_text
        self.owner_id: str | None = None
        self.account = False
        self._chat_where = ""
        self._index = -1
        self._types = (
            DIALOG_TYPES
            | (CHANNEL_TYPES if include_channels else frozenset())
            | (BOT_TYPES if include_bots else frozenset())
        )

    @property
    def position(self) -> str:
        """Where the parser is ("chat 'Anna', message #12"), for error messages; '' before the first chat."""
        if not self._chat_where:
            return ""
        return f"{self._chat_where}, message #{self._index + 1}" if self._index >= 0 else self._chat_where

    def messages(self) -> Iterator[Message]:
        """Every text message of every included chat, chat by chat, in the export's order."""
        s = self.stream
        header: dict = {}
        for key in s.members():
            if key == "personal_information":
                self.account = True
                info = s.value()
                user_id = info.get("user_id") if isinstance(info, dict) else None
                if isinstance(user_id, int) and not isinstance(user_id, bool):
                    self.owner_id = f"user{user_id}"
            elif key in ("chats", "left_chats"):
                self.account = True
                yield from self._chat_lists(key)
            elif key == "messages":
                yield from self._chat_messages(header, "")
            elif key in ("name", "type", "id"):
                header[key] = s.value()
            else:
                s.skip()
        s.end()

    def _chat_lists(self, section: str) -> Iterator[Message]:
        s = self.stream
        if s.peek() != "{":
            s.skip()
            self.tally.chats_skipped[f'"{section}" is not an object with a "list"'] += 1
            return
        for key in s.members():
            if key != "list" or s.peek() != "[":
                if key == "list":
                    self.tally.chats_skipped[f'"{section}.list" is not a list'] += 1
                s.skip()
                continue
            for index in s.elements():
                if s.peek() != "{":
                    s.skip()
                    self.tally.chats_skipped["not a chat"] += 1
                    continue
                header: dict = {}
                for ckey in s.members():
                    if ckey == "messages":
                        yield from self._chat_messages(header, f"{section} #{index + 1}, ")
                    elif ckey in ("name", "type", "id"):
                        header[ckey] = s.value()
                    else:
                        s.skip()

    def _chat_messages(self, header: dict, where: str) -> Iterator[Message]:
        s = self.stream
        kind: str = header["type"] if isinstance(header.get("type"), str) else ""
        name = header.get("name")
        if not isinstance(name, str) or not name:
            name = "Saved Messages" if kind == "saved_messages" else f"chat {header.get('id', '?')}"
        name = name.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate would break every writer
        self._chat_where, self._index = f"{where}chat {name!r}", -1
        if s.peek() != "[":
            s.skip()
            return
        if kind and kind not in self._types:
            self.tally.chats_skipped[kind] += 1
            s.skip()
            return
        chat = Chat(name=name, group="group" in kind or "channel" in kind, kind=kind or "chat")
        tally = self.tally
        skipped = tally.skipped
        known = KNOWN_FIELDS.issuperset
        text_of = self._text
        index = -1
        # One loop, locals only: this runs once per message of exports that can hold millions.
        for m in s.values():
            index += 1
            self._index = index
            tally.read += 1
            if type(m) is not dict:
                skipped["malformed"] += 1
                continue
            kind_m = m.get("type")
            if kind_m != "message":
                skipped[
                    "service" if kind_m == "service" else "unsupported" if kind_m == "unsupported" else "unknown type"
                ] += 1
                continue
            if not known(m):
                tally.unknown_fields.update(m.keys() - KNOWN_FIELDS)
            try:
                text = m.get("text", "")
                # A plain string `text` says the same as its text_entities; only the list form needs them.
                if type(text) is not str:
                    text = text_of(m.get("text_entities", text))
                if "media_type" in m and m["media_type"] == "sticker":
                    text = m.get("sticker_emoji")
                    if type(text) is not str or not text:
                        skipped["sticker without emoji"] += 1
                        continue
                if not text or text.isspace():
                    skipped["media without text" if any(f in m for f in MEDIA_FIELDS) else "empty"] += 1
                    continue
                try:
                    time: float = int(m["date_unixtime"])  # int() parses twice as fast as float(); seconds are whole
                except (KeyError, TypeError, ValueError):
                    time = _iso_time(m.get("date"))
                if not -_MAX_TIME < time < _MAX_TIME:
                    raise _Malformed
            except _Malformed:
                skipped["malformed"] += 1
                continue
            mid = m.get("id")
            reply = m.get("reply_to_message_id")
            sender_id = m.get("from_id")
            sender = m.get("from")
            if type(sender_id) is not str:
                sender_id = ""
            if type(sender) is not str:
                sender = ""
            yield Message(
                chat,
                mid if type(mid) is int else None,
                time,
                sender_id or sender or "unknown",
                sender or sender_id or "unknown",
                text,
                reply if type(reply) is int else None,
                "forwarded_from" in m or "saved_from" in m,
            )

    def _text(self, value: object) -> str:
        """`text` (a string, or a list of strings and entity objects) or `text_entities`, as one string."""
        if type(value) is str:
            return value
        if type(value) is not list:
            raise _Malformed
        if len(value) == 1:
            e = value[0]
            if type(e) is dict and e.get("type") == "plain" and type(e.get("text")) is str:
                return e["text"]
        parts = []
        for e in value:
            if type(e) is str:
                parts.append(e)
                continue
            if type(e) is not dict or type(e.get("text")) is not str:
                raise _Malformed
            piece = e["text"]
            kind = ENTITY_KINDS.get(e.get("type", ""))
            if kind is not None:
                piece = self.entity_text(kind, piece)
            parts.append(piece)
        return "".join(parts)


def _iso_time(value: object) -> float:
    """Telegram's `date` is local time without a zone: good enough, only gaps between messages matter."""
    if type(value) is not str:
        raise _Malformed
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise _Malformed from None


def detect(peek: Peek) -> str | None:
    """A whole account by its top-level sections; one chat by its first message's Telegram fields."""
    shape = peek.json()
    if shape is None:
        return None
    if shape.key in ACCOUNT_KEYS:
        return "telegram-account"
    if shape.key != "messages":
        return None
    if not shape.has_first:
        return "telegram-chat" if {"type", "id"} & shape.header.keys() else None
    first = shape.first
    if not isinstance(first, dict) or ("role" in first and "content" in first):
        return None
    return "telegram-chat" if "type" in first or "date" in first or "from" in first else None


def read(path: Path, kind: str, r: Reading) -> int:
    config = r.config
    with open(path, "rb") as f:
        export = TelegramExport(
            JsonStream(f, r.progress.advance), r.tally, r.cleaner.entity, config.include_channels, config.include_bots
        )
        try:
            r.feed(export.messages(), lambda: r.senders.set_owner(export.owner_id))
        except JsonSyntaxError as e:
            raise syntax_error(path, e, export.position) from None
    return r.my_messages(TELEGRAM_FIX)


# After plain: a first message with "user"/"bot" is a plain pair even when it also has Telegram fields.
FORMAT = Format(("telegram-account", "telegram-chat"), detect, read, order=40, by_sender=True, json_keys=ACCOUNT_KEYS)
