"""/train: an export sent as a document becomes a fine-tuning job on the real daemon (a few real LoRA steps),
followed in one status message, ending in a served twin; bad files end in one plain reply."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from daemon.process import DaemonProcess
from tests.bot.people import FRIEND, OWNER, claim

QUICK = "max_steps=2 max_length=64 quant=q4_1 calibration_samples=0"  # the pipeline, not the model's quality


@pytest.fixture
def jobs_daemon(tmp_path: Path, twin_home: Path, base_in_cache):
    """A daemon on this test's data directory (the embedded base's HF copy in its cache)."""
    args = ["--model", "default", "--n-ctx", "1024", "--threads", "1"]
    with DaemonProcess(args, env=dict(os.environ), log_path=tmp_path / "serve.log") as proc:
        yield proc


def status_edits(telegram, chat_id: int, after: int) -> list[str]:
    first = next(c for c in telegram.of("sendMessage", chat_id, after) if c.text.startswith("Training twin"))
    mid = telegram.message_of(first)["message_id"]
    return [first.text] + [
        c.text for c in telegram.of("editMessageText", chat_id, after) if c.params["message_id"] == mid
    ]


async def test_files_that_cannot_be_trained_on_are_refused_before_downloading(telegram, running_bot) -> None:
    async with running_bot(allow=[str(FRIEND["id"])]):
        await claim(telegram)
        n = len(telegram.calls)
        big = telegram.document("result.json", b"{}", size=25 * 2**20)
        telegram.send(OWNER, "/train", document=big)
        reply = await telegram.reply(OWNER["id"], "bots can only download 20 MB", after=n)
        assert "run `twin build result.json` on the computer" in reply.text
        telegram.send(OWNER, "/train", document=telegram.document("holiday.pdf", b"%PDF"))
        await telegram.reply(OWNER["id"], "holiday.pdf is not a chat export", after=n)
        telegram.send(FRIEND, "/train", document=telegram.document("result.json", b"{}"))
        await telegram.reply(FRIEND["id"], "Only the owner", after=n)
        telegram.send(OWNER, "/train alice bob", document=telegram.document("result.json", b"{}"))
        await telegram.reply(OWNER["id"], "one twin name only, got alice and bob", after=n)
        telegram.send(OWNER, "/train alice")
        await telegram.reply(OWNER["id"], "Send the export as a file now", after=n)
    assert not telegram.of("getFile")


async def test_train_from_a_document_to_a_served_twin(telegram, running_bot, jobs_daemon, sample_export) -> None:
    async with running_bot(url=jobs_daemon.url):
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(OWNER, f"/train dima {QUICK}")  # the document comes right after
        await telegram.reply(OWNER["id"], "Send the export as a file now", after=n)
        telegram.send(OWNER, document=telegram.document("result.json", sample_export.read_bytes()))
        done = await telegram.wait_for(
            lambda calls: next((c for c in calls[n:] if "is ready and served" in c.text), None), "the summary", 900
        )
        edits = status_edits(telegram, OWNER["id"], n)
        assert done.text == edits[-1] and "4-bit type: q4_1" in done.text and "validation perplexity" in done.text
        assert any("step 1/2" in e for e in edits) and any("running" in e for e in edits)
        times = [c.at for c in telegram.calls[n:] if c.method == "editMessageText"]
        assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))

        m = len(telegram.calls)
        telegram.send(OWNER, "/model")
        picker = await telegram.reply(OWNER["id"], "Pick another", after=m)
        offered = [b["callback_data"] for row in picker.params["reply_markup"]["inline_keyboard"] for b in row]
        assert "m:dima" in offered and "m:dima-prompt" in offered
        telegram.send(OWNER, "/status")
        await telegram.reply(OWNER["id"], "job: none running", after=m)


async def test_train_with_a_broken_export_ends_with_its_error(telegram, running_bot, jobs_daemon) -> None:
    async with running_bot(url=jobs_daemon.url):
        await claim(telegram)
        n = len(telegram.calls)
        broken = telegram.document("result.json", b'{"name": "Anna", "type": "personal_chat", "messages": [{"id": 1,')
        telegram.send(OWNER, f"/train anna {QUICK}", document=broken)
        failed = await telegram.wait_for(
            lambda calls: next((c for c in calls[n:] if "failed:" in c.text), None), "the failure", 600
        )
    # The ingest error line, as `twin build` prints it for a truncated export (the job's `error`).
    assert (
        failed.text.startswith("Training twin anna failed: ") and "export it again from Telegram Desktop" in failed.text
    )
    assert "\n" not in failed.text.removeprefix("Training twin anna failed: ").strip()


async def test_cancel_stops_the_job(telegram, running_bot, jobs_daemon, sample_export) -> None:
    async with running_bot(url=jobs_daemon.url):
        await claim(telegram)
        n = len(telegram.calls)
        telegram.send(
            OWNER,
            "/train dima max_steps=50 max_length=64",
            document=telegram.document("result.json", sample_export.read_bytes()),
        )
        await telegram.wait_for(lambda calls: any("running" in c.text for c in calls[n:]), "the job running", 600)
        telegram.send(OWNER, "/train dima", document=telegram.document("result.json", sample_export.read_bytes()))
        await telegram.reply(OWNER["id"], "a job is already running", after=n)
        telegram.send(OWNER, "/cancel")
        await telegram.reply(OWNER["id"], "Cancelling job", after=n)
        await telegram.wait_for(lambda calls: any("was cancelled" in c.text for c in calls[n:]), "the cancel", 600)
