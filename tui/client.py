"""The daemon's HTTP API as the TUI needs it: the model list and streamed chat replies (SSE), over aiohttp.

Closing a reply's HTTP response mid-stream closes its TCP connection, and the
daemon stops generating when its client goes away: that is how Esc stops a reply.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from twin.config import ChatSettings

KINDS = ("twin", "persona", "base", "model")  # the order the model picker lists them in


class DaemonUnreachable(Exception):
    """No answer from the daemon: not running, wrong address, or it went away mid-reply."""


class DaemonError(Exception):
    """The daemon answered with an error (unknown model, busy, bad key, …); the message is its own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ModelInfo:
    """One id from /v1/models and what it is: a twin, a twin's persona variant, a base model, or another model."""

    id: str
    kind: str

    @property
    def label(self) -> str:
        return f"{self.id}  ({self.kind})"


@dataclass(frozen=True)
class Sampling:
    """How replies are sampled; stored with every rating so the evaluation can state its decoding settings."""

    max_tokens: int = 512
    temperature: float = 0.8
    seed: int | None = None
    ignore_eos: bool = False  # the daemon's extension: generate exactly max_tokens

    @classmethod
    def from_settings(cls, settings: ChatSettings) -> Sampling:
        return cls(max_tokens=settings.max_tokens, temperature=settings.temperature)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        if self.seed is not None:
            out["seed"] = self.seed
        if self.ignore_eos:
            out["ignore_eos"] = True
        return out

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def classify(models: list[dict[str, Any]]) -> list[ModelInfo]:
    """/v1/models entries as ModelInfo, twins first, then persona variants, base models, anything else."""
    ids = {str(m.get("id")) for m in models}
    out = []
    for m in models:
        mid, owner = str(m.get("id")), str(m.get("owned_by", ""))
        if owner == "twin (persona)" or (mid.endswith("-prompt") and mid[: -len("-prompt")] in ids):
            kind = "persona"
        elif owner == "twin":
            kind = "twin"
        elif owner == "twin (embedded)":
            kind = "base"
        else:
            kind = "model"
        out.append(ModelInfo(mid, kind))
    return sorted(out, key=lambda m: (KINDS.index(m.kind), m.id))


class DaemonClient:
    """A client of one daemon; create it anywhere, use it inside the event loop, `await close()` at the end."""

    def __init__(self, settings: ChatSettings, connect_timeout: float = 5.0) -> None:
        self.url = settings.url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self.timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=None)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def models(self) -> list[ModelInfo]:
        """The models the daemon serves; DaemonUnreachable or DaemonError when it cannot say."""
        try:
            async with self.session().get(f"{self.url}/models", timeout=aiohttp.ClientTimeout(total=10)) as resp:
                await _raise_for_status(resp)
                body = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise DaemonUnreachable(_reason(e)) from None
        except ValueError:
            raise DaemonError(200, f"{self.url}/models did not answer JSON: is this a twin daemon?") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise DaemonError(200, f"{self.url}/models did not answer a model list: is this a twin daemon?")
        return classify([m for m in data if isinstance(m, dict)])

    async def stream_chat(
        self,
        model: str,
        messages: list[dict[str, str]],
        sampling: Sampling,
        twin: dict[str, str] | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yield the reply's text as it arrives. Closing the iterator early closes the connection (the daemon stops).

        `twin` is the daemon's extra field saying who the twin talks to ({"talking_to": …, "chat": …});
        other OpenAI servers ignore an unknown field.
        """
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True, **sampling.body()}
        if twin:
            body["twin"] = twin
        try:
            resp = await self.session().post(f"{self.url}/chat/completions", json=body)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise DaemonUnreachable(_reason(e)) from None
        try:
            await _raise_for_status(resp)
            async for data in _sse_data(resp):
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    raise DaemonError(resp.status, "the daemon sent an unreadable event") from None
                if "error" in event:
                    raise DaemonError(resp.status, str(event["error"].get("message", event["error"])))
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
            raise DaemonUnreachable("the daemon closed the reply before it ended")
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
            raise DaemonUnreachable(_reason(e)) from None
        finally:
            resp.close()  # not release(): an unfinished reply must drop the connection

    async def complete_chat(
        self, model: str, messages: list[dict[str, str]], sampling: Sampling, twin: dict[str, str] | None = None
    ) -> str:
        """The whole reply as one string (streamed underneath, so cancelling stops the daemon too)."""
        parts = []
        stream = self.stream_chat(model, messages, sampling, twin)
        try:
            async for text in stream:
                parts.append(text)
        finally:
            await stream.aclose()
        return "".join(parts)


async def _sse_data(resp: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The `data:` payloads of a server-sent event stream, one per event."""
    lines: list[str] = []
    async for raw in resp.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
        elif line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
    if lines:
        yield "\n".join(lines)


async def _raise_for_status(resp: aiohttp.ClientResponse) -> None:
    if resp.status < 400:
        return
    try:
        body = await resp.json(content_type=None)
        message = str(body["error"]["message"])
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        message = f"HTTP {resp.status} {resp.reason or ''}".strip()
    raise DaemonError(resp.status, message)


def _reason(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    if isinstance(e, aiohttp.ClientConnectorError) and e.os_error is not None and e.os_error.errno:
        return os.strerror(e.os_error.errno).lower()  # "connection refused", not asyncio's "Connect call failed (…)"
    return str(e) or type(e).__name__
