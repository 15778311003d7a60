"""The converter's tests: tiny random models of every architecture it supports (tests/helpers/tiny_models.py).

Each is saved the way the trainer saves merged/ (save_pretrained: safetensors,
config, tokenizer files, chat template), so `twin convert` sees what it sees in use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.tiny_models import convertible


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """tiny_model("qwen2") -> the folder of that tiny model, built once per session."""
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = convertible(kind, tmp_path_factory.mktemp("tiny") / kind)
        return built[kind]

    return get


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """cli(["--model-dir", …]) runs `twin convert …` through the real entry point: (exit code, stdout, stderr)."""
    from twin.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()  # drop what building the fixtures printed
        try:
            main(["convert", *args])
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run
