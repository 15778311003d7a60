"""The HTTP side of files and fine-tuning jobs: thin handlers over the store and the runner.

`register(app)` adds the routes and starts the runner with the app; the
engine is touched at two points only: `Engine.reload(model_id)` when a job's
twin is built (hot swap) and `Engine.set_job_training(busy)` around each job
(twin.threads decides the thread counts).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from daemon import openapi, schema
from daemon.jobs import uploads
from daemon.jobs.objects import (
    CheckpointPage,
    EventPage,
    FileDeleted,
    FileObject,
    FilePage,
    FineTuningJob,
    Hyperparameters,
    JobPage,
    page,
)
from daemon.jobs.runner import DEFAULTS, Runner
from daemon.jobs.store import Store
from daemon.schema import APIError
from trainer.train.config import TrainConfig  # a plain dataclass: its defaults, not the trainer
from twin import embedded, paths
from twin.build import DEFAULT_BUDGET_S, MIN_CALIBRATION_SAMPLES, BuildConfig
from twin.errors import UserError
from twin.threads import training_threads

log = logging.getLogger("twin.daemon")

JOBS = web.AppKey("jobs", Any)
MAX_LIMIT = 10_000
# A job's `twin` options the request leaves out (their types and bounds: daemon.schema.TWIN_OPTIONS).
TWIN_DEFAULTS: dict[str, Any] = {
    "me": [],
    "base": None,
    "quant": "auto",
    "max_steps": TrainConfig.max_steps,
    "max_length": TrainConfig.max_length,
    "time_budget_s": DEFAULT_BUDGET_S,
    "strip_emoji": False,
    "device": TrainConfig.device,
    "calibration_samples": BuildConfig.calibration_samples,
}


class Jobs:
    """What the handlers share: the store, the runner, and the daemon's state (settings, engine)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.store = Store(paths.data_dir() / "jobs.db")
        self.runner = Runner(
            self.store,
            train_threads=training_threads(state.settings.train_threads),
            on_built=self._serve,
            on_busy=state.engine.set_job_training,
        )

    async def _serve(self, name: str) -> None:
        """A job built twin `name`: serve it (and its persona) now, swapping out an older build."""
        engine = self.state.engine
        engine.refresh()
        await engine.reload(name)


def _jobs(request: web.Request) -> Jobs:
    return request.app[JOBS]  # type: ignore[return-value]  # JOBS is an AppKey of Any: Jobs is defined below it


def _limit(request: web.Request, default: int) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise APIError(400, f"Invalid value for 'limit': {raw!r}; use 1 to {MAX_LIMIT}", param="limit")
    return value


# --- files


async def create_file(request: web.Request) -> web.Response:
    jobs = _jobs(request)
    cap = jobs.state.settings.max_upload_mb * 2**20
    return web.json_response((await uploads.receive(request, jobs.store, cap)).model_dump())


async def list_files(request: web.Request) -> web.Response:
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise APIError(400, f"Invalid value for 'order': {order!r}; use 'asc' or 'desc'", param="order")
    purpose = request.query.get("purpose")
    items, more = _jobs(request).store.files(request.query.get("after"), _limit(request, MAX_LIMIT), order == "asc")
    if purpose is not None and purpose != "fine-tune":
        items, more = [], False
    return web.json_response(page(items, more))


async def get_file(request: web.Request) -> web.Response:
    return web.json_response(_jobs(request).store.file(request.match_info["id"]).model_dump())


async def file_content(request: web.Request) -> web.StreamResponse:
    path = _jobs(request).store.file_path(request.match_info["id"])
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


async def delete_file(request: web.Request) -> web.Response:
    store = _jobs(request).store
    file_id = request.match_info["id"]
    store.file(file_id)
    if store.file_in_use(file_id):
        raise APIError(
            409, f"File {file_id} is used by a fine-tuning job that has not ended: cancel the job or wait for it",
            param="id", code="file_in_use",
        )  # fmt: skip
    path = store.delete_file(file_id)
    path.unlink(missing_ok=True)
    return web.json_response(FileDeleted(id=file_id, deleted=True).model_dump())


# --- jobs


def _base(model: str, override: str | None) -> str:
    """twin build's --base for a job: `twin.base`, else `model` (a served base id or a short name)."""
    if override:
        return override
    return "default" if model in embedded.ALIASES else model


