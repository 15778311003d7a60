"""`twin chat --rate`: rounds of the rating screen over a twin's unrated validation samples, saved to chat.db."""

from __future__ import annotations

import random
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static

from tui import database
from tui.client import DaemonClient, Sampling
from tui.rating import Round, load_samples, pick_twin, rated, save_round
from tui.rating_screen import RatingScreen
from twin.config import ChatSettings

RATING_MAX_TOKENS = 128  # a chat reply, not an essay; keeps each round quick


class RateApp(App[None]):
    TITLE = "twin chat --rate"
    CSS = "#done { padding: 1 2; }"

    def __init__(
        self,
        settings: ChatSettings,
        twin: str,
        *,
        sampling: Sampling | None = None,
        db_path: Path | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.twin = twin
        self.sampling = sampling or Sampling(
            max_tokens=min(settings.max_tokens, RATING_MAX_TOKENS), temperature=settings.temperature
        )
        self.rng = rng or random.Random()
        self.samples = load_samples(twin)  # a UserError here ends before the screen opens
        self.db_path = db_path or database.db_path()
        self.db = database.connect(self.db_path)
        done = rated(self.db, twin)
        self.todo = [s for s in self.samples if (s.line, s.sha256) not in done]
        self.rng.shuffle(self.todo)
        self.already = len(self.samples) - len(self.todo)
        self.saved = 0
        self.client = DaemonClient(settings)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="done", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.next_round()

    def next_round(self) -> None:
        if not self.todo:
            rated_now = self.already + self.saved
            self.query_one("#done", Static).update(
                f"{rated_now} of {len(self.samples)} samples of {self.twin} are rated ({self.saved} in this session); "
                f"nothing left to rate. The ratings are in {self.db_path} for `twin eval`. "
                "Ctrl+Q quits."
            )
            return
        sample = self.todo.pop(0)
        progress = (
            f"{self.twin} · sample {self.already + self.saved + 1} of {len(self.samples)} "
            f"(line {sample.line} of dataset/val.jsonl) · {self.saved} rated in this session"
        )
        screen = RatingScreen(
            self.twin,
            sample,
            progress=progress,
            client=self.client,
            sampling=self.sampling,
            retry_seconds=self.settings.retry_seconds,
            rng=self.rng,
        )
        self.push_screen(screen, callback=self.round_done)

    def round_done(self, rnd: Round | None) -> None:
        if rnd is not None:
            save_round(self.db, rnd, self.sampling.as_json())
            self.saved += 1
            self.notify(f"Saved the ratings of line {rnd.sample.line}")
        self.next_round()

    async def on_unmount(self) -> None:
        await self.client.close()
        self.db.close()


def run_rating(settings: ChatSettings, name: str | None) -> None:
    """Rate the replies of twin `name` (or the only twin with a validation split) against the person's own."""
    RateApp(settings, pick_twin(name)).run()
