"""The people of the bot tests, and the owner's claim (helpers: conftest modules are not imported by tests)."""

from __future__ import annotations

from tests.bot.fake_telegram import FakeTelegram

OWNER = FakeTelegram.user(1001, "Dima", "dima")
FRIEND = FakeTelegram.user(2002, "Anna", "anna")
STRANGER = FakeTelegram.user(3003, "Mallory", "mallory")
CODE = "c0dec0de"  # the claim code the tests' store is given, as `twin bot setup` would


async def claim(telegram: FakeTelegram) -> None:
    """The owner sends /start with setup's code and is told they own the bot."""
    start = len(telegram.calls)
    telegram.send(OWNER, f"/start {CODE}")
    await telegram.reply(OWNER["id"], "You own this bot now", after=start)
