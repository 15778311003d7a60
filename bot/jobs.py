"""The daemon's files and fine-tuning jobs API (OpenAI's paths and shapes), through the official SDK.

twin's own options travel in the extra `twin` object of the job request, as
the daemon defines it (`me`, `max_steps`, any `twin build` option).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI

from tui.client import DaemonError, DaemonUnreachable
from twin.config import ChatSettings

ACTIVE = ("validating_files", "queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass
class JobView:
    """What the bot shows of a job: its state, its newest progress line and figures, and how it ended."""

    id: str
    status: str
    model: str = ""  # fine_tuned_model once it succeeded
    error: str = ""
    estimated_finish: int | None = None
    last_message: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # figures of the newest events (stage, step, loss, …)
    messages: list[str] = field(default_factory=list)  # the newest events' lines, oldest first

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def _view(job: Any) -> JobView:
    error = ""
    if getattr(job, "error", None) is not None and getattr(job.error, "message", None):
        error = job.error.message
    return JobView(
        id=job.id,
        status=job.status,
        model=job.fine_tuned_model or "",
        error=error,
        estimated_finish=getattr(job, "estimated_finish", None),
    )


def _translate(e: Exception) -> Exception:
    """SDK errors as the TUI client's two kinds, so the bot explains all daemon failures in one place."""
    if isinstance(e, openai.APIConnectionError):
        return DaemonUnreachable(str(e.__cause__ or e) or "connection failed")
    if isinstance(e, openai.APIStatusError):
        body = e.body if isinstance(e.body, dict) else {}
        message = body.get("message") or (body.get("error") or {}).get("message") if body else None
        return DaemonError(e.status_code, str(message or e.message))
    return e


class Jobs:
    """Upload an export, start a job, follow it, cancel it."""

    def __init__(self, chat: ChatSettings) -> None:
        self.client = AsyncOpenAI(base_url=chat.url, api_key=chat.api_key or "-", max_retries=0, timeout=60.0)

    async def close(self) -> None:
        await self.client.close()

    async def active(self) -> JobView | None:
        """The job being validated, queued or trained now, if any (the newest first)."""
        try:
            page = await self.client.fine_tuning.jobs.list(limit=20)
        except openai.OpenAIError as e:
            raise _translate(e) from None
        for job in page.data:
            if job.status in ACTIVE:
                return _view(job)
        return None

    async def start(self, export: Path, filename: str, base: str, name: str, twin: dict[str, Any]) -> JobView:
        """Upload `export` and start a job that builds twin `name` from it on `base`."""
        try:
            with open(export, "rb") as f:
                uploaded = await self.client.files.create(file=(filename, f), purpose="fine-tune")
            job = await self.client.fine_tuning.jobs.create(
                training_file=uploaded.id, model=base, suffix=name, extra_body={"twin": twin} if twin else None
            )
        except openai.OpenAIError as e:
            raise _translate(e) from None
        return _view(job)

    async def poll(self, job_id: str) -> JobView:
        """The job now, with the text and figures of its newest events (stage, step, loss, ETA, …)."""
        try:
            job = await self.client.fine_tuning.jobs.retrieve(job_id)
            events = (await self.client.fine_tuning.jobs.list_events(job_id, limit=50)).data
        except openai.OpenAIError as e:
            raise _translate(e) from None
        view = _view(job)
        # OpenAI lists events newest first; merge their figures oldest to newest so the newest win.
        for _, event in sorted(enumerate(events), key=lambda p: (p[1].created_at, -p[0])):
            view.last_message = event.message
            view.messages.append(event.message)
            data = getattr(event, "data", None)
            if isinstance(data, dict):
                view.data.update(data)
        return view

    async def cancel(self, job_id: str) -> JobView:
        try:
            return _view(await self.client.fine_tuning.jobs.cancel(job_id))
        except openai.OpenAIError as e:
            raise _translate(e) from None
