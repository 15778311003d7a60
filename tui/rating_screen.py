"""The rating screen: one validation context and its candidate replies, unlabelled and in random order.

Given a finished `Round` it only collects the scores; given a sample and a
client it asks the daemon which models it serves, builds the round and has the
model replies written (a variant the daemon does not serve is shown as missing).
It dismisses with the rated round, or None when the sample is skipped.
"""

from __future__ import annotations

import random
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Static

from tui.banner import DaemonBanner
from tui.client import DaemonClient, DaemonError, DaemonUnreachable, Sampling
from tui.dialogs import HelpScreen
from tui.rating import Candidate, Round, Sample, new_round

QUESTION = "How much does this sound like you?"
CONTEXT_SHOWN = 12  # the last messages of a long context; enough to know what is being answered

HELP = f"""\
# Rating replies

Below the conversation are up to three replies in random order: one is what you
really wrote, the others were written by models. For each: **{QUESTION}**
(1 = not at all, 5 = exactly like me), then mark the one most like you.

| Key | What it does |
| --- | --- |
| ↑ / ↓ (or Tab) | move between the replies |
| 1 … 5 | score the selected reply |
| b | mark the selected reply as the one most like you |
| Enter | save and go to the next sample |
| s | skip this sample |
| Ctrl+Q | quit (saved rounds stay saved) |

Ratings are stored in `chat.db` (table `ratings`) for `twin eval`.
"""


def letter(index: int) -> str:
    return chr(ord("A") + index)


def context_text(sample: Sample) -> Content:
    shown = sample.context[-CONTEXT_SHOWN:]
    parts: list[Content | tuple[str, str] | str] = []
    if len(sample.context) > len(shown):
        parts.append((f"… {len(sample.context) - len(shown)} earlier messages\n", "italic"))
    for i, m in enumerate(shown):
        who = {"user": "them", "assistant": "you"}.get(m["role"], m["role"])
        parts += [(f"{who}: ", "bold"), m["content"], "\n" if i < len(shown) - 1 else ""]
    return Content.assemble(*parts)


class CandidateCard(Vertical, can_focus=True):
    DEFAULT_CSS = """
    CandidateCard {
        height: auto;
        margin: 0 0 1 0;
        padding: 0 1;
        border: round $border-blurred;
    }
    CandidateCard:focus { border: round $accent; }
    CandidateCard.-best { border: double $success; }
    CandidateCard.-best:focus { border: double $accent; }
    CandidateCard > .title { text-style: bold; }
    CandidateCard > .score { color: $text-muted; margin-top: 1; }
    CandidateCard.-missing > .body { color: $text-muted; text-style: italic; }
    """

    def __init__(self, index: int, candidate: Candidate) -> None:
        super().__init__()
        self.index = index
        self.candidate = candidate

    def compose(self) -> ComposeResult:
        yield Label(f"Reply {letter(self.index)}", classes="title")
        yield Static("", classes="body", markup=False)
        yield Static("", classes="score", markup=False)

    def on_mount(self) -> None:
        self.refresh_card()

    def refresh_card(self) -> None:
        c = self.candidate
        if c.missing:
            body = f"(not available: {c.missing})"
        elif c.text is None:
            body = "(being written…)"
        else:
            body = c.text or "(an empty reply)"
        self.query_one(".body", Static).update(body)
        if c.ready:
            scale = "  ".join(f"[{n}]" if c.score == n else f" {n} " for n in range(1, 6))
            best = "   ★ most like you" if c.best else ""
            self.query_one(".score", Static).update(f"{QUESTION}  {scale}{best}")
        else:
            self.query_one(".score", Static).update("")
        self.set_class(bool(c.missing), "-missing")
        self.set_class(c.best, "-best")


