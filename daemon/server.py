"""The aiohttp application: OpenAI-compatible routes, the guards in front of them, and the serve loop.

Guards (middlewares), outermost first: one log line and a metric per request;
errors into OpenAI's shape; 503 while shutting down; the Host check against DNS
rebinding on loopback; CORS when configured; the Bearer key when configured.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from daemon import schema
from daemon.catalog import ModelSpec, build_catalog
from daemon.engine import ChoiceDone, Delta, Engine, Generation, Started
from daemon.jobs import routes as job_routes
from daemon.metrics import Metrics
from daemon.schema import APIError
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
    started: int = field(default_factory=lambda: int(time.time()))


STATE = web.AppKey("state", State)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def error_response(e: APIError) -> web.Response:
    return web.Response(status=e.status, text=_dumps(e.body()), content_type="application/json", headers=e.headers)


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# --- middlewares ---------------------------------------------------------------------------------


@web.middleware
async def log_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.perf_counter()
    api = request.path.startswith("/v1/")
    if api:
        state.metrics.in_flight += 1
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        if api:
            state.metrics.in_flight -= 1
        state.metrics.record_request(request.path, status)
        ms = (time.perf_counter() - started) * 1000
        extra = ""
        if "tokens" in request:
            prompt, completion = request["tokens"]
            extra = f" model={request['model']} prompt_tokens={prompt} completion_tokens={completion}"
            if request.get("disconnected"):
                extra += " client_disconnected"
        log.info("%s %s %d%s ms=%.0f", request.method, request.path, status, extra, ms)


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
            err = APIError(404, f"Unknown request URL: {request.method} {request.path}", code="unknown_url")
        elif e.status == 405:
            err = APIError(405, f"Method {request.method} not allowed for {request.path}", code="method_not_allowed")
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


@web.middleware
async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
    origins = request.app[STATE].settings.cors_origins
    origin = request.headers.get("Origin")
    allowed = bool(origins) and origin is not None and ("*" in origins or origin in origins)
    if allowed and request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    if allowed and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin if origin is not None and "*" not in origins else "*"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Vary"] = "Origin"
    return response


@web.middleware
async def check_key(request: web.Request, handler: Any) -> web.StreamResponse:
    key = request.app[STATE].settings.api_key
    if key and request.path.startswith("/v1/"):
        given = request.headers.get("Authorization", "")
        token = given[7:] if given[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(token.encode(), key.encode()):
            what = "missing" if not given else "incorrect"
            raise APIError(
                401,
                f"{what} API key: send 'Authorization: Bearer <key>' with the key the server was started with",
                code="invalid_api_key",
            )
    return await handler(request)


# --- routes --------------------------------------------------------------------------------------


async def read_body(request: web.Request) -> Any:
    cap = request.app[STATE].settings.max_body_bytes
    if request.content_length is not None and request.content_length > cap:
        raise APIError(413, f"request body too large: the limit is {cap} bytes", code="request_too_large")
    raw = await request.read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise APIError(400, f"We could not parse the JSON body of your request: {e}", code="invalid_json") from None


def _model_object(spec: ModelSpec, created: int) -> dict[str, Any]:
    return {"id": spec.id, "object": "model", "created": created, "owned_by": spec.owned_by}


async def _model_object_with_hash(spec: ModelSpec, created: int) -> dict[str, Any]:
    """One model with its GGUF's SHA-256 (`twin.gguf_sha256`): which build of a twin is served."""
    from daemon.fingerprint import gguf_sha256

    try:
        digest = await asyncio.get_running_loop().run_in_executor(None, gguf_sha256, spec.gguf)
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
    text = state.metrics.render(state.engine.gate.waiting, [str(p) for p in state.engine.loaded_paths()])
    return web.Response(
        text=text, content_type="text/plain", charset="utf-8", headers={"X-Content-Type": "version=0.0.4"}
    )


