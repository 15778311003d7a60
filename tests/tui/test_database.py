"""chat.db: versioned from the first release, upgraded on open, refused when newer or not a database."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from tui import database
from tui.history import NEW_TITLE, History, title_from
from twin.errors import UserError

# The columns the evaluation reads: changing them needs a new migration (and telling `twin eval`).
RATINGS_COLUMNS = [
    "id",
    "round_id",
    "twin",
    "sample_id",
    "sample_sha256",
    "variant",
    "model",
    "reply",
    "position",
    "score",
    "best",
    "decoding",
    "rated_at",
    "rater",  # version 3: '' for the person themself, telegram:<id> for a friend in the bot's survey
]


def columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row["name"] for row in db.execute(f"PRAGMA table_info({table})")]


def test_new_database_has_the_current_schema(twin_home: Path) -> None:
    db = database.connect()
    assert database.db_path() == twin_home / "chat.db"
    assert db.execute("PRAGMA user_version").fetchone()[0] == database.SCHEMA_VERSION == 3
    assert columns(db, "ratings") == RATINGS_COLUMNS
    assert columns(db, "conversations") == [
        "id",
        "title",
        "model",
        "system_prompt",
        "created",
        "updated",
        "talking_to",
        "chat",
    ]
    assert columns(db, "messages") == ["id", "conversation_id", "role", "content", "model", "status", "created"]
    assert stat.S_IMODE(database.db_path().stat().st_mode) == 0o600
    db.close()


def test_reopening_keeps_data_and_does_not_migrate_again(twin_home: Path) -> None:
    db = database.connect()
    History(db).create("kept")
    db.close()
    db = database.connect()
    assert [c.title for c in History(db).conversations()] == ["kept"]
    assert db.execute("PRAGMA user_version").fetchone()[0] == database.SCHEMA_VERSION


def test_an_empty_version_0_file_is_upgraded_step_by_step(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    db = database.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(database.MIGRATIONS)
    assert {"conversations", "messages", "ratings", "preferences"} <= {
        r["name"] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }


def test_a_version_1_file_keeps_its_ratings_as_the_persons_own(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    raw = sqlite3.connect(path)
    raw.executescript(database.MIGRATIONS[0])
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO ratings (round_id, twin, sample_id, sample_sha256, variant, reply, position, score, best, rated_at)"
        " VALUES ('r', 'alice', 1, 'x', 'real', 'hi', 0, 5, 1, 'now')"
    )
    raw.commit()
    raw.close()
    db = database.connect(path)
    assert [tuple(r) for r in db.execute("SELECT twin, rater FROM ratings")] == [("alice", "")]


def test_a_newer_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {database.SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(UserError, match=r"written by a newer twin .*: upgrade twin"):
        database.connect(path)


def test_a_file_that_is_not_a_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    path.write_bytes(b"this is not sqlite at all, just some bytes" * 100)
    with pytest.raises(UserError, match=r"not a usable SQLite database .*move it away"):
        database.connect(path)


def test_history_orders_edits_and_deletes(twin_home: Path) -> None:
    history = History(database.connect())
    first = history.create()
    second = history.create("second", model="m")
    history.add_message(first.id, "user", "hi")  # a new message makes a conversation the most recent
    assert [c.id for c in history.conversations()] == [first.id, second.id]
    reply = history.add_message(first.id, "assistant", "hello", "m")
    again = history.add_message(first.id, "user", "again")
    history.delete_from(reply)
    assert [m.content for m in history.messages(first.id)] == ["hi"]
    assert again.id > reply.id
    history.delete(first.id)
    assert history.messages(first.id) == []
    assert [c.title for c in history.conversations()] == ["second"]
    history.rename(second.id, "  ")
    assert history.get(second.id).title == NEW_TITLE


def test_title_from_first_message() -> None:
    assert title_from("  Привет,\n как дела? ") == "Привет, как дела?"
    long = title_from("word " * 30)
    assert len(long) == 40 and long.endswith("…")


def test_timestamps_never_tie() -> None:
    from tui.database import now

    stamps = [now() for _ in range(2000)]  # far faster than the clock's resolution
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
