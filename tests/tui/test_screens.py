"""What works without any daemon: help, the command palette, themes that are remembered, no crash."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette

from tui.banner import DaemonBanner
from tui.chat_app import ChatApp
from tui.dialogs import HelpScreen, TextDialog
from twin.config import ChatSettings

NOWHERE = ChatSettings(url="http://127.0.0.1:9/v1", retry_seconds=60)  # the discard port: nothing listens


async def test_help_and_command_palette(wait_for) -> None:
    app = ChatApp(NOWHERE)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(
            pilot, lambda: app.chat.is_mounted and app.chat.query_one(DaemonBanner).has_class("-shown"), "the banner"
        )
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.chat

        titles = {c.title for c in app.get_system_commands(app.chat)}
        assert {
            "New conversation",
            "Rename conversation",
            "Delete conversation",
            "System prompt",
            "Regenerate reply",
            "Edit last message",
            "Copy last reply",
            "Stop reply",
            "Keys",
            "Theme",
        } <= titles
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"rename conv")
        results = app.screen.query_one(CommandList)
        await wait_for(
            pilot,
            lambda: results.highlighted is not None and "Rename" in str(results.highlighted_option.prompt),
            "the match",
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), "the rename dialog")
        await pilot.press("escape")
        assert app.screen is app.chat


async def test_theme_is_remembered() -> None:
    app = ChatApp(NOWHERE)
    async with app.run_test() as pilot:
        assert app.theme == "textual-dark"
        app.theme = "nord"
        await pilot.pause()
    again = ChatApp(NOWHERE)
    async with again.run_test():
        assert again.theme == "nord"


async def test_rating_waits_for_the_daemon_without_showing_any_reply(built_twin, wait_for) -> None:
    from tui.rate_app import RateApp
    from tui.rating_screen import CandidateCard, RatingScreen

    app = RateApp(NOWHERE, built_twin)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, RatingScreen) and app.screen.query_one(DaemonBanner).has_class("-shown"),
            "the banner",
        )
        assert not app.screen.query(CandidateCard)  # the real reply alone would give itself away
        assert "Waiting for the daemon" in str(app.screen.query_one("#status").render())
        await pilot.press("enter")  # nothing to save: no crash, nothing stored
        assert app.db.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0