class _Run:
    """What one request's generation produced, accumulated from the engine's events."""

    def __init__(self, request: web.Request, model: str, choices: int) -> None:
        self.request = request
        self.model = model
        self.texts = [""] * choices
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


async def _collect(run: _Run, gen: Generation) -> None:
    try:
        async with gen:
            async for event in gen.events():
                run.take(event)
                if run.client_gone():
                    break
    finally:
        run.finish_with(gen)


async def _stream(
    run: _Run,
    gen: Generation,
    chunk: Any,
    first: list[dict[str, Any]],
    include_usage: bool,
) -> web.StreamResponse:
    """Send `chunk(index, text, finish)` events as SSE; `first` are sent before any text."""
    request = run.request
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )

    async def send(obj: Any) -> None:
        if include_usage and "usage" not in obj:
            obj["usage"] = None
        await response.write(b"data: " + _dumps(obj).encode() + b"\n\n")

    try:
        async with gen:
            events = gen.events()
            run.take(await anext(events))  # Started, or the APIError raised before any byte is sent
            try:
                await response.prepare(request)  # the client may have left while its request waited
                for obj in first:
                    await send(obj)
                async for event in events:
                    run.take(event)
                    if isinstance(event, Delta) and event.text:
                        await send(chunk(event.index, event.text, None))
                    elif isinstance(event, ChoiceDone):
                        await send(chunk(event.index, None, FINISH[event.finish_reason]))
                if include_usage:
                    await send(
                        chunk(None, None, None)
                        | {"choices": [], "usage": schema.usage(run.prompt_tokens, run.completion_tokens)}
                    )
                await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
            except ConnectionError:  # the client went away: leaving the block stops the generation
                request["disconnected"] = True
    finally:
        run.finish_with(gen)
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    req = schema.parse_chat(await read_body(request))
    gen = state.engine.chat(req.model, req.messages, req.params, req.n)
    run = _Run(request, req.model, req.n)
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

        def chunk(index: int | None, text: str | None, finish: str | None, delta: dict | None = None) -> dict[str, Any]:
            if delta is None:
                delta = {} if text is None else {"content": text}
            return base | {"choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        first = [chunk(i, None, None, {"role": "assistant", "content": ""}) for i in range(req.n)]
        return await _stream(run, gen, chunk, first, req.include_usage)

    await _collect(run, gen)
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
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


async def completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    req = schema.parse_completion(await read_body(request))
    gen = state.engine.complete(req.model, req.prompts, req.params, req.n)
    total = len(req.prompts) * req.n
    run = _Run(request, req.model, total)
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

        def chunk(index: int | None, text: str | None, finish: str | None) -> dict[str, Any]:
            return base | {"choices": [{"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}]}

        first = [chunk(i, echo(i), None) for i in range(total) if req.echo]
        return await _stream(run, gen, chunk, first, req.include_usage)

    await _collect(run, gen)
    choices = [
        {"index": i, "text": echo(i) + text, "logprobs": None, "finish_reason": run.finish[i] or "length"}
        for i, text in enumerate(run.texts)
    ]
    body = base | {
        "system_fingerprint": run.fingerprint,
        "choices": choices,
        "usage": schema.usage(run.prompt_tokens, run.completion_tokens),
    }
    return web.json_response(body, dumps=_dumps)


def build_app(state: State) -> web.Application:
    app = web.Application(
        middlewares=[log_requests, openai_errors, refuse_while_stopping, check_host, cors, check_key],
        client_max_size=state.settings.max_body_bytes,
    )
    app[STATE] = state
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{id}", get_model)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    job_routes.register(app, state)
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
        rescan=lambda: build_catalog(settings.model)[0],
    )
    state = State(settings, engine)
    # In-flight requests already had their grace period before cleanup: close what is left quickly.
    runner = web.AppRunner(build_app(state), handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
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

    loop = asyncio.get_running_loop()
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
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stopping.cancel()
        state.shutting_down = True
        await runner.cleanup()
        await asyncio.get_running_loop().run_in_executor(None, engine.close)
    log.info("stopped")
    return 0
