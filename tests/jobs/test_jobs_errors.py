"""Bad requests to the files and jobs API: one OpenAI-shaped 4xx naming the problem, nothing left on disk.

Also the job store on a real SQLite file: its schema version and the state machine's refusals.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import httpx
import openai
import pytest

from twin.demo import SAMPLE
from twin.errors import UserError

KEY = "s3cret"


@pytest.fixture(scope="module")
def plain_home(tmp_path_factory):
    """No base model in the cache: no job here gets as far as training."""
    return tmp_path_factory.mktemp("jobs-errors-home")


@pytest.fixture(scope="module")
def small(jobs, plain_home):
    """A daemon with a 1 MB upload cap and an API key."""
    d = jobs.start_daemon(plain_home, "--api-key", KEY, TWIN_MAX_UPLOAD_MB="1")
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def api(small, jobs):
    return jobs.client_for(small, KEY)


@pytest.fixture(scope="module")
def upload(api):
    with open(SAMPLE, "rb") as f:
        return api.files.create(file=f, purpose="fine-tune")


def _error(excinfo) -> dict:
    return excinfo.value.body


def test_unknown_ids_are_404s_in_openai_shape(api):
    with pytest.raises(openai.NotFoundError) as e:
        api.files.retrieve("file-nope")
    assert _error(e)["code"] == "file_not_found" and "file-nope" in _error(e)["message"]
    for call in (
        lambda: api.fine_tuning.jobs.retrieve("ftjob-nope"),
        lambda: api.fine_tuning.jobs.cancel("ftjob-nope"),
        lambda: list(api.fine_tuning.jobs.list_events("ftjob-nope")),
        lambda: api.fine_tuning.jobs.checkpoints.list("ftjob-nope"),
    ):
        with pytest.raises(openai.NotFoundError) as e:
            call()
        assert "ftjob-nope" in _error(e)["message"]
    with pytest.raises(openai.NotFoundError) as e:
        api.fine_tuning.jobs.create(training_file="file-nope", model="default")
    assert _error(e)["param"] == "training_file"


@pytest.mark.parametrize(
    ("fields", "param", "needle"),
    [
        ({"suffix": "../x"}, "suffix", "invalid twin name"),
        ({"extra_body": {"twin": {"bogus": 1}}}, "twin.bogus", "Unknown parameter"),
        ({"extra_body": {"twin": {"max_steps": -1}}}, "twin.max_steps", "at least 0"),
        ({"extra_body": {"twin": {"time_budget_s": -1}}}, "twin.time_budget_s", "between 0"),
        ({"extra_body": {"twin": {"calibration_samples": 3}}}, "twin.calibration_samples", "at least 8"),
        ({"hyperparameters": {"n_epochs": 0}}, "n_epochs", "at least 1"),
        ({"hyperparameters": {"n_epochs": "many"}}, "hyperparameters.n_epochs", "Invalid value"),
    ],
)
def test_bad_job_options_are_400s_naming_the_field(api, upload, fields, param, needle):
    before = len(api.fine_tuning.jobs.list().data)
    with pytest.raises(openai.BadRequestError) as e:
        api.fine_tuning.jobs.create(training_file=upload.id, model="default", **fields)
    assert _error(e)["param"] == param and needle in _error(e)["message"]
    assert len(api.fine_tuning.jobs.list().data) == before


def test_uploads_over_the_cap_or_with_another_purpose_leave_nothing(api, plain_home, tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (2 * 2**20))
    with open(big, "rb") as f, pytest.raises(openai.APIStatusError) as e:
        api.files.create(file=f, purpose="fine-tune")
    assert e.value.status_code == 413 and "max_upload_mb" in _error(e)["message"]
    with open(SAMPLE, "rb") as f, pytest.raises(openai.BadRequestError) as e:
        api.files.create(file=f, purpose="batch")
    assert _error(e)["param"] == "purpose"
    listed = {f.id for f in api.files.list()}
    on_disk = {p.name.split(".")[0] for p in (plain_home / "files").iterdir()}
    assert on_disk <= listed  # no partial or refused upload stayed behind


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=zz"])
def test_a_body_that_is_not_the_multipart_it_claims_is_a_400(small, content_type):
    r = httpx.post(
        small.url + "/files",
        content=b"--other\r\n\r\nnot a part",
        headers={"Content-Type": content_type, "Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    assert "multipart" in r.json()["error"]["message"]


def test_the_files_and_jobs_api_wants_the_key(small):
    keyless = openai.OpenAI(base_url=small.url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        keyless.files.list()
    with pytest.raises(openai.AuthenticationError):
        keyless.fine_tuning.jobs.list()


def test_a_file_used_by_a_running_job_cannot_be_deleted_and_a_failed_job_cannot_be_cancelled(api, jobs, tmp_path):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a chat export\n")
    with open(garbage, "rb") as f:
        bad = api.files.create(file=f, purpose="fine-tune")
    job = api.fine_tuning.jobs.create(training_file=bad.id, model="default", suffix="nope")
    with pytest.raises(openai.ConflictError):
        api.files.delete(bad.id)
    done = jobs.wait_final(api, job.id)
    assert done.status == "failed" and "\n" not in done.error.message
    with pytest.raises(openai.BadRequestError) as e:
        api.fine_tuning.jobs.cancel(job.id)
    assert _error(e)["code"] == "job_not_cancellable"
    assert api.files.delete(bad.id).deleted


def test_the_store_is_versioned_and_refuses_transitions_the_state_machine_lacks(tmp_path):
    from daemon.jobs.objects import Hyperparameters
    from daemon.jobs.store import Store, TransitionError

    path = tmp_path / "jobs.db"
    store = Store(path)
    job = store.add_job(
        model="default", name="x", training_file="file-1", validation_file=None,
        hyperparameters=Hyperparameters(n_epochs=1), twin={}, seed=0, metadata=None,
    )  # fmt: skip
    with pytest.raises(TransitionError):
        store.set_status(job.id, "succeeded")  # validating_files -> succeeded skips the queue
    store.set_status(job.id, "cancelled")
    with pytest.raises(TransitionError):
        store.set_status(job.id, "running")  # a cancelled job stays cancelled
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    assert Store(path).job(job.id).status == "cancelled"  # reopened: the data and the version are kept
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    with pytest.raises(UserError, match="newer twin"):
        Store(path)


def test_the_build_lock_refuses_a_second_holder_in_one_line(twin_home):
    from twin.lock import holder as lock_holder
    from twin.lock import twin_lock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from twin.lock import twin_lock\n"
         "with twin_lock('eve', 'twin build'):\n    print('held', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        assert lock_holder("eve") is not None
        with pytest.raises(UserError, match=rf"pid {holder.pid}") as e, twin_lock("eve", "twin build"):
            pass
        assert "\n" not in str(e.value)
    finally:
        holder.communicate("\n", timeout=30)
    assert lock_holder("eve") is None
    with twin_lock("eve", "twin build"):
        assert lock_holder("eve") is not None
