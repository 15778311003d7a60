"""`twin train` under faults (issue 16): huge data, a second run, kills, signals in setup, a broken twin.toml.

Every run is a real `python -m twin train` process on a tiny random GPT-2.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twin import lock, registry

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 120.0  # seconds any awaited event may take on a loaded 2-core machine


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TWIN_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


def _train_args(base: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "twin",
        "train",
        "--name",
        "me",
        "--base",
        str(base),
        "--batch-size",
        "2",
        "--max-length",
        "32",
        "--eval-every",
        "0",
        *extra,
    ]


def _train(home: Path, base: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_train_args(base, *extra), env=_env(home), capture_output=True, text=True, timeout=600)


def _start(home: Path, base: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _train_args(base, *extra), env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(what: str, ready, proc: subprocess.Popen[str]) -> None:
    """Wait until `ready()` holds (the event), failing if the process ends first or it never comes."""
    end = time.monotonic() + DEADLINE
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1]}"
        assert time.monotonic() < end, f"no {what} within {DEADLINE} s"
        time.sleep(0.002)


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("twin: error: ")
    return lines[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _peak_rss_mb(args: list[str], env: dict[str, str]) -> tuple[int, float]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024


def test_memory_is_bounded_by_max_length(tmp_path: Path, twin_home: Path, tiny_gpt2: Path, make_dataset) -> None:
    """Case 1: four samples whose context holds a 16 MB message train in about the memory of small ones."""
    make_dataset("me", n_train=4, n_val=0)
    args = _train_args(tiny_gpt2, "--max-steps", "1")
    code, small = _peak_rss_mb(args, _env(twin_home))
    assert code == 0
    huge = "word " * (16 * 2**20 // 5)
    rows = [
        {"messages": [{"role": "user", "content": huge}, {"role": "assistant", "content": f"ok {i}"}]} for i in range(4)
    ]
    (twin_home / "twins" / "me" / "dataset" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, big = _peak_rss_mb(args, _env(twin_home))
    assert code == 0
    assert big - small < 300, f"peak RSS {small:.0f} MB on small samples, {big:.0f} MB with a 16 MB message"


def test_a_second_run_is_refused_and_a_dead_runs_lock_taken_over(
    tmp_path: Path, twin_home: Path, tiny_gpt2: Path, make_dataset
) -> None:
    """Case 4: while one run holds the twin, another exits 2 naming it; once it is killed, the next run goes."""
    make_dataset("me")
    first = _start(twin_home, tiny_gpt2, "--max-steps", "100000")
    try:
        _wait_for("the first run's lock", lambda: lock.holder("me") is not None, first)
        second = _train(twin_home, tiny_gpt2, "--max-steps", "1")
        assert second.returncode == 2
        line = _one_error_line(second.stderr)
        assert f"pid {first.pid}" in line and "twin train" in line and "wait until it ends" in line
    finally:
        first.kill()  # SIGKILL: no clean-up runs, the lock file stays behind
        first.communicate()
    assert (twin_home / "twins" / ".me.lock").exists()
    assert lock.holder("me") is None  # a dead process holds nothing
    third = _train(twin_home, tiny_gpt2, "--max-steps", "1")
    assert third.returncode == 0, third.stderr
    assert "train" in registry.read("me")


def test_a_kill_while_saving_leaves_the_old_twin_whole(
    tmp_path: Path, twin_home: Path, wide_gpt2: Path, make_dataset
) -> None:
    """Case 4 and 5: killed after the new adapter is saved and before the merged model is, the old twin is intact;
    the next run removes what the killed one left half-written."""
    make_dataset("me")
    done = _train(twin_home, wide_gpt2, "--max-steps", "1", "--seed", "1")
    assert done.returncode == 0, done.stderr
    folder = twin_home / "twins" / "me"
    adapter = folder / "adapter" / "adapter_model.safetensors"
    merged = folder / "merged" / "model.safetensors"
    before = (_digest(adapter), _digest(merged), registry.read("me")["train"])
    inode = adapter.stat().st_ino

    def new_adapter_saved() -> bool:
        staged = any((p / "adapter" / "adapter_model.safetensors").is_file() for p in folder.glob(".unit.*"))
        replaced = not adapter.exists() or adapter.stat().st_ino != inode
        return staged or replaced

    run = _start(twin_home, wide_gpt2, "--max-steps", "1", "--seed", "2")
    try:
        _wait_for("the new adapter", new_adapter_saved, run)
        run.send_signal(signal.SIGKILL)
    finally:
        run.communicate()
    assert (_digest(adapter), _digest(merged), registry.read("me")["train"]) == before
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    assert leftovers  # the killed run's staging folder, half-written

    again = _train(twin_home, wide_gpt2, "--max-steps", "1", "--seed", "3")
    assert again.returncode == 0, again.stderr
    assert not [p for p in folder.iterdir() if p.name in leftovers]  # its owner is gone: removed
    assert _digest(adapter) != before[0] and _digest(merged) != before[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_setup_stops_at_once_and_changes_nothing(
    signum: int, twin_home: Path, tiny_gpt2: Path, make_dataset
) -> None:
    """Case 6: a signal before the loop (while torch loads) is honoured, and the last run's log is kept."""
    make_dataset("me")
    log = twin_home / "twins" / "me" / "train_log.jsonl"
    log.write_text('{"event": "train", "step": 10, "loss": 1.0}\n')
    previous = log.read_bytes()
    run = _start(twin_home, tiny_gpt2, "--max-steps", "1000")
    try:
        _wait_for("the run's lock", lambda: lock.holder("me") is not None, run)
        run.send_signal(signum)
        _, err = run.communicate(timeout=DEADLINE)
    finally:
        run.kill()
    assert run.returncode == 128 + signum, err
    assert "interrupted before training began; nothing was changed" in err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert log.read_bytes() == previous
    assert not (twin_home / "twins" / "me" / "checkpoint").exists()
    assert not (twin_home / "twins" / "me" / "adapter").exists()


def test_a_broken_twin_toml_fails_before_training(twin_home: Path, tiny_gpt2: Path, make_dataset) -> None:
    """Case 7: an unparsable twin.toml is reported before any training or writing, not after."""
    make_dataset("me")
    (twin_home / "twins" / "me" / "twin.toml").write_text("[dataset\n")
    result = _train(twin_home, tiny_gpt2, "--max-steps", "1")
    assert result.returncode == 2
    assert "twin.toml: not valid TOML" in _one_error_line(result.stderr)
    names = {p.name for p in (twin_home / "twins" / "me").iterdir()}
    assert names == {"dataset", "twin.toml"}


def test_training_outputs_are_private_whatever_the_umask(twin_home: Path, tiny_gpt2: Path, make_dataset) -> None:
    """Case 3: under umask 000, adapter/, merged/, the log, the checkpoint and twin.toml are still owner-only."""
    make_dataset("me")
    args = _train_args(tiny_gpt2, "--epochs", "2", "--patience", "0")
    run = subprocess.Popen(
        args, env=_env(twin_home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=lambda: os.umask(0)
    )
    state = twin_home / "twins" / "me" / "checkpoint" / "state.pt"
    _wait_for("the end-of-epoch checkpoint", state.exists, run)  # type: ignore[arg-type]
    assert state.stat().st_mode & 0o777 == 0o600
    assert run.wait(timeout=600) == 0, run.communicate()[1]
    made = list((twin_home / "twins" / "me").rglob("*"))
    assert {"adapter", "merged", "train_log.jsonl", "twin.toml"} <= {p.name for p in made}
    for path in made:
        if path.parent.name == "dataset" or path.name == "dataset":
            continue  # written by the test itself
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
