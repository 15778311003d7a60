"""Telegram's flood limits: a call refused with 429 (RetryAfter) waits as long as Telegram says and tries again."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import Bot, Message
from telegram.error import RetryAfter

log = logging.getLogger("twin.bot")
T = TypeVar("T")
ATTEMPTS = 5


def retry_seconds(error: RetryAfter) -> float:
    """How long Telegram asked us to wait (PTB gives an int or a timedelta, depending on its settings)."""
    value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


async def patiently(call: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS) -> T:
    """`await call()`, waiting out up to `attempts - 1` flood refusals before giving up with the last one."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except RetryAfter as e:
            wait = retry_seconds(e)
            log.warning("Telegram flood limit: waiting %.0f s before retrying", wait)
            await asyncio.sleep(wait)
    return await call()


async def say(bot: Bot, chat_id: int, text: str, **kwargs: Any) -> Message:
    """Send a message, waiting out flood limits (every reply of the bot goes through here or `patiently`)."""
    return await patiently(lambda: bot.send_message(chat_id, text, **kwargs))
