"""Many clients at once, a full queue, clients that leave, and SIGTERM with a stream in flight."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time

import httpx
import openai
import pytest

from daemon.process import DaemonProcess
from twin.embedded import MODEL_ID

pytestmark = pytest.mark.slow  # training, conversion or a long generation: left out by `make test-fast`

LONG = [{"role": "user", "content": "Count from one to one thousand in words."}]


def metric(root: str, name: str) -> float:
    text = httpx.get(root + "/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


async def test_eight_parallel_streams_each_get_their_own_coherent_answer(daemon):
    questions = [f"What is {a} plus {a}? Answer with the number only." for a in range(1, 9)]
    client = openai.AsyncOpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    args = dict(model=MODEL_ID, max_tokens=16, temperature=0, seed=0)

    async def streamed(q: str) -> tuple[str, str | None]:
        text, finish = "", None
        async for chunk in await client.chat.completions.create(
            messages=[{"role": "user", "content": q}], stream=True, **args
        ):
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        return text, finish

    results = await asyncio.gather(*(streamed(q) for q in questions))
    # Greedy decoding: each stream must equal the answer the same question gets alone,
    # so no stream received another one's tokens.
    for q, (text, finish) in zip(questions, results, strict=True):
        alone = await client.chat.completions.create(messages=[{"role": "user", "content": q}], **args)
        assert finish in ("stop", "length")
        assert text == alone.choices[0].message.content
        assert text.strip()
    await client.close()


def test_full_queue_answers_429_with_retry_after(tmp_path):
    with DaemonProcess(["--queue-size", "1", "--parallel", "2"], log_path=tmp_path / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)
        streams = [
            client.chat.completions.create(
                model=MODEL_ID, messages=LONG, max_tokens=400, stream=True, extra_body={"ignore_eos": True}
            )
            for _ in range(2)
        ]
        for stream in streams:
            next(iter(stream))  # both slots are now busy
        running = streams[0]

        waiting_result = {}

        def waiting() -> None:
            waiting_result["reply"] = client.chat.completions.create(model=MODEL_ID, messages=LONG, max_tokens=2)

        thread = threading.Thread(target=waiting)
        thread.start()
        wait_for(lambda: metric(d.root, "twin_queue_depth") == 1)

        r = httpx.post(d.url + "/chat/completions", json={"model": MODEL_ID, "messages": LONG, "max_tokens": 2})
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        assert r.json()["error"]["type"] == "rate_limit_error"

        running.close()  # leave: the waiting request gets the freed slot
        thread.join(60)
        assert waiting_result["reply"].usage.completion_tokens <= 2
        streams[1].close()


def test_client_that_disconnects_frees_the_model(daemon):
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    before = metric(daemon.root, "twin_completion_tokens_total")
    stream = client.chat.completions.create(
        model=MODEL_ID, messages=LONG, max_tokens=900, stream=True, extra_body={"ignore_eos": True}, temperature=0
    )
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received >= 3:
            break
    stream.close()

    # The next request is served, and the abandoned generation had stopped before its 900 tokens
    # (how many it wrote before noticing depends on the machine's speed).
    reply = client.chat.completions.create(
        model=MODEL_ID, messages=LONG, max_tokens=4, temperature=0, extra_body={"ignore_eos": True}
    )
    assert reply.usage.completion_tokens == 4
    wait_for(lambda: "client_disconnected" in daemon.log_path.read_text())
    abandoned = metric(daemon.root, "twin_completion_tokens_total") - before - reply.usage.completion_tokens
    assert 3 <= abandoned < 100
    line = [ln for ln in daemon.log_path.read_text().splitlines() if "client_disconnected" in ln][-1]
    assert int(re.search(r"completion_tokens=(\d+)", line).group(1)) == abandoned


def test_sigterm_lets_the_stream_finish_then_exits_zero(tmp_path):
    # A grace period no machine's token speed runs out of: the test is about finishing, not about how fast.
    d = DaemonProcess(["--grace-seconds", "600"], log_path=tmp_path / "serve.log").start()
    try:
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model=MODEL_ID,
            messages=LONG,
            max_tokens=60,
            stream=True,
            extra_body={"ignore_eos": True},
            stream_options={"include_usage": True},
        )
        chunks = iter(stream)
        next(chunks)
        d.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "shutting down" in d.log_path.read_text())  # the daemon has seen the signal

        try:
            refused = httpx.post(
                d.url + "/chat/completions", json={"model": MODEL_ID, "messages": LONG, "max_tokens": 2}
            )
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
        except httpx.ConnectError:
            pass  # a refused connection is fine too

        rest = list(chunks)
        assert rest[-1].usage.completion_tokens == 60
        assert rest[-2].choices[0].finish_reason == "length"
        assert d.proc.wait(60) == 0
    finally:
        d.stop()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_idle_daemon_stops_cleanly(tmp_path, sig):
    d = DaemonProcess([], log_path=tmp_path / "serve.log").start()
    d.proc.send_signal(sig)
    assert d.proc.wait(30) == 0
    assert "stopped" in (tmp_path / "serve.log").read_text()
