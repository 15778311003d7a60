"""Talking to the twin: /generate, conversations (private, or addressed in a group), /reset, /model, /status."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.flood import patiently, say
from bot.handlers.gate import Deps, guarded, text_after_command
from bot.rules import Action
from bot.stream import ReplyStream


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
