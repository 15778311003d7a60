"""Ctrl+F: full-text search over every conversation in chat.db (SQLite FTS5); choosing a hit opens it at the message."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from tui.dialogs import DIALOG_CSS
from tui.history import HIT_END, HIT_START, History, Hit


def hit_prompt(hit: Hit) -> Content:
    """One result line: the conversation, who wrote the message, and the snippet with the matched words in bold."""
    parts: list[tuple[str, str] | str] = [(hit.title, "bold"), (" · you" if hit.role == "user" else " · reply", "dim")]
    parts.append("\n")
    rest = hit.snippet.replace("\n", " ")
    while HIT_START in rest:
        before, _, rest = rest.partition(HIT_START)
        match, _, rest = rest.partition(HIT_END)
        parts += [before, (match, "bold reverse")]
    parts.append(rest)
    return Content.assemble(*parts)


class SearchScreen(ModalScreen[int | None]):
    """Type to search; ↓ or Enter moves to the results; Enter on one dismisses with its message id, Esc with None."""

    SCOPED_CSS = False  # DIALOG_CSS styles the screen itself and its #dialog: scoped, it matched nothing
    DEFAULT_CSS = DIALOG_CSS + "SearchScreen #dialog { height: 80%; } SearchScreen OptionList { height: 1fr; }"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close")]

    def __init__(self, history: History) -> None:
        super().__init__()
        self.history = history
        self.hits: list[Hit] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Search all conversations", classes="title")
            yield Input(placeholder="words to find (the last one may be a word's start)", id="query")
            yield OptionList(id="hits")
            yield Label("", id="count", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#query", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.hits = self.history.search(event.value)
        hits = self.query_one("#hits", OptionList)
        hits.set_options([Option(hit_prompt(h), id=str(h.message_id)) for h in self.hits])
        if self.hits:
            hits.highlighted = 0
        found = f"{len(self.hits)} message{'s' if len(self.hits) != 1 else ''}" if event.value.strip() else ""
        self.query_one("#count", Label).update(found + (" · Enter opens the first, ↓ chooses" if self.hits else ""))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.hits:
            self.dismiss(self.hits[0].message_id)

    def on_key(self, event) -> None:
        if event.key == "down" and self.focused is self.query_one("#query"):
            event.stop()
            self.query_one("#hits", OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
