"""The chat screen: conversations on the left; the open one's model, messages and message box on the right.

A reply streams in a worker so the keyboard stays live; Esc cancels the worker,
which closes the HTTP stream, and the daemon stops generating. Whatever the
daemon does, typed text is never lost: a message that could not be sent goes
back into the message box.

Enter must send on its first press. A reply (`streaming`) has two phases: generating
(Enter is refused, with a warning) and settling (`settling`: the stream has ended; the
last Markdown update renders and the reply is stored). Enter during the settling
phase waits for it and then sends: refused there, an Enter pressed as the reply ended
was lost, with the typed text left in the box (the phase holds the last Markdown render
and a database write, longer on a busy machine). The box itself is emptied when Enter
is handled (PromptInput.Submitted carries the text), not after the send's awaits, which
erased whatever was typed in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from functools import partial
from typing import ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Markdown, OptionList, Select
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerCancelled, WorkerFailed

from tui.banner import DaemonBanner
from tui.client import DaemonClient, DaemonError, DaemonUnreachable, ModelInfo, Sampling
from tui.compare import CompareScreen
from tui.dialogs import ConfirmDialog, HelpScreen, TalkingToDialog, TextDialog
from tui.export import conversation_markdown, export_conversation
from tui.history import NEW_TITLE, Conversation, History, Message, title_from
from tui.message_view import MessageView
from tui.prompt_input import PromptInput
from tui.search import SearchScreen

HELP = """\
# twin chat

| Key | What it does |
| --- | --- |
| Enter | send the message |
| Ctrl+J | new line in the message |
| Esc | stop the reply being written |
| Ctrl+R | write the last reply again (also a reply cut short by Esc, quit or a lost daemon) |
| ↑ (empty box) | edit the last message and send it again |
| Tab / Shift+Tab | move between the list, the model, the messages and the box |
| c / e (on a message) | copy it / edit and resend it |
| Ctrl+N | new conversation |
| F2 | rename the conversation |
| F3 | system prompt of the conversation |
| F4 | choose the model (the twin, its `-prompt` persona variant, the base) |
| Ctrl+T | who the twin is talking to here (a name and the kind of chat), sent with every request |
| Ctrl+F | search all conversations |
| F5 | export the conversation to Markdown |
| F6 | copy the whole conversation |
| F7 | compare: one message answered by the twin, its persona variant and the base model side by side |
| F8 | delete the conversation |
| Ctrl+P | command palette (also: change the theme) |
| F1 | this help |
| Ctrl+Q | quit |

