"""OpenAI's request and error shapes: parsing and validating request bodies, building response objects.

Every bad field raises `APIError` naming it (`param`), which the server turns into
`{"error": {"message", "type", "param", "code"}}` with the right status.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

MAX_STOP = 4
MAX_N = 8


class APIError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(param: str, why: str) -> APIError:
    return APIError(400, f"Invalid value for '{param}': {why}", param=param, code="invalid_value")


@dataclass
class SamplingParams:
    """What the engine needs to generate one choice; defaults suit a small chat model (see DESIGN.md)."""

    max_tokens: int | None = None
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    # Not OpenAI's, but accepted by vLLM and llama.cpp's server under these names:
    repetition_penalty: float = 1.1
    ignore_eos: bool = False


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    params: SamplingParams
    n: int = 1
    stream: bool = False
    include_usage: bool = False


@dataclass
class CompletionRequest:
    model: str
    prompts: list[str]
    params: SamplingParams
    n: int = 1
    stream: bool = False
    include_usage: bool = False
    echo: bool = False


def _number(body: dict, name: str, lo: float, hi: float, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(name, f"expected a number between {lo} and {hi}, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise invalid(name, f"must be between {lo} and {hi}, got {value}")
    return float(value)


def _integer(body: dict, name: str, lo: int, hi: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, f"expected an integer, got {type(value).__name__}")
    if value < lo or (hi is not None and value > hi):
        bound = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise invalid(name, f"must be {bound}, got {value}")
    return value


def _boolean(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(name, f"expected a boolean, got {type(value).__name__}")
    return value


def _stop(body: dict) -> list[str]:
    value = body.get("stop")
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise invalid("stop", "expected a string or a list of strings")
    if len(value) > MAX_STOP:
        raise invalid("stop", f"at most {MAX_STOP} sequences")
    return [s for s in value if s]


def _model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise APIError(
            400,
            "you must provide a model parameter (see GET /v1/models)",
            param="model",
            code="missing_required_parameter",
        )
    return model


def _stream_options(body: dict, stream: bool) -> bool:
    opts = body.get("stream_options")
    if opts is None:
        return False
    if not isinstance(opts, dict):
        raise invalid("stream_options", "expected an object")
    if not stream:
        raise invalid("stream_options", "only allowed when stream is true")
    include = opts.get("include_usage", False)
    if not isinstance(include, bool):
        raise invalid("stream_options.include_usage", "expected a boolean")
    return include


def _unsupported(body: dict) -> None:
    """Fields we know but cannot honour are refused, not silently dropped."""
    if body.get("logprobs") not in (None, False, 0) or body.get("top_logprobs") not in (None, 0):
        raise APIError(400, "logprobs are not supported by this server", param="logprobs", code="unsupported_parameter")
    if body.get("tools"):
        raise APIError(
            400,
            "tools (function calling) are not supported by this server",
            param="tools",
            code="unsupported_parameter",
        )
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in ("text", None)):
        raise APIError(
            400,
            "only response_format {'type': 'text'} is supported",
            param="response_format",
            code="unsupported_parameter",
        )


def _params(body: dict, max_tokens_name: str) -> SamplingParams:
    _unsupported(body)
    max_tokens = _integer(body, max_tokens_name, 1)
    if max_tokens_name == "max_completion_tokens" and max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1)
    seed = _integer(body, "seed", -(2**63), 2**64 - 1)
    top_k = _integer(body, "top_k", 0)
    defaults = SamplingParams()
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 0.0, 2.0, defaults.temperature),
        top_p=_number(body, "top_p", 0.0, 1.0, defaults.top_p),
        top_k=defaults.top_k if top_k is None else top_k,
        min_p=_number(body, "min_p", 0.0, 1.0, defaults.min_p),
        stop=_stop(body),
        seed=seed,
        presence_penalty=_number(body, "presence_penalty", -2.0, 2.0, 0.0),
        frequency_penalty=_number(body, "frequency_penalty", -2.0, 2.0, 0.0),
        repetition_penalty=_number(body, "repetition_penalty", 0.0, 10.0, defaults.repetition_penalty),
        ignore_eos=_boolean(body, "ignore_eos"),
    )


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for i, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise invalid(f"{where}[{i}]", "only text content parts are supported")
            parts.append(part["text"])
        return "".join(parts)
    if value is None:
        return ""
    raise invalid(where, "expected a string or a list of text parts")


def _messages(body: dict) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "expected a non-empty list of messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise invalid(f"messages[{i}]", "expected an object")
        role = m.get("role")
        if role == "developer":  # OpenAI's newer name for system
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise invalid(f"messages[{i}].role", f"expected system, user or assistant, got {role!r}")
        out.append({"role": role, "content": _content(m.get("content"), f"messages[{i}].content")})
    return out


def _n(body: dict) -> int:
    n = _integer(body, "n", 1, MAX_N)
    return 1 if n is None else n


def parse_chat(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    stream = _boolean(body, "stream")
    return ChatRequest(
        model=_model(body),
        messages=_messages(body),
        params=_params(body, "max_completion_tokens"),
        n=_n(body),
        stream=stream,
        include_usage=_stream_options(body, stream),
    )


def parse_completion(body: Any) -> CompletionRequest:
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = prompt
    else:
        raise invalid("prompt", "expected a string or a non-empty list of strings")
    if body.get("suffix"):
        raise APIError(400, "suffix is not supported by this server", param="suffix", code="unsupported_parameter")
    stream = _boolean(body, "stream")
    return CompletionRequest(
        model=_model(body),
        prompts=prompts,
        params=_params(body, "max_tokens"),
        n=_n(body),
        stream=stream,
        include_usage=_stream_options(body, stream),
        echo=_boolean(body, "echo"),
    )


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
