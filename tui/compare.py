"""F7, compare mode: one message answered side by side by the twin, its persona variant and the base model.

The three replies stream at once, one worker each; a daemon that batches
requests writes them together, a serial one in turn. They are not stored: the
screen is for seeing what training changed, the conversation stays as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Markdown

from tui.client import DaemonClient, DaemonError, DaemonUnreachable, ModelInfo, Sampling


@dataclass(frozen=True)
class Column:
    title: str  # what it is: "twin", "persona variant", "base model"
    model: str  # the model id, "" when the daemon serves none of this kind


def compare_columns(models: list[ModelInfo], current: str) -> list[Column]:
    """The twin (the conversation's, else the first served), its `-prompt` variant, and the base model."""
    by_id = {m.id: m for m in models}
    twins = [m.id for m in models if m.kind == "twin"]
    twin = current if by_id.get(current, ModelInfo("", "")).kind == "twin" else (twins[0] if twins else "")
    if not twin and current.endswith("-prompt") and by_id.get(current[: -len("-prompt")]):
        twin = current[: -len("-prompt")]
    persona = f"{twin}-prompt" if f"{twin}-prompt" in by_id else ""
    bases = [m.id for m in models if m.kind == "base"]
    return [Column("twin", twin), Column("persona variant", persona), Column("base model", bases[0] if bases else "")]


class CompareScreen(Screen[None]):
    CSS = """
    CompareScreen #columns { height: 1fr; }
    CompareScreen .column { width: 1fr; border: round $primary-muted; padding: 0 1; }
    CompareScreen .column > .who { text-style: bold; }
    CompareScreen .column > .state { color: $text-muted; }
    CompareScreen .column Markdown { margin: 0; padding: 0; background: transparent; }
    CompareScreen #compare-prompt { dock: bottom; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Back to the chat")]

    def __init__(
        self,
        client: DaemonClient,
        sampling: Sampling,
        models: list[ModelInfo],
        current: str = "",
        twin_field: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.sampling = sampling
        self.columns = compare_columns(models, current)
        self.twin_field = twin_field
        self.replies = ["" for _ in self.columns]
        self.running = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="columns"):
            for i, column in enumerate(self.columns):
                with VerticalScroll(classes="column", id=f"column-{i}"):
                    yield Label(f"{column.title}: {column.model or 'none served'}", classes="who", markup=False)
                    yield Label("" if column.model else "the daemon serves no model of this kind", classes="state")
                    yield Markdown("")
        yield Input(placeholder="One message for all three (Enter sends · Esc back to the chat)", id="compare-prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "compare"
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        if self.running:
            self.notify("The replies are still being written: wait, or Esc", severity="warning")
            return
        event.input.clear()
        for i, column in enumerate(self.columns):
            if column.model:
                self.running += 1
                self.answer(i, column.model, text)

    def column_state(self, i: int, text: str) -> None:
        self.query_one(f"#column-{i}").query_one(".state", Label).update(text)

    @work(group="compare")
    async def answer(self, i: int, model: str, text: str) -> None:
        box = self.query_one(f"#column-{i}")
        markdown = box.query_one(Markdown)
        await markdown.update("")
        self.replies[i] = ""
        self.column_state(i, "writing…")
        stream = Markdown.get_stream(markdown)
        state = "done"
        try:
            messages = [{"role": "user", "content": text}]
            async with contextlib.aclosing(
                self.client.stream_chat(model, messages, self.sampling, self.twin_field)
            ) as deltas:
                async for delta in deltas:
                    self.replies[i] += delta
                    await stream.write(delta)
        except (DaemonUnreachable, DaemonError) as e:
            state = f"could not answer: {e}"
        finally:
            await stream.stop()
            self.running -= 1
        if self.is_attached:
            self.column_state(i, state)

    def action_close(self) -> None:
        self.workers.cancel_group(self, "compare")
        self.dismiss()
