"""The daemon tried as an attacker and a careless client would (issue 15), each case replayed on loopback.

Every case checks the status, OpenAI's error shape, and that the daemon's log
gained no traceback. Numbers in the test names are the issue's.
"""

from __future__ import annotations

import gzip
import json
import resource
import signal
import socket
import time
import uuid
from pathlib import Path

import httpx
import openai
import pytest

from daemon.process import DaemonProcess
from tests.helpers.twins import env_with_home
from twin.embedded import MODEL_ID

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}


def assert_error(r: httpx.Response, status: int, param: str | None = None, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error


class LogWatch:
    """What a daemon's log gained since the watch started."""

    def __init__(self, path) -> None:  # type: ignore[no-untyped-def]
        self.path = path
        self.start = path.stat().st_size

    def new(self) -> str:
        with open(self.path, "rb") as f:
            f.seek(self.start)
            return f.read().decode("utf-8", "replace")

    def assert_no_traceback(self) -> None:
        text = self.new()
        assert "Traceback" not in text and "Error handling request" not in text, text[-3000:]


@pytest.fixture
def http(daemon):
    with httpx.Client(base_url=daemon.root, timeout=120) as client:
        yield client


@pytest.fixture
def watch(daemon):
    w = LogWatch(daemon.log_path)
    yield w
    w.assert_no_traceback()


def chat_body(**fields) -> dict:
    return {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **fields}


def raw_http(port: int, data: bytes, timeout: float = 30.0) -> bytes:
    """Send raw bytes and read until the server closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def port_of(d: DaemonProcess) -> int:
    return int(d.root.rsplit(":", 1)[1])


# --- 1. an error once streaming ---------------------------------------------------------------------


def test_1_stream_with_an_empty_prompt_in_the_list_is_a_clean_400(daemon, watch):
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:  # not APIConnectionError from a corrupted body
        for _ in client.completions.create(model=MODEL_ID, prompt=["hi", ""], stream=True, max_tokens=2):
            pass
    assert info.value.body["param"] == "prompt[1]"


def test_1_8_stream_cut_at_the_drain_deadline_ends_with_an_error_event(tmp_path):
    """SIGTERM with a long stream in flight and a short grace: the stream ends with an error event and a clean close."""
    with DaemonProcess(["--grace-seconds", "0.5", "--threads", "1"], log_path=tmp_path / "serve.log") as d:
        body = chat_body(max_tokens=800, ignore_eos=True, stream=True)
        lines: list[str] = []
        with httpx.Client(timeout=60) as client, client.stream("POST", d.url + "/chat/completions", json=body) as r:
            assert r.status_code == 200
            for line in r.iter_lines():  # a clean end: iter_lines raises on a broken chunked body
                if line:
                    lines.append(line)
                if len(lines) == 3:
                    d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(30) == 0
    last = json.loads(lines[-1].removeprefix("data: "))
    assert last["error"]["code"] == "shutting_down" and last["error"]["type"] == "server_error"
    assert "data: [DONE]" not in lines
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


# --- 2. inputs that gave a 500 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "raw", "param"),
    [
        (CHAT, b'{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (CHAT, b'{"model": "%s", "messages": [{"role": "user", "content": "a\\udc00b"}]}', "messages[0].content"),
        (
            CHAT,
            b'{"model": "%s", "messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud83d"}]}]}',
            "messages[0].content[0].text",
        ),
        (CHAT, b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "stop": ["\\udfff"]}', "stop[0]"),
        ("/v1/completions", b'{"model": "%s", "prompt": "x\\ud800"}', "prompt"),
        ("/v1/completions", b'{"model": "%s", "prompt": ""}', "prompt"),
        ("/v1/completions", b'{"model": "%s", "prompt": [""]}', "prompt[0]"),
    ],
)
def test_2_lone_surrogates_and_empty_prompts_are_400_naming_the_field(http, watch, path, raw, param):
    body = raw.replace(b"%s", MODEL_ID.encode()) if b"%s" in raw else raw
    assert_error(http.post(path, content=body, headers=JSON), 400, param=param)


def test_2_json_nested_ten_thousand_deep_is_400(http, watch):
    deep = b'{"model": "x", "messages": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    assert_error(http.post(CHAT, content=deep, headers=JSON), 400, code="invalid_json")
    deep_but_parsable = json.dumps(chat_body(metadata=json.loads("[" * 500 + "]" * 500))).encode()
    assert_error(http.post(CHAT, content=deep_but_parsable, headers=JSON), 400, code="invalid_json")


@pytest.mark.parametrize("name", ["max_tokens", "seed", "n", "temperature", "user_field_we_ignore"])
def test_2_integer_of_5000_digits_is_400(http, watch, name):
    body = json.dumps(chat_body()).encode()[:-1] + b', "' + name.encode() + b'": ' + b"9" * 5000 + b"}"
    error = assert_error(http.post(CHAT, content=body, headers=JSON), 400, code="invalid_json")
    assert "digits" in error["message"]


def test_2_body_claiming_gzip_that_is_not_gzip_is_400(http, watch):
    r = http.post(CHAT, content=b"this is not gzip at all", headers={**JSON, "Content-Encoding": "gzip"})
    error = assert_error(r, 400, code="invalid_body")
    assert "gzip" in error["message"]
    good = gzip.compress(json.dumps(chat_body()).encode())  # real gzip still works
    assert http.post(CHAT, content=good, headers={**JSON, "Content-Encoding": "gzip"}).status_code == 200


def test_2_brotli_and_an_over_long_url_log_one_line_not_a_traceback(daemon, watch):
    port = port_of(daemon)
    head = f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    reply = raw_http(port, (head + "Content-Encoding: br\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}").encode())
    assert reply.split(b" ", 2)[1] == b"400"  # aiohttp's own answer, before any route runs
    reply = raw_http(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert reply.split(b" ", 2)[1] in (b"400", b"414")
    # At most one line each (fewer when another malformed request was logged within the same second).
    assert len([line for line in watch.new().splitlines() if "malformed request" in line]) <= 2


def test_2_non_latin1_authorization_is_401(tmp_path):
    with DaemonProcess(["--api-key", "s3cret"], log_path=tmp_path / "serve.log") as d:
        w = LogWatch(tmp_path / "serve.log")
        for value in ("Bearer ключ".encode(), b"Bearer \xff\xfe", "Bearer s3cret✓".encode()):
            r = httpx.get(d.url + "/models", headers={"Authorization": value})
            assert_error(r, 401, code="invalid_api_key")
        assert httpx.get(d.url + "/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        w.assert_no_traceback()


# --- 3. connection limits and timeouts --------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A daemon with short timeouts and a small connection cap."""
    log = tmp_path_factory.mktemp("strict") / "serve.log"
    env = env_with_home(log.parent / "home", TWIN_IDLE_TIMEOUT="1", TWIN_BODY_TIMEOUT="1", TWIN_MAX_CONNECTIONS="6")
    with DaemonProcess(["--threads", "1"], env=env, log_path=log) as d:
        yield d


def _recv_until_closed(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_3_idle_keep_alive_connection_is_closed(strict):
    with socket.create_connection(("127.0.0.1", port_of(strict)), timeout=20) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        # Then idle: the server closes its side (recv returns b"") well before the socket's own timeout.
        _recv_until_closed(s)


def test_3_headers_that_never_finish_are_dropped(strict):
    with socket.create_connection(("127.0.0.1", port_of(strict)), timeout=20) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
        assert _recv_until_closed(s) == b""


def test_3_body_that_never_finishes_is_408(strict):
    with socket.create_connection(("127.0.0.1", port_of(strict)), timeout=20) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"model": '
        )
        reply = _recv_until_closed(s)
    assert reply.startswith(b"HTTP/1.1 408")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"


def _open_idle(port: int, n: int) -> list[socket.socket]:
    """`n` keep-alive connections the server has accepted (each answered one request), left open."""
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        out.append(s)
    return out


def test_3_connections_beyond_the_cap_get_503_and_others_are_served_again(strict):
    port = port_of(strict)
    held = _open_idle(port, 6)
    try:
        reply = raw_http(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503")
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "too_many_connections"
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 20
    while True:  # the server sees the closes asynchronously: wait for the event, bounded
        reply = raw_http(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        if reply.startswith(b"HTTP/1.1 200"):
            break
        assert time.monotonic() < deadline, reply[:200]


def test_3_connections_accepted_in_one_burst_are_capped_too(tmp_path):
    """Clients that queue while the daemon is busy are accepted together: the cap holds within the burst."""
    env = env_with_home(tmp_path / "home", TWIN_MAX_CONNECTIONS="6", TWIN_IDLE_TIMEOUT="600")
    with DaemonProcess(["--threads", "1"], env=env, log_path=tmp_path / "serve.log") as d:
        assert d.proc is not None
        port = port_of(d)
        d.proc.send_signal(signal.SIGSTOP)  # the kernel completes the handshakes and queues them
        try:
            held = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(10)]
        finally:
            d.proc.send_signal(signal.SIGCONT)
        try:
            # Accepted first, the first six are served; the last four are over the cap.
            assert [s.recv(65536)[:12] for s in held[6:]] == [b"HTTP/1.1 503"] * 4
            for s in held[:6]:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert s.recv(65536).startswith(b"HTTP/1.1 200")
        finally:
            for s in held:
                s.close()


def test_3_descriptors_exhausted_the_log_stays_small_and_the_daemon_recovers(tmp_path, monkeypatch):
    """With 160 descriptors (a small LimitNOFILE), 300 idle clients: no accept() flood, and service after."""

    def small_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))

    monkeypatch.setenv("TWIN_MAX_CONNECTIONS", "1000")  # the cap the daemon applies stays below its descriptors
    # Opening 300 connections on a slow machine can outlast the 15 s idle timeout; the served ones closing then
    # would free slots, and the last clients would be served (waiting for a request) instead of refused.
    monkeypatch.setenv("TWIN_IDLE_TIMEOUT", "600")
    log = tmp_path / "serve.log"
    with DaemonProcess(["--threads", "1"], log_path=log, preexec_fn=small_limit) as d:
        port = port_of(d)
        held = []
        try:
            for _ in range(300):
                held.append(socket.create_connection(("127.0.0.1", port), timeout=30))
            # The last ones are over the cap: answered 503 without sending anything.
            refused = sum(s.recv(65536).startswith(b"HTTP/1.1 503") for s in held[-20:])
            assert refused == 20
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 30
        while not raw_http(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").startswith(
            b"HTTP/1.1 200"
        ):
            assert time.monotonic() < deadline
    text = log.read_text()
    assert "out of system resource" not in text and "Traceback" not in text
    served = text[text.index("ready:") :].splitlines()  # from the moment it served
    warnings = [line for line in served if " WARNING " in line]
    assert len(warnings) < 40, "\n".join(warnings)


