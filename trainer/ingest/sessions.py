"""From one chat's messages to samples: turns, sessions, context and reply threads.

A session ends after a quiet gap; one sender's messages within a short window
merge into one turn; each of my turns becomes a sample whose context is the
turns before it in the session, plus the message it replies to. Context always
starts with someone else's turn: a sample teaches how I answer, not how I open.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring

from trainer.ingest.messages import Chat, Message

# Reply targets are looked up among a chat's recent messages only; older ones are forgotten
# so memory does not grow with the chat (two generations of this many messages are kept).
REPLY_MEMORY = 5000


@dataclass(frozen=True)
class SessionSettings:
    gap: float = 3600.0  # seconds of silence that end a conversation
    merge: float = 300.0  # seconds between one sender's messages that still make one turn
    context: int = 8  # turns before my reply kept as context
    context_chars: int = 2000  # a longer context turn keeps only its last this many characters (0: no cap)


def cap_context(content: str, limit: int) -> tuple[str, bool]:
    """A context turn cut to its last `limit` characters (the part nearest the reply); True when it was cut.

    One huge message would otherwise sit whole in every sample whose context it
    reaches: a 50 MB message in 8 contexts made a 275 MB dataset.
    """
    if not limit or len(content) <= limit:
        return content, False
    return "…" + content[len(content) - limit + 1 :], True


def fragment(role: str, content: str) -> str:
    """One message of a sample as JSON text, built once and reused by every sample it appears in."""
    return '{"role":"' + role + '","content":' + encode_basestring(content) + "}"


class Turn:
    """Consecutive messages of one sender, joined by newlines."""

    __slots__ = ("_fragment", "end", "ids", "label", "mine", "reply_to", "sender", "sender_id", "texts")

    def __init__(self, msg: Message, text: str, mine: bool, label: str) -> None:
        self.mine = mine
        self.sender_id = msg.sender_id
        self.sender = msg.sender
        self.label = label
        self.texts = [text]
        self.ids = [msg.id]
        self.end = msg.time
        self.reply_to = msg.reply_to
        self._fragment: str | None = None

    def add(self, msg: Message, text: str) -> None:
        self.texts.append(text)
        self.ids.append(msg.id)
        self.end = msg.time
        if self.reply_to is None:
            self.reply_to = msg.reply_to

    def text(self) -> str:
        return "\n".join(self.texts)

    def fragment(self, clean: Callable[[str], str], limit: int, on_cut: Callable[[], None]) -> str:
        """The turn as a context message, cleaned and capped at `limit` characters; '' when cleaning left nothing."""
        if self._fragment is None:
            content = clean(self.text()).strip()
            if not content:
                self._fragment = ""
            else:
                content, cut = cap_context(content, limit)
                if cut:
                    on_cut()
                self._fragment = fragment(
                    "assistant" if self.mine else "user", f"{self.label}: {content}" if self.label else content
                )
        return self._fragment


# emit(session_key, time, fragments, my reply text, who it answers) → None: the fragments end with the reply's own;
# session_key is the conversation's running session number.
Emit = Callable[[object, float, list[str], str, str], None]


class Conversation:
    """Turns one chat's messages (in order) into samples, handed to `emit` as my turns close."""

    def __init__(
        self,
        chat: Chat,
        settings: SessionSettings,
        clean: Callable[[str], str],
        emit: Emit,
        on_skip: Callable[[str], None],
    ) -> None:
        self.chat = chat
        self.clean = clean
        self.settings = settings
        self.emit = emit
        self.on_skip = on_skip
        self.window: deque[Turn] = deque(maxlen=settings.context)
        self.open: Turn | None = None
        self.last_time: float | None = None
        self.session = 0  # running number of the current session in this chat
        self.my_turns = 0
        self.context_cut = 0  # context turns cut to settings.context_chars
        self._recent: dict[int, tuple[bool, str, str, str]] = {}
        self._older: dict[int, tuple[bool, str, str, str]] = {}

    def add(self, msg: Message, mine: bool) -> None:
        """Take the next message of the chat (cleaning waits until a turn lands in a sample)."""
        s = self.settings
        t = msg.time
        open_ = self.open
        if self.last_time is not None and t - self.last_time > s.gap:
            self._close_turn()
            self.window.clear()
            self.session += 1
            open_ = None
        label = msg.sender if self.chat.group and not mine else ""
        if open_ is not None and open_.sender_id == msg.sender_id and t - open_.end <= s.merge:
            open_.add(msg, msg.text)
        else:
            self._close_turn()
            self.open = Turn(msg, msg.text, mine, label)
        self.last_time = t
        if msg.id is not None:
            self._remember(msg.id, (mine, label, msg.text, msg.sender))

    def close(self) -> None:
        """The chat ended: emit the last turn if it is mine."""
        self._close_turn()

    def _close_turn(self) -> None:
        turn = self.open
        if turn is None:
            return
        self.open = None
        if turn.mine:
            self.my_turns += 1
            self._sample(turn)
        self.window.append(turn)

    def _sample(self, turn: Turn) -> None:
        clean = self.clean
        limit = self.settings.context_chars
        reply = clean(turn.text()).strip()
        # cleaned once: the turn is context for my later replies too (capped there like any context turn)
        own = fragment("assistant", reply) if reply else ""
        capped, cut = cap_context(reply, limit)
        turn._fragment = fragment("assistant", capped) if cut else own
        if cut:
            self._count_cut()
        if not reply:
            self.on_skip("empty after cleaning")
            return
        window = self.window
        entries = [(t.mine, t.fragment(clean, limit, self._count_cut)) for t in window]
        others = [t.sender for t, (_, f) in zip(window, entries) if not t.mine and f]
        talking_to = others[-1] if others else ""
        target = turn.reply_to
        if target is not None and target not in turn.ids and not any(target in t.ids for t in window):
            found = self._recent.get(target) or self._older.get(target)
            if found is not None:
                mine, label, text, sender = found
                text = clean(text).strip()
                text, cut = cap_context(text, limit)
                if cut:
                    self._count_cut()
                if text and not mine:
                    talking_to = sender
                if text:
                    thread = (mine, fragment("assistant" if mine else "user", f"{label}: {text}" if label else text))
                    keep = self.settings.context - 1
                    entries = [thread] + (entries[-keep:] if keep else [])
        entries = [e for e in entries if e[1]]
        first_other = 0
        while first_other < len(entries) and entries[first_other][0]:
            first_other += 1
        if first_other == len(entries):
            self.on_skip("no context")
            return
        self.emit(self.session, turn.end, [f for _, f in entries[first_other:]] + [own], reply, talking_to)

    def _count_cut(self) -> None:
        self.context_cut += 1

    def _remember(self, mid: int, entry: tuple[bool, str, str, str]) -> None:
        recent = self._recent
        recent[mid] = entry
        if len(recent) >= REPLY_MEMORY:
            self._older = recent
            self._recent = {}
