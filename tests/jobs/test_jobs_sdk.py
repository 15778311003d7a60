"""The fine-tuning API end to end through the official SDK: a real daemon, real `twin build` children, real LoRA steps.

One daemon for the module; the twin built by the first test is rebuilt under
load by the hot-swap test, so the order of the tests matters (pytest keeps it).
"""

from __future__ import annotations

import math
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest

from tests.helpers.twins import env_with_home
from twin.demo import SAMPLE

ROOT = Path(__file__).resolve().parents[2]
ASK = [{"role": "user", "content": "How was your day? Answer in one sentence."}]


def twin_cli(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "twin", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env_with_home(home),
    )


@pytest.fixture(scope="module")
def sample_file(client):
    with open(SAMPLE, "rb") as f:
        return client.files.create(file=f, purpose="fine-tune")


@pytest.fixture(scope="module")
def built(client, sample_file, jobs):
    """The issue's snippet: upload, create, follow; `alice` built from the bundled sample in 2 short steps."""
    job = client.fine_tuning.jobs.create(
        training_file=sample_file.id,
        model="smollm2-135m-instruct",
        suffix="alice",
        hyperparameters={"n_epochs": 1, "batch_size": 2},
        extra_body={"twin": {"max_steps": 2, **jobs.QUICK}},
    )
    seen: list = []
    done = jobs.wait_final(client, job.id, seen)
    return job, done, seen


def test_the_upload_is_stored_privately_and_comes_back_byte_for_byte(client, sample_file, jobs_home):
    assert sample_file.object == "file" and sample_file.purpose == "fine-tune"
    assert sample_file.filename == "result.json" and sample_file.bytes == SAMPLE.stat().st_size
    assert client.files.retrieve(sample_file.id) == sample_file
    assert sample_file.id in [f.id for f in client.files.list()]
    assert client.files.content(sample_file.id).read() == SAMPLE.read_bytes()
    (stored,) = (jobs_home / "files").glob(f"{sample_file.id}*")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700


def test_a_job_builds_the_twin_reports_its_steps_and_the_twin_answers(client, built, jobs, jobs_home):
    job, done, seen = built
    assert job.status == "validating_files" and job.object == "fine_tuning.job"
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model == "alice" and done.trained_tokens > 0 and done.finished_at >= done.created_at
    assert done.hyperparameters.n_epochs == 1 and done.hyperparameters.batch_size == 2
    running = [j for j in seen if j.status == "running"]
    assert any(j.estimated_finish and j.estimated_finish >= j.created_at for j in running)
    assert done.estimated_finish is None

    messages = [e.message for e in reversed(list(client.fine_tuning.jobs.list_events(job.id)))]
    assert messages[0] == f"Created fine-tuning job: {job.id}"
    assert messages[-1] == "The job has successfully completed"
    steps = jobs.step_events(client, job.id)
    assert [e.data["step"] for e in steps] == [1, 2]
    assert all(math.isfinite(e.data["train_loss"]) and e.data["train_loss"] > 0 for e in steps)
    assert all(e.data["tokens_per_s"] > 0 for e in steps)
    assert any("validation loss" in m and "perplexity" in m for m in messages)

    (checkpoint,) = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoint.fine_tuned_model_checkpoint == "alice" and checkpoint.step_number == 2

    gguf = next((jobs_home / "twins" / "alice").glob("model-*.gguf"))
    digest = jobs.sha256(gguf)
    assert client.models.retrieve("alice").model_extra["twin"]["gguf_sha256"] == digest
    assert {"alice", "alice-prompt"} <= {m.id for m in client.models.list()}
    reply = client.chat.completions.create(model="alice", messages=ASK, max_tokens=8, seed=0)
    assert reply.system_fingerprint == f"fp_{digest[:12]}" and reply.usage.completion_tokens >= 1
    persona = client.chat.completions.create(model="alice-prompt", messages=ASK, max_tokens=4, seed=0)
    assert persona.usage.completion_tokens >= 1


def test_twin_jobs_lists_and_follows_through_the_api(built, jobs_daemon, jobs_home):
    job, _, _ = built
    listing = twin_cli(jobs_home, "jobs", "--url", jobs_daemon.url)
    assert listing.returncode == 0, listing.stderr
    line = next(row for row in listing.stdout.splitlines() if row.startswith(job.id))
    assert "succeeded" in line and "alice" in line
    follow = twin_cli(jobs_home, "jobs", "follow", job.id, "--url", jobs_daemon.url)
    assert follow.returncode == 0, follow.stderr
    assert "Step 1/2: training loss=" in follow.stdout and follow.stdout.rstrip().endswith("successfully completed")
    missing = twin_cli(jobs_home, "jobs", "follow", "ftjob-nope", "--url", jobs_daemon.url)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "ftjob-nope" in missing.stderr


