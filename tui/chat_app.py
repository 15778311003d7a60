"""`twin chat`: the Textual app around the chat screen (history, daemon client, theme, command palette)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.theme import Theme

from tui import database
from tui.chat_screen import ChatScreen
from tui.client import DaemonClient, Sampling
from tui.history import History
from twin.config import ChatSettings


class ChatApp(App[None]):
    TITLE = "twin chat"

    def __init__(
        self, settings: ChatSettings, *, sampling: Sampling | None = None, db_path: Path | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.sampling = sampling or Sampling.from_settings(settings)
        self.db = database.connect(db_path)  # a UserError here ends `twin chat` before the screen opens
        self.history = History(self.db)
        self.client = DaemonClient(settings)
        self.chat = ChatScreen(self.history, self.client, self.sampling, settings.retry_seconds)

    def on_mount(self) -> None:
        self.push_screen(self.chat)  # pushed, not the default screen: only pushed screens load their CSS_PATH
        theme = self.history.preference("theme")
        if theme in self.available_themes:
            self.theme = theme
        self.theme_changed_signal.subscribe(self, self._remember_theme)

    def _remember_theme(self, theme: Theme) -> None:
        self.history.set_preference("theme", theme.name)

    async def action_quit(self) -> None:
        await self.chat.stop_reply()  # the partial reply is stored before the app goes
        self.exit()

    async def on_unmount(self) -> None:
        await self.client.close()
        self.db.close()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, ChatScreen):
            yield from screen.commands()


def run_chat(settings: ChatSettings) -> None:
    """Open the chat client on the daemon at `settings.url`; returns when the user quits."""
    ChatApp(settings).run()
