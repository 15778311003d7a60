"""Ctrl-C and SIGTERM during training: finish the step, save a checkpoint, leave cleanly."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger("twin.trainer")


class StopFlag:
    """SIGINT/SIGTERM ask training to stop after the current step; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self.signum = 0

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum
        log.warning("stopping after this step to save a checkpoint (Ctrl-C again to abort without saving)")

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
