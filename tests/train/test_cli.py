"""`twin train` and `twin persona` on bad input: one line naming the problem and the fix, exit code 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from twin.cli import main

REPO = Path(__file__).resolve().parents[2]


def _run_cli(args: list[str], home: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TWIN_HOME": str(home),
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run([sys.executable, "-m", "twin", *args], capture_output=True, text=True, env=env, timeout=120)


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("twin: error: ")
    return lines[0]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_help_lists_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twin", "train", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert result.returncode == 0
    for option in ("--base", "--epochs", "--lora-r", "--resume", "--gradient-checkpointing", "--device"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "setup, args, message",
    [
        ("none", ["train"], "no twin with a dataset under"),
        ("none", ["train", "--name", "ghost"], "train.jsonl does not exist: run `twin ingest` first"),
        ("empty", ["train", "--name", "me"], "train.jsonl has no samples"),
        (
            "good",
            ["train", "--name", "me", "--base", "Qwen/Qwen2.5-0.5B-Instruct"],
            "HF_HUB_OFFLINE=1 forbids fetching it: run `hf download Qwen/Qwen2.5-0.5B-Instruct`",
        ),
        (
            "good",
            ["train", "--name", "me", "--base", "qwen2.5-1.5b"],
            "base model Qwen/Qwen2.5-1.5B-Instruct is not downloaded",
        ),
        ("good", ["train", "--name", "me", "--base", "./nowhere"], "is not a directory"),
        ("bad-line", ["train", "--name", "me"], "train.jsonl:2: not valid JSON"),
        ("none", ["persona", "--name", "ghost"], "train.jsonl does not exist"),
    ],
)
def test_bad_input_in_a_real_process(
    setup: str, args: list[str], message: str, twin_home: Path, tmp_path: Path, make_dataset
) -> None:
    if setup == "good":
        make_dataset("me")
    elif setup == "empty":
        (make_dataset("me") / "train.jsonl").write_text("")
    elif setup == "bad-line":
        path = make_dataset("me") / "train.jsonl"
        path.write_text(path.read_text().splitlines()[0] + "\n{oops\n")
    before = _files(twin_home)
    result = _run_cli(args, twin_home, tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in _one_error_line(result.stderr)
    assert result.stdout == ""
    assert _files(twin_home) == before  # nothing half-written


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs must be between 1 and 1000, got 0"),
        (["--lr", "-1"], "--lr must be above 0 and at most 1, got -1.0"),
        (["--lora-dropout", "1.5"], "--lora-dropout must be at least 0 and below 1, got 1.5"),
        (["--batch-size", "0"], "--batch-size must be between 1 and 4096, got 0"),
        (["--max-length", "4"], "--max-length must be between 16 and 131072, got 4"),
        (["--device", "tpu"], "--device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
        (["--resume"], "no checkpoint to resume"),
        (["--name", "../etc"], "invalid twin name"),
    ],
)
def test_train_options_out_of_range(
    args: list[str], message: str, make_dataset, twin_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_dataset("me")
    before = _files(twin_home)
    with pytest.raises(SystemExit) as e:
        main(["train", *(["--name", "me"] if "--name" not in args else []), *args])
    assert e.value.code == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert _files(twin_home) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--examples", "11"], "--examples must be between 0 and 10, got 11"),
        (["--base", "missing.gguf"], "neither `default` nor an existing .gguf file"),
    ],
)
def test_persona_bad_options(
    args: list[str], message: str, make_dataset, twin_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_dataset("me")
    before = _files(twin_home)
    with pytest.raises(SystemExit) as e:
        main(["persona", "--name", "me", *args])
    assert e.value.code == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert _files(twin_home) == before


def test_build_and_train_say_the_same_of_their_shared_options() -> None:
    """Each training flag's help and default is written once, on TrainConfig's field, and both commands show it."""
    import typer.main

    from trainer.train.config import TrainConfig
    from twin.cli import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    helps = {
        name: {p.name: p.help for p in commands[name].params if p.param_type_name == "option"}
        for name in ("build", "train")
    }
    shared = ("base", "epochs", "max_steps", "batch_size", "max_length", "lr", "device")
    for option in shared:
        assert helps["build"][option] == helps["train"][option], option
    assert helps["train"]["epochs"] == f"Passes over the training split. Default: {TrainConfig.epochs}."
    assert helps["build"]["lr"].endswith(f"Default: {TrainConfig.lr:g}.")
    assert "about 30% slower" in helps["train"]["gradient_checkpointing"]
