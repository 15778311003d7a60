"""The bot's handlers: each checks the rules, calls one service function and sends what it returns.

Every handler is wrapped by `guarded(action)`: someone `bot.rules` does not
allow gets the refusal line, and a daemon failure or a user error becomes one
plain reply (never silence).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, Update, User
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import training
from bot.flood import patiently, say
from bot.replies import explain, help_text
from bot.rules import Action, Role, may, refusal
from bot.service import TwinService
from bot.store import BotStore, role_of
from bot.stream import Capabilities, ReplyStream
from bot.survey import Survey, keyboard, round_text
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


async def replying(bot, chat_id: int, d: Deps, work: Awaitable[None]) -> None:
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


def _stream(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> ReplyStream:
    chat = update.effective_chat
    return ReplyStream(
        context.bot,
        chat.id,
        d.caps,
        interval=d.service.settings.edit_interval,
        private=chat.type == ChatType.PRIVATE,
        reply_to=None if chat.type == ChatType.PRIVATE else update.effective_message.message_id,
    )


@guarded(Action.GENERATE)
async def generate(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    text = text_after_command(update)
    if not text:
        await say(context.bot, update.effective_chat.id, "Write what to answer: /generate How was your weekend?")
        return
    await _stream(update, context, d).run(d.service.generate(update.effective_chat.id, text))


def addressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | None:
    """The text meant for the twin: all of it in a private chat; in a group only when the bot is mentioned
    (the mention removed) or replied to; None otherwise."""
    message, chat = update.effective_message, update.effective_chat
    text = message.text or ""
    if chat.type == ChatType.PRIVATE:
        return text
    me = context.bot.username.lower()
    mention = f"@{me}"
    if any(t.lower() == mention for t in message.parse_entities([MessageEntity.MENTION]).values()):
        return " ".join(w for w in text.split() if w.lower() != mention).strip()
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
        return text
    return None


async def message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A plain message: in groups only what is addressed to the bot is answered (or refused)."""
    text = addressed(update, context)
    if text:
        await converse(update, context)


