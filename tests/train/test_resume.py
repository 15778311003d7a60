"""Interrupting training saves a checkpoint; resuming ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from trainer.train.run import TrainConfig, resume_config, train
from twin.errors import UserError

pytestmark = pytest.mark.slow  # training, conversion or a long generation: left out by `make test-fast`


def _settings(name: str, base: Path) -> TrainConfig:
    # Dropout on, several epochs, an interruption mid-epoch: data order, RNG and optimizer state all matter.
    return TrainConfig(
        name=name,
        base=str(base),
        epochs=3,
        batch_size=4,
        grad_accum=2,
        lr=5e-3,
        max_length=64,
        eval_every=3,
        patience=0,
        log_every=1,
        lora_dropout=0.1,
        seed=7,
    )


def _log(folder: Path) -> list[dict]:
    # Timing fields differ between runs; everything else must match.
    return [
        {k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
        for line in (folder / "train_log.jsonl").read_text().splitlines()
    ]


def test_interrupt_then_resume_matches_an_uninterrupted_run(
    tiny_models: dict[str, Path], make_dataset, twin_home: Path
) -> None:
    base = tiny_models["llama"]
    for name in ("whole", "cut"):
        make_dataset(name, n_train=30, n_val=4)

    whole = train(_settings("whole", base))
    assert whole.steps == whole.total_steps == 12  # 8 batches of 4 -> 4 steps of 2 per epoch, 3 epochs

    seen: list[int] = []

    def interrupt(step: int) -> None:
        seen.append(step)
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)  # the real signal path: the handler asks for a stop after this step

    cut = train(_settings("cut", base), on_step=interrupt)
    folder = twin_home / "twins" / "cut"
    assert cut.interrupted and cut.signal == signal.SIGINT and cut.steps == 5
    assert seen == [0, 1, 2, 3, 4, 5]  # once before training, then after each step
    assert (folder / "checkpoint" / "state.pt").is_file()
    assert not (folder / "merged").exists() and not (folder / "adapter").exists()

    with pytest.raises(UserError, match=r"--lr 0\.005"):
        train(TrainConfig(**{**_settings("cut", base).__dict__, "lr": 1e-3, "resume": True}))

    resumed = train(resume_config("cut", {}))
    assert not resumed.interrupted and resumed.steps == 12 and resumed.tokens == whole.tokens
    assert not (folder / "checkpoint").exists()

    a = load_file(str(twin_home / "twins" / "whole" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:  # same computation in the same order: equal up to float rounding (tolerance 1e-6)
        assert torch.allclose(a[key], b[key], atol=1e-6, rtol=0), key
    assert resumed.best_val_loss == pytest.approx(whole.best_val_loss, abs=1e-6)
    whole_log, cut_log = _log(twin_home / "twins" / "whole"), _log(folder)
    assert [e["step"] for e in cut_log] == [e["step"] for e in whole_log]
    for x, y in zip(whole_log, cut_log):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k] == pytest.approx(y[k], abs=1e-6), (x, y)


def test_resume_without_checkpoint(make_dataset) -> None:
    make_dataset("me")
    with pytest.raises(UserError, match="no checkpoint to resume"):
        resume_config("me", {})


def test_early_stopping_keeps_the_best_adapter(tiny_models: dict[str, Path], make_dataset, twin_home: Path) -> None:
    """With an improvement threshold nothing can meet, training stops after `patience` validations and keeps step 0."""
    make_dataset("es", n_train=16, n_val=4)
    result = train(
        TrainConfig(
            name="es",
            base=str(tiny_models["llama"]),
            epochs=5,
            batch_size=4,
            lr=1e-2,
            eval_every=1,
            patience=2,
            min_delta=100.0,
        )
    )
    assert result.stopped_early and result.steps == 2 and result.total_steps == 20
    assert result.best_step == 0
    adapter = load_file(str(twin_home / "twins" / "es" / "adapter" / "adapter_model.safetensors"))
    assert all(float(t.abs().max()) == 0 for k, t in adapter.items() if "lora_B" in k)  # the untrained adapter


def test_sigterm_saves_a_checkpoint_and_cli_resume_finishes(
    tiny_models: dict[str, Path], make_dataset, twin_home: Path
) -> None:
    """`twin train` in a real process: SIGTERM mid-run exits 143 with a checkpoint; `twin train --resume` completes."""
    import subprocess
    import sys
    import time

    make_dataset("me", n_train=16, n_val=4)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TWIN_HOME": str(twin_home), "PYTHONPATH": str(repo)}
    log = twin_home / "twins" / "me" / "train_log.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "twin",
        "train",
        "--name",
        "me",
        "--base",
        str(tiny_models["gpt2"]),
        "--max-steps",
        "60",
        "--batch-size",
        "2",
        "--log-every",
        "1",
        "--eval-every",
        "1",
        "--max-length",
        "32",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        while proc.poll() is None and not (log.is_file() and '"event": "train"' in log.read_text()):
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "checkpoint saved. Continue with `twin train --name me --resume`" in err
    assert out == ""
    assert (twin_home / "twins" / "me" / "checkpoint" / "state.pt").is_file()
    stopped_at = max(json.loads(line)["step"] for line in log.read_text().splitlines())
    assert 1 <= stopped_at < 60

    done = subprocess.run(
        [sys.executable, "-m", "twin", "train", "--name", "me", "--resume"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("trained me: 60 steps")
    assert f"merged:  {twin_home / 'twins' / 'me' / 'merged'}" in done.stdout
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines() if '"train"' in line]
    assert steps == list(range(1, 61))  # the log reads as one run
