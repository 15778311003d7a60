"""A daemon for the served GGUF's replies: the one configured (`[chat] url`) when it serves the twin, else one started here.

A daemon started for the evaluation runs on a free loopback port with this
process's TWIN_HOME and a one-off API key, and is stopped when the evaluation ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from twin.config import ChatSettings

N_CTX = 4096  # a persona prompt plus a long context can exceed the daemon's default of 2048


@dataclass(frozen=True)
class Served:
    url: str
    api_key: str
    started: bool  # True: started for this evaluation (and stopped after it)


def serves(settings: ChatSettings, model_id: str) -> bool:
    """Whether a daemon answers at `settings.url` and lists `model_id` (False on any failure: then one is started)."""
    import openai

    client = openai.OpenAI(
        base_url=settings.url, api_key=settings.api_key or "not-needed-on-loopback", timeout=3, max_retries=0
    )
    try:
        return any(m.id == model_id for m in client.models.list())
    except openai.OpenAIError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def daemon_for(
    model_id: str, settings: ChatSettings, log_path: Path, threads: int = 0, reuse: bool = True
) -> Iterator[Served]:
    """A daemon serving `model_id` for the duration of the block (`threads` for one started here; 0 = its default).

    `reuse`: the one at `settings.url` when it serves `model_id`; else always one started here.
    """
    if reuse and serves(settings, model_id):
        yield Served(settings.url, settings.api_key, started=False)
        return
    import os
    import secrets

    from daemon.process import DaemonProcess

    # A key of its own: whatever [serve] api_key or TWIN_API_KEY say, this client knows the key (env beats config.toml).
    key = secrets.token_urlsafe(16)
    env = {**os.environ, "TWIN_API_KEY": key}
    args = ["--model", model_id, "--n-ctx", str(N_CTX)] + (["--threads", str(threads)] if threads else [])
    with DaemonProcess(args, env=env, log_path=log_path) as proc:
        yield Served(proc.url, key, started=True)
