"""The chat app against the real daemon on a loopback port (the session's embedded model)."""

from __future__ import annotations

import re
import time

from textual import events
from textual.widgets import OptionList, Select, TextArea

from tui import database
from tui.chat_app import ChatApp
from tui.client import Sampling
from tui.dialogs import ConfirmDialog, TextDialog
from tui.history import History
from tui.message_view import MessageView
from tui.prompt_input import PromptInput
from twin.config import ChatSettings
from twin.embedded import MODEL_ID


async def ready(app: ChatApp, pilot, wait_for) -> None:
    await wait_for(
        pilot, lambda: app.chat.is_mounted and app.chat.current_model() is not None, "the daemon's model list"
    )


def views(app: ChatApp) -> list[tuple[str, str]]:
    return [(v.role, v.content) for v in app.chat.query(MessageView)]


async def send(pilot, text: str) -> None:
    await pilot.press(*text)
    await pilot.press("enter")


async def test_send_a_message_and_see_the_reply_stream_in(daemon, wait_for) -> None:
    # Long enough (EOS ignored) that the reply is still coming when the test looks at it.
    app = ChatApp(
        ChatSettings(url=daemon.url), sampling=Sampling(max_tokens=64, temperature=0.7, seed=7, ignore_eos=True)
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot, wait_for)
        assert app.chat.query_one("#model", Select).value == MODEL_ID
        await pilot.press(*"Hi there")
        # Enter goes in as a terminal delivers it: pilot.press would wait for an idle screen,
        # which may only come once the reply has finished streaming.
        app.post_message(events.Key("enter", "\r"))
        await wait_for(
            pilot, lambda: app.chat.streaming and len(views(app)) == 2 and views(app)[1][1], "the first words"
        )
        partial = views(app)[1][1]
        await wait_for(pilot, lambda: not app.chat.streaming, "the reply")
        (user, you), (role, reply) = views(app)
        assert reply.startswith(partial)
        assert (user, you, role) == ("user", "Hi there", "assistant")
        assert reply.strip()
        assert app.chat.query(MessageView).last().markdown.source == reply  # what streamed is what is shown
        assert app.chat.query_one(PromptInput).text == ""
        stored = app.history.messages(app.chat.conversation.id)
        assert [(m.role, m.content, m.status) for m in stored] == [
            ("user", "Hi there", "done"),
            ("assistant", reply, "done"),
        ]
        assert stored[1].model == MODEL_ID
        assert app.chat.conversation.title == "Hi there"  # the first message names the conversation


async def test_escape_stops_the_reply_and_the_daemon_is_free_again(daemon, wait_for, quick, long_reply) -> None:
    log_start = daemon.log_path.stat().st_size
    app = ChatApp(ChatSettings(url=daemon.url), sampling=long_reply)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot, wait_for)
        await send(pilot, "Tell me a long story")
        await wait_for(
            pilot,
            lambda: len(app.chat.query(MessageView)) == 2 and app.chat.query(MessageView).last().content,
            "the first words",
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.chat.streaming, "the stop")
        last = app.history.messages(app.chat.conversation.id)[-1]
        assert last.role == "assistant" and last.status == "stopped" and last.content
        assert "stopped" in str(app.chat.query(MessageView).last().query_one(".who").render())

        # The daemon stopped generating when the stream closed: far fewer tokens than asked for.
        deadline = time.monotonic() + 60
        while not (lines := _chat_lines(daemon.log_path, log_start)) and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert len(lines) == 1, lines
        assert "client_disconnected" in lines[0]
        assert int(re.search(r"completion_tokens=(\d+)", lines[0]).group(1)) < long_reply.max_tokens

        # …and it answers the next request.
        app.chat.sampling = quick
        await send(pilot, "Thanks")
        await wait_for(pilot, lambda: not app.chat.streaming, "the next reply")
        last = app.history.messages(app.chat.conversation.id)[-1]
        assert last.role == "assistant" and last.status == "done" and last.content


def _chat_lines(log, start: int) -> list[str]:
    with open(log, encoding="utf-8") as f:
        f.seek(start)
        return [line for line in f.read().splitlines() if "POST /v1/chat/completions" in line]


async def test_keys_are_handled_while_a_reply_streams_and_quit_keeps_it(daemon, wait_for, long_reply) -> None:
    app = ChatApp(ChatSettings(url=daemon.url), sampling=long_reply)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot, wait_for)
        await send(pilot, "Write a poem")
        await wait_for(pilot, lambda: app.chat.query(MessageView).last().content, "the first words")
        # Keys go in the way a terminal delivers them (pilot.press would wait for the whole
        # screen to go idle, which a streaming reply never lets it): each is handled while
        # the reply is still coming.
        box = app.chat.query_one(PromptInput)
        for key in "next one":
            before = box.text
            app.post_message(events.Key(key, key))
            await wait_for(pilot, lambda before=before: box.text != before, f"the key {key!r}", limit=10)
            assert app.chat.streaming
        assert box.text == "next one"
        await pilot.press("enter")  # refused while streaming; the text stays
        assert app.chat.query_one(PromptInput).text == "next one"
        conversation_id = app.chat.conversation.id
        await pilot.press("ctrl+q")  # quitting mid-reply stops it and keeps what came
    assert app.return_code == 0
    messages = History(database.connect()).messages(conversation_id)
    assert [(m.role, m.status) for m in messages] == [("user", "done"), ("assistant", "stopped")]
    assert messages[1].content


