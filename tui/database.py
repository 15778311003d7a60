"""chat.db: the TUI's SQLite file (conversations, messages, ratings), versioned with PRAGMA user_version.

Each entry of MIGRATIONS upgrades the schema by one version; a database is
brought up to date when it is opened, in one transaction per step. The
evaluation reads the `ratings` table: its columns are a contract, change them
only through a new migration.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from twin import paths
from twin.sqlitedb import open_versioned

DB_NAME = "chat.db"

_V1 = """
CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY,
    title         TEXT NOT NULL,
    model         TEXT NOT NULL DEFAULT '',          -- model id chosen for this conversation
    system_prompt TEXT NOT NULL DEFAULT '',
    created       TEXT NOT NULL,                     -- ISO 8601, UTC
    updated       TEXT NOT NULL
);
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT NOT NULL,
    model           TEXT NOT NULL DEFAULT '',        -- who wrote an assistant message
    status          TEXT NOT NULL DEFAULT 'done' CHECK (status IN ('done', 'stopped', 'error')),
    created         TEXT NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
CREATE TABLE ratings (
    id            INTEGER PRIMARY KEY,
    round_id      TEXT NOT NULL,                     -- one context shown with its candidates
    twin          TEXT NOT NULL,
    sample_id     INTEGER NOT NULL,                  -- 1-based line number in twins/<twin>/dataset/val.jsonl
    sample_sha256 TEXT NOT NULL,                     -- of that line's text: detects a rebuilt dataset
    variant       TEXT NOT NULL CHECK (variant IN ('twin', 'prompt', 'real')),
    model         TEXT NOT NULL DEFAULT '',          -- model id that wrote the reply; '' for the real one
    reply         TEXT NOT NULL,
    position      INTEGER NOT NULL,                  -- 0-based place in the shuffled order shown
    score         INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    best          INTEGER NOT NULL CHECK (best IN (0, 1)),
    decoding      TEXT NOT NULL DEFAULT '{}',        -- JSON sampling settings of the model replies
    rated_at      TEXT NOT NULL                      -- ISO 8601, UTC
);
CREATE INDEX ratings_by_twin ON ratings(twin, sample_id);
CREATE TABLE preferences (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


# Who the twin talks to in a conversation (sent as the daemon's `twin` extra field), and full-text
# search over every message. The index is external-content (it stores no second copy of the text)
# and kept in step by triggers, so no code path can forget it.
_V2 = """
ALTER TABLE conversations ADD COLUMN talking_to TEXT NOT NULL DEFAULT '';   -- a name, '' when not set
ALTER TABLE conversations ADD COLUMN chat TEXT NOT NULL DEFAULT '';         -- the kind of chat: private, group, ''
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');   -- index what a version 1 file already holds
"""


# Who rated: '' for the person themself (`twin chat --rate`), `telegram:<user id>` for a friend who took the
# bot's survey. Friends answer "which one did they write?" in `best`.
_V3 = """
ALTER TABLE ratings ADD COLUMN rater TEXT NOT NULL DEFAULT '';
"""


MIGRATIONS: list[str] = [_V1, _V2, _V3]  # twin.sqlitedb runs MIGRATIONS[i] to go from version i to i + 1
SCHEMA_VERSION = len(MIGRATIONS)


def db_path() -> Path:
    return paths.data_dir() / DB_NAME


_last_stamp = ""


def now() -> str:
    """A UTC timestamp that only grows: conversations are ordered by it, and two changes within
    the clock's resolution must not tie."""
    global _last_stamp
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    if stamp <= _last_stamp:
        stamp = (datetime.fromisoformat(_last_stamp) + timedelta(microseconds=1)).isoformat(timespec="microseconds")
    _last_stamp = stamp
    return stamp


def connect(path: Path | None = None) -> sqlite3.Connection:
    """Open (creating it 0600 if needed) and upgrade the database; a UserError if it is unusable."""
    db = open_versioned(path or db_path(), MIGRATIONS, fix="move it away to start a fresh history", foreign_keys=True)
    db.row_factory = sqlite3.Row
    return db
