"""The Responses API (/v1/responses) through the official openai SDK, against the real daemon on the embedded model."""

from __future__ import annotations

import json
import signal

import httpx
import openai
import pytest

from daemon.process import DaemonProcess
from daemon.responses.store import ResponseStore
from twin.embedded import MODEL_ID
from twin.errors import UserError

QUESTION = "What is the capital of France? Answer in one sentence."
GREEDY = dict(model=MODEL_ID, temperature=0, max_output_tokens=80)
OPENING = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
CLOSING = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


@pytest.fixture
def client(daemon) -> openai.OpenAI:
    return openai.OpenAI(base_url=daemon.url, api_key="unused", max_retries=0)


def _chat(
    client: openai.OpenAI, messages: list[dict[str, str]], max_tokens: int = 80
) -> openai.types.chat.ChatCompletion:
    """The same conversation through chat completions, with the same settings."""
    return client.chat.completions.create(model=MODEL_ID, messages=messages, temperature=0, max_tokens=max_tokens)


def test_create_answers_as_the_chat_route_does_and_is_stored(client):
    reply = client.responses.create(**GREEDY, input=QUESTION, instructions="You are terse.", metadata={"k": "v"})
    assert reply.object == "response" and reply.id.startswith("resp_")
    assert reply.status == "completed" and reply.error is None
    assert "Paris" in reply.output_text
    message = reply.output[0]
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert reply.instructions == "You are terse." and reply.metadata == {"k": "v"}
    # One engine: the same conversation through chat completions gives the same text and token counts.
    chat = _chat(client, [{"role": "system", "content": "You are terse."}, {"role": "user", "content": QUESTION}])
    assert reply.output_text == chat.choices[0].message.content
    assert reply.usage.input_tokens == chat.usage.prompt_tokens
    assert reply.usage.output_tokens == chat.usage.completion_tokens
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens

    again = client.responses.retrieve(reply.id)
    assert again.output_text == reply.output_text and again.usage == reply.usage
    client.responses.delete(reply.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(reply.id)


def test_stream_sends_openai_events_in_order(client):
    with client.responses.stream(**GREEDY, input=QUESTION) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    deltas = types.count("response.output_text.delta")
    assert deltas > 1
    assert types == [*OPENING, *["response.output_text.delta"] * deltas, *CLOSING, "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == final.output_text == events[-4].text
    assert final.usage is not None and final.usage.output_tokens > 0
    assert {e.response.id for e in events if hasattr(e, "response")} == {final.id}
    assert final.output_text == client.responses.create(**GREEDY, input=QUESTION).output_text
    assert client.responses.retrieve(final.id).output_text == text


def test_stream_cut_by_max_output_tokens_ends_incomplete(client):
    with client.responses.stream(model=MODEL_ID, input=QUESTION, max_output_tokens=3) as stream:
        events = list(stream)
    assert [e.type for e in events][-4:] == [*CLOSING, "response.incomplete"]
    last = events[-1].response
    assert last.status == "incomplete" and last.incomplete_details.reason == "max_output_tokens"
    assert last.usage.output_tokens == 3


def test_the_wire_names_each_event(daemon):
    body = {"model": MODEL_ID, "input": "Say hello.", "max_output_tokens": 4, "stream": True}
    with httpx.Client(timeout=60) as http, http.stream("POST", daemon.url + "/responses", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(r.iter_raw()).decode()
    frames = [f for f in raw.split("\n\n") if f]
    for frame in frames:
        event, data = frame.split("\n")
        assert event.removeprefix("event: ") == json.loads(data.removeprefix("data: "))["type"]
    assert "[DONE]" not in raw


def test_previous_response_id_chains_two_turns(client):
    short = GREEDY | {"max_output_tokens": 24}
    first = client.responses.create(**short, input="My name is Alice. Say hi to me.", instructions="Be kind.")
    second = client.responses.create(**short, input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    # The second turn read the first (without its instructions, as OpenAI does): the same turns through chat
    # completions make a prompt of as many tokens. (Not the same text: the slot's cache of the first turn
    # changes how the prompt is evaluated, and greedy decoding may part ways after a few words.)
    chat = _chat(
        client,
        [
            {"role": "user", "content": "My name is Alice. Say hi to me."},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "What is my name?"},
        ],
        max_tokens=1,
    )
    assert second.usage.input_tokens == chat.usage.prompt_tokens > first.usage.total_tokens

    # A list of input items with text parts continues the chain as well.
    third = client.responses.create(
        **GREEDY | {"max_output_tokens": 2},
        previous_response_id=second.id,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Thanks!"}]}],
    )
    assert third.usage.input_tokens > second.usage.total_tokens


def test_the_twin_field_conditions_the_prompt_as_on_the_chat_route(client):
    twin = {"extra_body": {"twin": {"talking_to": "Mum"}}}
    hi = [{"role": "user", "content": "Hi!"}]
    plain = client.responses.create(model=MODEL_ID, input="Hi!", max_output_tokens=1)
    told = client.responses.create(model=MODEL_ID, input="Hi!", max_output_tokens=1, **twin)
    chat = client.chat.completions.create(model=MODEL_ID, messages=hi, max_tokens=1, **twin)
    # The line replaces the template's default system prompt, so only a difference is certain.
    assert told.usage.input_tokens == chat.usage.prompt_tokens != plain.usage.input_tokens


def test_an_unstored_response_cannot_be_continued(client):
    reply = client.responses.create(model=MODEL_ID, input="Hi.", max_output_tokens=4, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(reply.id)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=MODEL_ID, input="And?", max_output_tokens=4, previous_response_id=reply.id)
    assert info.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(reply.id)


TOOL = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"tools": [TOOL]}, "tools"),
        ({"reasoning": {"effort": "low"}}, "reasoning"),
        ({"background": True}, "background"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"temperature": 5}, "temperature"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input[0].content[0]"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": "{}"}]}, "input[0].type"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"model": "no-such-model"}, "model"),
    ],
)
def test_a_field_it_cannot_honour_is_a_400_naming_it(client, extra, param):
    args = {"model": MODEL_ID, "input": "Hi.", "max_output_tokens": 4, **extra}
    error = openai.NotFoundError if param == "model" else openai.BadRequestError
    with pytest.raises(error) as info:
        client.responses.create(**args)
    body = info.value.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] == param and body["error"]["type"] == "invalid_request_error"