Conversations and ratings are kept in `chat.db` in twin's data folder (`twin paths`).
`twin chat --rate` asks how much the twin's replies sound like you.
"""


class ChatScreen(Screen):
    CSS_PATH = "chat.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "new", "New"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("f1", "help", "Help"),
        Binding("f2", "rename", "Rename"),
        Binding("f3", "system_prompt", "System prompt"),
        Binding("f4", "pick_model", "Model"),
        Binding("f8", "delete", "Delete"),
        Binding("ctrl+t", "talking_to", "Talking to"),
        Binding("ctrl+f", "search", "Search", priority=True),
        # Priority: the message box (a TextArea) binds F6 and F7 to selecting a line / everything.
        Binding("f5", "export", "Export", show=False, priority=True),
        Binding("f6", "copy_conversation", "Copy all", show=False, priority=True),
        Binding("f7", "compare", "Compare", show=False, priority=True),
    ]

    streaming: reactive[bool] = reactive(False, bindings=True)

    def __init__(self, history: History, client: DaemonClient, sampling: Sampling, retry_seconds: float) -> None:
        super().__init__()
        self.history = history
        self.client = client
        self.sampling = sampling
        self.retry_seconds = retry_seconds
        self.conversation: Conversation | None = None
        self.models: list[ModelInfo] = []
        self.reply_worker: Worker[None] | None = None
        self.settling = False  # the reply's stream has ended; it is being shown and stored
        self._options: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield DaemonBanner(self.client, self.retry_seconds, id="banner")
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield Label("Conversations", id="sidebar-title")
                yield OptionList(id="conversations")
            with Vertical(id="chat"):
                with Horizontal(id="toolbar"):
                    yield Select[str]([], prompt="Choose a model (F4)", id="model")
                    yield Label("", id="notes", markup=False)
                yield VerticalScroll(id="messages")
                yield PromptInput(id="prompt")
        yield Footer()

    async def on_mount(self) -> None:
        conversations = self.history.conversations()
        conversation = conversations[0] if conversations else self.history.create()
        await self.show_conversation(conversation.id)
        self.query_one(PromptInput).focus()

    # --- what is shown -------------------------------------------------------------------------

    async def show_conversation(self, conversation_id: int) -> None:
        await self.stop_reply()
        conversation = self.history.get(conversation_id)
        if conversation is None:
            return
        self.conversation = conversation
        container = self.query_one("#messages", VerticalScroll)
        await container.remove_children()
        await container.mount_all([MessageView.of(m) for m in self.history.messages(conversation.id)])
        await self.mark_cut_short()
        container.call_after_refresh(container.scroll_end, animate=False)
        self.sub_title = conversation.title
        self.refresh_sidebar()
        self.sync_model_picker()

    def refresh_sidebar(self) -> None:
        options = self.query_one("#conversations", OptionList)
        options.set_options([Option(Content(c.title), id=str(c.id)) for c in self.history.conversations()])
        if self.conversation is not None:
            options.highlighted = options.get_option_index(str(self.conversation.id))

    def served(self) -> set[str]:
        return {m.id for m in self.models}

    def default_model(self) -> str:
        """The model of the most recent conversation that has a served one, else the first served (twins first)."""
        served = self.served()
        for conversation in self.history.conversations():
            if conversation.model in served:
                return conversation.model
        return self.models[0].id if self.models else ""

    def sync_model_picker(self) -> None:
        select = self.query_one("#model", Select)
        options = [(m.label, m.id) for m in self.models]
        if options != self._options:
            self._options = options
            select.set_options(options)
        conversation = self.conversation
        if conversation is not None:
            if not conversation.model and self.models:
                conversation.model = self.default_model()
                self.history.set_model(conversation.id, conversation.model)
            if conversation.model in self.served():
                select.value = conversation.model
            else:
                select.clear()
        self.update_notes()

    def update_notes(self) -> None:
        notes = []
        conversation = self.conversation
        if conversation is not None:
            if conversation.talking_to or conversation.chat:
                who = conversation.talking_to or "someone"
                notes.append(
                    f"talking to {who}" + (f" ({conversation.chat} chat)" if conversation.chat else "") + " (Ctrl+T)"
                )
            if conversation.system_prompt:
                notes.append("system prompt set (F3)")
            if conversation.model and self.models and conversation.model not in self.served():
                notes.append(f"{conversation.model} is not served by the daemon: choose another (F4)")
        self.query_one("#notes", Label).update(" · ".join(notes))

    def current_model(self) -> str | None:
        conversation = self.conversation
        if conversation is None or conversation.model not in self.served():
            return None
        return conversation.model

    # --- events ----------------------------------------------------------------------------------

    def on_daemon_banner_reachable(self, event: DaemonBanner.Reachable) -> None:
        self.models = event.models
        self.sync_model_picker()

    def on_select_changed(self, event: Select.Changed) -> None:
        conversation = self.conversation
        if event.select.id != "model" or event.value is Select.NULL or conversation is None:
            return
        if event.value != conversation.model:
            conversation.model = str(event.value)
            self.history.set_model(conversation.id, conversation.model)
            self.update_notes()

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "conversations" and event.option.id is not None:
            event.stop()
            if self.conversation is None or int(event.option.id) != self.conversation.id:
                await self.show_conversation(int(event.option.id))
            self.query_one(PromptInput).focus()

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        event.stop()
        if not await self.send_text(event.text):
            self.query_one(PromptInput).restore(event.text)

    def on_prompt_input_edit_last(self, event: PromptInput.EditLast) -> None:
        event.stop()
        self.edit(self.last_message("user"))

    def on_message_view_edit_requested(self, event: MessageView.EditRequested) -> None:
        event.stop()
        self.edit(event.view.message)

    # --- sending and replies ------------------------------------------------------------------------

    def ready_to_send(self) -> bool:
        """Whether a request can go out now; says why not otherwise (and checks the daemon again)."""
        if self.streaming:
            self.notify("A reply is still being written: wait, or press Esc to stop it", severity="warning")
            return False
        if self.current_model() is None:
            banner = self.query_one(DaemonBanner)
            if not banner.reachable:
                self.notify("The daemon is not reachable yet; your message is kept", severity="warning")
                banner.check()
            else:
                self.notify("Choose a model first (F4)", severity="warning")
            return False
        return True

    async def settle_reply(self) -> None:
        """Wait for a reply whose stream has ended to be shown and stored (its settling phase)."""
        worker = self.reply_worker
        if worker is not None and not worker.is_finished and self.settling:
            with contextlib.suppress(WorkerCancelled, WorkerFailed):
                await worker.wait()

    async def send_text(self, text: str) -> bool:
        """Store and show the user's message and start the reply; False (nothing changed) when it cannot go out."""
        await self.settle_reply()
        conversation = self.conversation
        if conversation is None or not self.ready_to_send():
            return False
        if conversation.title == NEW_TITLE and not self.history.messages(conversation.id):
            conversation.title = title_from(text)
            self.history.rename(conversation.id, conversation.title)
            self.sub_title = conversation.title
        message = self.history.add_message(conversation.id, "user", text)
        await self.query_one("#messages", VerticalScroll).mount(MessageView.of(message))
        self.refresh_sidebar()
        self.start_reply(sent=message)
        return True

    def start_reply(self, sent: Message | None = None) -> None:
        assert self.conversation is not None
        self.streaming = True
        for note in self.query("#cut-short"):
            note.remove()
        self.reply_worker = self.reply(self.conversation, sent)

    def request_messages(self, conversation: Conversation) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": conversation.system_prompt}] if conversation.system_prompt else []
        messages += [{"role": m.role, "content": m.content} for m in self.history.messages(conversation.id)]
        return messages

    @work(group="reply", exclusive=True)
    async def reply(self, conversation: Conversation, sent: Message | None) -> None:
        """Stream the next reply into a new message view; `sent` is the message this request just sent, if any."""
        model = conversation.model
        messages = self.request_messages(conversation)
        container = self.query_one("#messages", VerticalScroll)
        view = MessageView("assistant", model=model)
        await container.mount(view)
        view.set_note(" · writing…")
        container.anchor()
        stream = Markdown.get_stream(view.markdown)
        text, status, error = "", "done", None
        try:
            request = self.client.stream_chat(model, messages, self.sampling, conversation.twin_field())
            async with contextlib.aclosing(request) as deltas:
                async for delta in deltas:
                    text += delta
                    view.content = text
                    await stream.write(delta)
        except asyncio.CancelledError:
            status = "stopped"
            raise
        except (DaemonUnreachable, DaemonError) as e:
            status, error = "error", e
        finally:
            # Generating is over; Enter from here on waits for the rest (settle_reply) instead of being refused.
            self.settling = True
            try:
                await stream.stop()
                await self.finish_reply(conversation, sent, view, text, status, error)
            finally:
                self.settling = False
                self.streaming = False

    async def finish_reply(
        self,
        conversation: Conversation,
        sent: Message | None,
        view: MessageView,
        text: str,
        status: str,
        error: Exception | None,
    ) -> None:
        stored = (
            self.history.add_message(conversation.id, "assistant", text, conversation.model, status) if text else None
        )
        unreachable = isinstance(error, DaemonUnreachable) or (isinstance(error, DaemonError) and error.status == 401)
        take_back = unreachable and sent is not None and not text
        if take_back:
            # Nothing came back: the message was not really sent; it goes back into the message box.
            assert sent is not None
            self.history.delete_from(sent)
        if not self.is_attached:  # the app is closing: what matters is stored
            return
        if stored is not None:
            view.finish(stored)
        else:
            await view.remove()
        if unreachable:
            assert error is not None
            self.query_one(DaemonBanner).report(error)
            if take_back:
                assert sent is not None
                await self.remove_views_from(sent.id)
                self.query_one(PromptInput).restore(sent.content)
        elif isinstance(error, DaemonError):
            self.notify(f"The daemon could not answer: {error}", severity="error", timeout=10)
            if error.status == 404:  # the model went away (daemon restarted without it): refresh the list
                self.query_one(DaemonBanner).check()
        if conversation is self.conversation:
            await self.mark_cut_short()
        self.refresh_sidebar()

    async def mark_cut_short(self) -> None:
        """Say so under the last message when the conversation ends in a reply cut short, or in no reply at all."""
        for note in self.query("#cut-short"):
            await note.remove()
        last = self.last_message()
        if last is None or (last.role == "assistant" and not last.cut_short):
            return
        if last.role == "user":
            text = "⚠ No reply to this message: it was cut short (quit, Esc or the daemon went away). Ctrl+R writes it."
        else:
            text = "⚠ This reply was cut short. Ctrl+R writes it again."
        await self.query_one("#messages", VerticalScroll).mount(Label(text, id="cut-short", markup=False))

    async def stop_reply(self) -> None:
        """Stop the reply in flight, if any, and wait until it is stored."""
        worker = self.reply_worker
        if worker is not None and not worker.is_finished:
            if not self.settling:  # a settling reply is complete: let it be stored as it is
                worker.cancel()
            with contextlib.suppress(WorkerCancelled, WorkerFailed):
                await worker.wait()

    async def remove_views_from(self, message_id: int) -> None:
        views = [v for v in self.query(MessageView) if v.message is None or v.message.id >= message_id]
        await self.query_one("#messages", VerticalScroll).remove_children(views)

    def last_message(self, role: str | None = None) -> Message | None:
        if self.conversation is None:
            return None
        messages = [m for m in self.history.messages(self.conversation.id) if role is None or m.role == role]
        return messages[-1] if messages else None

    def edit(self, message: Message | None) -> None:
        if message is None or message.role != "user":
            self.notify("No message of yours to edit here", severity="warning")
            return
        if self.streaming:
            self.notify("A reply is still being written: wait, or press Esc to stop it", severity="warning")
            return
        dialog = TextDialog(
            "Edit and resend",
            message.content,
            multiline=True,
            hint="Ctrl+S resends it (the replies after it are replaced) · Esc cancels",
        )
        self.app.push_screen(dialog, callback=partial(self._resend, message))

    async def _resend(self, message: Message, text: str | None) -> None:
        if (
            text is None
            or not text.strip()
            or self.conversation is None
            or message.conversation_id != self.conversation.id
        ):
            return
        await self.settle_reply()
        if not self.ready_to_send():
            self.query_one(PromptInput).restore(text.strip())
            return
        self.history.delete_from(message)
        await self.remove_views_from(message.id)
        await self.send_text(text.strip())

    # --- actions -------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.streaming and not self.settling
        return True

    def action_stop(self) -> None:
        if self.reply_worker is not None and not self.reply_worker.is_finished and not self.settling:
            self.reply_worker.cancel()

    async def action_regenerate(self) -> None:
        await self.settle_reply()
        last = self.last_message()
        if last is None:
            self.notify("Nothing to regenerate yet: send a message first", severity="warning")
            return
        if not self.ready_to_send():
            return
        if last.role == "assistant":
            self.history.delete_from(last)
            await self.remove_views_from(last.id)
        if self.last_message() is not None:
            self.start_reply()

    def action_copy_last(self) -> None:
        last = self.last_message("assistant")
        if last is None:
            self.notify("No reply to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(last.content)
        self.notify(f"Copied {len(last.content)} characters")

    async def action_new(self) -> None:
        current = self.conversation
        if current is not None and current.title == NEW_TITLE and not self.history.messages(current.id):
            self.query_one(PromptInput).focus()
            return
        await self.stop_reply()
        self.query_one(DaemonBanner).check()  # a good moment to refresh the model list
        conversation = self.history.create(model=current.model if current else "")
        await self.show_conversation(conversation.id)
        self.query_one(PromptInput).focus()

    def action_rename(self) -> None:
        if self.conversation is not None:
            self.app.push_screen(TextDialog("Rename the conversation", self.conversation.title), callback=self._renamed)

    def _renamed(self, title: str | None) -> None:
        if title is not None and self.conversation is not None:
            self.history.rename(self.conversation.id, title)
            self.conversation = self.history.get(self.conversation.id)
            self.sub_title = self.conversation.title if self.conversation else ""
            self.refresh_sidebar()

    def action_system_prompt(self) -> None:
        if self.conversation is not None:
            dialog = TextDialog(
                "System prompt of this conversation (sent first with every request; empty for none)",
                self.conversation.system_prompt,
                multiline=True,
            )
            self.app.push_screen(dialog, callback=self._system_prompt_set)

    def _system_prompt_set(self, text: str | None) -> None:
        if text is not None and self.conversation is not None:
            self.history.set_system_prompt(self.conversation.id, text)
            self.conversation.system_prompt = text.strip()
            self.update_notes()
            self.refresh_sidebar()

    def action_pick_model(self) -> None:
        select = self.query_one("#model", Select)
        select.focus()
        select.action_show_overlay()

    def choose_model(self, model: str) -> None:
        if model in self.served():
            self.query_one("#model", Select).value = model

    def action_delete(self) -> None:
        if self.conversation is not None:
            count = len(self.history.messages(self.conversation.id))
            question = f"Delete “{self.conversation.title}” and its {count} message{'s' if count != 1 else ''}?"
            self.app.push_screen(ConfirmDialog(question), callback=self._delete_confirmed)

    async def _delete_confirmed(self, yes: bool | None) -> None:
        current = self.conversation
        if not yes or current is None:
            return
        await self.stop_reply()
        self.history.delete(current.id)
        remaining = self.history.conversations()
        target = remaining[0] if remaining else self.history.create(model=current.model)
        await self.show_conversation(target.id)
        self.notify(f"Deleted “{current.title}”")

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(HELP))

    def action_talking_to(self) -> None:
        if self.conversation is not None:
            dialog = TalkingToDialog(self.conversation.talking_to, self.conversation.chat)
            self.app.push_screen(dialog, callback=self._talking_to_set)

    def _talking_to_set(self, answer: tuple[str, str] | None) -> None:
        if answer is not None and self.conversation is not None:
            self.history.set_talking_to(self.conversation.id, *answer)
            self.conversation = self.history.get(self.conversation.id)
            self.update_notes()
            self.refresh_sidebar()

    def action_search(self) -> None:
        self.app.push_screen(SearchScreen(self.history), callback=self._jump_to)

    async def _jump_to(self, message_id: int | None) -> None:
        """Open the conversation of a search hit and put the focus on the message."""
        if message_id is None:
            return
        row = self.history.message(message_id)
        if row is None:
            return
        if self.conversation is None or row.conversation_id != self.conversation.id:
            await self.show_conversation(row.conversation_id)
        for view in self.query(MessageView):
            if view.message is not None and view.message.id == message_id:
                view.focus()
                self.call_after_refresh(view.scroll_visible, animate=False, top=True)
                return

    def action_export(self) -> None:
        if self.conversation is None:
            return
        try:
            path = export_conversation(self.history, self.conversation.id)
        except OSError as e:
            self.notify(
                f"Could not export: {e.strerror} ({e.filename}): check the data folder (`twin paths`)", severity="error"
            )
            return
        self.notify(f"Exported to {path}", timeout=10)

    def action_copy_conversation(self) -> None:
        if self.conversation is None:
            return
        text = conversation_markdown(self.conversation, self.history.messages(self.conversation.id))
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the conversation ({len(text)} characters)")

    def action_compare(self) -> None:
        if not self.models:
            self.notify("The daemon is not reachable yet: nothing to compare", severity="warning")
            return
        conversation = self.conversation
        self.app.push_screen(
            CompareScreen(
                self.client,
                self.sampling,
                self.models,
                current=conversation.model if conversation else "",
                twin_field=conversation.twin_field() if conversation else None,
            )
        )

    def commands(self) -> Iterator[SystemCommand]:
        """This screen's entries in the command palette."""
        yield SystemCommand("New conversation", "Start an empty conversation (Ctrl+N)", self.action_new)
        yield SystemCommand("Rename conversation", "Give this conversation a new title (F2)", self.action_rename)
        yield SystemCommand("Delete conversation", "Delete this conversation and its messages (F8)", self.action_delete)
        yield SystemCommand(
            "System prompt", "Set the system prompt of this conversation (F3)", self.action_system_prompt
        )
        yield SystemCommand("Regenerate reply", "Write the last reply again (Ctrl+R)", self.action_regenerate)
        yield SystemCommand(
            "Edit last message",
            "Edit your last message and send it again (↑ in an empty box)",
            lambda: self.edit(self.last_message("user")),
        )
        yield SystemCommand("Copy last reply", "Copy the last reply to the clipboard", self.action_copy_last)
        yield SystemCommand("Talking to", "Who the twin talks to in this conversation (Ctrl+T)", self.action_talking_to)
        yield SystemCommand("Search", "Search every conversation (Ctrl+F)", self.action_search)
        yield SystemCommand("Export to Markdown", "Write this conversation to a Markdown file (F5)", self.action_export)
        yield SystemCommand(
            "Copy conversation", "Copy the whole conversation as Markdown (F6)", self.action_copy_conversation
        )
        yield SystemCommand(
            "Compare",
            "One message answered by the twin, its persona and the base side by side (F7)",
            self.action_compare,
        )
        yield SystemCommand("Stop reply", "Stop the reply being written (Esc)", self.action_stop)
        yield SystemCommand("Keys", "Show the keys of twin chat (F1)", self.action_help)
        for model in self.models:
            yield SystemCommand(
                f"Model: {model.id}",
                f"Chat with {model.id} ({model.kind}) in this conversation",
                partial(self.choose_model, model.id),
                discover=False,
            )
