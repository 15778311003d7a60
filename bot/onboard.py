"""`twin bot setup`: check the token with getMe, store it 0600, and print the owner's one-time claim code."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.store import BotStore
from bot.token_store import check_shape, redact, store_token
from twin.config import BotSettings
from twin.errors import UserError


@dataclass(frozen=True)
class SetupResult:
    username: str
    code: str  # "" when the bot already has an owner
    owner: str


async def check_token(token: str, settings: BotSettings) -> str:
    """The bot's @username, from getMe; a UserError (without the token in it) when Telegram refuses."""
    bot = Bot(token, base_url=settings.api_url, base_file_url=settings.file_url)
    try:
        async with bot:
            return bot.username
    except InvalidToken:
        raise UserError("Telegram refused this token: copy it again from @BotFather (/mybots → API Token)") from None
    except NetworkError as e:
        raise UserError(
            f"cannot reach the Bot API at {settings.api_url} ({redact(str(e), token)}): check the connection"
        ) from None
    except TelegramError as e:
        raise UserError(f"the Bot API answered getMe with an error: {redact(str(e), token)}") from None


def setup(token: str, settings: BotSettings, store: BotStore | None = None) -> SetupResult:
    token = check_shape(token)
    username = asyncio.run(check_token(token, settings))
    store_token(settings, token)
    store = store or BotStore()
    try:
        owner = store.owner()
        if owner is not None:
            return SetupResult(username, "", owner.name)
        code = secrets.token_hex(4)
        store.set_claim_code(code)
        return SetupResult(username, code, "")
    finally:
        store.close()
