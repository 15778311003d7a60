"""Stored responses: `responses.db` (SQLite) in the data directory, bounded in size and age.

Each row keeps the `Response` object GET returns and the conversation it
ends (every turn up to and including its own output, the instructions left
out: OpenAI does not carry them over), so `previous_response_id` works even
after older responses of the chain were pruned. Past `max_bytes` the oldest
rows go; rows older than `max_age` seconds are neither returned nor kept. The
schema is versioned (`PRAGMA user_version`, one upgrade per version). The file
holds messages: it is created 0600.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from twin.sqlitedb import open_versioned

_V1 = """
        CREATE TABLE responses (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT UNIQUE NOT NULL,
            created_at INTEGER NOT NULL,
            response TEXT NOT NULL,
            conversation TEXT NOT NULL,
            bytes INTEGER NOT NULL
        );
        CREATE INDEX responses_created ON responses (created_at);
"""

MIGRATIONS: list[str] = [_V1]  # MIGRATIONS[i] upgrades schema version i to i + 1, in one transaction


class ResponseStore:
    """One connection, used from the event loop only (a few rows a request)."""

    def __init__(self, path: Path, *, max_bytes: int, max_age: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.db = open_versioned(path, MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    def _cutoff(self) -> int:
        return int(time.time() - self.max_age)

    def put(self, response: dict[str, Any], conversation: list[dict[str, str]]) -> None:
        """Keep `response` and the conversation it ends; then drop what is past the age and size bounds."""
        body = json.dumps(response, ensure_ascii=False)
        turns = json.dumps(conversation, ensure_ascii=False)
        size = len(body.encode()) + len(turns.encode())
        self.db.execute("BEGIN")
        try:
            self.db.execute(
                "INSERT INTO responses (id, created_at, response, conversation, bytes) VALUES (?, ?, ?, ?, ?)",
                (response["id"], int(response["created_at"]), body, turns, size),
            )
            self.db.execute("DELETE FROM responses WHERE created_at < ?", (self._cutoff(),))
            # Newest first, a running total of their sizes: everything from the row that crosses the cap on goes.
            self.db.execute(
                "DELETE FROM responses WHERE seq IN (SELECT seq FROM (SELECT seq, SUM(bytes) OVER "
                "(ORDER BY seq DESC) AS total FROM responses) WHERE total > ?)",
                (self.max_bytes,),
            )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _row(self, response_id: str, column: str) -> Any:
        row = self.db.execute(
            f"SELECT {column} FROM responses WHERE id = ? AND created_at >= ?", (response_id, self._cutoff())
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def get(self, response_id: str) -> dict[str, Any] | None:
        """The stored `Response` object, or None (never stored, deleted, or past the bounds)."""
        return self._row(response_id, "response")

    def conversation(self, response_id: str) -> list[dict[str, str]] | None:
        """The turns up to and including this response's output, or None."""
        return self._row(response_id, "conversation")

    def delete(self, response_id: str) -> bool:
        return self.db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
