"""Telegram's flood control: a 429 with retry_after is waited out and the reply still arrives."""

from __future__ import annotations

from tests.bot.people import OWNER, claim


async def test_a_refused_reply_is_retried_after_the_time_telegram_asks(telegram, running_bot) -> None:
    async with running_bot():
        await claim(telegram)
        n = len(telegram.calls)
        telegram.refuse("sendMessage", retry_after=2, times=2)
        telegram.send(OWNER, "/status")
        reply = await telegram.reply(OWNER["id"], "daemon: up", after=n)
    refused = [c for c in telegram.calls[n:] if c.method == "sendMessage" and c.refused]
    assert len(refused) == 2
    assert refused[1].at - refused[0].at >= 1.9 and reply.at - refused[1].at >= 1.9


async def test_a_refused_draft_only_postpones_the_stream(telegram, running_bot) -> None:
    async with running_bot():
        await claim(telegram)
        n = len(telegram.calls)
        telegram.refuse("sendMessageDraft", retry_after=1, times=1)
        telegram.send(OWNER, "/generate Tell me about your day.")
        await telegram.wait_for(lambda calls: telegram.of("sendMessage", OWNER["id"], n), "the reply")
    refused = [c for c in telegram.calls[n:] if c.refused]
    assert [c.method for c in refused] == ["sendMessageDraft"]
