"""GET /openapi.json: the OpenAPI 3.1 document, assembled from what each route module registers.

A route module calls `register(...)` next to its handlers, with its request and
response schemas: a `daemon.schema.Field` tree (the one the server validates
with), a pydantic model class (its `model_json_schema()`), or a JSON Schema
dict. Nothing here is written by hand a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from daemon.schema import Field

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
            "required": ["message", "type", "param", "code"],
        }
    },
    "required": ["error"],
}
# Every API route can answer these; a route adds its own (400, 404, 429, …) when it registers.
COMMON_ERRORS = (401, 403, 405, 415, 503)
_REASONS = {
    400: "invalid request",
    401: "missing or wrong API key",
    403: "Host header not a loopback name",
    404: "not found",
    405: "method not allowed",
    408: "request body not sent in time",
    413: "request body too large",
    415: "Content-Type is not application/json",
    429: "queue full: retry after Retry-After seconds",
    503: "shutting down, loading, or too many connections",
}


@dataclass
class Route:
    method: str
    path: str
    summary: str
    request: Any = None
    response: Any = None  # schema of the 200 JSON body
    content_type: str = "application/json"  # of the 200 body
    stream: bool = False  # also answers text/event-stream
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = field(default_factory=tuple)
    request_type: str = "application/json"  # of the request body


# One server-sent event, as clients (and schemathesis) parse the stream: `data:` carries a JSON chunk or [DONE].
SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}

_ROUTES: dict[tuple[str, str], Route] = {}


def register(
    method: str,
    path: str,
    summary: str,
    *,
    request: Any = None,
    response: Any = None,
    content_type: str = "application/json",
    stream: bool = False,
    errors: tuple[int, ...] = (),
    request_type: str = "application/json",
) -> None:
    """Publish one route; registering the same method and path again replaces it."""
    _ROUTES[(method.upper(), path)] = Route(
        method.upper(), path, summary, request, response, content_type, stream, tuple(errors), (), request_type
    )


def routes() -> list[Route]:
    return list(_ROUTES.values())


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Error": ERROR}

    def add(self, spec: Any) -> dict[str, Any]:
        """A JSON Schema for `spec`, named under components/schemas when it has a name."""
        if spec is None:
            return {}
        if isinstance(spec, Field):
            out = spec.json_schema()
            name = out.get("title")
        elif hasattr(spec, "model_json_schema"):  # a pydantic model class
            out = dict(spec.model_json_schema(ref_template="#/components/schemas/{model}"))
            for name_, sub in out.pop("$defs", {}).items():
                self.schemas.setdefault(name_, sub)
            name = spec.__name__
        else:
            out = dict(spec)
            name = out.get("title")
        if not name:
            return out
        self.schemas[name] = out
        return {"$ref": f"#/components/schemas/{name}"}


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered route."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(_ROUTES.values(), key=lambda r: (r.path, r.method)):
        ok_schema = components.add(route.response)
        content: dict[str, Any] = {route.content_type: {"schema": ok_schema} if ok_schema else {}}
        if route.stream:
            content["text/event-stream"] = {"schema": SSE_EVENT}
        responses: dict[str, Any] = {"200": {"description": "success", "content": content}}
        codes = sorted(set(route.errors) | set(COMMON_ERRORS) | ({400, 413} if route.request is not None else set()))
        for code in codes:
            responses[str(code)] = {
                "description": _REASONS.get(code, "error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        op: dict[str, Any] = {"summary": route.summary, "responses": responses}
        if route.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {route.request_type: {"schema": components.add(route.request)}},
            }
        params = [seg[1:-1] for seg in route.path.split("/") if seg.startswith("{") and seg.endswith("}")]
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
            ]
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "twin daemon", "version": version, "description": "OpenAI-compatible API of `twin serve`."},
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
