"""/train and /cancel: exports sent as documents become fine-tuning jobs on the daemon."""

from __future__ import annotations

from telegram import Document, Update
from telegram.ext import ContextTypes

from bot import training
from bot.flood import say
from bot.handlers.gate import Deps, deps, guarded, replying
from bot.rules import Action


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
    document = update.effective_message.document
    if document is None:  # the handler's filter lets only documents through
        return
    args = d.train_waiting.pop(chat_id, [])
    context.application.create_task(_run_training(context, d, chat_id, document, args))


async def _run_training(
    context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, document: Document, args: list[str]
) -> None:
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
