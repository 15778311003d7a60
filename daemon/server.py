"""The aiohttp application: OpenAI-compatible routes, the guards in front of them, and the serve loop.

Guards (middlewares), outermost first: one log line and a metric per request;
errors into OpenAI's shape; 503 while shutting down; the Host check against DNS
rebinding on loopback; the Bearer key when configured. CORS headers, when
configured, are added to every response as it is prepared (errors and streams
included). JSON endpoints refuse bodies that are not `application/json` (415):
a browser can send text/plain across origins without asking first.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import re
import signal
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from daemon import connections, openapi, schema
from daemon.catalog import ModelSpec, build_catalog
from daemon.engine import ChoiceDone, Delta, Engine, Generation, Started
from daemon.jobs import routes as job_routes
from daemon.metrics import Metrics
from daemon.sampling import TokenLogprob
from daemon.schema import APIError
from twin import __version__
from twin.config import LOOPBACK_HOSTS, ServeSettings
from twin.errors import UserError

log = logging.getLogger("twin.daemon")

FINISH = {"stop": "stop", "length": "length", "cancelled": "length"}


@dataclass
class State:
    settings: ServeSettings
    engine: Engine
    metrics: Metrics = field(default_factory=Metrics)
    shutting_down: bool = False
    cut_streams: bool = False  # the drain deadline passed: streams end now, with an error event
    started: int = field(default_factory=lambda: int(time.time()))


STATE = web.AppKey("state", State)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def error_response(e: APIError) -> web.Response:
    # ASCII JSON: an error may quote what the client sent, lone surrogates included, and must still encode.
    body = json.dumps(e.body(), separators=(",", ":"))
    return web.Response(status=e.status, text=body, content_type="application/json", headers=e.headers)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` safe for one log line: control characters (a %0A in a URL) and lone surrogates escaped."""
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )


def route_label(request: web.Request) -> str:
    """The route a request matched (`/v1/models/{id}`), never its raw path: metric labels stay few."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# --- middlewares ---------------------------------------------------------------------------------


@web.middleware
async def log_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        state.metrics.record_request(route_label(request), status)
        ms = (time.perf_counter() - started) * 1000
        extra = ""
        if "tokens" in request:
            prompt, completion = request["tokens"]
            extra = f" model={printable(request['model'])} prompt_tokens={prompt} completion_tokens={completion}"
            if request.get("disconnected"):
                extra += " client_disconnected"
        if "stream_error" in request:
            extra += f" stream_error={request['stream_error']}"
        log.info("%s %s %d%s ms=%.0f", printable(request.method), printable(request.path), status, extra, ms)


@web.middleware
async def openai_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except APIError as e:
        return error_response(e)
    except web.HTTPException as e:  # aiohttp's own: unknown route, wrong method, body too large
        cap = request.app[STATE].settings.max_body_bytes
        if e.status == 413:
            err = APIError(413, f"request body too large: the limit is {cap} bytes", code="request_too_large")
        elif e.status == 404:
            err = APIError(
                404, f"Unknown request URL: {printable(request.method)} {printable(request.path)}", code="unknown_url"
            )
        elif e.status == 405:
            err = APIError(
                405,
                f"Method {printable(request.method)} not allowed for {printable(request.path)}",
                code="method_not_allowed",
                headers={"Allow": e.headers.get("Allow", "")},
            )
        else:
            err = APIError(e.status, e.reason or "request failed")
        return error_response(err)


@web.middleware
async def refuse_while_stopping(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.app[STATE].shutting_down:
        raise APIError(503, "the server is shutting down; retry in a moment", type="server_error", code="shutting_down")
    return await handler(request)


@web.middleware
async def check_host(request: web.Request, handler: Any) -> web.StreamResponse:
    settings = request.app[STATE].settings
    host = request.headers.get("Host")
    if settings.is_loopback and host is not None and _host_name(host).lower() not in LOOPBACK_HOSTS:
        raise APIError(
            403,
            f"Host header {host!r} is not a loopback name: this server only answers requests addressed to localhost",
            type="permission_error",
            code="forbidden_host",
        )
    return await handler(request)


def _cors_origin(request: web.Request) -> str | None:
    origins = request.app[STATE].settings.cors_origins
    origin = request.headers.get("Origin")
    if not origins or origin is None or ("*" not in origins and origin not in origins):
        return None
    return "*" if "*" in origins else origin


@web.middleware
async def cors_preflight(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method == "OPTIONS" and _cors_origin(request) is not None:
        return web.Response(status=204)
    return await handler(request)


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response to an allowed origin carries CORS headers, errors and streams too."""
    origin = _cors_origin(request)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Vary"] = "Origin"


