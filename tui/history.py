"""Conversations and their messages in chat.db, and the app's few remembered preferences."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tui.database import now
from twin.sqlitedb import transaction

NEW_TITLE = "New conversation"
TITLE_LENGTH = 40


@dataclass
class Conversation:
    id: int
    title: str
    model: str
    system_prompt: str
    created: str
    updated: str
    talking_to: str = ""  # who the twin talks to here (a name), sent with every request
    chat: str = ""  # the kind of chat: "private", "group" or ""

    def twin_field(self) -> dict[str, str] | None:
        """The daemon's `twin` extra field for this conversation, or None when nothing is set."""
        out = {k: v for k, v in (("talking_to", self.talking_to), ("chat", self.chat)) if v}
        return out or None


@dataclass
class Message:
    id: int
    conversation_id: int
    role: str  # "user" or "assistant"
    content: str
    model: str
    status: str  # "done", "stopped" (Esc, quit), "error" (the daemon went away)
    created: str

    @property
    def cut_short(self) -> bool:
        return self.status != "done"


@dataclass
class Hit:
    """A message that matched a search, with its conversation's title and the matching words marked."""

    message_id: int
    conversation_id: int
    title: str
    role: str
    snippet: str  # the match between HIT_START and HIT_END


HIT_START, HIT_END = "\x02", "\x03"  # characters no message holds: the caller renders them as highlight
SEARCH_LIMIT = 50


def fts_query(text: str) -> str:
    """What the user typed as an FTS5 query: every word must occur, the last one as a prefix (search as you type).

    Each word is quoted, so FTS5's operators and punctuation in the text are taken literally.
    """
    words = [w.replace('"', '""') for w in text.split()]
    if not words:
        return ""
    return " ".join(f'"{w}"' for w in words[:-1]) + (" " if len(words) > 1 else "") + f'"{words[-1]}"*'


def title_from(text: str) -> str:
    """A conversation title from its first message: its first line, shortened."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


class History:
    """Reads and writes conversations; every write is one transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def conversations(self) -> list[Conversation]:
        """All conversations, the most recently used first."""
        rows = self.db.execute("SELECT * FROM conversations ORDER BY updated DESC, id DESC").fetchall()
        return [Conversation(**dict(r)) for r in rows]

    def get(self, conversation_id: int) -> Conversation | None:
        row = self.db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return Conversation(**dict(row)) if row else None

    def create(self, title: str = NEW_TITLE, model: str = "", system_prompt: str = "") -> Conversation:
        stamp = now()
        with transaction(self.db):
            cur = self.db.execute(
                "INSERT INTO conversations (title, model, system_prompt, created, updated) VALUES (?, ?, ?, ?, ?)",
                (title, model, system_prompt, stamp, stamp),
            )
        conversation = self.get(int(cur.lastrowid or 0))
        assert conversation is not None
        return conversation

    def _set(self, conversation_id: int, column: str, value: str) -> None:
        with transaction(self.db):
            self.db.execute(
                f"UPDATE conversations SET {column} = ?, updated = ? WHERE id = ?", (value, now(), conversation_id)
            )

    def rename(self, conversation_id: int, title: str) -> None:
        self._set(conversation_id, "title", title.strip() or NEW_TITLE)

    def set_model(self, conversation_id: int, model: str) -> None:
        with transaction(self.db):  # choosing a model does not make a conversation "recent"
            self.db.execute("UPDATE conversations SET model = ? WHERE id = ?", (model, conversation_id))

    def set_system_prompt(self, conversation_id: int, text: str) -> None:
        self._set(conversation_id, "system_prompt", text.strip())

    def set_talking_to(self, conversation_id: int, talking_to: str, chat: str) -> None:
        with transaction(self.db):
            self.db.execute(
                "UPDATE conversations SET talking_to = ?, chat = ?, updated = ? WHERE id = ?",
                (" ".join(talking_to.split()), chat.strip(), now(), conversation_id),
            )

    def search(self, text: str, limit: int = SEARCH_LIMIT) -> list[Hit]:
        """Messages of every conversation that hold all the words of `text` (the last may be a word's start), best first."""
        query = fts_query(text)
        if not query:
            return []
        rows = self.db.execute(
            "SELECT m.id, m.conversation_id, c.title, m.role,"
            " snippet(messages_fts, 0, ?, ?, '…', 12) AS snippet"
            " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE messages_fts MATCH ? ORDER BY rank, m.id DESC LIMIT ?",
            (HIT_START, HIT_END, query, limit),
        ).fetchall()
        return [Hit(*r) for r in rows]

    def delete(self, conversation_id: int) -> None:
        with transaction(self.db):
            self.db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def messages(self, conversation_id: int) -> list[Message]:
        rows = self.db.execute(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        ).fetchall()
        return [Message(**dict(r)) for r in rows]

    def message(self, message_id: int) -> Message | None:
        row = self.db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return Message(**dict(row)) if row else None

    def add_message(
        self, conversation_id: int, role: str, content: str, model: str = "", status: str = "done"
    ) -> Message:
        stamp = now()
        with transaction(self.db):
            cur = self.db.execute(
                "INSERT INTO messages (conversation_id, role, content, model, status, created) VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, model, status, stamp),
            )
            self.db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (stamp, conversation_id))
        return Message(int(cur.lastrowid or 0), conversation_id, role, content, model, status, stamp)

    def delete_from(self, message: Message) -> None:
        """Delete `message` and every later message of its conversation (edit and resend, regenerate)."""
        with transaction(self.db):
            self.db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND id >= ?", (message.conversation_id, message.id)
            )

    def preference(self, key: str, default: str = "") -> str:
        row = self.db.execute("SELECT value FROM preferences WHERE key = ?", (key,)).fetchone()
        return str(row["value"]) if row else default

    def set_preference(self, key: str, value: str) -> None:
        with transaction(self.db):
            self.db.execute(
                "INSERT INTO preferences (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
