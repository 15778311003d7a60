"""POST /v1/responses: the request body as a `daemon.schema.Field` tree, and what the route makes of it.

`input` is a string or a list of message items with text content parts
(`input_text`, and `output_text` for earlier assistant turns). Fields the
daemon cannot honour (tools, reasoning, background, include, ...) are a 400
naming the field; unknown fields are ignored, as on the chat route. The
sampling extensions of the chat route (`seed`, `top_k`, `min_p`, `stop`,
`repetition_penalty`, ...) are accepted here too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from daemon import schema
from daemon.schema import (
    AnyObj,
    APIError,
    Arr,
    Bool,
    Field,
    Int,
    Obj,
    OneOf,
    SamplingParams,
    Str,
    TwinField,
    invalid,
    unsupported,
)
from twin import conditioning

MAX_METADATA = 16  # keys, as OpenAI: up to 64 characters each, values up to 512
ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text")


class TextContentPart(Field):
    """`{"type": "input_text" | "output_text", "text": …}`; images, files and audio are refused by name."""

    nullable = False

    def parse(self, value: Any, param: str) -> str:
        if not isinstance(value, dict) or value.get("type") not in TEXT_PARTS:
            kind = value.get("type") if isinstance(value, dict) else None
            shown = f" ({kind!r})" if isinstance(kind, str) else ""
            raise invalid(param, f"only text content parts (input_text, output_text) are supported{shown}")
        if not isinstance(value.get("text"), str):
            raise invalid(f"{param}.text", "expected a string")
        return Str().parse(value["text"], f"{param}.text")

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": list(TEXT_PARTS)}, "text": {"type": "string"}},
            "required": ["type", "text"],
        }


@dataclass
class Metadata(Field):
    """Up to 16 string keys (64 characters) with string values (512 characters), as OpenAI's `metadata`."""

    def parse(self, value: Any, param: str) -> dict[str, str]:
        if not isinstance(value, dict):
            raise invalid(param, "expected an object of strings")
        if len(value) > MAX_METADATA:
            raise invalid(param, f"at most {MAX_METADATA} keys, got {len(value)}")
        for key, item in value.items():
            if len(key) > 64:
                raise invalid(param, f"keys are at most 64 characters, {key[:20]!r}… has {len(key)}")
            Str().parse(key, f"{param} key")
            if not isinstance(item, str) or len(item) > 512:
                raise invalid(f"{param}.{key}", "expected a string of at most 512 characters")
            Str().parse(item, f"{param}.{key}")
        return dict(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": {"type": "string", "maxLength": 512}, "maxProperties": 16}


INPUT_MESSAGE = Obj(
    {
        "type": Str(enum=("message",), description="only message items are supported"),
        "role": Str(enum=ROLES),
        "content": OneOf((Str(), Arr(TextContentPart())), "a string or a list of text content parts"),
        "id": Str(),
        "status": Str(),
    },
    required=("role", "content"),
    title="ResponseInputMessage",
)

TEXT_FORMAT = Obj(
    {
        "type": Str(enum=("text", "json_object", "json_schema")),
        "name": Str(min_length=1),
        "schema": AnyObj(description="the JSON Schema the reply follows (turned into a llama.cpp grammar)"),
        "description": Str(),
        "strict": Bool(),
    },
    required=("type",),
    title="ResponseTextFormat",
)

_sampling = schema._sampling_fields(("max_output_tokens",))
for _name in ("n", "stream_options"):  # no choices here; stream_options has other keys on this route
    _sampling.pop(_name)

RESPONSES_REQUEST = Obj(
    {
        **_sampling,
        "input": OneOf((Str(), Arr(INPUT_MESSAGE, min_items=1, what="list of input items")), "a string or a list"),
        "instructions": Str(),
        "previous_response_id": Str(min_length=1),
        "store": Bool(),
        "metadata": Metadata(),
        "text": Obj({"format": TEXT_FORMAT, "verbosity": Str(enum=("low", "medium", "high"))}),
        "stream_options": Obj({"include_obfuscation": Bool()}),
        "parallel_tool_calls": Bool(),
        "safety_identifier": Str(),
        "prompt_cache_key": Str(),
        "service_tier": Str(),
        "twin": TwinField(),  # who the twin talks to, as on the chat route
        # Known, published so a client sees them, and refused when asked for (see `_refuse`):
        "tools": Arr(AnyObj()),
        "tool_choice": OneOf((Str(), AnyObj()), "a string or an object"),
        "max_tool_calls": Int(1),
        "reasoning": AnyObj(),
        "background": Bool(),
        "include": Arr(Str()),
        "prompt": AnyObj(),
        "conversation": OneOf((Str(), AnyObj()), "a string or an object"),
        "truncation": Str(enum=("auto", "disabled")),
        "top_logprobs": Int(0, 20),
    },
    required=("model", "input"),
    title="ResponseCreateRequest",
)


@dataclass
class ResponsesRequest:
    model: str
    input: list[dict[str, str]]  # this request's own turns, role/content, developer already system
    instructions: str | None
    params: SamplingParams
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    text_format: dict[str, Any] = field(default_factory=lambda: {"type": "text"})
    parallel_tool_calls: bool = True
    tool_choice: str = "auto"
    user: str | None = None
    twin: dict[str, str] | None = None

    def messages(self, history: list[dict[str, str]]) -> list[dict[str, str]]:
        """What the model reads: the instructions and the `twin` line (both this request's only, never carried
        over from earlier responses), the history, the input."""
        first = [{"role": "system", "content": self.instructions}] if self.instructions else []
        messages = [*first, *history, *self.input]
        return conditioning.with_line(messages, conditioning.system_line(**self.twin)) if self.twin else messages


def _refuse(body: dict[str, Any]) -> None:
    """Fields this server knows but cannot honour: a 400 naming the field, never a silently different answer."""
    if body.get("tools"):
        raise unsupported("tools", "tools (function calling) are")
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise unsupported("tool_choice", "tool_choice other than 'auto' or 'none' is")
    if "reasoning" in body:
        raise unsupported("reasoning", "reasoning is")
    if body.get("background"):
        raise unsupported("background", "background responses are")
    if body.get("include"):
        raise unsupported("include", "include is")
    if "prompt" in body:
        raise unsupported("prompt", "prompt templates are")
    if "conversation" in body:
        raise unsupported("conversation", "conversations are (chain responses with previous_response_id)")
    if body.get("truncation") == "auto":
        raise unsupported("truncation", "truncation 'auto' is")
    if body.get("top_logprobs"):
        raise unsupported("top_logprobs", "logprobs on responses are")


def _input(raw: str | list[dict[str, Any]]) -> list[dict[str, str]]:
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    out = []
    for item in raw:
        content = item["content"]
        role = "system" if item["role"] == "developer" else item["role"]
        out.append({"role": role, "content": "".join(content) if isinstance(content, list) else content})
    return out


def _text_format(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The format as the response echoes it, and its grammar."""
    fmt = (body.get("text") or {}).get("format") or {"type": "text"}
    if fmt["type"] == "json_schema":
        for key in ("name", "schema"):
            if key not in fmt:
                raise APIError(
                    400,
                    f"you must provide the 'text.format.{key}' parameter for a json_schema format",
                    param=f"text.format.{key}",
                    code="missing_required_parameter",
                )
    grammar = schema.response_grammar(fmt["type"], fmt.get("schema"), "text.format")
    return fmt, grammar


def parse(raw: Any) -> ResponsesRequest:
    body = RESPONSES_REQUEST.parse(raw, "")
    _refuse(body)
    fmt, grammar = _text_format(body)
    chat_body = {k: v for k, v in body.items() if k not in ("top_logprobs", "tools", "text")}
    params = dataclasses.replace(
        schema.sampling_params(chat_body, body.get("max_output_tokens"), chat=True), grammar=grammar
    )
    return ResponsesRequest(
        model=body["model"],
        input=_input(body["input"]),
        instructions=body.get("instructions") or None,
        params=params,
        stream=body.get("stream", False),
        store=body.get("store", True),
        previous_response_id=body.get("previous_response_id"),
        metadata=body.get("metadata", {}),
        text_format=fmt,
        parallel_tool_calls=body.get("parallel_tool_calls", True),
        tool_choice=body.get("tool_choice", "auto"),
        user=body.get("user"),
        twin=body.get("twin"),
    )