@web.middleware
async def check_key(request: web.Request, handler: Any) -> web.StreamResponse:
    key = request.app[STATE].settings.api_key
    if key and request.path.startswith("/v1/"):
        given = request.headers.get("Authorization", "")
        token = given[7:] if given[:7].lower() == "bearer " else ""
        # Header bytes that are not UTF-8 arrive as surrogate escapes: compare them as the bytes they were.
        if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), key.encode("utf-8")):
            what = "missing" if not given else "incorrect"
            raise APIError(
                401,
                f"{what} API key: send 'Authorization: Bearer <key>' with the key the server was started with",
                code="invalid_api_key",
            )
    return await handler(request)


# --- routes --------------------------------------------------------------------------------------


# The rest of a body that did not arrive or decode cannot be read past: the connection ends with the answer.
_CLOSE = {"Connection": "close"}


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_body(request: web.Request) -> Any:
    """The JSON body: application/json only, within the size cap and the body timeout, not nested too deeply."""
    settings = request.app[STATE].settings
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        sent = request.headers.get("Content-Type")
        raise APIError(
            415,
            f"unsupported Content-Type {printable(sent)!r}: send the body as JSON with 'Content-Type: application/json'"
            if sent
            else "missing Content-Type: send the body as JSON with 'Content-Type: application/json'",
            code="unsupported_media_type",
        )
    cap = settings.max_body_bytes
    if request.content_length is not None and request.content_length > cap:
        raise APIError(413, f"request body too large: the limit is {cap} bytes", code="request_too_large")
    try:
        raw = await asyncio.wait_for(request.read(), settings.body_timeout)  # asyncio.timeout is 3.11+
    except asyncio.TimeoutError:  # not the builtin TimeoutError before 3.11
        raise APIError(
            408,
            f"the request body did not arrive within {settings.body_timeout:g} seconds",
            code="request_timeout",
            headers=_CLOSE,
        ) from None
    except (
        HttpProcessingError,
        RequestPayloadError,
        zlib.error,
    ):  # e.g. Content-Encoding: gzip on bytes that are not gzip
        encoding = request.headers.get("Content-Encoding", "")
        raise APIError(
            400,
            f"could not decode the request body (Content-Encoding {printable(encoding)!r}): send it as it claims to be, "
            "or without Content-Encoding",
            code="invalid_body",
            headers=_CLOSE,
        ) from None
    try:
        body = json.loads(raw, parse_constant=_json_constant)
    except RecursionError:
        raise APIError(400, "the JSON body is nested too deeply; flatten it", code="invalid_json") from None
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, NaN, integers of more than 4,300 digits
        raise APIError(400, f"We could not parse the JSON body of your request: {e}", code="invalid_json") from None
    schema.check_depth(body)
    return body


def _model_object(spec: ModelSpec, created: int) -> dict[str, Any]:
    return {"id": spec.id, "object": "model", "created": created, "owned_by": spec.owned_by}


async def _model_object_with_hash(spec: ModelSpec, created: int) -> dict[str, Any]:
    """One model with its GGUF's SHA-256 (`twin.gguf_sha256`): which build of a twin is served."""
    from daemon.fingerprint import served_sha256

    try:
        digest = await asyncio.get_running_loop().run_in_executor(None, served_sha256, spec.gguf, spec.lora)
    except OSError:
        digest = None
    return _model_object(spec, created) | {"twin": {"gguf_sha256": digest}}


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.engine.refresh()
    data = [_model_object(s, state.started) for s in state.engine.catalog.values()]
    return web.json_response({"object": "list", "data": data}, dumps=_dumps)


