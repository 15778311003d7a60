"""DaemonProcess: a daemon that hangs before printing its address fails its caller within the deadline."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from daemon.process import DaemonProcess
from twin.errors import UserError


def test_a_daemon_silent_before_its_address_fails_within_the_deadline(tmp_path: Path) -> None:
    # The interpreter of the child runs sitecustomize before `twin serve`: it blocks there, as a stuck import would.
    (tmp_path / "sitecustomize.py").write_text("import time\ntime.sleep(120)\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TWIN_HOME": str(tmp_path / "home")}
    process = DaemonProcess(["--model", "default"], env=env, timeout=3)
    started = time.monotonic()
    with pytest.raises(UserError, match=r"did not print its address within 3s"):
        process.start()
    assert time.monotonic() - started < 60
    assert process.proc is not None and process.proc.wait(timeout=10) != 0  # killed, not left behind
    process.stop()