def test_text_format_json_schema_constrains_the_reply(client):
    city = {"type": "string", "enum": ["Berlin", "London", "Paris"]}
    schema = {"type": "object", "properties": {"city": city}, "required": ["city"]}
    reply = client.responses.create(
        model=MODEL_ID,
        input=QUESTION,
        max_output_tokens=40,
        temperature=0,
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema}},
    )
    assert reply.text.format.type == "json_schema"
    assert json.loads(reply.output_text)["city"] in city["enum"]


def test_a_stream_cut_by_shutdown_ends_with_error_and_response_failed(tmp_path):
    with DaemonProcess(["--grace-seconds", "0.5", "--threads", "1"], log_path=tmp_path / "serve.log") as d:
        body = {
            "model": MODEL_ID,
            "input": "Tell a story.",
            "max_output_tokens": 800,
            "extra_body": {"ignore_eos": True},
        }
        client = openai.OpenAI(base_url=d.url, api_key="unused", max_retries=0)
        types = []
        with client.responses.stream(**body) as stream:
            for event in stream:
                types.append(event.type)
                if types.count("response.output_text.delta") == 2:
                    d.proc.send_signal(signal.SIGTERM)
                if event.type == "response.failed":
                    failed = event.response
        assert d.proc.wait(30) == 0
    assert types[-2:] == ["error", "response.failed"]
    assert failed.status == "failed" and failed.error.code == "server_error"
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


# --- the store -------------------------------------------------------------------------------------


def _response(n: int, created: int, size: int = 100) -> dict:
    return {"id": f"resp_{n}", "created_at": created, "output": "x" * size}


def test_store_keeps_the_newest_within_its_size_bound(tmp_path):
    import time

    store = ResponseStore(tmp_path / "data" / "responses.db", max_bytes=1000, max_age=3600)
    now = int(time.time())
    for n in range(12):
        store.put(_response(n, now), [{"role": "user", "content": f"turn {n}"}])
    assert store.count() < 12 and store.get("resp_11") is not None and store.get("resp_0") is None
    assert store.conversation("resp_11") == [{"role": "user", "content": "turn 11"}]
    assert (tmp_path / "data" / "responses.db").stat().st_mode & 0o777 == 0o600
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == 1
    store.close()


def test_store_forgets_what_is_past_its_age(tmp_path):
    import time

    store = ResponseStore(tmp_path / "responses.db", max_bytes=10**6, max_age=60)
    store.put(_response(1, int(time.time()) - 120), [])
    assert store.get("resp_1") is None and store.conversation("resp_1") is None
    store.put(_response(2, int(time.time())), [])
    assert store.count() == 1  # the expired row went with the next write
    store.close()


def test_store_refuses_a_newer_schema(tmp_path):
    import sqlite3

    path = tmp_path / "responses.db"
    sqlite3.connect(path).execute("PRAGMA user_version = 99").connection.close()
    with pytest.raises(UserError, match="newer twin"):
        ResponseStore(path, max_bytes=10**6, max_age=60)