async def get_model(request: web.Request) -> web.Response:
    state = request.app[STATE]
    spec = state.engine.spec(request.match_info["id"])
    return web.json_response(await _model_object_with_hash(spec, state.started), dumps=_dumps)


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.engine.ready:
        return web.json_response({"status": "loading"}, status=503)
    return web.json_response({"status": "ok", "models": sorted(state.engine.catalog)})


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    engine = state.engine
    text = state.metrics.render(engine.queue_depth, [str(p) for p in engine.loaded_paths()])
    text += engine.metrics.render(engine.slots())
    return web.Response(
        text=text, content_type="text/plain", charset="utf-8", headers={"X-Content-Type": "version=0.0.4"}
    )


class Run:
    """What one request's generation produced, accumulated from the engine's events."""

    def __init__(self, request: web.Request, model: str, choices: int) -> None:
        self.request = request
        self.model = model
        self.texts = [""] * choices
        self.logprobs: list[list[TokenLogprob]] = [[] for _ in range(choices)]
        self.finish: list[str | None] = [None] * choices
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.seconds = 0.0
        self.fingerprint: str | None = None

    def take(self, event: Any) -> None:
        if isinstance(event, Started):
            self.prompt_tokens = event.prompt_tokens
            self.fingerprint = event.fingerprint or None
        elif isinstance(event, Delta):
            self.texts[event.index] += event.text
            self.logprobs[event.index] += event.logprobs
        elif isinstance(event, ChoiceDone):
            self.finish[event.index] = FINISH[event.finish_reason]
            self.completion_tokens += event.completion_tokens
            self.seconds += event.decode_seconds

    def finish_with(self, gen: Generation) -> None:
        """Count what the generation did after we stopped listening, then record the request."""
        for event in gen.remaining():
            self.take(event)
        state = self.request.app[STATE]
        state.metrics.record_generation(self.model, self.prompt_tokens, self.completion_tokens, self.seconds)
        self.request["model"] = self.model
        self.request["tokens"] = (self.prompt_tokens, self.completion_tokens)

    def client_gone(self) -> bool:
        transport = self.request.transport
        gone = transport is None or transport.is_closing()
        if gone:
            self.request["disconnected"] = True
        return gone


async def collect(run: Run, gen: Generation) -> None:
    """Run `gen` to its end (or until the client leaves), accumulating what it produced in `run`."""
    try:
        async with gen:
            async for event in gen.events():
                run.take(event)
                if run.client_gone():
                    break
    finally:
        run.finish_with(gen)


def sse_data(obj: Any) -> bytes:
    """One server-sent event of OpenAI's chat and completions streams: `data: <json>`."""
    return b"data: " + _dumps(obj).encode() + b"\n\n"


def error_frame(e: APIError) -> bytes:
    # ASCII JSON, as error_response: the message may quote what the client sent.
    return b"data: " + json.dumps(e.body(), separators=(",", ":")).encode() + b"\n\n"


class Frames(Protocol):
    """What one stream sends, as SSE frames: before any text, for each engine event, at the end, on failure."""

    def opening(self) -> list[bytes]: ...

    def event(self, event: Any) -> list[bytes]: ...

    def closing(self) -> list[bytes]: ...

    def failure(self, e: APIError) -> list[bytes]: ...


