"""Fine-tuning job tests: a daemon with its own data directory (the embedded base in its cache), waiting on jobs."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from daemon.process import DaemonProcess
from tests.helpers.twins import env_with_home

FINAL = ("succeeded", "failed", "cancelled")
# A few short steps on the embedded model: the tests exercise the pipeline, not the model's quality.
QUICK = {"quant": "q4_1", "max_length": 64, "calibration_samples": 0}


def start_daemon(home: Path, *args: str, **extra: str) -> DaemonProcess:
    return DaemonProcess(["--model", "default", "--n-ctx", "1024", *args], env=env_with_home(home, **extra),
                         log_path=home / "serve.log").start()  # fmt: skip


def client_for(d: DaemonProcess, key: str = "-") -> openai.OpenAI:
    return openai.OpenAI(base_url=d.url, api_key=key, max_retries=0, timeout=600)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 900) -> Any:
    """Poll `check` until it returns something truthy: the job's own progress is the event waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def wait_final(client: openai.OpenAI, job_id: str, seen: list | None = None) -> Any:
    def final() -> Any:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if seen is not None:
            seen.append(job)
        return job if job.status in FINAL else None

    return wait_for(f"job {job_id} to end", final)


def step_events(client: openai.OpenAI, job_id: str) -> list[Any]:
    """The job's training-step events, oldest first."""
    events = list(client.fine_tuning.jobs.list_events(job_id, limit=100))
    return [e for e in reversed(events) if e.type == "metrics" and e.data and "train_loss" in e.data]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Helpers:
    """The functions above, for tests (conftest modules are not importable under --import-mode=importlib)."""

    FINAL = FINAL
    QUICK = QUICK
    start_daemon = staticmethod(start_daemon)
    client_for = staticmethod(client_for)
    wait_for = staticmethod(wait_for)
    wait_final = staticmethod(wait_final)
    step_events = staticmethod(step_events)
    sha256 = staticmethod(sha256)
    rss_bytes = staticmethod(rss_bytes)


@pytest.fixture(scope="session")
def jobs() -> type[Helpers]:
    return Helpers


@pytest.fixture(scope="module")
def jobs_home(tmp_path_factory: pytest.TempPathFactory, link_embedded_base) -> Path:
    """A data directory for one module's daemon, with the embedded base's HF copy in its cache."""
    home = tmp_path_factory.mktemp("jobs-home")
    link_embedded_base(home)
    return home


@pytest.fixture(scope="module")
def jobs_daemon(jobs_home: Path):
    d = start_daemon(jobs_home)
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def client(jobs_daemon: DaemonProcess) -> openai.OpenAI:
    return client_for(jobs_daemon)
