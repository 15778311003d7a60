"""Modal dialogs: a text field (rename, system prompt, edit and resend), who the twin talks to, a yes/no question, help."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown, Select, TextArea

DIALOG_CSS = """
ModalScreen { align: center middle; }
ModalScreen > #dialog {
    width: 80%;
    max-width: 100;
    height: auto;
    max-height: 90%;
    padding: 1 2;
    border: thick $primary;
    background: $surface;
}
ModalScreen #dialog .title { text-style: bold; margin-bottom: 1; }
ModalScreen #dialog .hint { color: $text-muted; margin-top: 1; }
ModalScreen #dialog TextArea { height: 12; }
ModalScreen #dialog #buttons { height: auto; margin-top: 1; align-horizontal: right; }
ModalScreen #dialog Button { margin-left: 2; }
"""


class TextDialog(ModalScreen[str | None]):
    """Ask for a text; dismisses with it (Ctrl+S, or Enter in a one-line field), or None on Esc."""

    SCOPED_CSS = False  # DIALOG_CSS styles the screen itself and its #dialog: scoped, it matched nothing
    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, title: str, text: str = "", *, multiline: bool = False, hint: str = "") -> None:
        super().__init__()
        self.heading = title
        self.text = text
        self.multiline = multiline
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.heading, classes="title", markup=False)
            if self.multiline:
                yield TextArea(self.text, soft_wrap=True, id="field")
            else:
                yield Input(self.text, id="field")
            yield Label(
                self.hint or ("Ctrl+S saves · Esc cancels" if self.multiline else "Enter saves · Esc cancels"),
                classes="hint",
            )
            with Horizontal(id="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        field = self.query_one("#field")
        field.focus()
        if isinstance(field, TextArea):
            field.move_cursor(field.document.end)

    def value(self) -> str:
        field = self.query_one("#field")
        return field.text if isinstance(field, TextArea) else self.query_one("#field", Input).value

    def action_save(self) -> None:
        self.dismiss(self.value())

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save() if event.button.id == "save" else self.action_cancel()


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question: y or Enter for yes, n or Esc for no."""

    SCOPED_CSS = False  # DIALOG_CSS styles the screen itself and its #dialog: scoped, it matched nothing
    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, classes="title", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Yes", variant="error", id="yes")
                yield Button("No", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened from, as Markdown; any of Esc, F1 or q closes it."""

    SCOPED_CSS = False  # DIALOG_CSS styles the screen itself and its #dialog: scoped, it matched nothing
    DEFAULT_CSS = DIALOG_CSS + "HelpScreen #dialog { height: 90%; }"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Markdown(self.text)


CHAT_KINDS = [("a private chat (one to one)", "private"), ("a group chat", "group")]


class TalkingToDialog(ModalScreen[tuple[str, str] | None]):
    """Who the twin talks to in a conversation: a name and the kind of chat; dismisses with (name, kind) or None."""

    SCOPED_CSS = False  # DIALOG_CSS styles the screen itself and its #dialog: scoped, it matched nothing
    DEFAULT_CSS = DIALOG_CSS + "TalkingToDialog #dialog Select { margin-top: 1; }"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, name: str, chat: str) -> None:
        super().__init__()
        self.person = name
        self.chat = chat

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Who is the twin talking to in this conversation?", classes="title")
            yield Input(self.person, placeholder="a name: Mum, Alex, the climbing group…", id="name")
            yield Select(CHAT_KINDS, prompt="the kind of chat (not set)", value=self.chat or Select.NULL, id="chat")
            yield Label(
                "Sent with every request; empty for nobody in particular.\nEnter or Ctrl+S saves · Esc cancels",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def action_save(self) -> None:
        kind = self.query_one("#chat", Select).value
        self.dismiss((self.query_one("#name", Input).value.strip(), "" if kind is Select.NULL else str(kind)))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()
