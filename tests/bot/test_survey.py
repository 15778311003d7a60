"""The friends' blind survey: opened by the owner once, taken by a rater with inline buttons, stored in chat.db
with the rater, and reported by `twin eval` beside the owner's own ratings."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.bot.people import FRIEND, OWNER, claim
from tests.helpers.twins import twin_on_embedded
from trainer.evaluation.run import EvalConfig, evaluate
from twin.config import ChatSettings

SAMPLES = [
    [("user", "Are you coming tonight?"), ("assistant", "yes!! be there at 8")],
    [("user", "Did you see the game?"), ("assistant", "nope, missed it. who won")],
]


@pytest.fixture
def surveyed_twin(twin_home: Path) -> str:
    """Twin `alice` in the test's home: validation and training splits, the embedded GGUF as its model, a persona."""
    return twin_on_embedded("alice", SAMPLES, ("val", "train"), system_prompt="You write short, casual messages.")


@pytest.fixture
def survey_daemon(surveyed_twin: str, own_daemon):
    """A daemon serving this test's twins (TWIN_HOME = the test's), started before the bot."""
    return own_daemon()


async def test_survey_answers_are_stored_and_reported(
    telegram, running_bot, surveyed_twin: str, survey_daemon, base_in_cache, twin_home: Path
) -> None:
    async with running_bot(url=survey_daemon.url):
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(OWNER, "/allow @anna rate")
        await telegram.reply(OWNER["id"], "may now take the survey", after=n)
        telegram.send(FRIEND, "/survey")
        await telegram.reply(FRIEND["id"], "The survey is not open", after=n)
        telegram.send(OWNER, "/survey")
        await telegram.reply(OWNER["id"], "The survey is for your friends", after=n)

        telegram.send(OWNER, "/survey on")
        ask = await telegram.reply(OWNER["id"], "validation split", after=n)
        telegram.press(OWNER, telegram.message_of(ask), "sc:yes:alice")
        await telegram.wait_for(
            lambda calls: any(c.method == "editMessageText" and "survey is open" in c.text for c in calls[n:]),
            "the survey opened",
        )

        telegram.send(FRIEND, "/survey")
        shown = await telegram.reply(FRIEND["id"], "Which one did Dima write?", after=n)
        replies = dict(re.findall(r"^([ABC])\) (.*)$", shown.text, re.M))
        assert len(replies) == 3  # the real reply, the twin's, the persona variant's, unlabelled
        reals = {s[-1][1] for s in SAMPLES}
        real = next(letter for letter, text in replies.items() if text in reals)
        buttons = [b["callback_data"] for row in shown.params["reply_markup"]["inline_keyboard"] for b in row]
        key = buttons[0].split(":")[1]
        message = telegram.message_of(shown)
        telegram.press(FRIEND, message, f"sv:{key}:p:{'ABC'.index(real)}")
        for i, letter in enumerate("ABC"):
            telegram.press(FRIEND, message, f"sv:{key}:s:{i}:{5 if letter == real else 2}")
        await telegram.wait_for(
            lambda calls: any(c.method == "editMessageText" and "Saved, thank you" in c.text for c in calls[n:]),
            "the round saved",
        )

    db = sqlite3.connect(twin_home / "chat.db")
    rows = db.execute("SELECT variant, score, best, rater FROM ratings ORDER BY variant").fetchall()
    db.close()
    assert rows == [("prompt", 2, 0, "telegram:2002"), ("real", 5, 1, "telegram:2002"), ("twin", 2, 0, "telegram:2002")]

    result = evaluate(
        EvalConfig(
            name=surveyed_twin,
            limit=2,
            max_new_tokens=8,
            threads=1,
            progress=False,
            chat=ChatSettings(url=survey_daemon.url),
        )
    )
    friends = result.ratings.friends
    assert friends.rounds == 1 and friends.raters == 1 and friends.share("real") == 1.0
    assert friends.chance == pytest.approx(1 / 3)
    report = (result.folder / "report.md").read_text(encoding="utf-8")
    assert (
        "Friends: 1 rounds by 1 raters; they picked my real reply as mine in 100% of rounds (a blind guess: 33%"
        in report
    )
    assert "| my real reply | – | – | – | – | 1 | 5.00 | 100% |" in report
