"""The message box: Enter sends, Ctrl+J (or Shift+Enter where the terminal tells it apart) starts a new line."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea


class PromptInput(TextArea):
    DEFAULT_CSS = """
    PromptInput {
        height: auto;
        min-height: 3;
        max-height: 10;
        border: tall $border-blurred;
    }
    PromptInput:focus { border: tall $border; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Send"),
        Binding("ctrl+j,shift+enter", "newline", "New line", show=False),
    ]

    class Submitted(Message):
        """Enter was pressed: `text` is what the box held at that moment; the box is already empty.

        The text leaves the box when the key is handled, not when the screen gets round to
        sending it: keys typed in between then stay in the box instead of being cleared with it,
        and a message that cannot go out comes back through `restore`.
        """

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class EditLast(Message):
        """Up in an empty box: edit the last message sent."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            highlight_cursor_line=False,
            placeholder="Message (Enter sends, Ctrl+J a new line, ↑ edits the last one)",
        )

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            # Keep TextArea from inserting a newline; the "enter" binding sends instead.
            event.prevent_default()

    def action_submit(self) -> None:
        text = self.text.strip()
        if text:
            self.clear()
            self.post_message(self.Submitted(text))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_cursor_up(self, select: bool = False) -> None:
        if not self.text and not select:
            self.post_message(self.EditLast())
            return
        super().action_cursor_up(select)

    def restore(self, text: str) -> None:
        """Put a message that could not be sent back, in front of anything typed since."""
        self.text = text if not self.text.strip() else f"{text}\n{self.text}"
        self.move_cursor(self.document.end)
