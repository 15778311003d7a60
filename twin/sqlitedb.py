"""A private SQLite file with a versioned schema: the one way the daemon's stores open theirs.

The file is created 0600 before SQLite touches it (never readable by others,
not even for an instant), in WAL mode, and upgraded with `migrations`:
`migrations[i]` is the SQL that takes schema version i to i + 1, run in one
transaction with the new `PRAGMA user_version`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from twin.paths import private_dir


def open_versioned(path: Path, migrations: list[str]) -> sqlite3.Connection:
    """`path` opened (created 0600 if missing, its folder 0700) and upgraded to the last of `migrations`.

    A file whose schema is newer than `migrations` knows is refused (RuntimeError naming it): it was
    written by a newer twin, and this one must not touch it.
    """
    private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        db.close()
        raise RuntimeError(f"{path} was written by a newer twin (schema {version}, this one knows {len(migrations)})")
    for number in range(version, len(migrations)):
        db.executescript(f"BEGIN; {migrations[number]}; PRAGMA user_version = {number + 1}; COMMIT;")
    return db
