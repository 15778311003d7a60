"""The Responses API's wire objects, built and validated with openai-python's own models (`openai.types.responses`).

`ResponseBuilder` holds what one response is (its ids, the request it answers)
and makes the `Response` object at each stage (in progress, completed,
incomplete, failed) and the stream's events in OpenAI's order, each numbered by
`sequence_number`. `RESPONSE` is the JSON Schema /openapi.json publishes for
the subset of `Response` this server fills.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)

from daemon.responses.request import ResponsesRequest
from daemon.schema import APIError


def new_id(prefix: str) -> str:
    """OpenAI's id style for this API: `resp_…`, `msg_…` (an underscore, 48 hex digits)."""
    return f"{prefix}_{secrets.token_hex(24)}"


def dump(model: Any) -> dict[str, Any]:
    """The JSON object of an openai-python model: API field names, only the fields we set (nulls we set stay)."""
    return dict(model.to_dict(mode="json", exclude_unset=True))


class ResponseBuilder:
    """One response: its `Response` objects at each stage and its stream events, in order."""

    def __init__(self, req: ResponsesRequest) -> None:
        self.req = req
        self.id = new_id("resp")
        self.item_id = new_id("msg")
        self.created_at = int(time.time())
        self.sequence = 0

    # --- objects

    def _part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def _item(self, text: str | None, status: str) -> dict[str, Any]:
        content = [] if text is None else [self._part(text)]
        return {"id": self.item_id, "type": "message", "role": "assistant", "status": status, "content": content}

    def response(
        self,
        status: str,
        text: str | None = None,
        finish: str | None = None,
        usage: tuple[int, int] | None = None,
        error: APIError | None = None,
    ) -> Response:
        """The `Response` at `status` (in_progress, completed, incomplete, failed), validated by openai's model."""
        req, p = self.req, self.req.params
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": req.model,
            "output": []
            if text is None
            else [self._item(text, "completed" if status == "completed" else "incomplete")],
            "instructions": req.instructions,
            "previous_response_id": req.previous_response_id,
            "max_output_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "metadata": req.metadata,
            "text": {"format": req.text_format},
            "parallel_tool_calls": req.parallel_tool_calls,
            "tool_choice": req.tool_choice,
            "tools": [],
            "truncation": "disabled",
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if finish == "length" else None,
            "usage": None,
            "user": req.user,
        }
        if status in ("completed", "incomplete"):
            body["completed_at"] = int(time.time())
        if usage is not None:
            prompt, completion = usage
            body["usage"] = {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt + completion,
            }
        if error is not None:
            code = "rate_limit_exceeded" if error.status == 429 else "server_error"
            body["error"] = {"code": code, "message": error.message}
        return Response.model_validate(body)

    @staticmethod
    def final_status(finish: str | None) -> str:
        return "incomplete" if finish == "length" else "completed"

    # --- stream events

    def _event(self, cls: Any, **fields: Any) -> tuple[str, dict[str, Any]]:
        event = cls.model_validate({**fields, "sequence_number": self.sequence})
        self.sequence += 1
        return event.type, dump(event)

    def opening(self) -> list[tuple[str, dict[str, Any]]]:
        """created, in_progress, the message item and its text part added."""
        progress = dump(self.response("in_progress"))
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        return [
            self._event(ResponseCreatedEvent, type="response.created", response=progress),
            self._event(ResponseInProgressEvent, type="response.in_progress", response=progress),
            self._event(
                ResponseOutputItemAddedEvent,
                type="response.output_item.added",
                output_index=0,
                item=self._item(None, "in_progress"),
            ),
            self._event(
                ResponseContentPartAddedEvent, type="response.content_part.added", part=self._part(""), **where
            ),
        ]

    def delta(self, text: str) -> tuple[str, dict[str, Any]]:
        return self._event(
            ResponseTextDeltaEvent,
            type="response.output_text.delta",
            item_id=self.item_id,
            output_index=0,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def closing(self, final: Response, text: str) -> list[tuple[str, dict[str, Any]]]:
        """The text done, its part and item done, then response.completed (or .incomplete when cut by the limit)."""
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        item = dump(final.output[0])
        last = ResponseIncompleteEvent if final.status == "incomplete" else ResponseCompletedEvent
        return [
            self._event(ResponseTextDoneEvent, type="response.output_text.done", text=text, logprobs=[], **where),
            self._event(
                ResponseContentPartDoneEvent, type="response.content_part.done", part=item["content"][0], **where
            ),
            self._event(ResponseOutputItemDoneEvent, type="response.output_item.done", output_index=0, item=item),
            self._event(last, type=f"response.{final.status}", response=dump(final)),
        ]

    def failure(self, e: APIError, text: str) -> list[tuple[str, dict[str, Any]]]:
        """An `error` event, then response.failed with the error in the response."""
        failed = self.response("failed", text or None, error=e)
        return [
            self._event(ResponseErrorEvent, type="error", code=e.code, message=e.message, param=e.param),
            self._event(ResponseFailedEvent, type="response.failed", response=dump(failed)),
        ]


# JSON Schema of what this server returns, for /openapi.json (openai's whole `Response` schema is 150 kB: its
# tools, reasoning and images are never filled here).
_NULLABLE_STR = {"type": ["string", "null"]}
_OUTPUT_TEXT = {
    "type": "object",
    "properties": {
        "type": {"const": "output_text"},
        "text": {"type": "string"},
        "annotations": {"type": "array"},
        "logprobs": {"type": "array"},
    },
    "required": ["type", "text", "annotations"],
}
_MESSAGE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "message"},
        "role": {"const": "assistant"},
        "status": {"type": "string", "enum": ["in_progress", "completed", "incomplete"]},
        "content": {"type": "array", "items": _OUTPUT_TEXT},
    },
    "required": ["id", "type", "role", "status", "content"],
}
_USAGE = {
    "type": ["object", "null"],
    "properties": {
        "input_tokens": {"type": "integer", "minimum": 0},
        "output_tokens": {"type": "integer", "minimum": 0},
        "total_tokens": {"type": "integer", "minimum": 0},
        "input_tokens_details": {"type": "object", "properties": {"cached_tokens": {"type": "integer"}}},
        "output_tokens_details": {"type": "object", "properties": {"reasoning_tokens": {"type": "integer"}}},
    },
    "required": ["input_tokens", "output_tokens", "total_tokens", "input_tokens_details", "output_tokens_details"],
}
RESPONSE: dict[str, Any] = {
    "title": "Response",
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "response"},
        "created_at": {"type": "number"},
        "completed_at": {"type": ["number", "null"]},
        "status": {"type": "string", "enum": ["in_progress", "completed", "incomplete", "failed"]},
        "model": {"type": "string"},
        "output": {"type": "array", "items": _MESSAGE},
        "instructions": _NULLABLE_STR,
        "previous_response_id": _NULLABLE_STR,
        "max_output_tokens": {"type": ["integer", "null"]},
        "temperature": {"type": ["number", "null"]},
        "top_p": {"type": ["number", "null"]},
        "metadata": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        "text": {"type": "object", "properties": {"format": {"type": "object"}}},
        "parallel_tool_calls": {"type": "boolean"},
        "tool_choice": {"type": "string"},
        "tools": {"type": "array", "maxItems": 0},
        "truncation": {"const": "disabled"},
        "error": {
            "type": ["object", "null"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
        "incomplete_details": {"type": ["object", "null"], "properties": {"reason": {"const": "max_output_tokens"}}},
        "usage": _USAGE,
        "user": _NULLABLE_STR,
    },
    "required": [
        "id",
        "object",
        "created_at",
        "status",
        "model",
        "output",
        "parallel_tool_calls",
        "tool_choice",
        "tools",
    ],
}
RESPONSE_DELETED: dict[str, Any] = {
    "title": "ResponseDeleted",
    "type": "object",
    "properties": {"id": {"type": "string"}, "object": {"const": "response"}, "deleted": {"const": True}},
    "required": ["id", "object", "deleted"],
}
