"""`twin jobs`: the daemon's fine-tuning jobs, through its OpenAI API (the same one any client uses)."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Annotated, Any

import typer

from twin.errors import UserError

FINAL = ("succeeded", "failed", "cancelled")
Url = Annotated[
    str | None, typer.Option(help="The daemon's API address (default http://127.0.0.1:8642/v1; config chat.url).")
]

jobs_app = typer.Typer(help="Fine-tuning jobs on the daemon: list them, follow one.", invoke_without_command=True)


def _client(url: str | None) -> Any:
    import openai

    from twin.config import ChatSettings, load

    settings = load(ChatSettings, {"url": url})
    return openai.OpenAI(base_url=settings.url, api_key=settings.api_key or "-", max_retries=0, timeout=30)


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """One API call; the daemon's own error message, or how to start it, as a UserError."""
    import openai

    try:
        return fn(*args, **kwargs)
    except openai.APIConnectionError:
        raise UserError(f"no daemon answers at the configured address ({what}): start it with `twin serve`") from None
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        raise UserError(f"{what}: {body.get('message') or e.message}") from None


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


@jobs_app.callback()
def list_cmd(
    ctx: typer.Context, url: Url = None, limit: Annotated[int, typer.Option(help="Newest N jobs.")] = 20
) -> None:
    """List the daemon's fine-tuning jobs, newest first."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = url
        return
    client = _client(url)
    jobs = _call("listing jobs", client.fine_tuning.jobs.list, limit=limit).data
    if not jobs:
        print("no fine-tuning jobs yet (create one with the OpenAI API: client.fine_tuning.jobs.create)")
        return
    print(f"{'id':34} {'status':16} {'twin':16} {'created':16} finished")
    for job in jobs:
        name = (job.model_extra or {}).get("twin", {}).get("name") or job.fine_tuned_model or "-"
        print(f"{job.id:34} {job.status:16} {name:16} {_when(job.created_at):16} {_when(job.finished_at)}")


@jobs_app.command("follow")
def follow_cmd(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id (ftjob-…), as `twin jobs` lists it.")],
    url: Url = None,
    interval: Annotated[float, typer.Option(help="Seconds between two looks at the job.")] = 1.0,
) -> None:
    """Print a job's events as they come, until it ends (exit code 0 only when it succeeded)."""
    client = _client(url or ctx.obj)
    seen: set[str] = set()
    while True:
        job = _call(f"job {job_id}", client.fine_tuning.jobs.retrieve, job_id)
        events = list(_call(f"job {job_id}", client.fine_tuning.jobs.list_events, job_id, limit=100))
        for event in reversed(events):  # newest first on the wire
            if event.id not in seen:
                seen.add(event.id)
                print(f"{_when(event.created_at)}  {event.message}", flush=True)
        if job.status in FINAL:
            break
        time.sleep(interval)
    if job.status == "failed":
        raise UserError(f"job {job_id} failed: {job.error.message if job.error else 'no reason given'}")
    if job.status == "cancelled":
        print(f"job {job_id} was cancelled", file=sys.stderr)
        raise typer.Exit(1)
    print(f"twin {job.fine_tuned_model!r} is built and served", file=sys.stderr)


@jobs_app.command("cancel")
def cancel_cmd(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id (ftjob-…).")],
    url: Url = None,
) -> None:
    """Cancel a job: a running build stops after its current step and keeps its checkpoint."""
    job = _call(f"job {job_id}", _client(url or ctx.obj).fine_tuning.jobs.cancel, job_id)
    print(f"{job.id} {job.status}")
