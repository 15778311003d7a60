"""Bot tests: the fake Bot API server, the real daemon behind, and the bot's Application running in the test's loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.app import build_application
from bot.store import BotStore
from tests.bot.fake_telegram import TOKEN, FakeTelegram
from tests.bot.people import CODE
from tui.client import Sampling
from twin.config import BotSettings, ChatSettings


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = await FakeTelegram().start()
    yield fake
    await fake.stop()


@pytest.fixture
def quick() -> Sampling:
    """Short replies: the tests check what the bot does with replies, not what they say."""
    return Sampling(max_tokens=12, temperature=0.7, seed=7)


@pytest.fixture
def running_bot(telegram: FakeTelegram, daemon, quick: Sampling) -> Callable:
    """`async with running_bot(**bot_settings) as app:` the bot polling the fake, talking to the session's daemon."""

    @contextlib.asynccontextmanager
    async def run(url: str | None = None, sampling: Sampling | None = None, **settings) -> AsyncIterator:
        bot_settings = BotSettings(api_url=telegram.api_url, **settings)
        chat = ChatSettings(url=url or daemon.url)
        store = BotStore()
        store.set_claim_code(CODE)
        app = build_application(TOKEN, bot_settings, chat, store=store, sampling=sampling or quick, poll_every=0.2)
        # The steps of Application.run_polling, in its order, inside the test's event loop.
        async with app:
            await app.post_init(app)
            await app.updater.start_polling(poll_interval=0.0, timeout=1)
            await app.start()
            try:
                yield app
            finally:
                await app.updater.stop()
                await app.stop()
                await app.post_shutdown(app)
        store.close()

    return run


@pytest.fixture
def sample_export() -> Path:
    return Path(__file__).resolve().parents[2] / "examples" / "telegram_sample" / "result.json"
