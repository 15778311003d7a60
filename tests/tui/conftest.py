"""Fixtures of the TUI tests: waiting on a running app, quick sampling, a twin built on disk, a daemon of our own."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.process import DaemonProcess
from tui.client import Sampling
from twin import embedded, paths, registry

SAMPLES = [
    [("user", "Are you coming tonight?"), ("assistant", "yes!! be there at 8")],
    [
        ("user", "Привет! Как дела?"),
        ("assistant", "норм, а ты как?"),
        ("user", "тоже норм"),
        ("assistant", "ну и отлично 🙂"),
    ],
]


@pytest.fixture
def wait_for() -> Callable:
    """`await wait_for(pilot, condition, "what")`: let the app run until condition() holds (fails after a long while)."""

    async def wait(pilot, condition: Callable[[], object], what: str, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}")
            # A plain sleep, not pilot.pause: pause first waits until the screen has handled every
            # pending message, which during a stream may only happen once the reply is complete.
            await asyncio.sleep(0.05)

    return wait


@pytest.fixture
def quick() -> Sampling:
    """A short reply: the tests check what the app does with replies, not what they say."""
    return Sampling(max_tokens=8, temperature=0.7, seed=7)


@pytest.fixture
def long_reply() -> Sampling:
    """A reply that keeps streaming for seconds (the daemon ignores EOS until max_tokens)."""
    return Sampling(max_tokens=600, temperature=0.7, seed=7, ignore_eos=True)


@pytest.fixture
def built_twin(twin_home: Path) -> str:
    """Twin `alice` in the test's TWIN_HOME: a validation split, the embedded GGUF as its model, a persona."""
    name = "alice"
    folder = paths.private_dir(paths.twin_dir(name))
    paths.private_dir(folder / "dataset")
    lines = [json.dumps({"messages": [{"role": r, "content": c} for r, c in s]}, ensure_ascii=False) for s in SAMPLES]
    (folder / "dataset" / "val.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "model-q4_1.gguf").symlink_to(embedded.embedded_gguf())
    (folder / "persona.json").write_text(
        json.dumps({"system_prompt": "You write short, casual messages."}), encoding="utf-8"
    )
    registry.update(name, "model", {"gguf": "model-q4_1.gguf", "quant": "q4_1"})
    registry.update(name, "persona", {"file": "persona.json", "base": "default"})
    return name


@pytest.fixture
def free_port() -> int:
    """A loopback port nobody listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """`own_daemon(port=None, *args)`: a started daemon of this test only (TWIN_HOME = the test's); all stopped at the end."""
    started: list[DaemonProcess] = []

    def start(port: int | None = None, *extra: str) -> DaemonProcess:
        args = ["--model", "default", "--n-ctx", "512", "--threads", "1", *extra]
        if port is not None:
            args += ["--port", str(port)]
        proc = DaemonProcess(args, env=dict(os.environ), log_path=tmp_path / f"serve-{len(started)}.log")
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()