def test_a_truncated_export_fails_the_job_with_the_ingest_error_line(client, jobs, jobs_home, tmp_path):
    truncated = tmp_path / "result.json"
    truncated.write_bytes(SAMPLE.read_bytes()[:5000])
    with open(truncated, "rb") as f:
        upload = client.files.create(file=f, purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=upload.id, model="smollm2-135m-instruct", suffix="broken")
    done = jobs.wait_final(client, job.id)
    assert done.status == "failed" and done.fine_tuned_model is None
    # The very line `twin ingest` prints for the same file.
    (stored,) = (jobs_home / "files").glob(f"{upload.id}*")
    ingest = twin_cli(tmp_path / "elsewhere", "ingest", str(stored), "--name", "broken")
    assert ingest.returncode == 2
    assert f"twin: error: {done.error.message}" == ingest.stderr.strip()
    assert "\n" not in done.error.message
    assert not (jobs_home / "twins" / "broken" / "merged").exists()


def test_cancel_during_training_keeps_the_checkpoint_and_the_cli_build_is_locked_out(
    client, sample_file, jobs, jobs_home
):
    job = client.fine_tuning.jobs.create(
        training_file=sample_file.id,
        model="smollm2-135m-instruct",
        suffix="carol",
        hyperparameters={"batch_size": 2},
        extra_body={"twin": {"max_steps": 50, **jobs.QUICK}},
    )
    jobs.wait_for("a training step", lambda: jobs.step_events(client, job.id))
    second = twin_cli(jobs_home, "build", str(SAMPLE), "--name", "carol", "--max-steps", "1")
    assert second.returncode == 2
    assert "twin 'carol' is being built by" in second.stderr and second.stderr.count("\n") == 1

    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled"
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    (checkpoint,) = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoint.step_number >= 1 and checkpoint.fine_tuned_model_checkpoint.startswith("carol:ckpt-step-")
    assert (jobs_home / "twins" / "carol" / "checkpoint" / "state.pt").is_file()
    with pytest.raises(openai.BadRequestError, match="already cancelled"):
        client.fine_tuning.jobs.cancel(job.id)


def test_rebuilding_a_served_twin_swaps_it_with_zero_failed_requests(client, built, sample_file, jobs, jobs_daemon):
    old = client.models.retrieve("alice").model_extra["twin"]["gguf_sha256"]
    answers: list[tuple[float, str | None]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def chat_loop() -> None:
        own = jobs.client_for(jobs_daemon)
        while not stop.is_set():
            try:
                r = own.chat.completions.create(model="alice", messages=ASK, max_tokens=4)
                answers.append((time.monotonic(), r.system_fingerprint))
            except BaseException as e:
                failures.append(e)

    loop = threading.Thread(target=chat_loop)
    loop.start()
    try:
        jobs.wait_for("a first answer", lambda: answers)
        job = client.fine_tuning.jobs.create(
            training_file=sample_file.id,
            model="smollm2-135m-instruct",
            suffix="alice",
            seed=1,  # another seed: another model, another hash
            hyperparameters={"n_epochs": 1, "batch_size": 2},
            extra_body={"twin": {"max_steps": 1, **jobs.QUICK}},
        )
        done = jobs.wait_final(client, job.id)
        swapped = time.monotonic()
        jobs.wait_for("answers after the swap", lambda: sum(t > swapped for t, _ in answers) >= 3)
    finally:
        stop.set()
        loop.join(60)
    assert done.status == "succeeded", done.error
    assert failures == []
    new = client.models.retrieve("alice").model_extra["twin"]["gguf_sha256"]
    assert new != old
    assert answers[0][1] == f"fp_{old[:12]}"
    assert {fp for t, fp in answers if t > swapped} == {f"fp_{new[:12]}"}


def test_a_100_mb_upload_streams_to_disk(client, jobs, jobs_daemon, tmp_path, jobs_home):
    big = tmp_path / "big.jsonl"
    line = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
    with open(big, "wb") as f:
        for _ in range(100 * 2**20 // len(line) + 1):
            f.write(line)
    before = jobs.rss_bytes(jobs_daemon.proc.pid)
    with open(big, "rb") as f:
        upload = client.files.create(file=f, purpose="fine-tune")
    after = jobs.rss_bytes(jobs_daemon.proc.pid)
    assert upload.bytes == big.stat().st_size
    assert after - before < 50 * 2**20, f"RSS grew by {(after - before) / 2**20:.0f} MB"
    deleted = client.files.delete(upload.id)
    assert deleted.deleted and deleted.id == upload.id
    assert not list((jobs_home / "files").glob(f"{upload.id}*"))
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(upload.id)
