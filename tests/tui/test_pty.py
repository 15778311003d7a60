"""`twin chat` in a real pseudo-terminal, keys written as a terminal sends them: every Enter sends on its first press.

The exchanges follow the pattern that used to swallow Enter: the next message is
typed while the reply is being written (right after the previous Enter), and
Enter is pressed the moment the reply is stored, while it is still settling on
screen. Each message must be stored on that one Enter, with exactly its text.
"""

from __future__ import annotations

import fcntl
import os
import pty
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tui import database
from twin.embedded import MODEL_ID

EXCHANGES = 5
ENTER = b"\r"  # what a terminal sends for the Enter key
CTRL_Q = b"\x11"


class Terminal:
    """A child process on a pty of 110×32 columns; its output is drained (and kept) by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 32, 110, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.output += data

    def type(self, text: str) -> None:
        for char in text.encode():  # one key a write, as a terminal sends keystrokes
            os.write(self.master, bytes([char]))

    def key(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self.master)
        self._reader.join(timeout=5)


def wait(condition: Callable[[], bool], what: str, term: Terminal, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert term.proc.poll() is None, f"twin chat exited ({term.proc.returncode}) while waiting for {what}"
        if time.monotonic() > deadline:
            tail = bytes(term.output[-2000:]).decode("utf-8", "replace")
            raise AssertionError(f"gave up waiting for {what}; the terminal's last output:\n{tail}")
        time.sleep(0.02)


def stored(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("SELECT role, content FROM messages ORDER BY id").fetchall()


def test_five_exchanges_each_message_leaves_on_its_first_enter(daemon, twin_home: Path) -> None:
    env = dict(os.environ, TERM="xterm-256color", TWIN_MAX_TOKENS="24", TWIN_TEMPERATURE="0.7")
    term = Terminal([sys.executable, "-m", "twin", "chat", "--url", daemon.url], env)
    path = database.db_path()

    def count(role: str) -> int:
        return sum(r == role for r, _ in stored(path))

    try:
        wait(lambda: MODEL_ID.encode() in term.output, "the model list on screen", term)
        term.type("message 0")
        for i in range(EXCHANGES):
            users = count("user")
            term.key(ENTER)
            wait(lambda n=users: count("user") > n, f"message {i} to leave on one Enter", term)
            if i + 1 < EXCHANGES:
                term.type(f"message {i + 1}")  # typed on while the reply is written
            wait(lambda n=i + 1: count("assistant") == n, f"reply {i}", term)
        messages = stored(path)
        assert [r for r, _ in messages] == ["user", "assistant"] * EXCHANGES
        assert [c for r, c in messages if r == "user"] == [f"message {i}" for i in range(EXCHANGES)]
        assert all(c.strip() for r, c in messages if r == "assistant")
        term.key(CTRL_Q)
        assert term.proc.wait(timeout=30) == 0
    finally:
        term.close()
