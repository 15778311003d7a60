"""Every error the daemon answers, over raw HTTP: status and OpenAI's error shape."""

from __future__ import annotations

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from daemon.catalog import base_spec
from daemon.engine import Engine
from daemon.server import State, build_app
from twin.config import ServeSettings
from twin.embedded import MODEL_ID

CHAT = "/v1/chat/completions"


def assert_error(response: httpx.Response, status: int, param: str | None = None, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
        assert param.split(".")[0].split("[")[0] in error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture
def http(daemon):
    with httpx.Client(base_url=daemon.root, timeout=60) as client:
        yield client


def chat(**fields):
    return {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **fields}


def test_malformed_json_is_400(http):
    r = http.post(CHAT, content=b'{"model": "x", "messages": [', headers={"content-type": "application/json"})
    assert_error(r, 400, code="invalid_json")


def test_body_must_be_an_object(http):
    assert_error(http.post(CHAT, json=[1, 2]), 400)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"n": 100}, "n"),
        ({"n": 0}, "n"),
        ({"seed": "abc"}, "seed"),
        ({"stop": 5}, "stop"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"presence_penalty": 9}, "presence_penalty"),
        ({"frequency_penalty": "x"}, "frequency_penalty"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"messages": []}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0]",
        ),
        ({"logprobs": "yes"}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "frob"}}}},
            "response_format",
        ),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ],
)
def test_wrong_field_is_400_naming_it(http, fields, param):
    assert_error(http.post(CHAT, json=chat(**fields)), 400, param=param)


def test_missing_model_is_400(http):
    body = chat()
    del body["model"]
    assert_error(http.post(CHAT, json=body), 400, param="model")


def test_unknown_model_is_404_never_a_fallback(http):
    error = assert_error(http.post(CHAT, json=chat(model="gpt-4o")), 404, param="model", code="model_not_found")
    assert MODEL_ID in error["message"]  # says what is available
    assert_error(http.get("/v1/models/gpt-4o"), 404, code="model_not_found")
    assert_error(http.post("/v1/completions", json={"model": "nope", "prompt": "x"}), 404, code="model_not_found")


def test_prompt_longer_than_the_context_is_400_never_truncated(http):
    long = "word " * 1500  # the session daemon runs with --n-ctx 1024
    r = http.post(CHAT, json=chat(messages=[{"role": "user", "content": long}]))
    assert_error(r, 400, param="messages", code="context_length_exceeded")
    r = http.post("/v1/completions", json={"model": MODEL_ID, "prompt": long})
    assert_error(r, 400, param="prompt", code="context_length_exceeded")
    # prompt + max_tokens beyond the window is refused too, as OpenAI does
    r = http.post(CHAT, json=chat(max_tokens=1020))
    assert_error(r, 400, code="context_length_exceeded")


def test_streaming_request_with_too_long_prompt_fails_before_streaming(http):
    r = http.post(CHAT, json=chat(stream=True, messages=[{"role": "user", "content": "word " * 1500}]))
    assert_error(r, 400, code="context_length_exceeded")


def test_body_over_the_cap_is_413(http):
    huge = chat(messages=[{"role": "user", "content": "x" * 1_200_000}])
    assert_error(http.post(CHAT, json=huge), 413, code="request_too_large")


def test_foreign_host_header_is_403(http):
    r = http.post(CHAT, json=chat(), headers={"Host": "evil.example:8642"})
    assert_error(r, 403, code="forbidden_host")
    assert http.get("/health", headers={"Host": "attacker.test"}).status_code == 403
    assert http.get("/health", headers={"Host": "localhost:1234"}).status_code == 200
    assert http.get("/health", headers={"Host": "[::1]:1234"}).status_code == 200


def test_unknown_route_and_method_are_openai_shaped(http):
    assert_error(http.get("/v1/nothing-here"), 404, code="unknown_url")
    assert_error(http.get(CHAT), 405)


def test_no_cors_headers_unless_configured(http):
    r = http.get("/v1/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_health_is_503_while_the_model_loads():
    """The real app before its model finished loading (the engine never preloaded)."""
    settings = ServeSettings()
    engine = Engine({MODEL_ID: base_spec()}, queue_size=1, max_loaded=1, n_ctx=512, threads=1)
    client = TestClient(TestServer(build_app(State(settings, engine)), host="127.0.0.1"))
    await client.start_server()
    try:
        r = await client.get("/health")
        assert r.status == 503
        assert (await r.json())["status"] == "loading"
    finally:
        await client.close()
        engine.close()
