"""API keys, binding rules, CORS, the per-request log line and /metrics."""

from __future__ import annotations

import subprocess
import sys

import httpx
import openai
import pytest

from daemon.process import DaemonProcess
from twin.embedded import MODEL_ID


def serve(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "twin", "serve", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_non_loopback_bind_without_key_refuses_to_start():
    result = serve("--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "0.0.0.0" in lines[0] and "API key" in lines[0] and "--api-key" in lines[0]
    assert result.stdout == ""


def test_key_is_required_when_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_API_KEY", "s3cret")  # the environment variable works as well as --api-key
    with DaemonProcess([], log_path=tmp_path / "serve.log") as d:
        good = openai.OpenAI(base_url=d.url, api_key="s3cret", max_retries=0)
        assert good.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "hi"}], max_tokens=2)

        bad = openai.OpenAI(base_url=d.url, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            bad.models.list()
        assert info.value.status_code == 401
        assert info.value.body["code"] == "invalid_api_key"

        missing = httpx.get(d.url + "/models")
        assert missing.status_code == 401
        assert missing.json()["error"]["message"].startswith("missing API key")
        assert httpx.get(d.root + "/health").status_code == 200  # health stays open for supervisors


def test_cors_only_for_configured_origins(tmp_path):
    with DaemonProcess(["--cors-origin", "http://localhost:3000"], log_path=tmp_path / "serve.log") as d:
        ok = httpx.get(d.url + "/models", headers={"Origin": "http://localhost:3000"})
        assert ok.headers["access-control-allow-origin"] == "http://localhost:3000"
        pre = httpx.options(
            d.url + "/chat/completions",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
        )
        assert pre.status_code == 204
        assert "POST" in pre.headers["access-control-allow-methods"]
        other = httpx.get(d.url + "/models", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_one_log_line_per_request_without_message_text(daemon):
    marker = "zebra-umbrella-7731"
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": f"Say {marker}"}], max_tokens=3
    )
    log = daemon.log_path.read_text()
    assert marker not in log  # private by default; --log-content turns it on
    line = [line for line in log.splitlines() if "POST /v1/chat/completions 200" in line][-1]
    assert f"model={MODEL_ID}" in line
    assert "prompt_tokens=" in line and "completion_tokens=" in line and "ms=" in line


def test_log_content_logs_messages_when_asked(tmp_path):
    with DaemonProcess(["--log-content"], log_path=tmp_path / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)
        client.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": "Say pelican"}], max_tokens=2
        )
    assert "Say pelican" in (tmp_path / "serve.log").read_text()


def test_metrics_are_prometheus_text(daemon):
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    httpx.post(
        daemon.url + "/chat/completions", json={"model": "missing", "messages": [{"role": "user", "content": "hi"}]}
    )
    r = httpx.get(daemon.root + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for family in (
        "twin_requests_total",
        "twin_prompt_tokens_total",
        "twin_completion_tokens_total",
        "twin_generation_tokens_per_second",
        "twin_queue_depth",
        "twin_requests_in_flight",
    ):
        assert f"# TYPE {family} " in text
    assert 'twin_requests_total{path="/v1/chat/completions",status="200"}' in text
    assert 'twin_requests_total{path="/v1/chat/completions",status="404"}' in text
    speed = [line for line in text.splitlines() if line.startswith("twin_generation_tokens_per_second{")]
    assert speed and float(speed[0].split()[-1]) > 0


def test_health_reports_ready_models(daemon):
    body = httpx.get(daemon.root + "/health").json()
    assert body == {"status": "ok", "models": [MODEL_ID]}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "/nonexistent/model.gguf"], "does not exist"),
        (["--model", "no-such-twin"], "no twin named"),
        (["--port", "70000"], "port"),
        (["--queue-size", "0"], "queue_size"),
    ],
)
def test_bad_serve_options_are_one_line_exit_2(args, needle, tmp_path):
    result = serve(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")
    result = serve("--model", str(fake))
    assert result.returncode == 2
    assert "is not a GGUF file" in result.stderr and result.stderr.count("\n") == 1


def test_port_in_use_is_one_line_exit_2(daemon):
    port = daemon.url.rsplit(":", 1)[1].split("/")[0]
    result = serve("--port", port)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and result.stderr.count("\n") == 1


def test_a_twin_built_while_the_daemon_runs_is_served_without_restart(tmp_path, twin_home):
    from tests.helpers.twins import serve_embedded

    with DaemonProcess([], log_path=tmp_path / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)
        assert [m.id for m in client.models.list().data] == [MODEL_ID]
        serve_embedded("anna")
        assert "anna" in [m.id for m in client.models.list().data]
        reply = client.chat.completions.create(model="anna", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        assert reply.model == "anna" and reply.usage.completion_tokens <= 2
