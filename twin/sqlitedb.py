"""A private SQLite file with a versioned schema: the one way twin opens its databases.

chat.db (the TUI), bot.db (the bot), jobs.db and responses.db (the daemon) all
open here. The file is created 0600 before SQLite touches it (never readable
by others, not even for an instant), in WAL mode with a busy timeout (two
processes may share it: `twin chat` and `twin chat --rate`), and upgraded with
`migrations`: `migrations[i]` is the SQL script that takes schema version i to
i + 1, run in one transaction with the new `PRAGMA user_version`, all or nothing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from twin.errors import UserError
from twin.paths import private_dir

BUSY_TIMEOUT_MS = 5000


def open_versioned(
    path: Path, migrations: list[str], *, fix: str = "move it away", foreign_keys: bool = False
) -> sqlite3.Connection:
    """`path` opened (created 0600 if missing, its folder 0700) and upgraded to the last of `migrations`.

    A UserError, the file left as it was, when it is not an SQLite database (`fix` says what to do)
    or when its schema is newer than `migrations` knows: it was written by a newer twin, and this
    one must not touch it.
    """
    private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        _upgrade(db, path, migrations)
    except sqlite3.DatabaseError as e:
        db.close()
        raise UserError(f"{path} is not a usable SQLite database ({e}): {fix}") from None
    except UserError:
        db.close()
        raise
    return db


def _upgrade(db: sqlite3.Connection, path: Path, migrations: list[str]) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise UserError(
            f"{path} was written by a newer twin (schema version {version}, this one knows {len(migrations)}): upgrade twin"
        )
    for number in range(version, len(migrations)):
        with transaction(db):
            for statement in _statements(migrations[number]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN … COMMIT, or ROLLBACK when the block raises (connections opened here are in autocommit mode)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """A script's statements: each `;` that sqlite3 says completes one (not one inside a trigger, a string or a comment)."""
    out, start = [], 0
    for i, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : i + 1]):
            out.append(script[start : i + 1].strip())
            start = i + 1
    if script[start:].strip():
        out.append(script[start:].strip())
    return out
