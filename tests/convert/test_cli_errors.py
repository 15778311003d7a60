"""Bad input to `twin convert`: one clear line, exit code 2, and no GGUF (partial or temporary) left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers.disk import disk_of, run_on_full_disk


def assert_one_error_line(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("twin: error: ")
    for needle in needles:
        assert needle in lines[0]


def no_gguf_in(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".gguf" in p.name]


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (lambda d: d, ["has no config.json"]),
        (lambda d: (d / "weights.bin").write_bytes(b"x") and d / "weights.bin", ["is not a directory"]),
        (lambda d: d / "missing", ["is not a directory"]),
    ],
    ids=["empty-dir", "a-file", "missing"],
)
def test_a_directory_that_is_not_a_model(make, needles, tmp_path: Path, cli) -> None:
    target = make(_mkdir(tmp_path / "in"))
    code, _, err = cli(["--model-dir", str(target), "--quant", "f32", "-o", str(tmp_path / "out.gguf")])
    assert_one_error_line(code, err, *needles)
    assert no_gguf_in(tmp_path)


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _copy_model(tiny_model, tmp_path: Path, kind: str = "gpt2") -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "model"
    shutil.copytree(tiny_model(kind), folder)
    return folder


def test_weights_that_are_not_safetensors(tiny_model, tmp_path: Path, cli) -> None:
    folder = _copy_model(tiny_model, tmp_path)
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    code, _, err = cli(["--model-dir", str(folder), "--quant", "f32", "-o", str(tmp_path / "o.gguf")])
    assert_one_error_line(code, err, "model.safetensors", "not a readable safetensors file")
    assert no_gguf_in(tmp_path)


def test_missing_tokenizer_files(tiny_model, tmp_path: Path, cli) -> None:
    folder = _copy_model(tiny_model, tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    code, _, err = cli(["--model-dir", str(folder), "--quant", "f32", "-o", str(tmp_path / "o.gguf")])
    assert_one_error_line(code, err, "has no tokenizer", "tokenizer.json")
    assert no_gguf_in(tmp_path)


def test_broken_tokenizer(tiny_model, tmp_path: Path, cli) -> None:
    folder = _copy_model(tiny_model, tmp_path)
    (folder / "tokenizer.json").write_text("{not json", encoding="utf-8")
    code, _, err = cli(["--model-dir", str(folder), "--quant", "f32", "-o", str(tmp_path / "o.gguf")])
    assert_one_error_line(code, err, "cannot load its tokenizer")
    assert no_gguf_in(tmp_path)


def test_unknown_architecture(tiny_model, tmp_path: Path, cli) -> None:
    folder = _copy_model(tiny_model, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["MambaForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    code, _, err = cli(["--model-dir", str(folder), "--quant", "f32", "-o", str(tmp_path / "o.gguf")])
    assert_one_error_line(code, err, "'MambaForCausalLM'", "LlamaForCausalLM")
    assert no_gguf_in(tmp_path)


def test_unknown_quant(tiny_model, tmp_path: Path, cli) -> None:
    code, _, err = cli(["--model-dir", str(tiny_model("gpt2")), "--quant", "q3_k", "-o", str(tmp_path / "o.gguf")])
    assert_one_error_line(code, err, "unknown quant 'q3_k'", "q4_1")
    assert no_gguf_in(tmp_path)


def test_adapter_quant_needs_a_twin_on_a_gguf_base(tiny_model, tmp_path: Path, twin_home: Path, cli) -> None:
    from twin import registry

    code, _, err = cli(["--model-dir", str(tiny_model("qwen2")), "--quant", "adapter", "-o", str(tmp_path / "o.gguf")])
    assert_one_error_line(code, err, "--quant adapter", "--name NAME")
    # A twin trained on an HF base has no 4-bit file of its base to put the adapter on.
    twin = twin_home / "twins" / "tiny"
    twin.mkdir(parents=True)
    (twin / "merged").symlink_to(tiny_model("qwen2"), target_is_directory=True)
    registry.update("tiny", "train", {"base": str(tiny_model("qwen2")), "adapter": "adapter"})
    code, _, err = cli(["--name", "tiny", "--quant", "adapter"])
    assert_one_error_line(code, err, "--quant adapter is not possible for twin 'tiny'", "is not a GGUF")
    assert no_gguf_in(tmp_path) and no_gguf_in(twin)
    assert "model" not in registry.read("tiny")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ([], ["--name NAME", "--model-dir DIR"]),
        (["--name", "a", "--model-dir", "x"], ["either --name"]),
        (["--name", "../etc"], ["invalid twin name"]),
        (["--name", "nobody"], ["has no merged model", "twin train --name nobody"]),
    ],
    ids=["neither", "both", "bad-name", "untrained"],
)
def test_what_to_convert(args: list[str], needles: list[str], cli) -> None:
    code, _, err = cli(args)
    assert_one_error_line(code, err, *needles)


def test_auto_without_validation_replies(tiny_model, tmp_path: Path, cli) -> None:
    code, _, err = cli(["--model-dir", str(tiny_model("gpt2")), "-o", str(tmp_path / "o.gguf")])
    assert_one_error_line(code, err, "--val FILE", "--quant")
    assert no_gguf_in(tmp_path)


def test_malformed_validation_file(tiny_model, tmp_path: Path, cli) -> None:
    val = tmp_path / "val.jsonl"
    val.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{"messages": 3}\n'
    )
    code, _, err = cli(["--model-dir", str(tiny_model("gpt2")), "--val", str(val), "-o", str(tmp_path / "o.gguf")])
    assert_one_error_line(code, err, f"{val}:2")
    assert no_gguf_in(tmp_path)


def test_output_is_a_directory(tiny_model, tmp_path: Path, cli) -> None:
    code, _, err = cli(["--model-dir", str(tiny_model("gpt2")), "--quant", "f32", "-o", str(tmp_path)])
    assert_one_error_line(code, err, "is a directory")


def convert_on_full_disk(model: Path, tmp_path: Path, size: str, quant: str) -> tuple[int, str, list[str]]:
    """`twin convert` writing onto a `size` disk: (exit code, stderr, what it left there)."""
    out = disk_of(tmp_path) / "model.gguf"
    run = run_on_full_disk(
        tmp_path, "convert", "--model-dir", str(model), "--quant", quant, "-o", str(out), size=size, as_home=False
    )
    return run.code, run.stderr, run.left


def test_disk_full_while_writing(tiny_model, tmp_path: Path) -> None:
    code, err, left = convert_on_full_disk(tiny_model("gpt2"), tmp_path, "64k", "f32")
    assert_one_error_line(code, err, "no space left", "while writing the GGUF", "-o FILE")
    assert left == []


def test_disk_full_while_quantizing(tiny_model, tmp_path: Path, cli) -> None:
    # Room for the f16 intermediate but not for it and the quantized file together.
    code, _, _ = cli(["--model-dir", str(tiny_model("gpt2")), "--quant", "f16", "-o", str(tmp_path / "f16.gguf")])
    assert code == 0
    room = (tmp_path / "f16.gguf").stat().st_size + 48 * 1024
    code, err, left = convert_on_full_disk(tiny_model("gpt2"), tmp_path, str(room), "q8_0")
    assert_one_error_line(code, err, "no space left", "while quantizing to q8_0")
    assert left == []
