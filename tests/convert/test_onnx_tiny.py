"""The ONNX export on tiny random models of each architecture it takes: verified, measured, registered, generating."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convert.onnx_export import OnnxConfig, export_onnx
from daemon.batch import ChoiceDone, Delta, Job, Ticket
from daemon.engine import open_runner
from daemon.metrics import EngineMetrics
from daemon.schema import SamplingParams
from twin import registry

pytestmark = pytest.mark.slow  # exports each tiny model two or three times

CHAT = [{"role": "user", "content": "Привет! How are you? 😀"}]


def tiny_twin(home: Path, name: str, merged: Path) -> str:
    twin = home / "twins" / name
    (twin / "dataset").mkdir(parents=True)
    (twin / "merged").symlink_to(merged, target_is_directory=True)
    rows = [
        {"messages": [{"role": "user", "content": "как дела?"}, {"role": "assistant", "content": "норм, а ты? 🎉"}]},
        {"messages": [{"role": "user", "content": "see you at 10:30?"}, {"role": "assistant", "content": "sure 👍"}]},
    ]
    (twin / "dataset" / "val.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return name


@pytest.mark.parametrize(("kind", "quant"), [("llama-bpe", "int8"), ("qwen2", "int4"), ("phi3", "int8")])
def test_tiny_model_exports_and_generates(kind: str, quant: str, tiny_model, twin_home: Path) -> None:
    from transformers import AutoTokenizer

    name = tiny_twin(twin_home, kind.replace("-", ""), tiny_model(kind))
    result = export_onnx(OnnxConfig(name=name, quant=quant))

    assert result.verification.top1_agreement >= 0.99  # fp32 ONNX against transformers
    expected = ["fp32", "int4", "int8"] if quant == "auto" else ["fp32", quant]
    assert [m.quant for m in result.measures] == expected
    assert all(m.perplexity.samples == 2 and m.perplexity.value > 1 for m in result.measures)
    assert result.quant in expected[1:]
    table = registry.read(name)["onnx"]
    assert table["quant"] == result.quant and table["dir"] == "onnx"

    # The daemon's runner: chat tokens as transformers renders them, then tokens until the limit.
    runner = open_runner(result.path, 128, 1, 1, EngineMetrics())
    try:
        hf = AutoTokenizer.from_pretrained(str(tiny_model(kind)))
        rendered = hf.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
        prompt = runner.model.chat_tokens(CHAT)
        if kind != "phi3":
            # Not for SentencePiece (phi3): message text is tokenized apart from the template's markers, so it gets
            # the space prefix transformers leaves out after a special token (as on the GGUF path, see verify.py),
            # and the markers' rstrip is not applied. Known, listed in the issue's report.
            assert prompt == hf.encode(rendered, add_special_tokens=False)
        events: list[object] = []
        ticket = Ticket(events.append, len(prompt), 1)
        runner.waiting.append(
            Job(ticket, 0, runner.model.chat_tokens(CHAT), SamplingParams(max_tokens=6, ignore_eos=True), seed=1)
        )
        while runner.busy():
            runner.step()
    finally:
        runner.close()
    done = [e for e in events if isinstance(e, ChoiceDone)]
    assert [(d.finish_reason, d.completion_tokens) for d in done] == [("length", 6)]
    assert all(isinstance(e.text, str) for e in events if isinstance(e, Delta))
