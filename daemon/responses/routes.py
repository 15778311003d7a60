"""The HTTP side of the Responses API: POST /v1/responses (JSON or a stream), GET and DELETE /v1/responses/{id}.

A response runs through the chat route's own path: `Engine.chat` for the
generation, `server.collect` or `server.stream` to run it (cancellation when the
client leaves, the shutdown cut, errors after the first byte), with
`ResponseFrames` turning its events into the Responses API's stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from openai.types.responses import Response

from daemon import openapi
from daemon.engine import Delta
from daemon.responses.objects import RESPONSE, RESPONSE_DELETED, ResponseBuilder, dump
from daemon.responses.request import RESPONSES_REQUEST, parse
from daemon.responses.store import ResponseStore
from daemon.schema import APIError
from daemon.server import STATE, Run, State, _dumps, collect, json_route, stream
from twin import paths

log = logging.getLogger("twin.daemon")

STORE = web.AppKey("responses", ResponseStore)


def sse_event(kind: str, obj: dict[str, Any]) -> bytes:
    """One event of the Responses API's stream: `event: <type>` and its JSON."""
    return b"event: " + kind.encode() + b"\ndata: " + _dumps(obj).encode() + b"\n\n"


class ResponseFrames:
    """`server.Frames` for the Responses API: the lifecycle events around the text deltas."""

    def __init__(self, run: Run, builder: ResponseBuilder, finish: Callable[[], Response]) -> None:
        self.run = run
        self.builder = builder
        self.finish = finish  # the final Response, stored before the client hears it is done

    def opening(self) -> list[bytes]:
        return [sse_event(*e) for e in self.builder.opening()]

    def event(self, event: Any) -> list[bytes]:
        if isinstance(event, Delta) and event.text:
            return [sse_event(*self.builder.delta(event.text))]
        return []

    def closing(self) -> list[bytes]:
        return [sse_event(*e) for e in self.builder.closing(self.finish(), self.run.texts[0])]

    def failure(self, e: APIError) -> list[bytes]:
        return [sse_event(*ev) for ev in self.builder.failure(e, self.run.texts[0])]


def _not_found(response_id: str) -> APIError:
    return APIError(404, f"Response with id '{response_id}' not found.", param="response_id", code="not_found")


@json_route
async def create_response(request: web.Request, body: Any) -> web.StreamResponse:
    state = request.app[STATE]
    store = request.app[STORE]
    req = parse(body)
    history: list[dict[str, str]] = []
    if req.previous_response_id:
        found = store.conversation(req.previous_response_id)
        if found is None:
            raise APIError(
                400,
                f"Previous response with id '{req.previous_response_id}' not found: it was never stored "
                "(store: false), was deleted, or is past the store's size or age bound",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        history = found
    messages = req.messages(history)
    if state.settings.log_content:
        log.info("messages: %s", _dumps(messages))
    run = Run(request, req.model, 1)
    gen = state.engine.chat(req.model, messages, req.params, 1, gone=run.client_gone, param="input")
    builder = ResponseBuilder(req)

    def finish() -> Response:
        text, reason = run.texts[0], run.finish[0]
        final = builder.response(builder.final_status(reason), text, reason, (run.prompt_tokens, run.completion_tokens))
        if req.store and not request.get("disconnected"):
            store.put(dump(final), [*history, *req.input, {"role": "assistant", "content": text}])
        if state.settings.log_content:
            log.info("reply: %s", _dumps(text))
        return final

    if req.stream:
        return await stream(run, gen, ResponseFrames(run, builder, finish))
    await collect(run, gen)
    return web.json_response(dump(finish()), dumps=_dumps)


async def get_response(request: web.Request) -> web.Response:
    if request.query.get("stream", "false").lower() not in ("false", "0"):
        raise APIError(
            400, "stream is not supported when retrieving a response", param="stream", code="unsupported_parameter"
        )
    response_id = request.match_info["id"]
    found = request.app[STORE].get(response_id)
    if found is None:
        raise _not_found(response_id)
    return web.json_response(found, dumps=_dumps)


async def delete_response(request: web.Request) -> web.Response:
    response_id = request.match_info["id"]
    if not request.app[STORE].delete(response_id):
        raise _not_found(response_id)
    return web.json_response({"id": response_id, "object": "response", "deleted": True})


openapi.register(
    "POST",
    "/v1/responses",
    "Create a response (OpenAI's Responses API): JSON, or server-sent events with stream=true",
    request=RESPONSES_REQUEST,
    response=RESPONSE,
    stream=True,
    errors=(400, 404, 408, 413, 429),
)
openapi.register("GET", "/v1/responses/{id}", "A stored response", response=RESPONSE, errors=(400, 404))
openapi.register("DELETE", "/v1/responses/{id}", "Delete a stored response", response=RESPONSE_DELETED, errors=(404,))


def register(app: web.Application, state: State) -> None:
    """Add the routes; the store (responses.db in the data directory) opens now and closes with the app."""
    app.router.add_post("/v1/responses", create_response)
    app.router.add_get("/v1/responses/{id}", get_response)
    app.router.add_delete("/v1/responses/{id}", delete_response)
    settings = state.settings
    store = ResponseStore(
        paths.data_dir() / "responses.db",
        max_bytes=settings.responses_max_mb * 2**20,
        max_age=settings.responses_max_age_seconds,
    )
    app[STORE] = store

    async def close(app: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close)
