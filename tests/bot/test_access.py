"""Who may use the bot: the owner claims it with setup's code, strangers are refused, /allow and /deny with roles."""

from __future__ import annotations

from bot.rules import PERMISSIONS, Action, Role, may
from bot.store import BotStore
from tests.bot.people import CODE, FRIEND, OWNER, STRANGER, claim


def test_deny_by_default_in_the_rules_table() -> None:
    assert set(PERMISSIONS) == set(Action)  # every action has an explicit row
    for action in Action:
        allowed = PERMISSIONS[action]
        if action not in (Action.HELP, Action.CLAIM):
            assert not may(None, action), action  # a stranger may only ask for help or claim
    assert may(Role.OWNER, Action.TRAIN) and not may(Role.CHAT, Action.TRAIN) and not may(Role.RATE, Action.TRAIN)
    assert may(Role.CHAT, Action.CONVERSE) and not may(Role.RATE, Action.CONVERSE)
    assert may(Role.RATE, Action.SURVEY_TAKE) and not may(Role.CHAT, Action.SURVEY_TAKE)
    assert not may(Role.OWNER, Action.CLAIM) and allowed is not None


async def test_owner_claims_with_the_code_and_strangers_are_refused(telegram, running_bot) -> None:
    async with running_bot():
        telegram.send(STRANGER, "/start wrongcode")
        await telegram.reply(STRANGER["id"], "private bot")
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(STRANGER, f"/start {CODE}")  # the code is used up: a second claim fails
        await telegram.reply(STRANGER["id"], "private bot", after=n)
        telegram.send(STRANGER, "hello twin")
        await telegram.reply(STRANGER["id"], "private bot", after=n)
        telegram.send(STRANGER, "/generate hi")
        await telegram.reply(STRANGER["id"], "private bot", after=n)
        assert not telegram.of("sendMessageDraft", STRANGER["id"])
    store = BotStore()
    assert store.owner().id == OWNER["id"] and store.get("claim_code") == ""


async def test_allow_by_username_then_deny(telegram, running_bot) -> None:
    async with running_bot():
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(FRIEND, "/allow @someone")  # not the owner: refused
        await telegram.reply(FRIEND["id"], "private bot", after=n)
        telegram.send(OWNER, "/allow @Anna rate")
        await telegram.reply(OWNER["id"], "may now take the survey", after=n)
        n = len(telegram.calls)
        telegram.send(FRIEND, "/generate hello")  # rate role: no talking to the twin
        await telegram.reply(FRIEND["id"], "Your role does not allow that", after=n)
        telegram.send(OWNER, "/allow 2002 chat")
        await telegram.reply(OWNER["id"], "may now talk to the twin", after=n)
        n = len(telegram.calls)
        telegram.send(FRIEND, "/status")
        await telegram.reply(FRIEND["id"], "daemon: up", after=n)
        telegram.send(OWNER, "/deny 2002")
        await telegram.reply(OWNER["id"], "no longer allowed", after=n)
        n = len(telegram.calls)
        telegram.send(FRIEND, "/status")
        await telegram.reply(FRIEND["id"], "private bot", after=n)


async def test_allow_by_forwarded_message_and_bad_targets(telegram, running_bot) -> None:
    async with running_bot():
        await claim(telegram)
        n = len(telegram.calls)
        forwarded = telegram.send(OWNER, "a message of Anna's", forward_from=FRIEND)
        telegram.send(OWNER, "/allow", reply_to=forwarded)
        await telegram.reply(OWNER["id"], "Anna may now talk to the twin", after=n)
        telegram.send(OWNER, "/allow bob")
        await telegram.reply(OWNER["id"], "neither @username nor a numeric Telegram id", after=n)
        telegram.send(OWNER, "/allow @bob admin")
        await telegram.reply(OWNER["id"], "unknown role 'admin'", after=n)


async def test_allowlist_from_config(telegram, running_bot) -> None:
    async with running_bot(owner=OWNER["id"], allow=[str(FRIEND["id"])]):
        telegram.send(FRIEND, "/status")
        await telegram.reply(FRIEND["id"], "daemon: up")
        telegram.send(OWNER, "/status")
        await telegram.reply(OWNER["id"], "daemon: up")
        telegram.send(STRANGER, "/status")
        await telegram.reply(STRANGER["id"], "private bot")
