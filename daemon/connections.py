"""The daemon's sockets: a cap on open connections, the descriptor limit, and logs that stay one line and small.

aiohttp answers malformed requests (a bad header, an unknown Content-Encoding,
a URL over its line limit) itself, logging each with a traceback; the event
loop logs every failed accept() once per attempt, which with descriptors
exhausted is thousands of lines a second. Here both become single lines, at
most one a second per kind, with a count of what was left out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

log = logging.getLogger("twin.daemon")

# Descriptors kept free beyond the connection cap: model files, the log, the executor's pipes.
SPARE_DESCRIPTORS = 64


class RateLimitedLog:
    """Logs a kind of message at most once per `interval` seconds, saying how many were dropped in between."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -self.interval) < self.interval:
            self._dropped[kind] = self._dropped.get(kind, 0) + 1
            return
        dropped = self._dropped.pop(kind, 0)
        self._last[kind] = now
        suffix = f" ({dropped} more like it not logged)" if dropped else ""
        log.warning(message + suffix, *args)


LIMITED = RateLimitedLog()


class ProtocolLogger:
    """The logger aiohttp's connection handler writes to: a client's malformed request is one line, not a traceback."""

    def exception(self, msg: str, *args: Any, exc_info: Any = None, **kw: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if isinstance(exc, RequestPayloadError) and isinstance(exc.__cause__, HttpProcessingError):
            exc = exc.__cause__  # a body that did not decode, met again when aiohttp drains it
        if isinstance(exc, HttpProcessingError):
            reason = " ".join((exc.message or type(exc).__name__).split())[:200]
            LIMITED.warning("bad-request", "refused a malformed request (%d): %s", exc.code, reason)
            return
        log.error(msg, *args, exc_info=exc_info, **kw)  # anything else is a bug: keep its traceback

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        log.debug(msg, *args, **kw)

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        log.warning(msg, *args, **kw)

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        log.info(msg, *args, **kw)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        log.error(msg, *args, **kw)


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """accept() failures (EMFILE, ENFILE, ENOBUFS) repeat for every waiting client: one line a second at most.

    After such a failure the loop stops accepting and tries again a second later; a daemon
    stopped within that second has closed the socket the retry then finds: nothing to resume.
    """
    message = str(context.get("message", ""))
    callback = getattr(context.get("handle"), "_callback", None)
    if getattr(callback, "__name__", "") == "_start_serving" and isinstance(context.get("exception"), ValueError):
        log.debug("the listening socket closed while accepting was paused: %s", context.get("exception"))
        return
    if "accept" in message:
        exc = context.get("exception")
        LIMITED.warning("accept", "cannot accept connections: %s", exc or message)
        return
    loop.default_exception_handler(context)


def raise_descriptor_limit() -> int:
    """Raise the soft limit on open files to the hard one (systemd's LimitNOFILE); return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int, descriptor_limit: int) -> int:
    """At most `wanted` connections, and at most half the descriptors left beyond the spare ones.

    The other half is for refusing: each 503 holds its socket for half a second.
    """
    return max(1, min(wanted, (descriptor_limit - SPARE_DESCRIPTORS) // 2))


_BUSY_BODY = json.dumps(
    {
        "error": {
            "message": "the server has too many open connections; retry shortly",
            "type": "server_error",
            "param": None,
            "code": "too_many_connections",
        }
    }
).encode()
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


class _Refuse(asyncio.Protocol):
    """A connection over the cap: answer 503 at once, then close when the client has read it (or after half a second)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # Closing with the request still unread would reset the connection and lose the 503: wait for the client.
        self._timer = asyncio.get_running_loop().call_later(0.5, transport.close)
        try:
            transport.write(_BUSY)
            if transport.can_write_eof():
                transport.write_eof()
        except OSError:  # the client is already gone
            transport.abort()

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        self.transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()


class CappedSite(web.TCPSite):
    """A TCP site that answers 503 (and closes) instead of serving beyond `max_connections` open connections."""

    __slots__ = ("_max_connections", "refused")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, max_connections: int) -> None:
        super().__init__(runner, host, port)
        self._max_connections = max_connections
        self.refused = 0

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        cap = self._max_connections
        loop = asyncio.get_running_loop()
        # A burst of connections accepted together (the kernel queued them while the loop was busy) creates all
        # its protocols before any of them is connected and listed in server.connections: count those as open.
        # The transport schedules connection_made right after the factory returns, so the callback below runs
        # just before it, with nothing in between.
        unlisted = 0

        def listed() -> None:
            nonlocal unlisted
            unlisted -= 1

        def protocol() -> asyncio.Protocol:
            nonlocal unlisted
            if len(server.connections) + unlisted >= cap:
                self.refused += 1
                LIMITED.warning("cap", "refused a connection: %d open, the limit is %d", cap, cap)
                return _Refuse()
            unlisted += 1
            loop.call_soon(listed)
            return server()

        self._server = await loop.create_server(
            protocol, self._host, self._port, reuse_address=self._reuse_address, reuse_port=self._reuse_port
        )
