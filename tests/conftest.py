"""Test isolation: a temporary TWIN_HOME for every test, no network beyond loopback; the shared daemon and bases.

What is shared and is not a fixture (real full disks, twins on the embedded model) is in tests/helpers/.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

_real_connect = socket.socket.connect


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise AssertionError(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@contextlib.contextmanager
def _session_home(home: Path) -> Iterator[None]:
    """TWIN_HOME = `home` while a session fixture makes what every test then shares."""
    saved = os.environ.get("TWIN_HOME")
    os.environ["TWIN_HOME"] = str(home)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TWIN_HOME"]
        else:
            os.environ["TWIN_HOME"] = saved


@pytest.fixture(scope="session")
def batch_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model's q8_0 copy for batched decoding (daemon.weights), made once for the whole session."""
    from daemon.fingerprint import gguf_sha256
    from daemon.weights import batch_weights
    from twin.embedded import embedded_gguf

    with _session_home(tmp_path_factory.mktemp("weights-home")):
        return batch_weights(embedded_gguf(), gguf_sha256(embedded_gguf()), 2, "auto")


def seed_batch_copy(home: Path, copy: Path) -> None:
    """Link the session's copy into `home`'s cache, where a daemon of that home finds it (1.4 s and 145 MB saved)."""
    folder = home / "cache" / "batch-weights"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / copy.name).exists():
        os.link(copy, folder / copy.name)


@pytest.fixture(autouse=True)
def daemons_find_the_batch_copy(monkeypatch: pytest.MonkeyPatch, batch_copy: Path) -> None:
    """A daemon started by a test finds the embedded model's q8_0 copy in its home's cache, as after its first start."""
    from daemon.process import DaemonProcess

    start = DaemonProcess.start

    def seeded(self: DaemonProcess) -> DaemonProcess:
        if self.env.get("TWIN_HOME"):
            seed_batch_copy(Path(self.env["TWIN_HOME"]), batch_copy)
        return start(self)

    monkeypatch.setattr(DaemonProcess, "start", seeded)


@pytest.fixture(autouse=True)
def twin_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data, config and cache directories; the user's files are never touched."""
    home = tmp_path / "twin-home"
    for var in list(os.environ):
        if var.startswith("TWIN_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("TWIN_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return home


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory, batch_copy: Path):
    """The real daemon on the embedded model, on a free loopback port, shared by the whole session."""
    from daemon.process import DaemonProcess
    from tests.helpers.twins import env_with_home

    home = tmp_path_factory.mktemp("daemon-home")
    seed_batch_copy(home, batch_copy)
    env = env_with_home(home)
    # One llama.cpp thread: the test process needs the other core, and llama.cpp's threads spin-wait on
    # each other, so with every core taken a short reply can stall for seconds on a busy machine.
    args = ["--model", "default", "--n-ctx", "1024", "--threads", "1"]
    with DaemonProcess(args, env=env, log_path=home / "serve.log") as proc:
        yield proc


@pytest.fixture(scope="session")
def embedded_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded SmolLM2 as an HF checkpoint, imported by trainer.bases once for the whole session."""
    from trainer.bases import embedded_hf_dir

    with _session_home(tmp_path_factory.mktemp("bases-home")):
        return embedded_hf_dir()


@pytest.fixture(scope="session")
def link_embedded_base(embedded_hf: Path):
    """`link_embedded_base(home)`: put the session's HF copy where resolve_base("default") looks in `home`."""
    from twin import embedded

    def link(home: Path) -> Path:
        target = home / "cache" / "bases" / embedded.MODEL_ID
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(embedded_hf, target_is_directory=True)
        return target

    return link


@pytest.fixture
def base_in_cache(twin_home: Path, link_embedded_base) -> Path:
    """The embedded base, ready in this test's cache dir."""
    return link_embedded_base(twin_home)


@pytest.fixture
def own_daemon(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """`own_daemon(port=None, *args)`: a started daemon of this test only (TWIN_HOME = the test's); all stopped at the end."""
    from daemon.process import DaemonProcess

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


@pytest.fixture
def free_port() -> int:
    """A loopback port nobody listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
