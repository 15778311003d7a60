"""What every handler goes through: the rules of `bot.rules` (a refusal line for whoever may not), and daemon
failures or user errors turned into one plain reply (never silence)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import Bot, Update, User
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.flood import say
from bot.replies import explain
from bot.rules import Action, Role, may, refusal
from bot.service import TwinService
from bot.store import BotStore, role_of
from bot.stream import Capabilities
from bot.survey import Survey
from tui.client import DaemonError, DaemonUnreachable
from twin.errors import UserError

log = logging.getLogger("twin.bot")


@dataclass
class Deps:
    """What the handlers share: the service, the store, the survey, and what the Bot API offers."""

    service: TwinService
    store: BotStore
    survey: Survey
    caps: Capabilities = field(default_factory=Capabilities)
    poll_every: float = 1.0  # how often a training job is polled
    train_waiting: dict[int, list[str]] = field(default_factory=dict)  # chats where /train waits for a document


Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE, "Deps"], Awaitable[None]]


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    return context.application.bot_data["deps"]


def role(d: Deps, user: User | None) -> Role | None:
    return None if user is None else role_of(d.store, d.service.settings, user.id, user.username or "")


def guarded(action: Action) -> Callable[[Handler], Callable]:
    def wrap(fn: Handler) -> Callable:
        @functools.wraps(fn)
        async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            d = deps(context)
            chat = update.effective_chat
            who = role(d, update.effective_user)
            try:
                if not may(who, action):
                    if update.callback_query:
                        await update.callback_query.answer(refusal(who, action), show_alert=True)
                    elif chat is not None:
                        await say(context.bot, chat.id, refusal(who, action))
                    return
            except TelegramError as e:
                log.warning("could not refuse %s: %s", action.value, e)
                return
            if chat is None:
                await fn(update, context, d)
            else:
                await replying(context.bot, chat.id, d, fn(update, context, d))

        return handler

    return wrap


async def replying(bot: Bot, chat_id: int, d: Deps, work: Awaitable[None]) -> None:
    """Run `work`; a daemon failure or a user error becomes one plain reply in the chat, never silence."""
    try:
        await work
    except (DaemonUnreachable, DaemonError) as e:
        await say(bot, chat_id, explain(e, d.service.url))
    except UserError as e:
        await say(bot, chat_id, str(e))


def text_after_command(update: Update) -> str:
    text = update.effective_message.text or update.effective_message.caption or ""
    return text.partition(" ")[2].strip() if text.startswith("/") else text.strip()