def _asked(req: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters, wherever the client put them (newer SDKs nest them under `method`)."""
    if "hyperparameters" in req:
        return req["hyperparameters"]
    return req.get("method", {}).get("supervised", {}).get("hyperparameters", {})


async def create_job(request: web.Request, body: Any) -> web.Response:
    jobs = _jobs(request)
    req = schema.JOB_REQUEST.parse(body, "")
    store = jobs.store
    store.file(req["training_file"], param="training_file")
    validation_file = req.get("validation_file") or None
    if validation_file:
        store.file(validation_file, param="validation_file")
    name = req.get("suffix") or "me"
    try:
        paths.check_name(name)
    except UserError as e:
        raise APIError(400, f"Invalid value for 'suffix': {e}", param="suffix") from None
    asked = _asked(req)
    # DEFAULTS holds a valid value for every field
    chosen: dict[str, Any] = {k: DEFAULTS[k] if asked.get(k, "auto") == "auto" else asked[k] for k in DEFAULTS}
    used = Hyperparameters(**chosen)
    for key in ("n_epochs", "batch_size"):
        if int(getattr(used, key)) < 1:
            raise APIError(400, f"Invalid value for 'hyperparameters.{key}': must be at least 1", param=key)
    if float(used.learning_rate_multiplier) <= 0:  # type: ignore[arg-type]  # a number after the defaults
        raise APIError(400, "Invalid value for 'hyperparameters.learning_rate_multiplier': must be more than 0")
    options = TWIN_DEFAULTS | req.get("twin", {})
    if 0 < options["calibration_samples"] < MIN_CALIBRATION_SAMPLES:
        raise schema.invalid("twin.calibration_samples", f"must be 0 (skip) or at least {MIN_CALIBRATION_SAMPLES}")
    if isinstance(options["me"], str):
        options["me"] = [options["me"]]
    twin = options | {"base": _base(req["model"], options["base"])}
    job = store.add_job(
        model=req["model"],
        name=name,
        training_file=req["training_file"],
        validation_file=validation_file,
        hyperparameters=used,
        twin=twin,
        seed=req.get("seed", 0),
        metadata=req.get("metadata"),
    )
    store.add_event(job.id, f"Created fine-tuning job: {job.id}")
    jobs.runner.wake()
    return web.json_response(job.model_dump())


async def list_jobs(request: web.Request) -> web.Response:
    items, more = _jobs(request).store.jobs(request.query.get("after"), _limit(request, 20))
    return web.json_response(page(items, more))


async def get_job(request: web.Request) -> web.Response:
    return web.json_response(_jobs(request).store.job(request.match_info["id"]).model_dump())


async def cancel_job(request: web.Request) -> web.Response:
    return web.json_response((await _jobs(request).runner.cancel(request.match_info["id"])).model_dump())


async def job_events(request: web.Request) -> web.Response:
    store = _jobs(request).store
    items, more = store.events(request.match_info["id"], request.query.get("after"), _limit(request, 20))
    return web.json_response(page(items, more))


async def job_checkpoints(request: web.Request) -> web.Response:
    store = _jobs(request).store
    items, more = store.checkpoints(request.match_info["id"], request.query.get("after"), _limit(request, 10))
    return web.json_response(page(items, more))


UPLOAD = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "purpose": {"type": "string", "enum": ["fine-tune"]},
    },
    "required": ["file", "purpose"],
}
openapi.register(
    "POST",
    "/v1/files",
    "Upload a chat export or dataset for fine-tuning (multipart/form-data)",
    request=UPLOAD,
    request_type="multipart/form-data",
    response=FileObject,
)
openapi.register("GET", "/v1/files", "The uploaded files, newest first", response=FilePage, errors=(400,))
openapi.register("GET", "/v1/files/{id}", "One uploaded file", response=FileObject, errors=(404,))
openapi.register(
    "GET", "/v1/files/{id}/content", "An uploaded file's bytes", content_type="application/octet-stream", errors=(404,)
)
openapi.register("DELETE", "/v1/files/{id}", "Delete an uploaded file", response=FileDeleted, errors=(404, 409))
openapi.register(
    "POST",
    "/v1/fine_tuning/jobs",
    "Start a fine-tuning job: twin ingest and twin build on an uploaded file",
    request=schema.JOB_REQUEST,
    response=FineTuningJob,
    errors=(404, 408),
)
openapi.register("GET", "/v1/fine_tuning/jobs", "Fine-tuning jobs, newest first", response=JobPage, errors=(400,))
openapi.register("GET", "/v1/fine_tuning/jobs/{id}", "One fine-tuning job", response=FineTuningJob, errors=(404,))
openapi.register("POST", "/v1/fine_tuning/jobs/{id}/cancel", "Cancel a job", response=FineTuningJob, errors=(400, 404))
openapi.register(
    "GET", "/v1/fine_tuning/jobs/{id}/events", "A job's events, newest first", response=EventPage, errors=(400, 404)
)
openapi.register(
    "GET",
    "/v1/fine_tuning/jobs/{id}/checkpoints",
    "A job's checkpoints",
    response=CheckpointPage,
    errors=(400, 404),
)


def register(app: web.Application, state: Any) -> None:
    """Add the files and fine-tuning routes; the store opens and the runner starts with the app."""
    from daemon.server import json_route  # the server imports this module first: its helpers are there by now

    app.router.add_post("/v1/files", create_file)
    app.router.add_get("/v1/files", list_files)
    app.router.add_get("/v1/files/{id}", get_file)
    app.router.add_get("/v1/files/{id}/content", file_content)
    app.router.add_delete("/v1/files/{id}", delete_file)
    app.router.add_post("/v1/fine_tuning/jobs", json_route(create_job))
    app.router.add_get("/v1/fine_tuning/jobs", list_jobs)
    app.router.add_get("/v1/fine_tuning/jobs/{id}", get_job)
    app.router.add_post("/v1/fine_tuning/jobs/{id}/cancel", cancel_job)
    app.router.add_get("/v1/fine_tuning/jobs/{id}/events", job_events)
    app.router.add_get("/v1/fine_tuning/jobs/{id}/checkpoints", job_checkpoints)

    jobs = Jobs(state)
    app[JOBS] = jobs  # type: ignore[misc]

    async def start(app: web.Application) -> None:
        jobs.runner.start()

    async def stop(app: web.Application) -> None:
        await jobs.runner.stop()
        jobs.store.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