@guarded(Action.CONVERSE)
async def converse(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    text = addressed(update, context) or ""
    await _stream(update, context, d).run(d.service.converse(update.effective_chat.id, text))


@guarded(Action.CONVERSE)
async def reset(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    count = d.service.reset(update.effective_chat.id)
    await say(context.bot, update.effective_chat.id, f"Forgotten ({count} messages). We start afresh.")


@guarded(Action.MODEL)
async def model(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    chat_id = update.effective_chat.id
    current = await d.service.model_for(chat_id)
    rows = [
        [InlineKeyboardButton(("✅ " if m.id == current else "") + m.label, callback_data=f"m:{m.id}")]
        for m in await d.service.models()
        if len(f"m:{m.id}".encode()) <= 64  # Telegram's limit for callback data
    ]
    await say(
        context.bot, chat_id, f"This chat talks to {current}. Pick another:", reply_markup=InlineKeyboardMarkup(rows)
    )


@guarded(Action.MODEL)
async def model_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    query = update.callback_query
    chosen = query.data.removeprefix("m:")
    served = {m.id for m in await d.service.models()}
    if chosen not in served:
        await query.answer(f"{chosen} is not served any more", show_alert=True)
        return
    d.service.choose_model(update.effective_chat.id, chosen)
    await query.answer()
    await patiently(lambda: query.edit_message_text(f"This chat talks to {chosen} now."))


@guarded(Action.STATUS)
async def status(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    await say(context.bot, update.effective_chat.id, await d.service.status(update.effective_chat.id))


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


@guarded(Action.TRAIN)
async def train(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    """/train as a document's caption (or in reply to one) starts at once; alone, it waits for the next document."""
    message, chat_id = update.effective_message, update.effective_chat.id
    document = message.document or (message.reply_to_message.document if message.reply_to_message else None)
    args = list(context.args or []) if message.text else (message.caption or "").split()[1:]
    if document is None:
        d.train_waiting[chat_id] = args
        await say(
            context.bot, chat_id, "Send the export as a file now: Telegram's result.json (or zip) or WhatsApp's .txt."
        )
        return
    # A job takes minutes: run it beside the update loop so /cancel and chats keep being answered.
    context.application.create_task(_run_training(context, d, chat_id, document, args))


@guarded(Action.TRAIN)
async def train_document(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    """The document that a bare /train asked for."""
    chat_id = update.effective_chat.id
    args = d.train_waiting.pop(chat_id, [])
    context.application.create_task(_run_training(context, d, chat_id, update.effective_message.document, args))


async def _run_training(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, document, args: list[str]) -> None:
    await replying(
        context.bot, chat_id, d, training.train(context.bot, chat_id, document, args, d.service, d.poll_every)
    )


async def document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A document: training data when its caption is /train or a bare /train came just before; else ignored."""
    caption = (update.effective_message.caption or "").split()
    if caption and caption[0].split("@")[0] == "/train":
        await train(update, context)
    elif update.effective_chat.id in deps(context).train_waiting:
        await train_document(update, context)


@guarded(Action.CANCEL)
async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    job = await d.service.cancel()
    text = f"Cancelling job {job.id}." if job else "No job is running."
    await say(context.bot, update.effective_chat.id, text)


async def survey(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/survey on [NAME] | off (the owner); /survey (a rater) shows a round."""
    args = context.args or []
    if args and args[0] in ("on", "off"):
        await survey_manage(update, context)
    else:
        await survey_take(update, context)


@guarded(Action.SURVEY_MANAGE)
async def survey_manage(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    chat_id, args = update.effective_chat.id, context.args or []
    if args[0] == "off":
        await say(context.bot, chat_id, d.survey.close())
        return
    name = d.survey.check_twin(args[1] if len(args) > 1 else None)
    if d.survey.consented:
        await say(context.bot, chat_id, d.survey.open(name))
        return
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Yes, show them", callback_data=f"sc:yes:{name}"),
                InlineKeyboardButton("No", callback_data="sc:no"),
            ]
        ]
    )
    await say(
        context.bot,
        chat_id,
        f"The survey shows conversations from twin {name}'s validation split (your real messages in them) to the "
        "people you give the rate role. Nothing else of your data leaves the computer. Show them?",
        reply_markup=buttons,
    )


@guarded(Action.SURVEY_MANAGE)
async def survey_consent(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    query = update.callback_query
    await query.answer()
    parts = query.data.split(":", 2)
    text = d.survey.open(parts[2]) if parts[1] == "yes" else "The survey stays closed."
    await patiently(lambda: query.edit_message_text(text))


@guarded(Action.SURVEY_TAKE)
async def survey_take(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    chat_id = update.effective_chat.id
    opened = await d.survey.start_round(update.effective_user.id)
    owner = _owner_name(d)
    key = d.survey.key_of(opened)
    await say(context.bot, chat_id, round_text(opened, owner), reply_markup=keyboard(key, opened, owner))


def _owner_name(d: Deps) -> str:
    owner = d.store.owner()
    return owner.name.split()[0] if owner and owner.name else "the owner"


@guarded(Action.SURVEY_TAKE)
async def survey_answer(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps) -> None:
    query = update.callback_query
    _, key, *data = query.data.split(":")
    opened = d.survey.answer(key, update.effective_user.id, data)
    if opened is None:
        await query.answer("This round is over: send /survey for a new one.", show_alert=True)
        return
    await query.answer()
    owner = _owner_name(d)
    try:
        if opened.complete():
            d.survey.save(key)
            await patiently(
                lambda: query.edit_message_text(
                    round_text(opened, owner) + "\n\nSaved, thank you! /survey for another."
                )
            )
        else:
            await patiently(lambda: query.edit_message_reply_markup(keyboard(key, opened, owner)))
    except TelegramError as e:
        log.warning("could not update the survey message: %s", e)
