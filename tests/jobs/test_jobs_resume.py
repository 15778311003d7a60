"""A daemon killed with SIGKILL mid-job: started again, it resumes the job from its checkpoint and keeps the queue."""

from __future__ import annotations

import os
import re
import signal

from twin.demo import SAMPLE


def test_sigkill_during_training_then_restart_resumes_and_keeps_the_queue_order(jobs, jobs_home, tmp_path):
    first = jobs.start_daemon(jobs_home)
    try:
        client = jobs.client_for(first)
        with open(SAMPLE, "rb") as f:
            sample = client.files.create(file=f, purpose="fine-tune")
        garbage = tmp_path / "notes.txt"
        garbage.write_text("not a chat export at all\n")
        with open(garbage, "rb") as f:
            bad = client.files.create(file=f, purpose="fine-tune")
        resumed = client.fine_tuning.jobs.create(
            training_file=sample.id,
            model="smollm2-135m-instruct",
            suffix="dora",
            hyperparameters={"batch_size": 2},
            extra_body={"twin": {"max_steps": 3, **jobs.QUICK}},
        )
        queued = client.fine_tuning.jobs.create(training_file=bad.id, model="default", suffix="later")
        jobs.wait_for("a training step", lambda: jobs.step_events(client, resumed.id))
        assert client.fine_tuning.jobs.retrieve(queued.id).status == "queued"
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
    finally:
        first.stop()

    second = jobs.start_daemon(jobs_home)
    try:
        client = jobs.client_for(second)
        done = jobs.wait_final(client, resumed.id)
        after = jobs.wait_final(client, queued.id)
        events = [e.message for e in reversed(list(client.fine_tuning.jobs.list_events(resumed.id)))]
        steps = jobs.step_events(client, resumed.id)
        later_events = list(client.fine_tuning.jobs.list_events(queued.id))
    finally:
        second.stop()

    assert done.status == "succeeded", done.error
    assert "Resuming the job after a daemon restart" in events
    restart = events.index("Resuming the job after a daemon restart")
    assert any(re.fullmatch(r"Training resumed from the checkpoint \(step [12]\)", m) for m in events[restart:])
    # Every step ran once: the resumed run went on from the checkpoint instead of starting over.
    assert [e.data["step"] for e in steps] == [1, 2, 3]
    # The job queued behind it ran only after it, and failed on its own bad file.
    assert after.status == "failed" and after.error.message
    started = next(e for e in later_events if e.message.startswith("Fine-tuning job started"))
    assert started.created_at >= done.finished_at
