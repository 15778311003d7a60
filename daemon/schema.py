"""OpenAI's request and error shapes: the request schema, validation against it, response objects.

The request bodies are declared once, as a tree of `Field`s: the server parses
every body through it, and GET /openapi.json publishes the JSON Schema the same
tree writes (`Field.json_schema`). Every bad field raises `APIError` naming it
(`param`), which the server turns into `{"error": {"message", "type", "param",
"code"}}` with the right status.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twin import conditioning
from twin.consensus import MAX_CANDIDATES, RERANKS

MAX_STOP = 4
MAX_N = 8
MAX_SEQUENCES = 16  # n × candidates: the sequences one request may decode
MAX_DEPTH = 32  # of a request body's JSON: OpenAI's own bodies are 4 deep
MAX_TOP_LOGPROBS = 20  # chat's top_logprobs, as OpenAI
MAX_COMPLETION_LOGPROBS = 5  # the legacy completions' logprobs, as OpenAI


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


def unsupported(param: str, what: str) -> APIError:
    return APIError(400, f"{what} not supported by this server", param=param, code="unsupported_parameter")


# --- the schema ----------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


class Field:
    """One node of a request schema: `parse` validates a JSON value (raising APIError), `json_schema` describes it."""

    nullable = True  # JSON null means "not given" for every optional field, as OpenAI's SDKs send it

    def parse(self, value: Any, param: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def json_schema(self, nullable: bool = False) -> dict[str, Any]:
        out = self.schema()
        if nullable and self.nullable:
            return {"anyOf": [out, {"type": "null"}]} if "type" not in out else out | {"type": [out["type"], "null"]}
        return out


@dataclass
class Str(Field):
    min_length: int = 0
    enum: tuple[str, ...] = ()
    description: str = ""

    def parse(self, value: Any, param: str) -> str:
        if not isinstance(value, str):
            raise invalid(param, f"expected a string, got {_kind(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): no text the model could read
            raise invalid(
                param, "the string holds a lone UTF-16 surrogate (\\ud800-\\udfff); send valid Unicode"
            ) from None
        if len(value) < self.min_length:
            raise invalid(param, "must not be empty")
        if self.enum and value not in self.enum:
            raise invalid(param, f"expected one of {', '.join(self.enum)}, got {value!r}")
        return value

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.min_length:
            out["minLength"] = self.min_length
        if self.enum:
            out["enum"] = list(self.enum)
        return out | ({"description": self.description} if self.description else {})


@dataclass
class Num(Field):
    lo: float
    hi: float

    def parse(self, value: Any, param: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid(param, f"expected a number between {self.lo} and {self.hi}, got {_kind(value)}")
        if not self.lo <= value <= self.hi:
            raise invalid(param, f"must be between {self.lo} and {self.hi}, got {value}")
        return float(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": self.lo, "maximum": self.hi}


@dataclass
class Int(Field):
    lo: int
    hi: int | None = None

    def parse(self, value: Any, param: str) -> int:
        # JSON has one number type: 2.0 is the integer 2 (JSON Schema agrees), 2.5 is not.
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(param, f"expected an integer, got {_kind(value)}")
        if value < self.lo or (self.hi is not None and value > self.hi):
            bound = f"at least {self.lo}" if self.hi is None else f"between {self.lo} and {self.hi}"
            raise invalid(param, f"must be {bound}, got {value}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.lo} | ({"maximum": self.hi} if self.hi is not None else {})


@dataclass
class Bool(Field):
    def parse(self, value: Any, param: str) -> bool:
        if not isinstance(value, bool):
            raise invalid(param, f"expected a boolean, got {_kind(value)}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass
class Arr(Field):
    item: Field
    min_items: int = 0
    max_items: int | None = None
    what: str = "list"

    def parse(self, value: Any, param: str) -> list[Any]:
        if not isinstance(value, list):
            raise invalid(param, f"expected a {self.what}, got {_kind(value)}")
        if len(value) < self.min_items:
            raise invalid(param, f"expected a non-empty {self.what}")
        if self.max_items is not None and len(value) > self.max_items:
            raise invalid(param, f"at most {self.max_items} items")
        return [self.item.parse(v, f"{param}[{i}]") for i, v in enumerate(value)]

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "array", "items": self.item.json_schema()}
        if self.min_items:
            out["minItems"] = self.min_items
        if self.max_items is not None:
            out["maxItems"] = self.max_items
        return out


@dataclass
class Obj(Field):
    """A JSON object; unknown keys are accepted and ignored, as OpenAI's clients send fields we do not use.

    A `closed` object refuses them instead: where a typo would silently drop an option (a job's settings).
    """

    fields: dict[str, Field]
    required: tuple[str, ...] = ()
    title: str = ""
    closed: bool = False

    def parse(self, value: Any, param: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise (
                invalid(param, f"expected an object, got {_kind(value)}")
                if param
                else APIError(400, f"the request body must be a JSON object, got {_kind(value)}", code="invalid_body")
            )
        if self.closed:
            for name in value:
                if name not in self.fields:
                    where = f"{param}.{name}" if param else name
                    raise APIError(400, f"Unknown parameter: '{where}'", param=where, code="unknown_parameter")
        out: dict[str, Any] = {}
        for name, spec in self.fields.items():
            where = f"{param}.{name}" if param else name
            raw = value.get(name)
            if raw is None:
                if name in self.required:
                    raise APIError(
                        400,
                        f"you must provide the '{where}' parameter",
                        param=where,
                        code="missing_required_parameter",
                    )
                continue
            out[name] = spec.parse(raw, where)
        return out

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "properties": {n: f.json_schema(nullable=n not in self.required) for n, f in self.fields.items()},
        }
        if self.required:
            out["required"] = list(self.required)
        if self.closed:
            out["additionalProperties"] = False
        return out | ({"title": self.title} if self.title else {})


@dataclass
class OneOf(Field):
    """The first choice of the value's JSON kind parses it (e.g. `stop`: a string or a list of strings)."""

    choices: tuple[Field, ...]
    what: str

    def parse(self, value: Any, param: str) -> Any:
        for choice in self.choices:
            if _matches(choice, value):
                return choice.parse(value, param)
        raise invalid(param, f"expected {self.what}, got {_kind(value)}")

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [c.json_schema() for c in self.choices]}


