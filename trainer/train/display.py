"""The live training display on stderr: step, loss, tokens/s and time left."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainDisplay:
    """`with TrainDisplay(total, done) as d: d.update(step, loss, tokens_per_s)`."""

    def __init__(self, total: int, done: int, description: str = "training") -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task(description, total=total, completed=done, loss="-", tps="-")

    def __enter__(self) -> TrainDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        self.progress.update(self.task, completed=step, loss=f"{loss:.3f}", tps=f"{tokens_per_s:.0f}")

    def resize(self, total: int) -> None:
        """A new step count (a time budget chose it after the first steps)."""
        self.progress.update(self.task, total=total)

    def note(self, text: str) -> None:
        """A line above the bar (evaluations, early stopping, interruption)."""
        self.progress.console.print(text)
