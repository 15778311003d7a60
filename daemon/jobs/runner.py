"""Runs the queued fine-tuning jobs, one at a time, each as a `twin build` child process.

The child runs at a lower CPU priority with its own thread count, in its own
session, and gets SIGTERM when the daemon dies (PR_SET_PDEATHSIG): it then saves
a training checkpoint as it does on Ctrl-C. Its progress arrives as JSON lines
in `jobs/<id>/events.jsonl` (`twin build --events`), which the runner follows
from a stored offset: after a restart it reads on where it stopped, and a job
left `running` is started again with `--resume` once the old child has let go
of the twin's build lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.jobs.objects import CheckpointMetrics, FineTuningJob, JobError
from daemon.jobs.store import FINAL, Store
from trainer.train.config import TrainConfig  # a plain dataclass: its defaults, not the trainer
from twin import lock, paths
from twin.build import BuildConfig

log = logging.getLogger("twin.daemon")

PR_SET_PDEATHSIG = 1
BASE_LR = TrainConfig.lr  # twin build's learning rate: learning_rate_multiplier scales it
DEFAULTS = {"n_epochs": TrainConfig.epochs, "batch_size": TrainConfig.batch_size, "learning_rate_multiplier": 1.0}
STOP_SECONDS = 120.0  # a step and a checkpoint save; then SIGKILL

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: after fork only the call itself runs
except (OSError, AttributeError):  # not Linux
    _prctl = None  # type: ignore[assignment]


def jobs_dir() -> Path:
    return paths.data_dir() / "jobs"


def _child_setup() -> None:
    """In the child between fork and exec: lower priority, and SIGTERM when the daemon goes away."""
    os.nice(10)
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Running:
    job_id: str
    proc: asyncio.subprocess.Process
    cancel_requested: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Runner:
    """The queue's one worker. `on_built(name)` serves a finished twin; `on_busy(bool)` brackets every job."""

    def __init__(
        self,
        store: Store,
        *,
        train_threads: int,
        on_built: Callable[[str], Awaitable[None]],
        on_busy: Callable[[bool], None] = lambda busy: None,
    ) -> None:
        self.store = store
        self.train_threads = train_threads
        self.on_built = on_built
        self.on_busy = on_busy
        self._wake = asyncio.Event()
        self._current: _Running | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def wake(self) -> None:
        """A job was created: check its files now (it is queued at once, even behind a running job)."""
        self._validate_new()
        self._wake.set()

    async def stop(self) -> None:
        """On shutdown: stop the child (it keeps its checkpoint); the job stays `running` and resumes next start."""
        self._stopping = True
        if self._current is not None:
            await self._terminate(self._current)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def cancel(self, job_id: str) -> FineTuningJob:
        job = self.store.job(job_id)
        if job.status in FINAL:
            from daemon.schema import APIError

            raise APIError(
                400, f"Job {job_id} is already {job.status}: only a job that has not ended can be cancelled",
                param="fine_tuning_job_id", code="job_not_cancellable",
            )  # fmt: skip
        current = self._current
        if current is not None and current.job_id == job_id:
            current.cancel_requested = True
            self.store.add_event(job_id, "Cancelling: the build stops after this step and keeps its checkpoint")
            await self._terminate(current)
            return self.store.job(job_id)
        self.store.add_event(job_id, "Job cancelled before it started")
        return self.store.set_status(job_id, "cancelled")

    async def _terminate(self, running: _Running) -> None:
        if running.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                running.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(running.done.wait(), STOP_SECONDS)
        except TimeoutError:
            log.warning("job %s: the build did not stop within %.0fs; killing it", running.job_id, STOP_SECONDS)
            with contextlib.suppress(ProcessLookupError):
                running.proc.kill()
            await running.done.wait()

    # --- the loop

    async def _loop(self) -> None:
        while not self._stopping:
            self._validate_new()
            pending = self.store.jobs_with("running") or self.store.jobs_with("queued")
            if not pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            job = pending[0]
            try:
                self.on_busy(True)
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug: the job fails with it rather than the queue stopping
                log.exception("job %s failed in the runner", job.id)
                if self.store.job(job.id).status not in FINAL:
                    self.store.add_event(job.id, f"internal error: {e}", level="error")
                    self.store.set_status(job.id, "failed", error=JobError(code="internal_error", message=str(e)))
            finally:
                self.on_busy(False)

    def _validate_new(self) -> None:
        for job in self.store.jobs_with("validating_files"):
            self.store.add_event(job.id, f"Validating training file: {job.training_file}")
            missing = [f for f in (job.training_file, job.validation_file) if f and not self._file_ok(f)]
            if missing:
                message = f"the uploaded file {missing[0]} is gone or empty: upload it again"
                self.store.add_event(job.id, message, level="error")
                self.store.set_status(
                    job.id,
                    "failed",
                    error=JobError(code="invalid_training_file", message=message, param="training_file"),
                )
                continue
            self.store.add_event(job.id, "Files validated, moving job to queued state")
            self.store.set_status(job.id, "queued")

    def _file_ok(self, file_id: str) -> bool:
        try:
            return self.store.file_path(file_id).stat().st_size > 0
        except Exception:
            return False

    async def _run(self, job: FineTuningJob) -> None:
        name = self.store.name_of(job.id)
        folder = paths.private_dir(jobs_dir() / job.id)
        events_path = folder / "events.jsonl"
        resume = job.status == "running"
        reader = _Reader(self.store, job.id, name)
        if resume:
            self.store.add_event(job.id, "Resuming the job after a daemon restart")
            while lock.holder(name) is not None:  # the old child is saving its checkpoint on its way out
                await asyncio.sleep(0.2)
            reader.drain(events_path, previous_run=True)  # what the old child wrote after the daemon died
        else:
            self.store.set_status(job.id, "running")
            self.store.add_event(job.id, f"Fine-tuning job started: building twin {name!r}")
        argv = self._argv(job, name, events_path, resume)
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(self.train_threads),
            "MKL_NUM_THREADS": str(self.train_threads),
            "OMP_WAIT_POLICY": "PASSIVE",
            "PYTHONUNBUFFERED": "1",
        }
        log_fd = os.open(folder / "build.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                env=env,
                preexec_fn=_child_setup,
                start_new_session=True,  # Ctrl-C on the daemon's terminal reaches the daemon, which stops the build
            )
        finally:
            os.close(log_fd)
        running = _Running(job.id, proc)
        self._current = running
        try:
            await self._follow(running, folder, name, reader)
        finally:
            self._current = None
            running.done.set()  # after the final status: a cancel answers with it

    async def _follow(self, running: _Running, folder: Path, name: str, reader: _Reader) -> None:
        """Read the child's events until it exits, then settle the job's status from how it ended."""
        job_id, proc, events_path = running.job_id, running.proc, folder / "events.jsonl"
        while True:
            exited = proc.returncode is not None
            reader.drain(events_path)
            if exited:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.25)
        code = proc.returncode
        if self._stopping and not running.cancel_requested:
            log.info("job %s: stopped with the daemon; it resumes when the daemon starts again", job_id)
            return
        if code == 0 and reader.done is not None:
            await self.on_built(name)
            self.store.add_event(job_id, f"New fine-tuned model created and served: {name} (and {name}-prompt)")
            self.store.set_status(
                job_id, "succeeded", fine_tuned_model=name, trained_tokens=reader.done.get("trained_tokens")
            )
            self.store.add_event(job_id, "The job has successfully completed")
        elif running.cancel_requested:
            kept = f" (checkpoint kept at step {reader.checkpoint_step})" if reader.checkpoint_step else ""
            self.store.add_event(job_id, f"Job cancelled{kept}")
            self.store.set_status(job_id, "cancelled")
        else:
            message = reader.error or f"the build exited with code {code}: see {folder / 'build.log'}"
            self.store.add_event(job_id, message, level="error")
            self.store.set_status(job_id, "failed", error=JobError(code="build_failed", message=message))

    def _argv(self, job: FineTuningJob, name: str, events_path: Path, resume: bool) -> list[str]:
        twin = job.twin or {}
        hp = job.hyperparameters
        exports = [str(self.store.file_path(f)) for f in (job.training_file, job.validation_file) if f]
        argv = [sys.executable, "-m", "twin", "build", *exports, "--name", name, "--events", str(events_path)]
        argv += ["--base", twin["base"], "--quant", twin["quant"], "--device", twin["device"]]
        argv += ["--epochs", str(hp.n_epochs), "--batch-size", str(hp.batch_size)]
        argv += ["--lr", repr(BASE_LR * float(hp.learning_rate_multiplier or 1.0)), "--seed", str(job.seed)]
        argv += ["--max-steps", str(twin["max_steps"]), "--max-length", str(twin["max_length"])]
        argv += ["--time-budget", f"{twin.get('time_budget_s', 0):g}s" if twin.get("time_budget_s") else "0"]
        for who in twin.get("me", []):
            argv += ["--me", who]
        argv += ["--calibration-samples", str(twin.get("calibration_samples", BuildConfig.calibration_samples))]
        if twin.get("strip_emoji"):
            argv.append("--strip-emoji")
        if resume:
            argv.append("--resume")
        return argv