class RatingScreen(Screen["Round | None"]):
    CSS_PATH = "rating.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "score(1)", "Score", key_display="1–5"),
        Binding("2", "score(2)", show=False),
        Binding("3", "score(3)", show=False),
        Binding("4", "score(4)", show=False),
        Binding("5", "score(5)", show=False),
        Binding("b", "best", "Most like me"),
        Binding("up,k", "move(-1)", "Previous", show=False),
        Binding("down,j", "move(1)", "Next", show=False),
        Binding("enter", "save", "Save & next"),
        Binding("s", "skip", "Skip"),
        Binding("f1", "help", "Help"),
    ]

    def __init__(
        self,
        twin: str,
        sample: Sample,
        *,
        progress: str = "",
        client: DaemonClient | None = None,
        sampling: Sampling | None = None,
        retry_seconds: float = 3.0,
        rng: random.Random | None = None,
        round: Round | None = None,
    ) -> None:
        super().__init__()
        self.twin = twin
        self.sample = sample
        self.progress = progress
        self.client = client
        self.sampling = sampling or Sampling()
        self.retry_seconds = retry_seconds
        self.rng = rng or random.Random()
        self.round = round

    def compose(self) -> ComposeResult:
        yield Header()
        if self.client is not None:
            yield DaemonBanner(self.client, self.retry_seconds, id="banner")
        with VerticalScroll(id="rate-body"):
            yield Label(self.progress, id="progress", markup=False)
            yield Label("The conversation so far", classes="section")
            yield Static(context_text(self.sample), id="context")
            yield Label(f"{QUESTION} Score each reply 1–5, then mark the one most like you (b).", classes="section")
            yield Vertical(id="cards")
            yield Static("Waiting for the daemon…", id="status", markup=False)
        yield Footer()

    async def on_mount(self) -> None:
        self.sub_title = f"rating {self.twin}"
        if self.round is not None:
            await self.show_round()

    async def show_round(self) -> None:
        assert self.round is not None
        cards = [CandidateCard(i, c) for i, c in enumerate(self.round.candidates)]
        await self.query_one("#cards", Vertical).mount_all(cards)
        cards[0].focus()
        self.update_status()

    def cards(self) -> list[CandidateCard]:
        return list(self.query(CandidateCard))

    def update_status(self) -> None:
        if self.round is None:
            return
        problem = self.round.problem()
        text = f"To save: {problem}." if problem else "Ready: Enter saves and shows the next sample."
        self.query_one("#status", Static).update(text)

    async def on_daemon_banner_reachable(self, event: DaemonBanner.Reachable) -> None:
        if self.round is None:
            self.round = new_round(self.twin, self.sample, {m.id for m in event.models}, self.rng)
            await self.show_round()
        self.generate()

    @work(exclusive=True, group="generate")
    async def generate(self) -> None:
        """Write the pending model replies one after another (the daemon runs one generation at a time)."""
        assert self.round is not None and self.client is not None
        for card in self.cards():
            c = card.candidate
            if c.text is not None or c.missing:
                continue
            try:
                text = await self.client.complete_chat(c.model, self.round.sample.context, self.sampling)
            except DaemonUnreachable as e:
                self.query_one(DaemonBanner).report(e)  # stays pending: written when the daemon answers again
                return
            except DaemonError as e:
                if e.status == 401:
                    self.query_one(DaemonBanner).report(e)
                    return
                c.missing = f"the daemon could not write it ({e})"
            else:
                c.text = text.strip()
            card.refresh_card()
            self.update_status()

    # --- actions -------------------------------------------------------------------------------------

    def selected(self) -> CandidateCard | None:
        focused = self.focused
        return focused if isinstance(focused, CandidateCard) else None

    def _rateable(self, card: CandidateCard | None) -> bool:
        if card is None:
            self.notify("Select a reply first (↑/↓)", severity="warning")
        elif card.candidate.missing:
            self.notify("This reply is not available, so it is not rated", severity="warning")
        elif card.candidate.text is None:
            self.notify("This reply is still being written", severity="warning")
        return card is not None and card.candidate.ready

    def action_score(self, score: int) -> None:
        card = self.selected()
        if not self._rateable(card):
            return
        assert card is not None
        card.candidate.score = score
        card.refresh_card()
        self.update_status()
        unscored = [c for c in self.cards() if c.candidate.ready and c.candidate.score is None]
        if unscored:
            unscored[0].focus()

    def action_best(self) -> None:
        card = self.selected()
        if not self._rateable(card):
            return
        for other in self.cards():
            other.candidate.best = other is card
            other.refresh_card()
        self.update_status()

    def action_move(self, step: int) -> None:
        cards = self.cards()
        if not cards:
            return
        card = self.selected()
        index = cards.index(card) + step if card is not None else 0
        cards[max(0, min(len(cards) - 1, index))].focus()

    def action_save(self) -> None:
        if self.round is None:
            self.notify("Nothing to save yet: waiting for the daemon", severity="warning")
            return
        problem = self.round.problem()
        if problem:
            self.notify(f"Not yet: {problem}", severity="warning")
            return
        self.dismiss(self.round)

    def action_skip(self) -> None:
        self.workers.cancel_group(self, "generate")
        self.dismiss(None)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(HELP))
