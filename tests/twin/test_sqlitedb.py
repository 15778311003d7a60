"""twin.sqlitedb: the one way chat.db, bot.db, jobs.db and responses.db are opened and upgraded."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from twin.errors import UserError
from twin.sqlitedb import open_versioned

V1 = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"
# A trigger's body holds semicolons, and a comment may too: each script still runs whole.
V2 = """
ALTER TABLE notes ADD COLUMN length INTEGER NOT NULL DEFAULT 0;  -- the text's length; kept by the trigger
CREATE TRIGGER notes_length AFTER INSERT ON notes BEGIN
    UPDATE notes SET length = length(new.text) WHERE id = new.id;
END;
"""


def version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_a_new_file_is_private_and_upgraded_step_by_step(tmp_path: Path) -> None:
    path = tmp_path / "data" / "notes.db"
    db = open_versioned(path, [V1])
    db.execute("INSERT INTO notes (text) VALUES ('kept')")
    db.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert version(path) == 1
    db = open_versioned(path, [V1, V2])  # the next version: only V2 runs
    db.execute("INSERT INTO notes (text) VALUES ('four')")
    assert db.execute("SELECT text, length FROM notes ORDER BY id").fetchall() == [("kept", 0), ("four", 4)]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert version(path) == 2


def test_a_failing_migration_leaves_the_file_at_its_version(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    open_versioned(path, [V1]).close()
    broken = "ALTER TABLE notes ADD COLUMN extra TEXT; INSERT INTO nowhere VALUES (1);"
    with pytest.raises(UserError, match=r"notes\.db is not a usable SQLite database .*no such table: nowhere"):
        open_versioned(path, [V1, broken])
    assert version(path) == 1
    with sqlite3.connect(path) as db:  # the first half of the broken step was rolled back too
        assert [row[1] for row in db.execute("PRAGMA table_info(notes)")] == ["id", "text"]


def test_a_newer_file_and_a_non_database_are_one_line_each(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 5")
    with pytest.raises(
        UserError, match=r"newer\.db was written by a newer twin \(schema version 5, this one knows 1\): upgrade twin"
    ):
        open_versioned(newer, [V1])
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all " * 200)
    with pytest.raises(UserError, match=r"junk\.db is not a usable SQLite database .*: move it away$"):
        open_versioned(junk, [V1])
    assert junk.read_bytes() == b"not sqlite at all " * 200  # left as it was


def test_the_bot_store_opens_through_it(tmp_path: Path) -> None:
    from bot.store import MIGRATIONS, BotStore

    path = tmp_path / "bot.db"
    store = BotStore(path)
    store.put("survey", "on")
    store.close()
    assert version(path) == len(MIGRATIONS) and BotStore(path).get("survey") == "on"
    path.write_bytes(b"garbage" * 500)
    with pytest.raises(
        UserError, match=r"bot\.db is not a usable SQLite database .*: move it away and run setup again"
    ):
        BotStore(path)
