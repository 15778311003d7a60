"""GET /openapi.json, and schemathesis against it on loopback: no 5xx, no answer outside the published schema."""

from __future__ import annotations

import hashlib

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from daemon import openapi, schema
from daemon.responses.request import RESPONSES_REQUEST
from twin.embedded import MODEL_ID


def test_the_document_is_the_schema_the_server_validates_with(daemon):
    doc = httpx.get(daemon.root + "/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert {"/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/models/{id}", "/health"} <= set(doc["paths"])
    responses = doc["paths"]["/v1/responses"]["post"]
    ref = responses["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert doc["components"]["schemas"][ref.rsplit("/", 1)[1]] == RESPONSES_REQUEST.json_schema()
    assert {"get", "delete"} <= set(doc["paths"]["/v1/responses/{id}"])
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert doc["components"]["schemas"][ref.rsplit("/", 1)[1]] == schema.CHAT_REQUEST.json_schema()
    assert {"200", "400", "404", "415", "429"} <= set(chat["responses"])
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    props = doc["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert props["temperature"]["type"] == ["number", "null"] and props["temperature"]["maximum"] == 2.0


def test_the_files_and_jobs_routes_are_published(daemon):
    doc = httpx.get(daemon.root + "/openapi.json").json()
    paths = doc["paths"]
    assert {"post", "get"} <= set(paths["/v1/files"]) and {"get", "delete"} <= set(paths["/v1/files/{id}"])
    for path in ("/v1/files/{id}/content", "/v1/fine_tuning/jobs/{id}", "/v1/fine_tuning/jobs/{id}/events",
                 "/v1/fine_tuning/jobs/{id}/checkpoints"):  # fmt: skip
        assert "get" in paths[path] and "404" in paths[path]["get"]["responses"]
    assert "post" in paths["/v1/fine_tuning/jobs/{id}/cancel"]
    create = paths["/v1/fine_tuning/jobs"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    components = doc["components"]["schemas"]
    assert components[ref.rsplit("/", 1)[1]] == schema.JOB_REQUEST.json_schema()  # the tree the route parses with
    assert components["FineTuningJobRequest"]["additionalProperties"] is False
    upload = paths["/v1/files"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["required"] == ["file", "purpose"]
    listed = paths["/v1/fine_tuning/jobs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert components[listed["$ref"].rsplit("/", 1)[1]]["properties"]["data"]["items"] == {
        "$ref": "#/components/schemas/FineTuningJob"
    }


def test_routes_of_other_modules_publish_their_pydantic_models():
    from pydantic import BaseModel

    class Part(BaseModel):
        name: str

    class JobRequest(BaseModel):
        kind: str
        parts: list[Part] = []

    class Job(BaseModel):
        id: str

    openapi.register("POST", "/v1/test-jobs", "start a job", request=JobRequest, response=Job, errors=(404,))
    try:
        doc = openapi.document("t")
        op = doc["paths"]["/v1/test-jobs"]["post"]
        assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobRequest"}
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Job"}
        components = doc["components"]["schemas"]
        assert components["JobRequest"]["properties"]["parts"]["items"] == {"$ref": "#/components/schemas/Part"}
        assert "Part" in components and "404" in op["responses"]
    finally:
        openapi._ROUTES.pop(("POST", "/v1/test-jobs"))


@pytest.fixture
def api_schema(daemon):
    return schemathesis.openapi.from_dict(httpx.get(daemon.root + "/openapi.json").json())


api = schemathesis.pytest.from_fixture("api_schema")


def _negative(case) -> bool:  # type: ignore[no-untyped-def]
    """Whether schemathesis made this case invalid on purpose (then no list is cut: the invalid item may be late)."""
    meta = getattr(case, "_meta", None)
    return meta is not None and str(getattr(meta.generation.mode, "value", meta.generation.mode)) == "negative"


def _bounded(body: object, seed: str, negative: bool = False) -> None:
    """Keep generation short (bounded time): at most 8 tokens, 2 choices, 3 prompts or input items; half the cases
    name the model.

    Only valid values are changed: a field schemathesis made invalid on purpose stays invalid (it must be refused).
    """
    if not isinstance(body, dict):
        return
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if isinstance(body.get(key), int) and not isinstance(body.get(key), bool) and body[key] >= 1:
            body[key] = min(body[key], 8)
    if "input" in body:  # /v1/responses
        body.setdefault("max_output_tokens", 4)
    elif "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = 4
    if isinstance(body.get("n"), int) and not isinstance(body.get("n"), bool) and 1 <= body["n"] <= schema.MAX_N:
        body["n"] = min(body["n"], 2)
    if isinstance(body.get("prompt"), list) and not negative:
        body["prompt"] = body["prompt"][:3]
    for key in ("messages", "input"):
        if isinstance(body.get(key), list) and not negative:
            body[key] = body[key][:4]
    if isinstance(body.get("model"), str) and body["model"] and int(hashlib.sha1(seed.encode()).hexdigest(), 16) % 2:
        body["model"] = MODEL_ID


@api.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_schema(case, daemon):
    _bounded(case.body, repr(case.body), _negative(case))
    # Every check but one: a schema-valid body may still be refused with a 400 for what a JSON Schema cannot say
    # (a prompt beyond the context window, stream_options without stream, logprobs or tools asked for).
    case.call_and_validate(
        base_url=daemon.root, timeout=120, excluded_checks=[schemathesis.checks.positive_data_acceptance]
    )
