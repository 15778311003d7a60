"""Passive OpenMP waiting for torch, never passed on to the daemons twin starts (llama.cpp needs it active)."""

from __future__ import annotations

from twin import threads


def test_passive_for_torch_but_not_for_the_daemon(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(threads, "_set_here", False)
    threads.passive_for_torch()
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in threads.for_daemon(os.environ)


def test_a_policy_the_user_chose_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(threads, "_set_here", False)
    threads.passive_for_torch()
    assert threads.for_daemon({"OMP_WAIT_POLICY": "PASSIVE"}) == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_one_policy_sets_the_daemons_threads_beside_its_own_training_job():
    cores = threads.physical_cores()
    assert threads.llama_threads(0, job_training=True) == max(1, cores // 4)  # the job has every core at nice 10
    assert threads.llama_threads(3, job_training=True) == 3  # a count the user set is kept
    assert threads.training_threads(0) == cores and threads.training_threads(2) == 2
