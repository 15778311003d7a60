"""Ctrl-C and SIGTERM during training: finish the step, save a checkpoint, leave cleanly.

Before the loop starts (reading data, importing torch, loading the base) there
is nothing to save: a signal stops the run at once and changes no file. The
handler raises `SetupInterrupted` there, and also keeps a flag that `check()`
reads at each setup stage, because an exception raised inside a finalizer
(`__del__`) is printed and swallowed by Python.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger("twin.trainer")


class SetupInterrupted(BaseException):
    """A signal arrived before training began (a BaseException: library code catching Exception lets it pass)."""


class StopFlag:
    """SIGINT/SIGTERM ask training to stop after the current step; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self.signum = 0
        self.in_setup = True

    def _handle(self, signum: int, frame: object) -> None:
        if self.in_setup:
            self.requested = True
            self.signum = self.signum or signum
            raise SetupInterrupted
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum
        log.warning("stopping after this step to save a checkpoint (Ctrl-C again to abort without saving)")

    def check(self) -> None:
        """During setup: stop now if a signal came (even one whose exception a finalizer swallowed)."""
        if self.in_setup and self.requested:
            raise SetupInterrupted

    def training(self) -> None:
        """The loop begins: from now on a signal ends the current step and saves a checkpoint."""
        self.check()
        self.in_setup = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Catch the two signals inside the block (only the main thread can), restoring the old handlers after."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        saved = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in saved.items():
                signal.signal(s, handler)
