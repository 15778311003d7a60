"""What the bot's handlers ask of the daemon: one method per handler, over HTTP only.

Talking is streamed through the TUI's daemon client (the same chat
completions, the same model list); jobs go through `bot.jobs`. Every failure
surfaces as `DaemonUnreachable` or `DaemonError`; `bot.replies` turns them
into one plain line for the chat.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.jobs import Jobs, JobView
from bot.store import BotStore
from tui.client import DaemonClient, DaemonError, DaemonUnreachable, ModelInfo, Sampling
from twin.config import BotSettings, ChatSettings


class TwinService:
    """The daemon as the bot sees it, plus the little the bot remembers per chat (model, recent turns)."""

    def __init__(
        self, chat: ChatSettings, settings: BotSettings, store: BotStore, sampling: Sampling | None = None
    ) -> None:
        self.url = chat.url
        self.settings = settings
        self.store = store
        self.client = DaemonClient(chat)
        self.jobs = Jobs(chat)
        self.sampling = sampling or Sampling(max_tokens=settings.max_tokens, temperature=settings.temperature)
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)  # one reply at a time per chat

    async def close(self) -> None:
        await self.client.close()
        await self.jobs.close()

    async def models(self) -> list[ModelInfo]:
        return await self.client.models()

    async def model_for(self, chat_id: int) -> str:
        """This chat's model: picked with /model, else `[bot] default_model`, else the first twin served."""
        chosen = self.store.model(chat_id) or self.settings.default_model
        if chosen:
            return chosen
        models = await self.models()
        if not models:
            raise DaemonError(404, "the daemon serves no model")
        return models[0].id  # twins sort first

    def choose_model(self, chat_id: int, model: str) -> None:
        self.store.set_model(chat_id, model)

    async def generate(self, chat_id: int, text: str) -> AsyncIterator[str]:
        """/generate: one reply in the twin's style to `text`, no context."""
        model = await self.model_for(chat_id)
        async for chunk in self.client.stream_chat(model, [{"role": "user", "content": text}], self.sampling):
            yield chunk

    async def converse(self, chat_id: int, text: str) -> AsyncIterator[str]:
        """The twin's reply to `text` with this chat's last turns as context; the exchange is remembered once
        the reply is complete (a failed reply leaves the context as it was)."""
        async with self._locks[chat_id]:
            model = await self.model_for(chat_id)
            messages = [*self.store.turns(chat_id, self.settings.context_turns), {"role": "user", "content": text}]
            parts: list[str] = []
            async for chunk in self.client.stream_chat(model, messages, self.sampling):
                parts.append(chunk)
                yield chunk
            if self.settings.context_turns:
                self.store.add_exchange(chat_id, text, "".join(parts).strip(), self.settings.context_turns)

    def reset(self, chat_id: int) -> int:
        """/reset: forget this chat's turns; how many there were."""
        return self.store.reset(chat_id)

    async def status(self, chat_id: int) -> str:
        """/status: the daemon, this chat's model, and the job being run, in a few lines."""
        try:
            models = await self.models()
        except DaemonUnreachable as e:
            return f"daemon: not reachable at {self.url} ({e}): start it with `twin serve`"
        lines = [f"daemon: up at {self.url}, {len(models)} models"]
        model = self.store.model(chat_id) or self.settings.default_model or (models[0].id if models else "")
        served = {m.id for m in models}
        lines.append(f"model: {model}" + ("" if model in served else " (not served now: pick one with /model)"))
        try:
            job = await self.jobs.active()
            lines.append(f"job: {job.id} {job.status}" if job else "job: none running")
        except DaemonError as e:
            lines.append(f"jobs: {e}" if e.status != 404 else "jobs: this daemon has no jobs API (update twin)")
        return "\n".join(lines)

    async def start_training(self, export: Path, filename: str, name: str, twin: dict[str, Any]) -> JobView:
        """Upload an export and start a job; a DaemonError when one is already under way."""
        try:
            running = await self.jobs.active()
        except DaemonError as e:
            if e.status != 404:
                raise
            raise DaemonError(
                404,
                "this daemon has no jobs API (files, fine-tuning jobs): update twin, or run `twin build` on the computer",
            ) from None
        if running is not None:
            raise DaemonError(409, f"a job is already {running.status} ({running.id}): wait for it or /cancel it")
        return await self.jobs.start(export, filename, self.settings.base, name, twin)

    async def job(self, job_id: str) -> JobView:
        return await self.jobs.poll(job_id)

    async def cancel(self) -> JobView | None:
        """/cancel: stop the job under way; None when there is none."""
        job = await self.jobs.active()
        return await self.jobs.cancel(job.id) if job else None
