"""The Application: python-telegram-bot's long-polling loop with the bot's handlers, and `twin bot` itself."""

from __future__ import annotations

import logging
import os

from telegram import BotCommand, Update
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.handlers import access, survey, talk, train
from bot.handlers.gate import Deps
from bot.replies import COMMANDS
from bot.service import TwinService
from bot.store import BotStore
from bot.survey import Survey
from tui.client import Sampling
from twin.config import BotSettings, ChatSettings

log = logging.getLogger("twin.bot")
POLL_TIMEOUT = 30  # seconds a getUpdates long poll may wait (Telegram's recommended order)


def build_application(
    token: str,
    settings: BotSettings,
    chat: ChatSettings,
    *,
    store: BotStore | None = None,
    sampling: Sampling | None = None,
    poll_every: float = 1.0,
) -> Application:
    """The bot, ready for `run_polling()` (or initialize/start/updater.start_polling in tests)."""
    # PTB 22 opt-in: time periods (RetryAfter.retry_after) as timedelta, as its next major version will have
    # them; without it every flood refusal warns. bot.flood reads both.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    store = store or BotStore()
    service = TwinService(chat, settings, store, sampling)
    deps = Deps(service, store, Survey(store, service.client, service.sampling), poll_every=poll_every)

    async def post_init(app: Application) -> None:
        await app.bot.set_my_commands([BotCommand(name, what) for name, what in COMMANDS])
        log.info("twin bot @%s running; the daemon at %s", app.bot.username, chat.url)

    async def post_shutdown(app: Application) -> None:
        await service.close()

    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.api_url)
        .base_file_url(settings.file_url)
        .concurrent_updates(True)  # a reply being written must not hold up other chats, /cancel, the survey
        .get_updates_read_timeout(POLL_TIMEOUT + 10)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    app.bot_data["deps"] = deps
    private_text = filters.TEXT & ~filters.COMMAND
    app.add_handler(CommandHandler("start", access.start))
    app.add_handler(CommandHandler("help", access.help_command))
    app.add_handler(CommandHandler("generate", talk.generate))
    app.add_handler(CommandHandler("reset", talk.reset))
    app.add_handler(CommandHandler("model", talk.model))
    app.add_handler(CommandHandler("status", talk.status))
    app.add_handler(CommandHandler("allow", access.allow))
    app.add_handler(CommandHandler("deny", access.deny))
    app.add_handler(CommandHandler("train", train.train))
    app.add_handler(CommandHandler("cancel", train.cancel))
    app.add_handler(CommandHandler("survey", survey.survey))
    app.add_handler(MessageHandler(filters.Document.ALL, train.document))
    app.add_handler(MessageHandler(private_text, talk.message))
    app.add_handler(CallbackQueryHandler(talk.model_chosen, pattern=r"^m:"))
    app.add_handler(CallbackQueryHandler(survey.survey_consent, pattern=r"^sc:"))
    app.add_handler(CallbackQueryHandler(survey.survey_answer, pattern=r"^sv:"))
    app.add_error_handler(_log_error)
    return app


async def _log_error(update: object, context) -> None:
    # A bug, not a user's mistake: logged (the token filter blanks any URL in it), the update dropped.
    log.error("error while handling an update", exc_info=context.error)


def run(token: str, settings: BotSettings, chat: ChatSettings) -> None:
    """`twin bot`: poll Telegram until SIGINT/SIGTERM."""
    app = build_application(token, settings, chat)
    app.run_polling(timeout=POLL_TIMEOUT, allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
