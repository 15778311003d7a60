"""A progress bar on stderr for reading large exports (stdout carries the results)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

# Below this many bytes reading takes about a second: no bar.
MIN_BYTES = 8 << 20


class ReadProgress:
    """Counts bytes read across all inputs; shows a bar only when enabled and the inputs are large."""

    def __init__(self, total: int, enabled: bool = True, console: Console | None = None) -> None:
        self.total = total
        self._progress: Progress | None = None
        if enabled and total >= MIN_BYTES:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console or Console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task("reading", total=total)

    def __enter__(self) -> ReadProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def advance(self, nbytes: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, nbytes)
