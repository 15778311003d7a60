"""Start `twin serve` as a child process and wait until it answers: for the demo, evaluation and the tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from twin import threads
from twin.errors import UserError

_URL_RE = re.compile(r"listening on (http://\S+/v1)")


class DaemonProcess:
    """`with DaemonProcess(["--model", "default"]) as d: d.url` — a real daemon on a free loopback port.

    `env` replaces the inherited environment when given. The daemon's log (stderr)
    goes to `log_path`; leaving the block sends SIGTERM and waits for exit.
    """

    def __init__(
        self,
        args: list[str] | None = None,
        *,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        timeout: float = 180.0,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.args = ["--port", "0", *(args or [])]
        self.env = {**threads.for_daemon(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.timeout = timeout
        self.preexec_fn = preexec_fn  # run in the child before exec, e.g. to lower its resource limits
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.stdout_lines: list[str] = []
        self._address = threading.Event()  # set once the address is known or stdout has ended
        self._log_file: TextIO | None = None

    @property
    def root(self) -> str:
        """The server's address without `/v1`, for /health and /metrics."""
        return self.url[: -len("/v1")]

    def start(self) -> DaemonProcess:
        stderr: int | TextIO = subprocess.DEVNULL
        if self.log_path is not None:
            self._log_file = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115  # the child writes it until stop()
            stderr = self._log_file
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "twin", "serve", *self.args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
            preexec_fn=self.preexec_fn,
        )
        deadline = time.monotonic() + self.timeout
        # stdout is read on a thread for the whole life of the child: the address can be waited for with a
        # deadline (a daemon that hangs before printing it must not hang its caller), and the child never
        # blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._address.wait(self.timeout):
            self.proc.kill()
            raise UserError(f"the daemon did not print its address within {self.timeout:.0f}s{self._log_hint()}")
        if not self.url:
            code = self.proc.wait()
            raise UserError(f"the daemon did not start (exit code {code}){self._log_hint()}")
        self.wait_healthy(deadline)
        return self

    def _drain(self) -> None:
        """Collect stdout; the first `listening on` line sets the address, the end of the stream gives up on it."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self.stdout_lines.append(line)
                match = _URL_RE.search(line)
                if match and not self.url:
                    self.url = match.group(1)
                    self._address.set()
        finally:
            self._address.set()

    def _log_hint(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return f": {lines[-1]}" if lines else ""

    def wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise UserError(f"the daemon exited with code {self.proc.returncode} while loading{self._log_hint()}")
            try:
                with urllib.request.urlopen(self.root + "/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise UserError(f"the daemon did not become healthy within {self.timeout:.0f}s{self._log_hint()}")

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()
        return self.proc.returncode

    def __enter__(self) -> DaemonProcess:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