def _matches(choice: Field, value: Any) -> bool:
    kind = choice.schema().get("type")
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float))
    return kind == _kind(value)


@dataclass
class AnyObj(Field):
    """Any JSON object, passed on whole (a JSON Schema for response_format, checked by its converter)."""

    description: str = ""

    def parse(self, value: Any, param: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(param, f"expected an object, got {_kind(value)}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "object"} | ({"description": self.description} if self.description else {})


@dataclass
class Map(Field):
    """A JSON object of any keys, each value parsed by `value` (metadata: strings by name)."""

    value: Field

    def parse(self, value: Any, param: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(param, f"expected an object, got {_kind(value)}")
        return {k: self.value.parse(v, f"{param}.{k}") for k, v in value.items()}

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": self.value.json_schema()}


class TextPart(Field):
    """A content part: only `{"type": "text", "text": …}`; images and audio are refused by name."""

    nullable = False

    def parse(self, value: Any, param: str) -> str:
        if not isinstance(value, dict) or value.get("type") != "text" or not isinstance(value.get("text"), str):
            raise invalid(param, "only text content parts are supported")
        return Str().parse(value["text"], f"{param}.text")

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
            "required": ["type", "text"],
        }


class TwinField(Field):
    """The daemon's extra `twin` field: who the twin talks to; other OpenAI servers ignore it."""

    def parse(self, value: Any, param: str) -> dict[str, str]:
        try:
            fields = conditioning.check_fields(value)
        except ValueError as e:
            raise invalid(param, str(e)) from None
        for key, text in fields.items():
            Str().parse(text, f"{param}.{key}")
        return fields

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {name: {"type": "string"} for name in conditioning.FIELDS},
            "additionalProperties": False,
            "description": 'who the twin talks to, e.g. {"talking_to": "Anna", "chat": "Family"}',
        }


def _sampling_fields(max_tokens: tuple[str, ...]) -> dict[str, Field]:
    return {
        "model": Str(min_length=1, description="a model id from GET /v1/models"),
        **{name: Int(1) for name in max_tokens},
        "temperature": Num(0.0, 2.0),
        "top_p": Num(0.0, 1.0),
        "top_k": Int(0, 1_000_000),
        "min_p": Num(0.0, 1.0),
        "stop": OneOf((Str(), Arr(Str(), max_items=MAX_STOP)), "a string or a list of strings"),
        "seed": Int(-(2**63), 2**64 - 1),
        "presence_penalty": Num(-2.0, 2.0),
        "frequency_penalty": Num(-2.0, 2.0),
        "logit_bias": Map(Num(-100.0, 100.0)),
        # Not OpenAI's, but accepted by vLLM and llama.cpp's server under these names:
        "repetition_penalty": Num(0.0, 10.0),
        "ignore_eos": Bool(),
        # twin's own: added to the end-of-reply tokens' logits (below 0: longer replies); default: the twin's calibrated
        "end_bias": Num(-100.0, 100.0),
        "n": Int(1, MAX_N),
        # twin's own: sample this many replies per choice and return one of them, chosen by `rerank`: "mmi" (mutual
        # information with the context) or "consensus" (closest to the others), twin.consensus; default: the
        # model's (a built twin's [serve] candidates in twin.toml, else 1)
        "candidates": Int(1, MAX_CANDIDATES),
        "rerank": Str(enum=RERANKS),
        "stream": Bool(),
        "stream_options": Obj({"include_usage": Bool()}),
        "user": Str(),
    }


RESPONSE_FORMAT = Obj(
    {
        "type": Str(enum=("text", "json_object", "json_schema")),
        "json_schema": Obj(
            {
                "name": Str(),
                "description": Str(),
                "schema": AnyObj(description="the JSON Schema the reply follows (turned into a llama.cpp grammar)"),
                "strict": Bool(),
            }
        ),
    },
    required=("type",),
    title="ResponseFormat",
)

MESSAGE = Obj(
    {
        "role": Str(enum=("system", "developer", "user", "assistant")),
        "content": OneOf((Str(), Arr(TextPart())), "a string or a list of text parts"),
        "name": Str(),
    },
    required=("role",),
    title="Message",
)

CHAT_REQUEST = Obj(
    {
        **_sampling_fields(("max_completion_tokens", "max_tokens")),
        "messages": Arr(MESSAGE, min_items=1, what="list of messages"),
        "logprobs": Bool(),
        "top_logprobs": Int(0, MAX_TOP_LOGPROBS),
        "tools": Arr(Obj({})),
        "response_format": RESPONSE_FORMAT,
        "twin": TwinField(),
    },
    required=("model", "messages"),
    title="ChatCompletionRequest",
)

COMPLETION_REQUEST = Obj(
    {
        **_sampling_fields(("max_tokens",)),
        # An empty prompt gives llama.cpp nothing to start from: refused, not crashed on.
        "prompt": OneOf(
            (Str(min_length=1), Arr(Str(min_length=1), min_items=1)), "a string or a non-empty list of strings"
        ),
        "echo": Bool(),
        "logprobs": Int(0, MAX_COMPLETION_LOGPROBS),
        "suffix": Str(),
    },
    required=("model", "prompt"),
    title="CompletionRequest",
)

# POST /v1/fine_tuning/jobs (OpenAI's, plus `twin`: the SDK sends it with extra_body). Closed where a typo would lose
# a setting. The hyperparameters take "auto" or a value; their lower bounds are checked once the defaults are in.
_AUTO = Str(enum=("auto",))
HYPERPARAMETERS = Obj(
    {
        "batch_size": OneOf((_AUTO, Int(-(2**63), 2**63 - 1)), '"auto" or an integer'),
        "learning_rate_multiplier": OneOf((_AUTO, Num(-1e9, 1e9)), '"auto" or a number'),
        "n_epochs": OneOf((_AUTO, Int(-(2**63), 2**63 - 1)), '"auto" or an integer'),
    },
    closed=True,
)
TWIN_OPTIONS = Obj(
    {
        "me": OneOf((Str(), Arr(Str())), "a name or a list of names"),  # display names or Telegram ids
        "base": Str(description="overrides `model`: a --base short name, hub id or directory"),
        "quant": Str(),
        "max_steps": Int(0),
        "max_length": Int(16),
        "time_budget_s": Num(0.0, 1e9),  # the build's wall clock, as `twin build` (0: n_epochs decide)
        "strip_emoji": Bool(),
        "device": Str(),
        "calibration_samples": Int(0, 100_000),  # as `twin build --calibration-samples` (0: no length fitting)
    },
    closed=True,
)
JOB_REQUEST = Obj(
    {
        "model": Str(min_length=1),
        "training_file": Str(min_length=1),
        "validation_file": Str(),
        "suffix": Str(),
        "hyperparameters": HYPERPARAMETERS,
        "method": Obj(
            {"type": Str(enum=("supervised",)), "supervised": Obj({"hyperparameters": HYPERPARAMETERS})},
            required=("type",),
        ),
        "seed": Int(-(2**63), 2**63 - 1),
        "metadata": Map(Str()),
        "integrations": Arr(Obj({})),
        "twin": TWIN_OPTIONS,
    },
    required=("model", "training_file"),
    title="FineTuningJobRequest",
    closed=True,
)


# --- what the engine gets ------------------------------------------------------------------------


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
    logit_bias: dict[int, float] = field(default_factory=dict)  # token id -> added to its logit (-100 bans it)
    # Not OpenAI's, but accepted by vLLM and llama.cpp's server under these names:
    repetition_penalty: float = 1.1
    ignore_eos: bool = False
    end_bias: float | None = None  # on the end-of-reply tokens; None: the model's default (a twin's calibrated bias)
    logprobs: bool = False
    top_logprobs: int = 0  # alternatives listed with each token's logprob
    grammar: str | None = None  # GBNF the output must follow (response_format json_object / json_schema)
    candidates: int | None = None  # sampled replies per choice (twin.consensus); None: the model's; greedy draws one
    rerank: str = "mmi"  # how the returned one is chosen: "mmi" or "consensus" (completions: always consensus)


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


def _unsupported(body: dict[str, Any]) -> None:
    """Fields we know but cannot honour are refused, not silently dropped."""
    if body.get("tools"):
        raise unsupported("tools", "tools (function calling) are")
    if body.get("suffix"):
        raise unsupported("suffix", "suffix is")


def _response_format(body: dict[str, Any]) -> str | None:
    """The grammar that response_format asks for (None for plain text); a schema it cannot express is a 400."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    return response_grammar(fmt["type"], fmt.get("json_schema", {}).get("schema"), "response_format")


def response_grammar(kind: str, json_schema: dict[str, Any] | None, param: str) -> str | None:
    """The llama.cpp grammar of an output format (`text`, `json_object`, `json_schema`); a schema it cannot express
    is a 400 naming `param` (chat's response_format, the Responses API's text.format)."""
    if kind == "text":
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf  # the daemon's dependency, loaded on use

    if kind == "json_object" or json_schema is None:
        return JSON_GBNF
    try:
        return json_schema_to_gbnf(json.dumps(json_schema))
    except (Exception, RecursionError) as e:  # the converter raises whatever it trips on: assertions, KeyErrors, ...
        raise APIError(
            400,
            f"{param}: this JSON schema is not supported ({type(e).__name__}: {e}); "
            "use plain types, properties, required, enum, arrays and $ref",
            param=param,
            code="unsupported_schema",
        ) from None


def _logprobs(body: dict[str, Any], chat: bool) -> tuple[bool, int]:
    """(logprobs on?, how many alternatives); chat has logprobs + top_logprobs, completions an integer logprobs."""
    if not chat:
        top = body.get("logprobs")
        return top is not None, top or 0
    on = body.get("logprobs", False)
    top = body.get("top_logprobs")
    if top is not None and not on:
        raise invalid("top_logprobs", "requires logprobs to be true")
    return on, top or 0


def sampling_params(body: dict[str, Any], max_tokens: int | None, chat: bool) -> SamplingParams:
    """The engine's settings from a parsed body (chat's field names; `chat` picks how logprobs are asked for)."""
    _unsupported(body)
    logprobs, top_logprobs = _logprobs(body, chat)
    d = SamplingParams()
    stop = body.get("stop", [])
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=body.get("temperature", d.temperature),
        top_p=body.get("top_p", d.top_p),
        top_k=body.get("top_k", d.top_k),
        min_p=body.get("min_p", d.min_p),
        stop=[s for s in ([stop] if isinstance(stop, str) else stop) if s],
        seed=body.get("seed"),
        presence_penalty=body.get("presence_penalty", 0.0),
        frequency_penalty=body.get("frequency_penalty", 0.0),
        logit_bias=_logit_bias(body),
        repetition_penalty=body.get("repetition_penalty", d.repetition_penalty),
        ignore_eos=body.get("ignore_eos", False),
        end_bias=body.get("end_bias"),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        grammar=_response_format(body),
        candidates=body.get("candidates", d.candidates),
        rerank=body.get("rerank", d.rerank),
    )


MAX_LOGIT_BIAS = 1024  # tokens one request may bias


def _logit_bias(body: dict[str, Any]) -> dict[int, float]:
    """OpenAI's logit_bias: token ids (as JSON object keys) to a bias; ids beyond the vocabulary are the engine's 400."""
    raw = body.get("logit_bias") or {}
    if len(raw) > MAX_LOGIT_BIAS:
        raise invalid("logit_bias", f"at most {MAX_LOGIT_BIAS} tokens may be biased, got {len(raw)}")
    out = {}
    for key, bias in raw.items():
        if not (key.isascii() and key.isdigit()):
            raise invalid("logit_bias", f"keys are token ids (integers as strings), got {key[:40]!r}")
        out[int(key)] = bias
    return out


def with_end_bias(p: SamplingParams, default: float, end_ids: Iterable[int]) -> SamplingParams:
    """`p` with its end bias (the request's, else the model's `default`) on each end token logit_bias leaves alone."""
    bias = default if p.end_bias is None else p.end_bias
    if bias == 0:
        return p
    return dataclasses.replace(p, logit_bias={**dict.fromkeys(end_ids, bias), **p.logit_bias})


def _include_usage(body: dict[str, Any]) -> bool:
    opts = body.get("stream_options")
    if opts is None:
        return False
    if not body.get("stream"):
        raise invalid("stream_options", "only allowed when stream is true")
    return bool(opts.get("include_usage", False))


def _messages(raw: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for m in raw:
        role = "system" if m["role"] == "developer" else m["role"]  # developer: OpenAI's newer name for system
        content = m.get("content")
        out.append({"role": role, "content": "".join(content) if isinstance(content, list) else content or ""})
    return out


def _twin(body: dict[str, Any], messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The `twin` extra field ({"talking_to", "chat"}) as the system line the twin was trained with."""
    if "twin" not in body:
        return messages
    return conditioning.with_line(messages, conditioning.system_line(**body["twin"]))


