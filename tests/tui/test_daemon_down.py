"""The daemon missing or going away: a banner says so and how to start it, the app retries, typed text is kept."""

from __future__ import annotations

import asyncio

from tui.banner import DaemonBanner
from tui.chat_app import ChatApp
from tui.message_view import MessageView
from tui.prompt_input import PromptInput
from twin.config import ChatSettings


def banner_text(app: ChatApp) -> str:
    return str(app.chat.query_one(DaemonBanner).render())


async def test_banner_retry_and_the_typed_text_is_never_lost(own_daemon, free_port, wait_for, quick) -> None:
    url = f"http://127.0.0.1:{free_port}/v1"
    app = ChatApp(ChatSettings(url=url, retry_seconds=0.3), sampling=quick)
    async with app.run_test(size=(100, 30)) as pilot:
        banner = app.chat.query_one(DaemonBanner)
        prompt = app.chat.query_one(PromptInput)

        # No daemon yet: the banner says so and how to start one; sending keeps the text.
        await wait_for(pilot, lambda: banner.has_class("-shown"), "the banner")
        assert f"No twin daemon at {url} (connection refused)" in banner_text(app)
        assert "twin serve" in banner_text(app) and "systemctl --user start twin" in banner_text(app)
        await pilot.press(*"hello", "enter")
        assert prompt.text == "hello" and not app.chat.query(MessageView)

        # The daemon starts: the app notices by itself, the banner goes, the message goes out.
        daemon = await asyncio.to_thread(own_daemon, free_port)
        await wait_for(
            pilot, lambda: not banner.has_class("-shown") and app.chat.current_model(), "the retry to find the daemon"
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.chat.streaming, "the reply")
        assert [m.role for m in app.history.messages(app.chat.conversation.id)] == ["user", "assistant"]
        assert prompt.text == ""

        # The daemon stops: sending fails, the message comes back into the box, nothing half-stored.
        await asyncio.to_thread(daemon.stop)
        await pilot.press(*"are you there?", "enter")
        await wait_for(pilot, lambda: banner.has_class("-shown") and not app.chat.streaming, "the banner again")
        assert prompt.text == "are you there?"
        assert next(m.content for m in app.history.messages(app.chat.conversation.id)) == "hello"
        assert len(app.history.messages(app.chat.conversation.id)) == 2
        assert len(app.chat.query(MessageView)) == 2
        await pilot.press(*" still typing")
        assert prompt.text == "are you there? still typing"


async def test_a_wrong_api_key_is_named_and_the_right_one_works(own_daemon, wait_for, quick) -> None:
    daemon = await asyncio.to_thread(own_daemon, None, "--api-key", "s3cret")
    wrong = ChatApp(ChatSettings(url=daemon.url, api_key="guess"), sampling=quick)
    async with wrong.run_test(size=(100, 30)) as pilot:
        banner = wrong.chat.query_one(DaemonBanner)
        await wait_for(pilot, lambda: banner.has_class("-shown"), "the banner")
        assert f"The daemon at {daemon.url} refused the API key" in banner_text(wrong)
        assert "TWIN_API_KEY" in banner_text(wrong)

    right = ChatApp(ChatSettings(url=daemon.url, api_key="s3cret"), sampling=quick)
    async with right.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: right.chat.current_model(), "the model list")
        await pilot.press(*"hi", "enter")
        await wait_for(pilot, lambda: not right.chat.streaming, "the reply")
        assert [m.role for m in right.history.messages(right.chat.conversation.id)] == ["user", "assistant"]
