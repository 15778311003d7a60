"""/survey: the owner opens and closes it, raters take rounds with inline buttons."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.flood import patiently, say
from bot.handlers.gate import Deps, guarded
from bot.rules import Action
from bot.survey import keyboard, round_text

log = logging.getLogger("twin.bot")


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
