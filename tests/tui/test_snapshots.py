"""Pictures of the screens (pytest-textual-snapshot), from fixed data only: no live model output in them.

Update after an intended change of the layout: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time

from textual.app import App
from textual.widgets import Select

from tui import database
from tui.chat_app import ChatApp
from tui.client import DaemonClient, ModelInfo, Sampling
from tui.compare import CompareScreen
from tui.dialogs import TalkingToDialog
from tui.history import History
from tui.prompt_input import PromptInput
from tui.rating import Candidate, Round, Sample
from tui.rating_screen import RatingScreen
from tui.search import SearchScreen
from twin.config import ChatSettings
from twin.embedded import MODEL_ID

SIZE = (110, 32)


async def until(pilot, condition, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await pilot.pause(0.05)


def test_main_screen(daemon, snap_compare) -> None:
    history = History(database.connect())
    other = history.create("Старый разговор", model=MODEL_ID)
    history.add_message(other.id, "user", "Привет! Как дела?")
    trip = history.create("Trip to Kazan", model=MODEL_ID, system_prompt="Answer like a friend.")
    history.add_message(trip.id, "user", "What should I pack for **three days** in Kazan?")
    history.add_message(
        trip.id,
        "assistant",
        "Pack light:\n\n- a warm jacket\n- comfortable shoes\n- `chak-chak` money\n\nAnd call me when you land!",
        MODEL_ID,
    )
    history.add_message(trip.id, "user", "Thanks! Anything else?")
    history.add_message(trip.id, "assistant", "An umbrella", MODEL_ID, status="stopped")

    app = ChatApp(ChatSettings(url=daemon.url))

    async def loaded(pilot) -> None:
        await until(
            pilot,
            lambda: app.chat.is_mounted and app.chat.query_one("#model", Select).value == MODEL_ID,
            "the model list",
        )
        app.chat.query_one(PromptInput).cursor_blink = False

    assert snap_compare(app, terminal_size=SIZE, run_before=loaded, press=list("see you"))


class OneRound(App[None]):
    """The rating screen alone, on a round whose replies are given (the real app has them written by the daemon)."""

    def on_mount(self) -> None:
        sample = Sample(
            line=7,
            sha256="0" * 64,
            context=[
                {"role": "user", "content": "Ты сегодня придёшь?"},
                {"role": "assistant", "content": "думаю да"},
                {"role": "user", "content": "Во сколько?"},
            ],
            real="к восьми буду",
        )
        candidates = [
            Candidate("prompt", "alice-prompt", text="I will be there at 8 pm."),
            Candidate("real", "", text=sample.real),
            Candidate("twin", "alice", text="в 8, может чуть позже"),
        ]
        progress = "alice · sample 3 of 40 (line 7 of dataset/val.jsonl) · 2 rated in this session"
        self.push_screen(RatingScreen("alice", sample, progress=progress, round=Round("alice", sample, candidates)))


def test_rating_screen(snap_compare) -> None:
    assert snap_compare(OneRound(), terminal_size=(100, 40), press=["4", "b"])


class Alone(App[None]):
    """One screen of the chat app on its own, built from fixed data."""

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def on_mount(self) -> None:
        self.push_screen(self.make())


def test_search_screen(snap_compare) -> None:
    history = History(database.connect())
    boats = history.create("Boats")
    history.add_message(boats.id, "user", "Shall we take the ferry to Helsinki on Friday?")
    history.add_message(boats.id, "assistant", "yes, the morning ferry", "alice")
    history.add_message(history.create("Work").id, "user", "the ferry strike again, working from home")
    assert snap_compare(Alone(lambda: SearchScreen(history)), terminal_size=SIZE, press=list("ferry"))


def test_talking_to_dialog(snap_compare) -> None:
    assert snap_compare(Alone(lambda: TalkingToDialog("Mum", "private")), terminal_size=SIZE)


def test_compare_screen(snap_compare) -> None:
    models = [ModelInfo("alice", "twin"), ModelInfo("alice-prompt", "persona"), ModelInfo(MODEL_ID, "base")]
    client = DaemonClient(ChatSettings())  # never asked: nothing is sent in this picture

    def make() -> CompareScreen:
        return CompareScreen(client, Sampling(), models, current="alice")

    assert snap_compare(Alone(make), terminal_size=SIZE, press=list("Are you coming?"))