class _Reader:
    """Turns the build's JSON lines into the job's events, checkpoints and estimate, from the stored offset on."""

    def __init__(self, store: Store, job_id: str, name: str) -> None:
        self.store = store
        self.job_id = job_id
        self.name = name
        self.done: dict[str, Any] | None = None
        self.error: str | None = None
        self.checkpoint_step = 0
        self.last_loss: float | None = None
        self.last_val_loss: float | None = None
        self.previous_run = False

    def drain(self, path: Path, previous_run: bool = False) -> None:
        self.previous_run = previous_run
        offset = self.store.events_offset(self.job_id)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        for line in data[:end].splitlines():
            if line.strip():
                self._take(json.loads(line))
        if end:
            self.store.update_job(self.job_id, events_offset=offset + end)

    def _take(self, e: dict[str, Any]) -> None:
        kind, at = e.get("event"), int(e.get("time") or time.time())
        add = self.store.add_event
        if kind == "stage":
            add(self.job_id, f"Stage {e['number']}/{e['of']}: {e['title']}", data={"stage": e["stage"]}, created=at)
        elif kind == "ingested":
            add(
                self.job_id,
                f"Read the export: {e['train_samples']} training and {e['val_samples']} validation samples",
                created=at,
            )
        elif kind == "step":
            eta = float(e.get("eta_seconds") or 0)
            data = {
                "step": e["step"],
                "total_steps": e["total_steps"],
                "train_loss": e["loss"],
                "tokens_per_s": e["tokens_per_s"],
                "eta_seconds": eta,
            }
            add(
                self.job_id,
                f"Step {e['step']}/{e['total_steps']}: training loss={e['loss']:.4f}, "
                f"{e['tokens_per_s']:.0f} tokens/s, about {eta:.0f}s of training left",
                data=data,
                created=at,
            )
            self.last_loss = e["loss"]
            self.store.update_job(self.job_id, estimated_finish=int(at + eta))
        elif kind == "eval":
            add(
                self.job_id,
                f"Step {e['step']}: validation loss={e['val_loss']:.4f}, perplexity {e['val_ppl']:.2f}",
                data={"step": e["step"], "valid_loss": e["val_loss"], "val_perplexity": e["val_ppl"]},
                created=at,
            )
            self.last_val_loss = e["val_loss"]
        elif kind == "checkpoint":
            self.checkpoint_step = int(e["step"])
            metrics = CheckpointMetrics(step=e["step"], train_loss=e.get("train_loss"), valid_loss=e.get("val_loss"))
            self.store.set_checkpoint(self.job_id, int(e["step"]), f"{self.name}:ckpt-step-{e['step']}", metrics)
            add(self.job_id, f"Checkpoint saved at step {e['step']}", created=at)
        elif kind == "resumed":
            add(self.job_id, f"Training resumed from the checkpoint (step {self.checkpoint_step or '?'})", created=at)
        elif kind == "converted":
            add(
                self.job_id,
                f"Converted to a {e['quant']} GGUF ({e['bytes'] / 2**20:.1f} MB)",
                data={"quant": e["quant"], "bytes": e["bytes"]},
                created=at,
            )
        elif kind == "calibrated":
            bias = float(e["end_bias"])
            add(
                self.job_id,
                f"Reply length fitted to the person's: end bias {bias:+.2f}"
                if bias
                else "Reply length already the person's",
                data={"end_bias": bias},
                created=at,
            )
        elif kind == "done":
            self.done = e  # the finished twin is the job's last checkpoint: served under its name
            step = int(e.get("steps") or self.checkpoint_step)
            metrics = CheckpointMetrics(step=step, train_loss=self.last_loss, valid_loss=self.last_val_loss)
            self.store.set_checkpoint(self.job_id, step, self.name, metrics)
        elif kind == "error":
            if self.previous_run:
                add(self.job_id, f"The previous run stopped: {e['message']}", level="warn", created=at)
            else:
                self.error = str(e["message"])
