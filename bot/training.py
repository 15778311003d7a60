"""/train: an export sent as a document becomes a fine-tuning job on the daemon, followed in one status message."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from telegram import Bot, Document

from bot.flood import patiently
from bot.jobs import JobView
from bot.service import TwinService
from bot.stream import StatusMessage
from twin.errors import UserError

EXPORT_SUFFIXES = (".json", ".zip", ".txt", ".jsonl")


def parse_args(args: list[str]) -> tuple[str, dict[str, Any]]:
    """`/train [NAME] [KEY=VALUE …]`: the twin's name (default `me`) and the job's `twin` options (`me=Дима`,
    repeatable; `quant=q8_0`, `max_steps=200`, …), which the daemon validates like `twin build`'s."""
    names: list[str] = []
    options: dict[str, Any] = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq:
            names.append(arg)
        elif key == "me":
            options.setdefault("me", []).append(value)
        elif not key:
            raise UserError(f"{arg!r} is not KEY=VALUE: send /train NAME, with me=YOUR NAME when the export needs it")
        else:
            options[key] = _value(value)
    if len(names) > 1:
        raise UserError(f"one twin name only, got {' and '.join(names)}: /train NAME [me=YOUR NAME] [quant=…]")
    return (names[0] if names else "me"), options


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        return text


def check_document(document: Document, limit_mb: int) -> None:
    """Refuse, in one line, what cannot be trained on before downloading anything."""
    filename = document.file_name or ""
    if not filename.lower().endswith(EXPORT_SUFFIXES):
        raise UserError(
            f"{filename or 'this file'} is not a chat export: send Telegram's result.json (or the export zip) "
            "or WhatsApp's .txt"
        )
    if (document.file_size or 0) > limit_mb * 2**20:
        raise UserError(
            f"{filename} is {(document.file_size or 0) / 2**20:.0f} MB and bots can only download {limit_mb} MB from Telegram: "
            f"run `twin build {filename}` on the computer instead (or point [bot] api_url at a self-hosted Bot API server)"
        )


def progress_text(name: str, job: JobView) -> str:
    d = job.data
    parts = [f"Training twin {name}: {job.status}"]
    if d.get("stage"):
        parts.append(f"stage {d['stage']}")
    if d.get("step") is not None:
        total = d.get("total_steps") or d.get("steps")
        parts.append(f"step {d['step']}" + (f"/{total}" if total else ""))
    loss = d.get("train_loss", d.get("loss"))
    if loss is not None:
        parts.append(f"loss {float(loss):.3f}")
    eta = d.get("eta_seconds") if d.get("eta_seconds") is not None else d.get("eta")
    if isinstance(eta, (int, float)):
        parts.append(f"about {max(int(eta), 0) // 60} min {max(int(eta), 0) % 60} s left")
    text = ", ".join(parts)
    return f"{text}\n{job.last_message}" if job.last_message else text


def summary_text(name: str, job: JobView) -> str:
    if job.status == "failed":
        return f"Training twin {name} failed: {job.error or job.last_message or 'see the daemon log'}"
    if job.status == "cancelled":
        return f"Training twin {name} was cancelled."
    d = job.data
    lines = [f"Twin {job.model or name} is ready and served: talk to it here (/model to pick it)."]
    if d.get("train_samples") is not None:
        lines.append(f"samples: {d['train_samples']} for training, {d.get('val_samples', '?')} for validation")
    else:
        lines += [m for m in job.messages if "samples" in m][:1]  # the daemon's "Read the export: …" line
    ppl = d.get("val_perplexity", d.get("perplexity"))
    if ppl is not None:
        lines.append(f"validation perplexity: {float(ppl):.1f}")
    if d.get("quant"):
        lines.append(f"4-bit type: {d['quant']}")
    return "\n".join(lines)


async def train(
    bot: Bot, chat_id: int, document: Document, args: list[str], service: TwinService, poll_every: float
) -> None:
    """Download the export, start the job, keep one status message up to date until the job ends."""
    name, twin = parse_args(args)
    check_document(document, service.settings.max_download_mb)
    status = StatusMessage(bot, chat_id, service.settings.edit_interval)
    await status.show(f"Training twin {name}: receiving {document.file_name}…")
    tg_file = await patiently(lambda: bot.get_file(document.file_id))
    with tempfile.TemporaryDirectory(prefix="twin-bot-") as tmp:  # 0700: the export holds private messages
        path = Path(tmp) / Path(document.file_name or "export.json").name
        await tg_file.download_to_drive(path)
        os.chmod(path, 0o600)
        job = await service.start_training(path, path.name, name, twin)
    while not job.finished:
        await status.show(progress_text(name, job))
        await asyncio.sleep(poll_every)  # the daemon is polled: it has no push channel
        job = await service.job(job.id)
    await status.final(summary_text(name, job))