class ChunkFrames:
    """Chat and completions streams: `chunk(index, text, finish, logprobs)` objects, a usage chunk, `[DONE]`."""

    def __init__(self, run: Run, chunk: Any, first: Callable[[], list[dict[str, Any]]], include_usage: bool) -> None:
        self.run = run
        self.chunk = chunk
        self.first = first
        self.include_usage = include_usage

    def _frame(self, obj: dict[str, Any]) -> bytes:
        if self.include_usage and "usage" not in obj:
            obj["usage"] = None
        return sse_data(obj)

    def opening(self) -> list[bytes]:
        # made after the engine's Started event: every chunk carries the answering model's system_fingerprint
        return [self._frame(obj) for obj in self.first()]

    def event(self, event: Any) -> list[bytes]:
        if isinstance(event, Delta) and (event.text or event.logprobs):
            return [self._frame(self.chunk(event.index, event.text, None, event.logprobs))]
        if isinstance(event, ChoiceDone):
            return [self._frame(self.chunk(event.index, None, FINISH[event.finish_reason]))]
        return []

    def closing(self) -> list[bytes]:
        out = []
        if self.include_usage:
            usage = schema.usage(self.run.prompt_tokens, self.run.completion_tokens)
            out.append(self._frame(self.chunk(None, None, None) | {"choices": [], "usage": usage}))
        return [*out, b"data: [DONE]\n\n"]

    def failure(self, e: APIError) -> list[bytes]:
        return [error_frame(e)]


async def stream(run: Run, gen: Generation, frames: Frames) -> web.StreamResponse:
    """Run `gen` and send what `frames` makes of it as server-sent events.

    An error before the first event (a 404 model, a prompt too long) is still an
    ordinary error response; after it, the stream ends with `frames.failure`.
    """
    request = run.request
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )

    async def write(chunks: list[bytes]) -> None:
        for chunk in chunks:
            await response.write(chunk)

    async def fail(e: APIError) -> None:
        """After the first byte a status can no longer change: end the stream with the error event(s)."""
        request["stream_error"] = e.code or e.status
        try:
            await write(frames.failure(e))
            await response.write_eof()
        except ConnectionError:
            request["disconnected"] = True

    state = request.app[STATE]
    try:
        async with gen:
            events = gen.events()
            run.take(await anext(events))  # Started, or the APIError raised before any byte is sent
            try:
                await response.prepare(request)  # the client may have left while its request waited
                await write(frames.opening())
                async for event in events:
                    if state.cut_streams:
                        raise APIError(
                            503,
                            "the server shut down while this reply was streaming; retry the request",
                            type="server_error",
                            code="shutting_down",
                        )
                    run.take(event)
                    await write(frames.event(event))
                await write(frames.closing())
                await response.write_eof()
            except ConnectionError:  # the client went away: leaving the block stops the generation
                request["disconnected"] = True
            except APIError as e:
                await fail(e)
            except Exception as e:  # a bug: logged with its traceback, and the stream still ends cleanly
                log.exception("stream failed")
                await fail(APIError(500, f"generation failed: {e}", type="server_error"))
    finally:
        run.finish_with(gen)
    return response


def json_route(handler: Any) -> Any:
    """A POST route taking a JSON body: `handler(request, body)`, counted in flight once its body has arrived.

    A client still uploading is not in flight: shutdown does not wait for it.
    """

    @functools.wraps(handler)
    async def route(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        state.metrics.receiving += 1
        try:
            body = await read_body(request)
        finally:
            state.metrics.receiving -= 1
        state.metrics.in_flight += 1
        try:
            return await handler(request, body)
        finally:
            state.metrics.in_flight -= 1

    return route


@json_route
async def chat_completions(request: web.Request, body: Any) -> web.StreamResponse:
    state = request.app[STATE]
    req = schema.parse_chat(body)
    run = Run(request, req.model, req.n)
    gen = state.engine.chat(req.model, req.messages, req.params, req.n, gone=run.client_gone)
    wants_logprobs = req.params.logprobs

    def chat_logprobs(entries: list[TokenLogprob]) -> dict[str, Any] | None:
        return {"content": [e.chat() for e in entries], "refusal": None} if wants_logprobs else None

    cid, created = schema.new_id("chatcmpl"), schema.now()
    base = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": req.model,
        "system_fingerprint": None,
    }
    if state.settings.log_content:
        log.info("messages: %s", _dumps(req.messages))

    if req.stream:

        def chunk(
            index: int | None,
            text: str | None,
            finish: str | None,
            entries: list[TokenLogprob] | None = None,
            delta: dict | None = None,
        ) -> dict[str, Any]:
            if delta is None:
                delta = {} if text is None else {"content": text}
            lp = chat_logprobs(entries) if entries else None
            return base | {
                "system_fingerprint": run.fingerprint,  # known before the first chunk: Started comes first
                "choices": [{"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish}],
            }

        def first() -> list[dict[str, Any]]:
            return [chunk(i, None, None, None, {"role": "assistant", "content": ""}) for i in range(req.n)]

        return await stream(run, gen, ChunkFrames(run, chunk, first, req.include_usage))

    await collect(run, gen)
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": chat_logprobs(run.logprobs[i]),
            "finish_reason": run.finish[i] or "length",
        }
        for i, text in enumerate(run.texts)
    ]
    if state.settings.log_content:
        log.info("reply: %s", _dumps(run.texts))
    body = base | {
        "system_fingerprint": run.fingerprint,
        "object": "chat.completion",
        "choices": choices,
        "usage": schema.usage(run.prompt_tokens, run.completion_tokens),
    }
    return web.json_response(body, dumps=_dumps)


