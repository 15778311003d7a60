"""The stream on the wire, byte for byte as OpenAI sends it, parsed with httpx-sse."""

from __future__ import annotations

import json

import httpx
from httpx_sse import connect_sse

from twin.embedded import MODEL_ID


def test_event_stream_framing(daemon):
    body = {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 6,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.Client(timeout=60) as client, client.stream("POST", daemon.url + "/chat/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(r.iter_raw())
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    assert all(e.startswith(b"data: ") for e in events[:-1])

    with (
        httpx.Client(timeout=60) as client,
        connect_sse(client, "POST", daemon.url + "/chat/completions", json=body) as source,
    ):
        data = [sse.data for sse in source.iter_sse()]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["delta"] == {} and chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6
    assert all(c["usage"] is None for c in chunks[:-1])  # as OpenAI: null until the usage chunk
    whole = httpx.post(daemon.url + "/chat/completions", json=body | {"stream": False, "stream_options": None}).json()
    assert whole["system_fingerprint"].startswith("fp_")
    assert {c["system_fingerprint"] for c in chunks} == {whole["system_fingerprint"]}  # every chunk, as OpenAI


def test_streamed_completion_chunks_carry_the_fingerprint(daemon):
    body = {"model": MODEL_ID, "prompt": "Hello", "max_tokens": 3, "echo": True}
    whole = httpx.post(daemon.url + "/completions", json=body, timeout=60).json()
    with (
        httpx.Client(timeout=60) as client,
        connect_sse(client, "POST", daemon.url + "/completions", json=body | {"stream": True}) as source,
    ):
        chunks = [json.loads(sse.data) for sse in source.iter_sse() if sse.data != "[DONE]"]
    assert whole["system_fingerprint"].startswith("fp_") and len(chunks) >= 2
    assert {c["system_fingerprint"] for c in chunks} == {whole["system_fingerprint"]}
