"""The embedded SmolLM2 end to end: HF checkpoint → f16 → the best 4-bit GGUF by measurement → served by the real daemon."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from convert.pipeline import ConvertConfig, convert
from convert.quantize import FOUR_BIT
from twin import embedded, registry

pytestmark = pytest.mark.slow  # training, conversion or a long generation: left out by `make test-fast`

# Replies in a twin's validation split: the last message of each conversation is "mine".
VAL = [
    ("hey, are you coming tonight?", "yeah, running a bit late though. save me a seat"),
    ("did you see the game yesterday?", "only the second half, that last goal was unreal"),
    ("Привет! Как дела?", "Привет) да нормально, работы много. Ты как?"),
    ("what time is the meeting", "3pm, but I think it might get moved to 4"),
    ("I finally finished the book you recommended", "haha told you! the ending got me too"),
    ("are we still on for lunch?", "yep, 12:30 at the usual place"),
    ("happy birthday!! 🎉", "thank you!! 😊 come over later if you can"),
    ("can you review my PR when you get a chance", "looking at it now, left a couple of comments"),
]
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


@pytest.fixture
def built_twin(embedded_hf: Path, twin_home: Path) -> str:
    """A twin laid out as the trainer leaves it: merged/ (here: the embedded model itself) and dataset/val.jsonl."""
    twin = twin_home / "twins" / "anna"
    (twin / "dataset").mkdir(parents=True)
    (twin / "merged").symlink_to(embedded_hf, target_is_directory=True)
    lines = [
        json.dumps(
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}, ensure_ascii=False
        )
        for q, a in VAL
    ]
    (twin / "dataset" / "val.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "anna"


def test_embedded_model_becomes_a_served_4bit_twin(built_twin: str, twin_home: Path, tmp_path: Path) -> None:
    import openai

    from daemon.process import DaemonProcess

    result = convert(ConvertConfig(name=built_twin, quant="auto", max_conversations=len(VAL)))

    # Measured, not assumed: f16 first, then every 4-bit candidate; the lowest perplexity wins.
    assert [m.quant for m in result.measures] == ["f16", *FOUR_BIT]
    candidates = {m.quant: m.perplexity.value for m in result.measures[1:]}
    assert result.quant == min(candidates, key=candidates.get)
    f16 = result.measures[0].perplexity
    assert f16.samples == len(VAL) and f16.tokens > 50
    assert candidates[result.quant] / f16.value < 1.10
    assert result.verification.top1_agreement >= 0.9
    twin = twin_home / "twins" / built_twin
    assert result.path == twin / f"model-{result.quant}.gguf"
    assert sorted(p.name for p in twin.iterdir() if "gguf" in p.name) == [result.path.name]  # no intermediate left
    model = registry.read(built_twin)["model"]
    assert model["gguf"] == result.path.name and model["quant"] == result.quant

    # The daemon serves it by id; with one model slot it swaps the twin and the base in and out on demand.
    log = tmp_path / "serve.log"
    with DaemonProcess(["--model", "default", "--max-loaded", "1", "--n-ctx", "512"], log_path=log) as daemon:
        client = openai.OpenAI(base_url=daemon.url, api_key="unused")
        assert built_twin in {m.id for m in client.models.list()}
        answers = []
        for model_id in (built_twin, embedded.MODEL_ID, built_twin):
            reply = client.chat.completions.create(model=model_id, messages=QUESTION, temperature=0, max_tokens=32)
            answers.append(reply.choices[0].message.content or "")
            assert reply.model == model_id
            metrics = openai.DefaultHttpxClient().get(daemon.root + "/metrics").text
            assert re.search(r"^twin_models_loaded 1$", metrics, re.M)
    assert all("Paris" in answer for answer in answers), answers
    events = re.findall(r"(loaded|unloading) (\S+\.gguf)", log.read_text(encoding="utf-8"))
    assert events == [
        ("loaded", embedded.GGUF_NAME),  # preloaded at start: the primary
        ("unloading", embedded.GGUF_NAME),
        ("loaded", result.path.name),
        ("unloading", result.path.name),
        ("loaded", embedded.GGUF_NAME),
        ("unloading", embedded.GGUF_NAME),
        ("loaded", result.path.name),
    ], events
    assert os.stat(result.path).st_mode & 0o777 == 0o600