def _check_sequences(body: dict[str, Any]) -> None:
    n, k = body.get("n", 1), body.get("candidates", 1)
    if n * k > MAX_SEQUENCES:
        raise invalid("candidates", f"n × candidates is at most {MAX_SEQUENCES}, got {n} × {k}: lower one of them")


def parse_chat(raw: Any) -> ChatRequest:
    body = CHAT_REQUEST.parse(raw, "")
    _check_sequences(body)
    return ChatRequest(
        model=body["model"],
        messages=_twin(body, _messages(body["messages"])),
        params=sampling_params(body, body.get("max_completion_tokens", body.get("max_tokens")), chat=True),
        n=body.get("n", 1),
        stream=body.get("stream", False),
        include_usage=_include_usage(body),
    )


def parse_completion(raw: Any) -> CompletionRequest:
    body = COMPLETION_REQUEST.parse(raw, "")
    _check_sequences(body)
    prompt = body["prompt"]
    return CompletionRequest(
        model=body["model"],
        prompts=[prompt] if isinstance(prompt, str) else prompt,
        params=sampling_params(body, body.get("max_tokens"), chat=False),
        n=body.get("n", 1),
        stream=body.get("stream", False),
        include_usage=_include_usage(body),
        echo=body.get("echo", False),
    )


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit`, without recursion (a 10,000-deep body must not crash anything)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise APIError(
                400, f"the JSON body is nested more than {limit} levels deep; flatten it", code="invalid_json"
            )
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


# --- responses -----------------------------------------------------------------------------------


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


# JSON Schemas of the response bodies the server builds, for /openapi.json (and the schemathesis test's checks).
_NULLABLE_STR = {"type": ["string", "null"]}
_FINISH = {"type": ["string", "null"], "enum": ["stop", "length", None]}
USAGE = {
    "type": "object",
    "properties": {
        k: {"type": "integer", "minimum": 0} for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    },
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
}
_HEAD = {
    "id": {"type": "string"},
    "created": {"type": "integer"},
    "model": {"type": "string"},
    "system_fingerprint": {"type": ["string", "null"]},
    "usage": USAGE,
}
_TOKEN_LOGPROB: dict[str, Any] = {
    "type": "object",
    "properties": {
        "token": {"type": "string"},
        "logprob": {"type": "number"},
        "bytes": {"type": ["array", "null"], "items": {"type": "integer"}},
    },
    "required": ["token", "logprob"],
}
_CHAT_LOGPROBS = {
    "type": ["object", "null"],
    "properties": {
        "content": {
            "type": "array",
            "items": _TOKEN_LOGPROB
            | {
                "properties": _TOKEN_LOGPROB["properties"]
                | {"top_logprobs": {"type": "array", "items": _TOKEN_LOGPROB}}
            },
        }
    },
}
_COMPLETION_LOGPROBS = {
    "type": ["object", "null"],
    "properties": {
        "tokens": {"type": "array", "items": {"type": "string"}},
        "token_logprobs": {"type": "array", "items": {"type": "number"}},
        "top_logprobs": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "number"}}},
        "text_offset": {"type": "array", "items": {"type": "integer"}},
    },
}


def _completion(title: str, object_name: str, choice: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A chat or text completion: the envelope both share, around their own choice object."""
    return {
        "title": title,
        "type": "object",
        "properties": _HEAD
        | {
            "object": {"const": object_name},
            "choices": {"type": "array", "items": {"type": "object", "properties": choice, "required": required}},
        },
        "required": ["id", "object", "created", "model", "choices", "usage"],
    }


CHAT_COMPLETION = _completion(
    "ChatCompletion",
    "chat.completion",
    {
        "index": {"type": "integer"},
        "message": {
            "type": "object",
            "properties": {
                "role": {"const": "assistant"},
                "content": {"type": "string"},
                "refusal": {"type": "null"},
            },
            "required": ["role", "content"],
        },
        "logprobs": _CHAT_LOGPROBS,
        "finish_reason": _FINISH,
    },
    ["index", "message", "finish_reason"],
)
COMPLETION = _completion(
    "Completion",
    "text_completion",
    {
        "index": {"type": "integer"},
        "text": {"type": "string"},
        "logprobs": _COMPLETION_LOGPROBS,
        "finish_reason": _FINISH,
    },
    ["index", "text", "finish_reason"],
)
MODEL = {
    "title": "Model",
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
    "required": ["id", "object", "created", "owned_by"],
}
MODEL_LIST = {
    "title": "ModelList",
    "type": "object",
    "properties": {
        "object": {"const": "list"},
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
    },
    "required": ["object", "data"],
}
HEALTH = {
    "title": "Health",
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "loading"]},
        "models": {"type": "array", "items": _NULLABLE_STR},
    },
    "required": ["status"],
}
