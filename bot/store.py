"""bot.db: what the bot remembers (owner, allowlist, each chat's model and recent turns, the survey switch).

SQLite in the data directory, 0600, versioned with PRAGMA user_version
(twin.sqlitedb, as chat.db). The claim code is kept only as a
hash, and used once.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from bot.rules import Role
from twin import paths
from twin.config import BotSettings
from twin.sqlitedb import open_versioned

DB_NAME = "bot.db"

_V1 = """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- One row per allowed person: by id, or by @username until they first write (then the id is filled in).
CREATE TABLE people (id INTEGER UNIQUE, username TEXT UNIQUE, name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL CHECK (role IN ('owner', 'chat', 'rate')));
CREATE TABLE chats (chat_id INTEGER PRIMARY KEY, model TEXT NOT NULL DEFAULT '');
CREATE TABLE turns (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')), content TEXT NOT NULL);
CREATE INDEX turns_by_chat ON turns(chat_id, id);
"""

MIGRATIONS: list[str] = [_V1]  # twin.sqlitedb runs MIGRATIONS[i] to go from version i to i + 1


@dataclass(frozen=True)
class Person:
    id: int | None
    username: str  # without "@", lowercase; "" when unknown
    name: str
    role: Role


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


class BotStore:
    """The bot's state; every method is one short transaction (the bot is one process)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.data_dir() / DB_NAME
        self.db = open_versioned(self.path, MIGRATIONS, fix="move it away and run setup again")

    def close(self) -> None:
        self.db.close()

    # settings
    def get(self, key: str, default: str = "") -> str:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def put(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    # the owner and the one-time claim code
    def set_claim_code(self, code: str) -> None:
        self.put("claim_code", _hash(code))

    def claim(self, code: str, user_id: int, username: str, name: str) -> bool:
        """Make this person the owner if `code` is the one `setup` printed and nobody owns the bot yet."""
        expected = self.get("claim_code")
        if not expected or self.owner() is not None or not hmac.compare_digest(expected, _hash(code)):
            return False
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("DELETE FROM settings WHERE key = 'claim_code'")
        self._upsert(user_id, username, name, Role.OWNER)
        self.db.execute("COMMIT")
        return True

    def owner(self) -> Person | None:
        row = self.db.execute("SELECT id, username, name, role FROM people WHERE role = 'owner'").fetchone()
        return Person(row[0], row[1] or "", row[2], Role(row[3])) if row else None

    # the allowlist
    def _upsert(self, user_id: int | None, username: str, name: str, role: Role) -> None:
        username = username.lower().lstrip("@")
        if user_id is not None:
            self.db.execute("DELETE FROM people WHERE id = ? OR (username = ? AND username != '')", (user_id, username))
        else:
            self.db.execute("DELETE FROM people WHERE username = ?", (username,))
        self.db.execute(
            "INSERT INTO people (id, username, name, role) VALUES (?, ?, ?, ?)",
            (user_id, username or None, name, role.value),
        )

    def allow(self, user_id: int | None, username: str, name: str, role: Role) -> None:
        if role is Role.OWNER:
            raise ValueError("the owner is set by the claim, not by /allow")
        self._upsert(user_id, username, name, role)

    def deny(self, user_id: int | None, username: str) -> bool:
        """Remove someone (never the owner); whether anyone was removed."""
        username = username.lower().lstrip("@")
        cur = self.db.execute(
            "DELETE FROM people WHERE role != 'owner' AND (id = ? OR (username = ? AND username != ''))",
            (user_id, username),
        )
        return cur.rowcount > 0

    def person(self, user_id: int, username: str = "") -> Person | None:
        """The allowlist entry of this user: by id, else by @username (then the id is remembered)."""
        row = self.db.execute("SELECT id, username, name, role FROM people WHERE id = ?", (user_id,)).fetchone()
        username = (username or "").lower()
        if row is None and username:
            row = self.db.execute(
                "SELECT id, username, name, role FROM people WHERE username = ? AND id IS NULL", (username,)
            ).fetchone()
            if row is not None:
                self.db.execute("UPDATE people SET id = ? WHERE username = ?", (user_id, username))
                row = (user_id, *row[1:])
        return Person(row[0], row[1] or "", row[2], Role(row[3])) if row else None

    def people(self) -> list[Person]:
        rows = self.db.execute("SELECT id, username, name, role FROM people ORDER BY role, name").fetchall()
        return [Person(r[0], r[1] or "", r[2], Role(r[3])) for r in rows]

    # each chat's model and conversation
    def model(self, chat_id: int) -> str:
        row = self.db.execute("SELECT model FROM chats WHERE chat_id = ?", (chat_id,)).fetchone()
        return row[0] if row else ""

    def set_model(self, chat_id: int, model: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO chats (chat_id, model) VALUES (?, ?)", (chat_id, model))

    def turns(self, chat_id: int, limit: int) -> list[dict[str, str]]:
        """The last `limit` turns of this chat, oldest first, as chat messages."""
        rows = self.db.execute(
            "SELECT role, content FROM turns WHERE chat_id = ? ORDER BY id DESC LIMIT ?", (chat_id, limit)
        ).fetchall()
        return [{"role": r, "content": c} for r, c in reversed(rows)]

    def add_exchange(self, chat_id: int, user_text: str, reply: str, keep: int) -> None:
        """Remember one exchange; only the last `keep` turns of a chat are kept (the rest is deleted)."""
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(
            "INSERT INTO turns (chat_id, role, content) VALUES (?, ?, ?)",
            [(chat_id, "user", user_text), (chat_id, "assistant", reply)],
        )
        self.db.execute(
            "DELETE FROM turns WHERE chat_id = ? AND id NOT IN"
            " (SELECT id FROM turns WHERE chat_id = ? ORDER BY id DESC LIMIT ?)",
            (chat_id, chat_id, keep),
        )
        self.db.execute("COMMIT")

    def reset(self, chat_id: int) -> int:
        return self.db.execute("DELETE FROM turns WHERE chat_id = ?", (chat_id,)).rowcount


def role_of(store: BotStore, settings: BotSettings, user_id: int, username: str = "") -> Role | None:
    """Someone's role: the owner (claimed, or `[bot] owner`), an allowlist entry, `[bot] allow`/`raters`; else None."""
    if settings.owner and user_id == settings.owner:
        return Role.OWNER
    person = store.person(user_id, username)
    if person is not None:
        return person.role
    if str(user_id) in settings.allow:
        return Role.CHAT
    if str(user_id) in settings.raters:
        return Role.RATE
    return None
