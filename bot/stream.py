"""A reply written while the twin generates it: Telegram drafts, else edits of one message, never faster than
one update per `interval` seconds (Telegram's limit for edits in a chat), with a typing indicator until the
first words arrive.

`sendMessageDraft` (Bot API 9.3+) streams into private chats; a server without it, or a group, gets
throttled `editMessageText`; if editing fails too, the reply is sent once, whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from telegram import Bot, Message
from telegram.constants import ChatAction, MessageLimit
from telegram.error import BadRequest, InvalidToken, RetryAfter, TelegramError

from bot.flood import patiently, retry_seconds, say

log = logging.getLogger("twin.bot")
TYPING_EVERY = 4.0  # Telegram shows "typing…" for 5 s
EMPTY = "(the twin wrote nothing: try again, or /reset)"
_draft_ids = itertools.count(1)


@dataclass
class Capabilities:
    """What this Bot API server turned out to offer (learnt at the first refusal, kept for the process)."""

    drafts: bool = True
    edits: bool = True
    drafts_confirmed: bool = False  # a draft went through: no more probing
    # Replies streaming at once (the engine batches them) would each probe for drafts before the first refusal
    # came back; until drafts are confirmed or refused, one reply asks and the others wait for its answer.
    probe: asyncio.Lock = field(default_factory=asyncio.Lock)


def clip(text: str) -> str:
    limit = MessageLimit.MAX_TEXT_LENGTH
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ReplyStream:
    """Shows one streamed reply in a chat; `await run(chunks)` returns the whole text once it is shown."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        caps: Capabilities,
        *,
        interval: float = 1.0,
        private: bool = True,
        reply_to: int | None = None,
    ) -> None:
        self.bot, self.chat_id, self.caps, self.interval = bot, chat_id, caps, interval
        self.reply_to = reply_to
        self.mode = "draft" if private and caps.drafts else "edit" if caps.edits else "once"
        self.draft_id = next(_draft_ids)
        self.message: Message | None = None
        self.shown = ""
        self.next_at = 0.0  # monotonic time before which no update may go out

    async def run(self, chunks: AsyncIterator[str]) -> str:
        text = ""

        async def pump() -> None:
            nonlocal text
            async for chunk in chunks:
                text += chunk

        pump_task = asyncio.create_task(pump())
        typing_task = asyncio.create_task(self._typing(pump_task, lambda: bool(text)))
        try:
            while not pump_task.done():
                await asyncio.wait({pump_task}, timeout=max(self.next_at - time.monotonic(), 0.05))
                if not pump_task.done() and text.strip() and text != self.shown and time.monotonic() >= self.next_at:
                    await self._update(text)
            pump_task.result()  # a failed generation raises here, after what was shown so far
        finally:
            typing_task.cancel()
            if not pump_task.done():
                pump_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump_task
        await self._final(text.strip() or EMPTY)
        return text

    async def _typing(self, pump_task: asyncio.Task, started) -> None:
        while not pump_task.done() and not started():
            with contextlib.suppress(TelegramError):
                await self.bot.send_chat_action(self.chat_id, ChatAction.TYPING)
            await asyncio.sleep(TYPING_EVERY)

    def _sent(self) -> None:
        self.next_at = time.monotonic() + self.interval

    async def _update(self, text: str) -> None:
        """One intermediate update; a flood refusal only postpones the next one."""
        body = clip(text)
        if self.mode == "draft" and not self.caps.drafts:  # another reply found out meanwhile
            self.mode = "edit" if self.caps.edits else "once"
        try:
            if self.mode == "draft" and not self.caps.drafts_confirmed:
                async with self.caps.probe:
                    if not self.caps.drafts:  # the reply that asked first was refused
                        self.mode = "edit" if self.caps.edits else "once"
                        return await self._update(text)
                    await self.bot.send_message_draft(self.chat_id, self.draft_id, body)
                    self.caps.drafts_confirmed = True
            elif self.mode == "draft":
                await self.bot.send_message_draft(self.chat_id, self.draft_id, body)
            elif self.mode == "edit":
                if self.message is None:
                    self.message = await self.bot.send_message(self.chat_id, body, reply_to_message_id=self.reply_to)
                else:
                    await self.message.edit_text(body)
            else:
                return
            self.shown = text
            self._sent()
        except RetryAfter as e:
            self.next_at = time.monotonic() + retry_seconds(e)
        except (BadRequest, InvalidToken) as e:
            self._downgrade(e)

    def _downgrade(self, error: TelegramError) -> None:
        if self.mode == "draft":
            log.info("drafts unavailable here (%s): streaming by edits", error)
            self.caps.drafts = False
            self.mode = "edit" if self.caps.edits else "once"
        elif self.mode == "edit" and self.message is None:
            self.caps.edits = False
            self.mode = "once"
        self._sent()

    async def _final(self, text: str) -> None:
        """The complete reply, sent or edited in for good (flood refusals are waited out)."""
        await asyncio.sleep(max(self.next_at - time.monotonic(), 0))
        body = clip(text)
        if self.message is not None:
            if body != clip(self.shown):
                try:
                    await patiently(lambda: self.message.edit_text(body))  # type: ignore[union-attr]  # sent above
                except BadRequest:  # e.g. the message was deleted meanwhile: send it anew
                    await say(self.bot, self.chat_id, body)
        else:
            await say(self.bot, self.chat_id, body, reply_to_message_id=self.reply_to)
        self._sent()


class StatusMessage:
    """One message kept up to date (a training job's progress): at most one edit per `interval`, the newest text
    wins, flood refusals postpone; `final` always lands."""

    def __init__(self, bot: Bot, chat_id: int, interval: float = 1.0) -> None:
        self.bot, self.chat_id, self.interval = bot, chat_id, interval
        self.message: Message | None = None
        self.shown = ""
        self.next_at = 0.0

    async def show(self, text: str) -> None:
        text = clip(text)
        if text == self.shown or time.monotonic() < self.next_at:
            return
        try:
            if self.message is None:
                self.message = await self.bot.send_message(self.chat_id, text)
            else:
                await self.message.edit_text(text)
            self.shown = text
            self.next_at = time.monotonic() + self.interval
        except RetryAfter as e:
            self.next_at = time.monotonic() + retry_seconds(e)

    async def final(self, text: str) -> None:
        await asyncio.sleep(max(self.next_at - time.monotonic(), 0))
        text = clip(text)
        if self.message is None:
            self.message = await say(self.bot, self.chat_id, text)
        elif text != self.shown:
            await patiently(lambda: self.message.edit_text(text))  # type: ignore[union-attr]  # sent above
        self.shown = text
        self.next_at = time.monotonic() + self.interval