async def test_history_survives_a_restart(daemon, wait_for, quick) -> None:
    app = ChatApp(ChatSettings(url=daemon.url), sampling=quick)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot, wait_for)
        await send(pilot, "Remember me")
        await wait_for(pilot, lambda: not app.chat.streaming, "the reply")
        await pilot.press("f2")
        assert isinstance(app.screen, TextDialog)
        app.screen.query_one("#field").value = ""
        await pilot.press(*"Kept chat", "enter")
        await pilot.press("f3")
        await pilot.press(*"Answer briefly.", "ctrl+s")
        before = views(app)
        conversation_id = app.chat.conversation.id
        await pilot.press("ctrl+q")
    assert app.return_code == 0

    again = ChatApp(ChatSettings(url=daemon.url), sampling=quick)
    async with again.run_test(size=(100, 30)) as pilot:
        await ready(again, pilot, wait_for)
        assert views(again) == before
        assert again.chat.conversation.id == conversation_id
        assert again.chat.conversation.title == "Kept chat" and again.chat.sub_title == "Kept chat"
        assert again.chat.conversation.system_prompt == "Answer briefly."
        assert again.chat.request_messages(again.chat.conversation)[0] == {
            "role": "system",
            "content": "Answer briefly.",
        }
        assert "system prompt set" in str(again.chat.query_one("#notes").render())
        assert again.chat.query_one("#model", Select).value == MODEL_ID
        sidebar = again.chat.query_one("#conversations", OptionList)
        assert [str(o.prompt) for o in sidebar.options] == ["Kept chat"]


async def test_switching_conversations_remembers_each_ones_model(daemon, wait_for, quick) -> None:
    history = History(database.connect())
    groceries = history.create("Groceries", model=MODEL_ID)
    history.add_message(groceries.id, "user", "milk?")
    history.add_message(groceries.id, "assistant", "yes, **two** litres", MODEL_ID)
    work = history.create("Work", model="bob")  # a twin this daemon does not serve
    history.add_message(work.id, "user", "meeting at 3")

    app = ChatApp(ChatSettings(url=daemon.url), sampling=quick)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.chat.is_mounted and app.chat.models, "the daemon's model list")
        assert app.chat.conversation.id == work.id  # the most recent first
        assert views(app) == [("user", "meeting at 3")]
        assert app.chat.query_one("#model", Select).value is Select.NULL
        assert "bob is not served" in str(app.chat.query_one("#notes").render())
        await pilot.press("enter")  # nothing typed: nothing happens
        await send(pilot, "hello?")  # no served model: refused, the text stays
        assert app.chat.query_one(PromptInput).text == "hello?"

        sidebar = app.chat.query_one("#conversations", OptionList)
        sidebar.focus()
        await pilot.press("down", "enter")
        assert app.chat.conversation.id == groceries.id
        assert views(app) == [("user", "milk?"), ("assistant", "yes, **two** litres")]
        assert app.chat.query_one("#model", Select).value == MODEL_ID
        assert app.chat.query_one(PromptInput).text == "hello?"  # the typed text follows along
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.chat.streaming, "the reply")
        assert [m.content for m in history.messages(groceries.id)][:3] == ["milk?", "yes, **two** litres", "hello?"]
        assert history.get(work.id).model == "bob"  # untouched

        # new, rename, delete
        await pilot.press("ctrl+n")
        assert len(sidebar.options) == 3 and app.chat.conversation.title == "New conversation"
        await pilot.press("ctrl+n")  # an empty new conversation is reused, not piled up
        assert len(sidebar.options) == 3
        assert app.chat.conversation.model == MODEL_ID  # the model carries over to a new conversation
        await pilot.press("f2")
        app.screen.query_one("#field").value = ""
        await pilot.press(*"Plans", "enter")
        assert str(sidebar.options[0].prompt) == "Plans"
        await pilot.press("f8")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        assert [c.title for c in history.conversations()] == ["Groceries", "Work"]
        assert app.chat.conversation.id == groceries.id


async def test_regenerate_edit_and_resend_copy(daemon, wait_for, quick) -> None:
    app = ChatApp(ChatSettings(url=daemon.url), sampling=quick)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot, wait_for)
        await send(pilot, "First try")
        await wait_for(pilot, lambda: not app.chat.streaming, "the reply")
        first_reply = app.history.messages(app.chat.conversation.id)[-1]

        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.chat.streaming, "the new reply")
        messages = app.history.messages(app.chat.conversation.id)
        assert [m.role for m in messages] == ["user", "assistant"] and messages[1].created != first_reply.created
        assert views(app) == [(m.role, m.content) for m in messages]

        await pilot.press("up")  # in the empty box: edit the last message
        assert isinstance(app.screen, TextDialog)
        assert app.screen.query_one(TextArea).text == "First try"
        await pilot.press("backspace", "backspace", "backspace", *"again", "ctrl+s")
        await wait_for(pilot, lambda: not app.chat.streaming, "the reply to the edit")
        messages = app.history.messages(app.chat.conversation.id)
        assert next((m.role, m.content) for m in messages) == ("user", "First again")
        assert [m.role for m in messages] == ["user", "assistant"]
        assert views(app) == [(m.role, m.content) for m in messages]

        app.chat.query(MessageView).last().focus()
        await pilot.press("c")
        assert app.clipboard == messages[1].content
        app.chat.query(MessageView).first().focus()
        await pilot.press("e")
        assert isinstance(app.screen, TextDialog)
        await pilot.press("escape")  # cancelled: nothing changes
        assert app.history.messages(app.chat.conversation.id) == messages
