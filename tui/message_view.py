"""One chat message on screen: who wrote it and its text as Markdown; focus it to copy or edit it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message as TextualMessage
from textual.widgets import Label, Markdown

from tui.history import Message

STATUS_NOTE = {"done": "", "stopped": " · stopped", "error": " · interrupted"}


class MessageView(Vertical, can_focus=True):
    DEFAULT_CSS = """
    MessageView {
        height: auto;
        margin: 0 0 1 0;
        padding: 0 1;
        border-left: outer $primary-muted;
    }
    MessageView.-user { border-left: outer $accent; background: $boost; }
    MessageView:focus { border-left: outer $accent-lighten-2; background: $surface-lighten-1; }
    MessageView > .who { color: $text-muted; text-style: bold; }
    MessageView > Markdown { margin: 0; padding: 0; background: transparent; }
    MessageView > Markdown > *:last-child { margin-bottom: 0; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy"),
        Binding("e", "edit", "Edit & resend"),
    ]

    class EditRequested(TextualMessage):
        def __init__(self, view: MessageView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, role: str, content: str = "", model: str = "", message: Message | None = None) -> None:
        super().__init__(classes=f"-{role}")
        self.role = role
        self.content = content
        self.model = model
        self.message = message
        self._note = "" if message is None else STATUS_NOTE[message.status]

    @classmethod
    def of(cls, message: Message) -> MessageView:
        return cls(message.role, message.content, message.model, message)

    def compose(self) -> ComposeResult:
        yield Label(self._who(), classes="who", markup=False)
        yield Markdown(
            self.content if self.content or self.role == "user" or self.message is None else "*(empty reply)*"
        )

    def _who(self) -> str:
        return ("You" if self.role == "user" else self.model or "assistant") + self._note

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    def set_note(self, note: str) -> None:
        self._note = note
        self.query_one(".who", Label).update(self._who())

    def finish(self, message: Message) -> None:
        """The streamed reply is complete (or stopped) and stored as `message`."""
        self.message = message
        self.content = message.content
        self.set_note(STATUS_NOTE[message.status])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "edit":
            return self.role == "user" and self.message is not None
        return True

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.content)
        self.notify(f"Copied {len(self.content)} characters")

    def action_edit(self) -> None:
        self.post_message(self.EditRequested(self))
