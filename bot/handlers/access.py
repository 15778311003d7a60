"""/start (the owner's claim), /help, /allow and /deny."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.flood import say
from bot.handlers.gate import Deps, deps, guarded, role
from bot.replies import help_text
from bot.rules import Action, Role, may, refusal
from twin.errors import UserError

log = logging.getLogger("twin.bot")


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start [CODE]: the owner's claim with setup's one-time code; help for the others; strangers refused."""
    d = deps(context)
    user, chat = update.effective_user, update.effective_chat
    who = role(d, user)
    if who is None and may(None, Action.CLAIM) and context.args:
        name = user.full_name or user.username or str(user.id)
        if d.store.claim(context.args[0], user.id, user.username or "", name):
            log.info("the bot was claimed by its owner (user %s)", user.id)
            await say(context.bot, chat.id, f"You own this bot now, {name}.\n\n" + help_text())
            return
    if who is None:
        await say(context.bot, chat.id, refusal(None, Action.CLAIM))
        return
    await say(context.bot, chat.id, help_text())


@guarded(Action.HELP)
async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    await say(context.bot, update.effective_chat.id, help_text())


def _target(update: Update, context: ContextTypes.DEFAULT_TYPE) -> tuple[int | None, str, str, list[str]]:
    """Whom /allow or /deny means: a forwarded message replied to, @username, or a numeric id; and the rest."""
    args = list(context.args or [])
    replied = update.effective_message.reply_to_message
    origin = replied.forward_origin if replied is not None else None
    if origin is not None:
        user = getattr(origin, "sender_user", None)
        if user is None:
            raise UserError("their privacy settings hide who forwarded messages come from: use /allow @username")
        return user.id, user.username or "", user.full_name, args
    if not args:
        raise UserError("whom? /allow @username [chat|rate], /allow 123456789, or reply to a forwarded message")
    who, rest = args[0], args[1:]
    if who.lstrip("-").isdigit():
        return int(who), "", who, rest
    if who.startswith("@") and len(who) > 1:
        return None, who[1:], who, rest
    raise UserError(f"{who!r} is neither @username nor a numeric Telegram id")


@guarded(Action.ALLOW)
async def allow(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    user_id, username, name, rest = _target(update, context)
    wanted = (rest[0] if rest else "chat").lower()
    if wanted not in ("chat", "rate"):
        raise UserError(f"unknown role {wanted!r}: chat (talks to the twin) or rate (takes the survey)")
    owner = d.store.owner()
    if owner is not None and user_id == owner.id:
        raise UserError("that is you, the owner")
    d.store.allow(user_id, username, name, Role(wanted))
    await say(
        context.bot,
        update.effective_chat.id,
        f"{name} may now {'talk to the twin' if wanted == 'chat' else 'take the survey'}.",
    )


@guarded(Action.ALLOW)
async def deny(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    user_id, username, name, _ = _target(update, context)
    removed = d.store.deny(user_id, username)
    await say(
        context.bot,
        update.effective_chat.id,
        f"{name} is no longer allowed." if removed else f"{name} was not on the list.",
    )
