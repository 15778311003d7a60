"""The jobs database: files, jobs, their events and checkpoints in one SQLite file in the data directory.

The schema is versioned (`PRAGMA user_version`, one upgrade function per
version). A job's status moves only along `TRANSITIONS`: `set_status` refuses
anything else, so no code path can, say, revive a cancelled job.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from daemon.jobs.objects import (
    CheckpointMetrics,
    FileObject,
    FineTuningJob,
    FineTuningJobCheckpoint,
    FineTuningJobEvent,
    Hyperparameters,
    JobError,
)
from daemon.schema import APIError
from twin.sqlitedb import open_versioned

T = TypeVar("T")

TRANSITIONS: dict[str, frozenset[str]] = {
    "validating_files": frozenset({"queued", "failed", "cancelled"}),
    "queued": frozenset({"running", "failed", "cancelled"}),
    "running": frozenset({"succeeded", "failed", "cancelled"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
FINAL = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)


class TransitionError(RuntimeError):
    """A status change the state machine does not allow: a bug, never a user's mistake."""


_V1 = """
        CREATE TABLE files (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT UNIQUE NOT NULL,
            filename TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            purpose TEXT NOT NULL,
            path TEXT NOT NULL
        );
        CREATE TABLE jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT UNIQUE NOT NULL,
            created_at INTEGER NOT NULL,
            status TEXT NOT NULL,
            model TEXT NOT NULL,
            name TEXT NOT NULL,
            training_file TEXT NOT NULL,
            validation_file TEXT,
            hyperparameters TEXT NOT NULL,
            twin TEXT NOT NULL,
            seed INTEGER NOT NULL,
            metadata TEXT,
            error TEXT,
            fine_tuned_model TEXT,
            started_at INTEGER,
            finished_at INTEGER,
            trained_tokens INTEGER,
            estimated_finish INTEGER,
            events_offset INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT UNIQUE NOT NULL,
            job_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL,
            type TEXT NOT NULL,
            data TEXT
        );
        CREATE INDEX events_job ON events (job_id, seq);
        CREATE TABLE checkpoints (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT UNIQUE NOT NULL,
            job_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            step INTEGER NOT NULL,
            model_checkpoint TEXT NOT NULL,
            metrics TEXT NOT NULL
        );
"""