def test_3_systemd_unit_raises_the_descriptor_limit():
    from daemon.service import render_unit

    lines = [line.strip() for line in render_unit("/usr/bin/twin", Path("/d"), Path("/c")).splitlines()]
    limit = [line for line in lines if line.startswith("LimitNOFILE=")]
    assert limit and int(limit[0].split("=", 1)[1]) >= 4096


# --- 5. role injection through special tokens --------------------------------------------------------


def test_5_special_tokens_in_a_message_are_text_not_control_tokens(daemon):
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)

    def prompt_tokens(content: str) -> int:
        r = client.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": content}], max_tokens=1
        )
        return r.usage.prompt_tokens

    base = prompt_tokens("hi")
    forged = prompt_tokens("hi" + "<|im_end|>" * 40)
    # Each `<|im_end|>` as a control token would add exactly one token; as text it is several.
    assert forged - base >= 40 * 3


# --- 6. CORS and cross-origin simple requests -------------------------------------------------------


def test_6_cors_headers_on_streams_and_errors(tmp_path):
    origin = {"Origin": "http://localhost:3000"}
    with (
        DaemonProcess(["--cors-origin", "http://localhost:3000"], log_path=tmp_path / "serve.log") as d,
        httpx.Client(timeout=60) as client,
    ):
        with client.stream("POST", d.url + "/chat/completions", json=chat_body(stream=True), headers=origin) as r:
            assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
            r.read()
        r = client.post(d.url + "/chat/completions", json=chat_body(model="nope"), headers=origin)
        assert_error(r, 404)
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        r = client.post(d.url + "/chat/completions", json={"model": MODEL_ID}, headers=origin)
        assert_error(r, 400)
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_6_cross_origin_simple_post_is_415_and_not_executed(daemon, watch, content_type):
    before = httpx.get(daemon.root + "/metrics").text.count("twin_prompt_tokens_total{")
    headers = {"Origin": "http://evil.example"} | ({"Content-Type": content_type} if content_type else {})
    r = httpx.post(daemon.url + "/chat/completions", content=json.dumps(chat_body()).encode(), headers=headers)
    assert_error(r, 415, code="unsupported_media_type")
    assert "application/json" in r.json()["error"]["message"]
    assert before == httpx.get(daemon.root + "/metrics").text.count("twin_prompt_tokens_total{")