@json_route
async def completions(request: web.Request, body: Any) -> web.StreamResponse:
    state = request.app[STATE]
    req = schema.parse_completion(body)
    total = len(req.prompts) * req.n
    run = Run(request, req.model, total)
    gen = state.engine.complete(req.model, req.prompts, req.params, req.n, gone=run.client_gone)
    offsets = [len(echo) for echo in (req.prompts[i // req.n] if req.echo else "" for i in range(total))]

    def legacy_logprobs(index: int, entries: list[TokenLogprob]) -> dict[str, Any] | None:
        """The completions API's own logprobs shape; text offsets count from the start of the choice's text."""
        if not req.params.logprobs:
            return None
        out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for e in entries:
            out["tokens"].append(e.token)
            out["token_logprobs"].append(e.logprob)
            out["top_logprobs"].append({t: lp for t, lp, _ in e.top})
            out["text_offset"].append(offsets[index])
            offsets[index] += len(e.token)
        return out

    base = {
        "id": schema.new_id("cmpl"),
        "object": "text_completion",
        "created": schema.now(),
        "model": req.model,
        "system_fingerprint": None,
    }

    def echo(index: int) -> str:
        return req.prompts[index // req.n] if req.echo else ""

    if req.stream:

        def chunk(
            index: int | None, text: str | None, finish: str | None, entries: list[TokenLogprob] | None = None
        ) -> dict[str, Any]:
            lp = legacy_logprobs(index, entries) if entries and index is not None else None
            return base | {
                "system_fingerprint": run.fingerprint,
                "choices": [{"index": index, "text": text or "", "logprobs": lp, "finish_reason": finish}],
            }

        def first() -> list[dict[str, Any]]:
            return [chunk(i, echo(i), None) for i in range(total) if req.echo]

        return await stream(run, gen, ChunkFrames(run, chunk, first, req.include_usage))

    await collect(run, gen)
    choices = [
        {
            "index": i,
            "text": echo(i) + text,
            "logprobs": legacy_logprobs(i, run.logprobs[i]),
            "finish_reason": run.finish[i] or "length",
        }
        for i, text in enumerate(run.texts)
    ]
    body = base | {
        "system_fingerprint": run.fingerprint,
        "choices": choices,
        "usage": schema.usage(run.prompt_tokens, run.completion_tokens),
    }
    return web.json_response(body, dumps=_dumps)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi.document(__version__), dumps=_dumps)


_API_ERRORS = (400, 404, 408, 413, 429)
openapi.register(
    "POST",
    "/v1/chat/completions",
    "Chat completion (OpenAI's): JSON, or server-sent events with stream=true",
    request=schema.CHAT_REQUEST,
    response=schema.CHAT_COMPLETION,
    stream=True,
    errors=_API_ERRORS,
)
openapi.register(
    "POST",
    "/v1/completions",
    "Text completion (OpenAI's legacy API): JSON, or server-sent events with stream=true",
    request=schema.COMPLETION_REQUEST,
    response=schema.COMPLETION,
    stream=True,
    errors=_API_ERRORS,
)
openapi.register("GET", "/v1/models", "The models this server answers for", response=schema.MODEL_LIST)
openapi.register("GET", "/v1/models/{id}", "One model", response=schema.MODEL, errors=(404,))
openapi.register("GET", "/health", "200 once the primary model is loaded, 503 before", response=schema.HEALTH)
openapi.register("GET", "/metrics", "Prometheus text exposition", content_type="text/plain")
openapi.register("GET", "/openapi.json", "This document", response={"type": "object"})


def build_app(state: State) -> web.Application:
    app = web.Application(
        middlewares=[log_requests, openai_errors, refuse_while_stopping, check_host, cors_preflight, check_key],
        client_max_size=state.settings.max_body_bytes,
    )
    app[STATE] = state
    app.on_response_prepare.append(cors_headers)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{id}", get_model)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    job_routes.register(app, state)
    from daemon.responses import routes as response_routes  # it builds on this module's stream and collect

    response_routes.register(app, state)
    app.router.add_get("/openapi.json", openapi_json)
    return app


# --- the serve loop ------------------------------------------------------------------------------


async def run_server(settings: ServeSettings, catalog: dict[str, ModelSpec], primary: str, ready: Any = None) -> int:
    """Listen, load the primary model in the background, serve until SIGTERM/SIGINT, then drain and exit 0."""
    engine = Engine(
        catalog,
        queue_size=settings.queue_size,
        max_loaded=settings.max_loaded,
        n_ctx=settings.n_ctx,
        threads=settings.threads,
        parallel=settings.parallel,
        requantize=settings.requantize,
        idle_unload=settings.idle_unload_seconds,
        rescan=lambda: build_catalog(settings.model, settings.backend)[0],
    )
    state = State(settings, engine)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(connections.loop_exception_handler)
    cap = connections.connection_cap(settings.max_connections, connections.raise_descriptor_limit())
    # In-flight requests already had their grace period before cleanup: close what is left quickly.
    # keepalive_timeout also bounds a connection that never finishes sending its headers (aiohttp arms it on accept).
    runner = web.AppRunner(
        build_app(state),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=1.0,
        keepalive_timeout=settings.idle_timeout,
        lingering_time=2.0,  # after an early answer (408, 413), read what the client still sends for this long
        logger=connections.ProtocolLogger(),
    )
    await runner.setup()
    site = connections.CappedSite(runner, settings.host, settings.port, max_connections=cap)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        engine.close()
        raise UserError(
            f"cannot listen on {settings.host}:{settings.port} ({e.strerror}): "
            "is another `twin serve` running? stop it or pick another --port"
        ) from None
    port = runner.addresses[0][1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{port}/v1"
    if ready is not None:
        ready(url)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loading = asyncio.create_task(engine.preload(primary))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if loading.done() and loading.exception() is not None:
            raise UserError(
                f"cannot load model {catalog[primary].gguf}: {loading.exception()}: is it a complete GGUF file llama.cpp supports?"
            )
        if loading.done():
            log.info("ready: %s serving %s", url, ", ".join(sorted(catalog)))
        await stopping

        log.info("shutting down: refusing new requests, %d in flight", state.metrics.in_flight)
        state.shutting_down = True
        deadline = loop.time() + settings.grace_seconds
        while state.metrics.in_flight > 0 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if state.metrics.in_flight > 0:  # streams still running end with an error event, not a bare cut
            state.cut_streams = True
            deadline = loop.time() + 2.0
            while state.metrics.in_flight > 0 and loop.time() < deadline:
                await asyncio.sleep(0.05)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stopping.cancel()
        state.shutting_down = True
        await runner.cleanup()
        await asyncio.get_running_loop().run_in_executor(None, engine.close)
    log.info("stopped")
    return 0