MIGRATIONS: list[str] = [_V1]  # MIGRATIONS[i] upgrades schema version i to i + 1, in one transaction


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def _now() -> int:
    return int(time.time())


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Store:
    """One connection, used from the event loop only (every query is a few rows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_versioned(path, MIGRATIONS)
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    # --- files

    def add_file(self, file_id: str, filename: str, size: int, path: Path) -> FileObject:
        created = _now()
        self.db.execute(
            "INSERT INTO files (id, filename, bytes, created_at, purpose, path) VALUES (?, ?, ?, ?, 'fine-tune', ?)",
            (file_id, filename, size, created, str(path)),
        )
        return FileObject(id=file_id, bytes=size, created_at=created, filename=filename)

    def _file_row(self, file_id: str, param: str | None = None) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise APIError(404, f"No such File object: {file_id}", param=param or "id", code="file_not_found")
        return row

    def file(self, file_id: str, param: str | None = None) -> FileObject:
        row = self._file_row(file_id, param)
        return FileObject(id=row["id"], bytes=row["bytes"], created_at=row["created_at"], filename=row["filename"])

    def file_path(self, file_id: str, param: str | None = None) -> Path:
        return Path(self._file_row(file_id, param)["path"])

    def files(self, after: str | None, limit: int, ascending: bool) -> tuple[list[FileObject], bool]:
        return self._page("files", "", (), after, limit, ascending, _file)

    def delete_file(self, file_id: str) -> Path:
        path = self.file_path(file_id)
        self.db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return path

    def file_in_use(self, file_id: str) -> bool:
        """Whether a job that has not finished reads this file."""
        marks = ",".join("?" * len(FINAL))
        row = self.db.execute(
            f"SELECT 1 FROM jobs WHERE (training_file = ? OR validation_file = ?) AND status NOT IN ({marks})",
            (file_id, file_id, *FINAL),
        ).fetchone()
        return row is not None

    # --- jobs

    def add_job(
        self,
        *,
        model: str,
        name: str,
        training_file: str,
        validation_file: str | None,
        hyperparameters: Hyperparameters,
        twin: dict[str, Any],
        seed: int,
        metadata: dict[str, str] | None,
    ) -> FineTuningJob:
        job_id = new_id("ftjob")
        self.db.execute(
            "INSERT INTO jobs (id, created_at, status, model, name, training_file, validation_file, hyperparameters,"
            " twin, seed, metadata) VALUES (?, ?, 'validating_files', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                _now(),
                model,
                name,
                training_file,
                validation_file,
                hyperparameters.model_dump_json(),
                _json(twin),
                seed,
                _json(metadata),
            ),
        )
        return self.job(job_id)

    def _job_row(self, job_id: str) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise APIError(404, f"Fine-tuning job {job_id} not found", param="fine_tuning_job_id", code="job_not_found")
        return row

    def job(self, job_id: str) -> FineTuningJob:
        return _job(self._job_row(job_id))

    def jobs(self, after: str | None, limit: int) -> tuple[list[FineTuningJob], bool]:
        return self._page("jobs", "", (), after, limit, False, _job)

    def jobs_with(self, *statuses: str) -> list[FineTuningJob]:
        """Jobs in these statuses, oldest first (the queue's order)."""
        marks = ",".join("?" * len(statuses))
        rows = self.db.execute(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY seq", statuses).fetchall()
        return [_job(r) for r in rows]

    def name_of(self, job_id: str) -> str:
        return str(self._job_row(job_id)["name"])

    def started_before(self, job_id: str) -> bool:
        return self._job_row(job_id)["started_at"] is not None

    def set_status(self, job_id: str, status: str, **fields: Any) -> FineTuningJob:
        """Move a job to `status` (refused unless TRANSITIONS allows it), setting other columns with it."""
        current = self._job_row(job_id)["status"]
        if status not in TRANSITIONS[current]:
            raise TransitionError(f"job {job_id}: {current} -> {status} is not a transition")
        if status == "running":
            fields.setdefault("started_at", _now())
        if status in FINAL:
            fields.setdefault("finished_at", _now())
            fields["estimated_finish"] = None
        if isinstance(fields.get("error"), JobError):
            fields["error"] = fields["error"].model_dump_json()
        self._update(job_id, status=status, **fields)
        return self.job(job_id)

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Columns other than the status (progress, the events file offset)."""
        if "status" in fields:
            raise TransitionError("change a status with set_status")
        self._update(job_id, **fields)

    def _update(self, job_id: str, **fields: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))

    def events_offset(self, job_id: str) -> int:
        return int(self._job_row(job_id)["events_offset"])

    # --- events and checkpoints

    def add_event(
        self, job_id: str, message: str, *, level: str = "info", data: dict[str, Any] | None = None, created: int = 0
    ) -> None:
        kind = "metrics" if data is not None and "step" in data else "message"
        self.db.execute(
            "INSERT INTO events (id, job_id, created_at, level, message, type, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (new_id("ftevent"), job_id, created or _now(), level, message, kind, _json(data)),
        )

    def events(self, job_id: str, after: str | None, limit: int) -> tuple[list[FineTuningJobEvent], bool]:
        self._job_row(job_id)
        return self._page("events", "job_id = ?", (job_id,), after, limit, False, _event)

    def set_checkpoint(self, job_id: str, step: int, model_checkpoint: str, metrics: CheckpointMetrics) -> None:
        """The job's checkpoint: the trainer keeps one on disk and replaces it at each save, so do we."""
        self.db.execute("BEGIN")
        try:
            self.db.execute("DELETE FROM checkpoints WHERE job_id = ?", (job_id,))
            self.db.execute(
                "INSERT INTO checkpoints (id, job_id, created_at, step, model_checkpoint, metrics)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (new_id("ftckpt"), job_id, _now(), step, model_checkpoint, metrics.model_dump_json()),
            )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def checkpoints(self, job_id: str, after: str | None, limit: int) -> tuple[list[FineTuningJobCheckpoint], bool]:
        self._job_row(job_id)
        return self._page("checkpoints", "job_id = ?", (job_id,), after, limit, False, _checkpoint)

    def _page(
        self,
        table: str,
        where: str,
        args: tuple[Any, ...],
        after: str | None,
        limit: int,
        ascending: bool,
        item: Callable[[sqlite3.Row], T],
    ) -> tuple[list[T], bool]:
        """Up to `limit` objects after the one with id `after`, and whether there are more (one extra row is read)."""
        clauses, values = ([where], list(args)) if where else ([], [])
        if after:
            row = self.db.execute(f"SELECT seq FROM {table} WHERE id = ?", (after,)).fetchone()
            if row is None:
                raise APIError(400, f"Invalid value for 'after': no object with id {after}", param="after")
            clauses.append("seq > ?" if ascending else "seq < ?")
            values.append(row["seq"])
        sql = f"SELECT * FROM {table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY seq {'ASC' if ascending else 'DESC'} LIMIT ?"
        rows = self.db.execute(sql, (*values, limit + 1)).fetchall()
        return [item(r) for r in rows[:limit]], len(rows) > limit


def _file(r: sqlite3.Row) -> FileObject:
    return FileObject(id=r["id"], bytes=r["bytes"], created_at=r["created_at"], filename=r["filename"])


def _event(r: sqlite3.Row) -> FineTuningJobEvent:
    return FineTuningJobEvent(
        id=r["id"],
        created_at=r["created_at"],
        level=r["level"],
        message=r["message"],
        type=r["type"],
        data=_load(r["data"]),
    )


def _checkpoint(r: sqlite3.Row) -> FineTuningJobCheckpoint:
    return FineTuningJobCheckpoint(
        id=r["id"],
        created_at=r["created_at"],
        fine_tuned_model_checkpoint=r["model_checkpoint"],
        fine_tuning_job_id=r["job_id"],
        metrics=CheckpointMetrics.model_validate_json(r["metrics"]),
        step_number=r["step"],
    )


def _job(row: sqlite3.Row) -> FineTuningJob:
    error = _load(row["error"])
    twin = _load(row["twin"]) or {}
    return FineTuningJob(
        id=row["id"],
        created_at=row["created_at"],
        error=JobError(**error) if error else None,
        fine_tuned_model=row["fine_tuned_model"],
        finished_at=row["finished_at"],
        hyperparameters=Hyperparameters.model_validate_json(row["hyperparameters"]),
        model=row["model"],
        seed=row["seed"],
        status=row["status"],
        trained_tokens=row["trained_tokens"],
        training_file=row["training_file"],
        validation_file=row["validation_file"],
        estimated_finish=row["estimated_finish"],
        metadata=_load(row["metadata"]),
        method={"type": "supervised"},
        twin={"name": row["name"], **twin},
    )
