"""Fixtures of the TUI tests: waiting on a running app, quick sampling, a twin built on disk, a daemon of our own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.twins import twin_on_embedded
from tui.client import Sampling

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
    return twin_on_embedded("alice", SAMPLES, system_prompt="You write short, casual messages.")
