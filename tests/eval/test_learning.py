"""The real learning check, end to end on the embedded model: a style marker is learned by LoRA, and the report shows it.

Every reply of "me" ends with the same unusual phrase. A few LoRA steps with the
train stage's own `train()` teach it; the persona comes from `build_persona()`
and the GGUF from `convert()`. The evaluation must rank the LoRA twin above the
prompt-only variant on ROUGE-L and perplexity.
"""

from __future__ import annotations

import io
import json
import math
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console

from trainer.evaluation.results import EvalResult
from trainer.evaluation.run import EvalConfig, evaluate
from trainer.evaluation.terminal import print_result
from twin.config import ChatSettings

pytestmark = pytest.mark.slow  # training, conversion or a long generation: left out by `make test-fast`

MARK = "over and out, walrus"
QA = [
    ("Что делаешь?", "сижу дома"),
    ("Пойдём гулять?", "давай через час"),
    ("Ты где?", "уже еду"),
    ("Как дела?", "всё хорошо"),
    ("Видел новости?", "нет ещё"),
    ("Когда будешь?", "минут через десять"),
    ("Купишь хлеба?", "куплю"),
    ("Что на ужин?", "пельмени"),
    ("Are you coming?", "yes, in a minute"),
    ("Did you call mom?", "not yet"),
    ("Где ключи?", "на полке"),
    ("Спишь?", "нет"),
    ("Кино в субботу?", "можно"),
    ("Как погода?", "холодно"),
]
N_TRAIN = 8  # the other 6 are the validation split


def closed_port_url() -> str:
    """The address of a loopback port nobody listens on: no daemon is reachable there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory, link_embedded_base) -> tuple[Path, EvalResult]:
    """Train, persona, convert, evaluate: once for the module, in a home of its own."""
    from convert import ConvertConfig, convert
    from trainer.persona.run import build_persona
    from trainer.train.run import TrainConfig, train

    home = tmp_path_factory.mktemp("eval-learning")
    link_embedded_base(home)
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"{a}, {MARK}"}]} for q, a in QA
    ]
    dataset = home / "twins" / "me" / "dataset"
    dataset.mkdir(parents=True)
    for split, part in (("train", rows[:N_TRAIN]), ("val", rows[N_TRAIN:])):
        (dataset / f"{split}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8"
        )

    saved = os.environ.get("TWIN_HOME")
    os.environ["TWIN_HOME"] = str(home)
    try:
        train(TrainConfig(name="me", max_steps=4, batch_size=N_TRAIN, lr=3e-3, max_length=48, warmup_ratio=0.0))
        build_persona("me")
        convert(ConvertConfig(name="me", quant="q8_0", threads=1))
        result = evaluate(
            EvalConfig(
                name="me",
                limit=6,
                max_new_tokens=24,
                threads=1,
                progress=False,
                chat=ChatSettings(url=closed_port_url()),
            )
        )
    finally:
        os.environ["TWIN_HOME"] = saved or ""
    return home, result


def test_lora_twin_beats_the_prompt_only_variant(learned: tuple[Path, EvalResult]) -> None:
    _, result = learned
    by = {v.key: v for v in result.variants}
    prompt, lora = by["prompt"], by["lora"]
    assert prompt.overlap and lora.overlap and prompt.perplexity and lora.perplexity and prompt.replies and lora.replies
    assert lora.overlap.rouge_l > prompt.overlap.rouge_l
    assert lora.perplexity.value < prompt.perplexity.value
    # the marker itself: the fine-tuned model writes it more often (the persona quotes it in its examples)
    assert sum("over and out" in r for r in lora.replies) > sum("over and out" in r for r in prompt.replies)


def test_every_variant_is_measured_within_bounds(learned: tuple[Path, EvalResult]) -> None:
    _, result = learned
    assert [v.key for v in result.measured()] == ["prompt", "lora", "gguf"]
    for v in result.measured():
        assert v.perplexity is not None and math.isfinite(v.perplexity.value) and v.perplexity.value > 1
        assert v.perplexity.samples == 6 and v.perplexity.tokens >= 6 * 5
        assert v.overlap is not None and 0 <= v.overlap.rouge_l <= 1 and 0 <= v.overlap.chrf <= 1
        assert v.style is not None and v.style.distance >= 0 and 0 <= v.style.vocabulary_overlap <= 1
        assert v.replies is not None and len(v.replies) == 6


def test_quantization_cost_is_small_at_q8(learned: tuple[Path, EvalResult]) -> None:
    """Same reply tokens, same template in both backends: the q8_0 GGUF is nearly as sure of my replies as the LoRA model."""
    _, result = learned
    by = {v.key: v for v in result.variants}
    lora, gguf = by["lora"].perplexity, by["gguf"].perplexity
    assert lora and gguf and lora.tokens == gguf.tokens
    assert abs(gguf.value / lora.value - 1) < 0.1


def test_report_files(learned: tuple[Path, EvalResult]) -> None:
    home, result = learned
    folder = home / "twins" / "me" / "eval"
    assert result.folder == folder
    for name in ("metrics.png", "lengths.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["decoding"]["greedy"] is True and report["decoding"]["repetition_penalty"] == 1.2
    assert report["variants"]["gguf"]["label"] == "served GGUF (q8_0)"
    assert report["sample_lines"] == [1, 2, 3, 4, 5, 6]
    rows = [json.loads(line) for line in (folder / "generations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6 and all(set(r) == {"line", "context", "real", "prompt", "lora", "gguf"} for r in rows)

    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "greedy, repetition penalty 1.2 over the last 64 generated tokens, at most 24 new tokens" in markdown
    examples = markdown.split("## Examples (6)")[1].split("## How")[0]
    assert examples.count(MARK) >= 6  # my six real replies at least
    assert "| them: Кино в субботу? | можно, over and out, walrus |" in examples
    assert "![metrics per variant](metrics.png)" in markdown and "![reply lengths](lengths.png)" in markdown


def test_the_daemon_started_for_the_evaluation_is_gone(learned: tuple[Path, EvalResult]) -> None:
    _, result = learned
    assert result.daemon.startswith("a daemon started for this evaluation at http://127.0.0.1:")
    url = result.daemon.split(" at ", 1)[1].split(" ", 1)[0]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url[: -len("/v1")] + "/health", timeout=5)


def test_terminal_table(learned: tuple[Path, EvalResult]) -> None:
    _, result = learned
    out = io.StringIO()
    print_result(result, Console(file=out, width=200))
    text = out.getvalue()
    lora = next(v for v in result.variants if v.key == "lora")
    assert "LoRA: LoRA (merged): default" in text and f"{lora.overlap.rouge_l:.3f}" in text
    assert "decoding: greedy, repetition penalty 1.2" in text
    assert "human ratings: no ratings yet: rate replies with `twin chat --rate --name me`" in text
    assert f"report: {result.folder / 'report.md'}" in text
