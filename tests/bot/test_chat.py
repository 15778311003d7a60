"""Talking to the twin through the bot: /generate, a private conversation with context and /reset, streaming,
groups, /model, /status, the daemon down — the real daemon behind the fake Bot API."""

from __future__ import annotations

import itertools
import re
import urllib.request

from tests.bot.fake_telegram import Call, FakeTelegram
from tests.bot.people import FRIEND, OWNER, claim
from tui.client import Sampling

QUESTION = "Hi! What are you doing tonight? Answer in one sentence."
LONG = Sampling(max_tokens=160, temperature=0.7, seed=3, ignore_eos=True)  # a few seconds of streaming


def prompt_tokens(daemon) -> int:
    with urllib.request.urlopen(daemon.root + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(int(n) for n in re.findall(r"^twin_prompt_tokens_total\{[^}]*\} (\d+)$", text, re.M))


def final_replies(telegram: FakeTelegram, chat_id: int, after: int) -> list[Call]:
    return [c for c in telegram.of("sendMessage", chat_id, after) if "own this bot" not in c.text]


async def test_generate_answers_once_in_the_twins_style(telegram, running_bot) -> None:
    async with running_bot():
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(OWNER, "/generate How was your weekend?")
        reply = await telegram.wait_for(lambda calls: final_replies(telegram, OWNER["id"], n), "the reply")
        assert reply[0].text.strip()
        assert telegram.of("sendChatAction", OWNER["id"], n)  # typing… while the first words come
        telegram.send(OWNER, "/generate")
        await telegram.reply(OWNER["id"], "Write what to answer", after=n)
    commands = telegram.of("setMyCommands")[0].params["commands"]
    assert {c["command"] for c in commands} >= {"generate", "train", "model", "status", "survey", "reset", "help"}


async def test_conversation_keeps_context_until_reset(telegram, running_bot, daemon) -> None:
    async with running_bot():
        await claim(telegram)
        used = []
        for step in ("first", "with context", "after reset"):
            if step == "after reset":
                n = len(telegram.calls)
                telegram.send(OWNER, "/reset")
                await telegram.reply(OWNER["id"], "Forgotten (4 messages)", after=n)
            before, n = prompt_tokens(daemon), len(telegram.calls)
            telegram.send(OWNER, QUESTION)
            await telegram.wait_for(lambda calls, n=n: final_replies(telegram, OWNER["id"], n), f"the {step} reply")
            used.append(prompt_tokens(daemon) - before)
    first, with_context, after_reset = used
    assert with_context > first + 10  # the first exchange went along with the second message
    assert after_reset == first  # /reset forgot it: the same prompt as the very first time


async def test_stream_by_drafts_at_most_one_a_second(telegram, running_bot) -> None:
    async with running_bot(sampling=LONG):
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(OWNER, QUESTION)
        final = (await telegram.wait_for(lambda calls: final_replies(telegram, OWNER["id"], n), "the final message"))[0]
    drafts = telegram.of("sendMessageDraft", OWNER["id"], n)
    assert len(drafts) >= 2, "a reply of a few seconds shows as drafts while it is written"
    assert len({d.params["draft_id"] for d in drafts}) == 1
    texts = [d.text.strip() for d in [*drafts, final]]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts)), texts  # each update extends the last
    assert_throttled([*drafts, final])


async def test_stream_by_edits_where_drafts_are_missing(telegram, running_bot) -> None:
    telegram.drafts = False  # an older Bot API server
    async with running_bot(sampling=LONG, allow=[str(FRIEND["id"])]):
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(OWNER, QUESTION)
        telegram.send(FRIEND, QUESTION)  # the second chat goes straight to edits: the missing method is remembered
        for person in (OWNER, FRIEND):
            chat_id = person["id"]
            await telegram.wait_for(lambda calls, c=chat_id: len(telegram.of("editMessageText", c, n)) >= 2, "edits")
    assert len([c for c in telegram.calls[n:] if c.method == "sendMessageDraft"]) == 1
    for person in (OWNER, FRIEND):
        first = telegram.of("sendMessage", person["id"], n)[0]
        edits = telegram.of("editMessageText", person["id"], n)
        assert {e.params["message_id"] for e in edits} == {telegram.message_of(first)["message_id"]}
        assert_throttled([first, *edits])


def assert_throttled(updates: list[Call]) -> None:
    gaps = [b.at - a.at for a, b in itertools.pairwise(updates)]
    assert gaps and min(gaps) >= 0.9, gaps  # one update a second (Telegram's limit), with the loopback's jitter


async def test_group_answers_only_when_mentioned_or_replied_to(telegram, running_bot) -> None:
    group = {"id": -500, "type": "group", "title": "friends"}
    async with running_bot():
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(OWNER, "just chatting among ourselves", chat=group)
        telegram.send(OWNER, "@twin_test_bot what do you think?", chat=group)
        reply = await telegram.wait_for(lambda calls: telegram.of("sendMessage", -500, n), "the answer in the group")
        answered = telegram.message_of(reply[0])
        assert reply[0].params.get("reply_to_message_id") or reply[0].params.get("reply_parameters")
        m = len(telegram.calls)
        telegram.send(OWNER, "and now?", chat=group, reply_to=answered)
        await telegram.wait_for(lambda calls: telegram.of("sendMessage", -500, m), "the answer to a reply")
        k = len(telegram.calls)
        telegram.send(FRIEND, "@twin_test_bot hi", chat=group)  # not allowed: refused, not answered
        await telegram.reply(-500, "private bot", after=k)
    texts = [c.text for c in telegram.of("sendMessage", -500, n)]
    assert len([t for t in texts if "private bot" not in t]) == 2  # the unaddressed message got nothing


async def test_model_picker_and_status(telegram, running_bot) -> None:
    async with running_bot():
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(OWNER, "/model")
        picker = await telegram.reply(OWNER["id"], "This chat talks to smollm2-135m-instruct", after=n)
        buttons = [b for row in picker.params["reply_markup"]["inline_keyboard"] for b in row]
        assert [b["callback_data"] for b in buttons] == ["m:smollm2-135m-instruct"]
        telegram.press(OWNER, telegram.message_of(picker), "m:no-such-model")
        await telegram.wait_for(
            lambda calls: any(c.method == "answerCallbackQuery" and "not served" in c.text for c in calls[n:]),
            "a refusal",
        )
        telegram.press(OWNER, telegram.message_of(picker), "m:smollm2-135m-instruct")
        await telegram.wait_for(
            lambda calls: any(c.method == "editMessageText" and "talks to smollm2" in c.text for c in calls[n:]),
            "the pick",
        )
        telegram.send(OWNER, "/status")
        status = await telegram.reply(OWNER["id"], "daemon: up", after=n)
    assert "model: smollm2-135m-instruct" in status.text
    assert "jobs:" in status.text or "job: none running" in status.text


async def test_daemon_down_is_a_plain_reply(telegram, running_bot, free_port) -> None:
    async with running_bot(url=f"http://127.0.0.1:{free_port}/v1"):
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(OWNER, "hello?")
        reply = await telegram.reply(OWNER["id"], "not answering", after=n)
        assert "twin serve" in reply.text
        telegram.send(OWNER, "/status")
        await telegram.reply(OWNER["id"], "daemon: not reachable", after=n)


async def test_a_model_the_daemon_does_not_serve_is_a_plain_reply(telegram, running_bot) -> None:
    async with running_bot(default_model="nobody"):
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(OWNER, "hello?")
        reply = await telegram.reply(OWNER["id"], "Pick a model the daemon serves with /model", after=n)
    assert "nobody" in reply.text
