"""`twin build` on the bundled sample, end to end, and the daemon serving what it built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from daemon.process import DaemonProcess
from twin import registry
from twin.consensus import MMI_LENGTHENING, TWIN_CANDIDATES
from twin.demo import SAMPLE, pick_samples

pytestmark = pytest.mark.slow  # training, conversion or a long generation: left out by `make test-fast`

ROOT = Path(__file__).resolve().parents[2]


def twin_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "twin", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def test_build_from_the_sample_export_to_a_served_twin(twin_home, base_in_cache):
    # A short budget; `twin convert`'s own tests cover `--quant auto` on this model. `adapter`: the embedded
    # base's own file with the trained LoRA beside it, applied by the daemon (and by the calibration through it).
    result = twin_cli(
        "build", str(SAMPLE), "--name", "sam", "--max-steps", "3", "--batch-size", "4", "--quant", "adapter",
        "--calibration-samples", "8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for stage in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert stage in result.stderr
    assert "end bias" in result.stderr  # the length calibration said what it chose
    assert "left for training, conversion, persona and calibration" in result.stderr  # the default 15-minute budget
    assert "twin 'sam' is built in" in result.stdout
    assert "127 train, 32 validation" in result.stdout  # the English sample
    assert "model-adapter.gguf (adapter" in result.stdout

    folder = twin_home / "twins" / "sam"
    data = registry.read("sam")
    assert set(data) >= {"twin", "dataset", "train", "model", "persona", "decoding", "serve"}
    assert data["serve"]["candidates"] == TWIN_CANDIDATES
    assert data["decoding"]["gguf"] == data["model"]["gguf"] and data["decoding"]["samples"] == 8
    # [serve] is written before the calibration, which fits one draw shorter than my replies for MMI's pick
    assert data["decoding"]["aim_words"] == pytest.approx(data["decoding"]["target_words"] / MMI_LENGTHENING, abs=1e-3)
    assert (folder / data["model"]["gguf"]).is_file()
    assert data["model"]["lora"] == "model-adapter.lora.gguf" and (folder / data["model"]["lora"]).is_file()
    assert data["train"]["steps"] == 3
    persona = json.loads((folder / "persona.json").read_text())
    assert persona["base"] == "default" and persona["system_prompt"]
    assert (folder / "dataset" / "val.jsonl").stat().st_mode & 0o077 == 0  # private

    context = pick_samples(folder / "dataset" / "val.jsonl", 1)[0][:-1]
    with DaemonProcess([], log_path=twin_home / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="-", max_retries=0)
        ids = {m.id for m in client.models.list().data}
        assert {"sam", "sam-prompt", "smollm2-135m-instruct"} <= ids
        for model in ("sam", "sam-prompt"):
            reply = client.chat.completions.create(model=model, messages=context, max_tokens=8, seed=0)
            assert reply.model == model and reply.usage.completion_tokens >= 1
            # the twin samples TWIN_CANDIDATES replies a turn by default (each one decoded), the persona one
            two = client.chat.completions.create(
                model=model, messages=context, max_tokens=2, seed=0, extra_body={"ignore_eos": True}
            )
            assert two.usage.completion_tokens == 2 * (TWIN_CANDIDATES if model == "sam" else 1), two.usage
        prompt_log = [line for line in d.log_path.read_text().splitlines() if "model=sam-prompt" in line]
        plain_log = [line for line in d.log_path.read_text().splitlines() if "model=sam " in line]
    # The persona variant carries its system prompt in front of the same context.
    prompt_tokens = int(prompt_log[-1].split("prompt_tokens=")[1].split()[0])
    plain_tokens = int(plain_log[-1].split("prompt_tokens=")[1].split()[0])
    assert prompt_tokens > plain_tokens + 50


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["build"], "Missing argument"),
        (["build", "/nonexistent/result.json"], "/nonexistent/result.json"),
        (["build", str(SAMPLE), "--name", "../x"], "invalid twin name"),
        (["build", str(SAMPLE), "--quant", "q3"], "q3"),
        (["build", str(SAMPLE), "--base", "no/such-model"], "no/such-model"),
        (["build", str(SAMPLE), "--base", "tinyllama", "--quant", "adapter"], "--base tinyllama is not a GGUF"),
        (["build", str(SAMPLE), "--calibration-samples", "3"], "--calibration-samples must be 0 (skip) or at least 8"),
    ],
)
def test_bad_build_input_is_one_line_exit_2_nothing_left(args, needle, twin_home):
    result = twin_cli(*args, timeout=300)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("twin: error:")]
    assert len(errors) == 1 and needle in errors[0]
    built = twin_home / "twins"
    assert not any(built.glob("*/model-*.gguf")) and not any(built.glob("*/merged"))


def test_demo_shows_readable_exchanges(tmp_path):
    rows = [
        [{"role": "user", "content": "🤣"}, {"role": "assistant", "content": ")))"}],
        [{"role": "user", "content": "Смотри <URL>"}, {"role": "assistant", "content": "кек"}],
        [{"role": "user", "content": "Игорь: ты где сейчас?"}, {"role": "assistant", "content": "щас буду"}],
        [{"role": "user", "content": "Как дела у тебя?"}, {"role": "assistant", "content": "👍"}],
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "Пойдём гулять вечером?"},
            {"role": "assistant", "content": "го)"},
        ],
    ]
    val = tmp_path / "val.jsonl"
    val.write_text("".join(json.dumps({"messages": r}, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    picked = [m[-1]["content"] for m in pick_samples(val, 2)]
    assert picked == ["щас буду", "го)"]


def test_a_budgeted_build_reserves_the_later_stages_time_in_training(twin_home):
    from trainer.train.config import TrainConfig
    from twin.build import AFTER_TRAINING_S, BuildConfig

    config = BuildConfig(exports=[SAMPLE], train=TrainConfig(name="sam", base="default"))
    budgeted = config.train_config(700.0)
    # training plans its steps with the later stages' time taken out, scaled by the speed it measures
    assert (budgeted.time_budget_s, budgeted.time_reserved_s) == (700.0, AFTER_TRAINING_S)
    assert config.train_config(0.0).time_reserved_s == 0.0  # no budget: nothing to keep back
