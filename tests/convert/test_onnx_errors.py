"""Bad input to `twin convert --format onnx` and `twin serve --backend onnx`: one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twin import registry


def assert_one_error_line(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("twin: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (links not followed) with its bytes: what a failed run must leave as it was."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() and not p.is_symlink() else b"<dir-or-link>"
        for p in sorted(folder.rglob("*"))
    }


def make_twin(home: Path, name: str, merged: Path | None) -> Path:
    twin = home / "twins" / name
    (twin / "dataset").mkdir(parents=True)
    (twin / "dataset" / "val.jsonl").write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey you"}]})
        + "\n",
        encoding="utf-8",
    )
    registry.update(name, "train", {"base": "test"})
    if merged is not None:
        (twin / "merged").symlink_to(merged, target_is_directory=True)
    return twin


def test_a_twin_without_a_merged_model(twin_home: Path, cli) -> None:
    twin = make_twin(twin_home, "anna", None)
    before = snapshot(twin)
    code, out, err = cli(["--name", "anna", "--format", "onnx"])
    assert_one_error_line(code, err, "has no merged model", "twin train --name anna")
    assert out == "" and snapshot(twin) == before


@pytest.mark.slow
def test_an_architecture_the_exporter_does_not_take(twin_home: Path, tiny_model, cli) -> None:
    twin = make_twin(twin_home, "gpt", tiny_model("gpt2"))
    before = snapshot(twin)
    code, _, err = cli(["--name", "gpt", "--format", "onnx"])
    assert_one_error_line(code, err, "'GPT2LMHeadModel' has no ONNX export", "twin convert --name")
    assert snapshot(twin) == before


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--name", "anna", "--format", "onnx", "--quant", "q4_1"], ["unknown ONNX quant 'q4_1'", "int4"]),
        (["--name", "anna", "--format", "tflite"], ["unknown --format 'tflite'", "onnx"]),
        (["--model-dir", "x", "--format", "onnx"], ["--format onnx` exports a built twin", "--name NAME"]),
    ],
    ids=["quant", "format", "model-dir"],
)
def test_options_the_onnx_export_refuses(args: list[str], needles: list[str], twin_home: Path, cli) -> None:
    twin = make_twin(twin_home, "anna", None)
    before = snapshot(twin)
    code, _, err = cli(args)
    assert_one_error_line(code, err, *needles)
    assert snapshot(twin) == before


def _twin_cli(args: list[str], home: Path, blocked: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TWIN_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    if blocked is not None:  # a folder that shadows onnxruntime_genai with one that cannot be imported
        env["PYTHONPATH"] = os.pathsep.join([str(blocked), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "twin", *args], capture_output=True, text=True, env=env, timeout=120)


def _without_onnxruntime_genai(tmp_path: Path) -> Path:
    blocked = tmp_path / "blocked"
    (blocked / "onnxruntime_genai").mkdir(parents=True)
    (blocked / "onnxruntime_genai" / "__init__.py").write_text("raise ImportError('not installed')\n")
    return blocked


@pytest.mark.slow
def test_without_onnxruntime_genai_the_cli_says_what_to_install(twin_home: Path, tiny_model, tmp_path) -> None:
    twin = make_twin(twin_home, "anna", tiny_model("llama-bpe"))
    before = snapshot(twin)
    done = _twin_cli(["convert", "--name", "anna", "--format", "onnx"], twin_home, _without_onnxruntime_genai(tmp_path))
    assert_one_error_line(done.returncode, done.stderr, "onnxruntime-genai is not installed", "twin[onnx]")
    assert snapshot(twin) == before


def test_serving_a_twin_without_an_onnx_model(twin_home: Path, tmp_path: Path) -> None:
    make_twin(twin_home, "anna", None)
    done = _twin_cli(["serve", "--backend", "onnx", "--model", "anna", "--port", "0"], twin_home)
    assert_one_error_line(done.returncode, done.stderr, "no ONNX model yet", "--format onnx")
    done = _twin_cli(["serve", "--backend", "tflite"], twin_home)
    assert_one_error_line(done.returncode, done.stderr, "backend must be llama.cpp or onnx")


def test_serving_an_onnx_twin_without_onnxruntime_genai(twin_home: Path, tmp_path: Path) -> None:
    twin = make_twin(twin_home, "anna", None)
    (twin / "onnx").mkdir()
    (twin / "onnx" / "genai_config.json").write_text("{}")
    registry.update("anna", "onnx", {"dir": "onnx", "quant": "int4"})
    done = _twin_cli(
        ["serve", "--backend", "onnx", "--model", "anna", "--port", "0"],
        twin_home,
        _without_onnxruntime_genai(tmp_path),
    )
    assert_one_error_line(done.returncode, done.stderr, "onnxruntime-genai is not installed", "twin[onnx]")