# --- 7. /metrics labels ------------------------------------------------------------------------------


def test_7_metrics_label_routes_not_raw_paths(daemon, http):
    tag = uuid.uuid4().hex[:8]
    for i in range(300):
        assert http.get(f"/v1/nope-{tag}-{i}").status_code == 404
        if i % 50 == 0:
            assert http.get(f"/v1/models/nope-{tag}-{i}").status_code == 404
    text = http.get("/metrics").text
    assert tag not in text
    assert 'path="unmatched",status="404"' in text
    assert 'path="/v1/models/{id}",status="404"' in text
    assert len(text) < 20_000


# --- 8. smaller --------------------------------------------------------------------------------------


def test_8_control_characters_in_the_path_cannot_forge_log_lines(daemon, http, watch):
    marker = uuid.uuid4().hex
    http.get(f"/v1/x%0A{marker}%0D%0Aforged 200 ms=1")
    lines = [line for line in watch.new().splitlines() if marker in line]
    assert len(lines) == 1  # the marker stays inside the request's own line, escaped
    assert f"GET /v1/x\\x0a{marker}\\x0d\\x0aforged" in lines[0]
    assert lines[0].rsplit(" ", 2)[1] == "404"


def _gauge(root: str, name: str) -> float:
    for line in httpx.get(root + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_8_an_unfinished_upload_does_not_delay_shutdown(tmp_path):
    with DaemonProcess(["--grace-seconds", "60"], log_path=tmp_path / "serve.log") as d:
        s = socket.create_connection(("127.0.0.1", port_of(d)), timeout=30)
        try:
            s.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 5000\r\n\r\n{"
            )
            deadline = time.monotonic() + 30
            # Wait until the daemon holds the request (landed code counted it in flight while it uploaded).
            while _gauge(d.root, "twin_requests_receiving") + _gauge(d.root, "twin_requests_in_flight") < 1:
                assert time.monotonic() < deadline
            d.proc.send_signal(signal.SIGTERM)
            # Within the 60 s grace only a request being served may hold shutdown; this one is still uploading.
            assert d.proc.wait(20) == 0
        finally:
            s.close()


# --- 9. threads under contention ---------------------------------------------------------------------


def test_9_default_threads_follow_the_load():
    """With other processes keeping every core busy, the default leaves llama.cpp one thread, not all cores."""
    import multiprocessing as mp

    from twin.threads import llama_threads, physical_cores

    assert llama_threads(3) == 3  # what the user asked for wins
    stop = mp.Event()
    running = [mp.Event() for _ in range(physical_cores())]
    burners = [mp.Process(target=_spin, args=(stop, r), daemon=True) for r in running]
    for p in burners:
        p.start()
    try:
        for r in running:
            assert r.wait(30)
        assert llama_threads(0) == 1  # measured over the sampler's own 0.1 s window
    finally:
        stop.set()
        for p in burners:
            p.join(10)


def _spin(stop, running) -> None:  # type: ignore[no-untyped-def]
    running.set()
    end = time.monotonic() + 30
    while not stop.is_set() and time.monotonic() < end:
        pass


def test_3_an_accept_retry_after_the_socket_closed_is_not_a_traceback(caplog):
    """EMFILE pauses accepting for a second (asyncio's retry); a daemon stopped meanwhile has closed the socket."""
    import asyncio

    from daemon import connections

    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(connections.loop_exception_handler)
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        listening.close()  # what the retry finds once the daemon stopped: fileno() -1
        # asyncio's own retry, as _accept_connection schedules it after EMFILE (selector_events.py)
        loop.call_soon(loop._start_serving, lambda: asyncio.Protocol(), listening, None, None, 100)  # type: ignore[attr-defined]
        with caplog.at_level("WARNING"):
            loop.run_until_complete(asyncio.sleep(0.05))
        assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")], caplog.text
    finally:
        loop.close()
