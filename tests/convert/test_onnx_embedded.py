"""The embedded SmolLM2 end to end on the ONNX backend: merged → verified fp32 → int8 and int4 measured → served."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import httpx
import openai
import pytest

from convert.onnx_export import OnnxConfig, export_onnx
from daemon.process import DaemonProcess
from twin import registry

pytestmark = pytest.mark.slow  # exports the model three times and serves it

VAL = [
    ("are you free on saturday?", "maybe, depends on when I get back from my parents"),
    ("how was the concert", "loud and amazing, my ears are still ringing"),
    ("Ты дома?", "ещё нет, буду через полчаса"),
    ("can you send me the photos", "sure, give me a minute to find them"),
    ("good luck tomorrow!", "thanks!! I'm so nervous lol"),
]
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
LONG = [{"role": "user", "content": "Count from one to one thousand in words."}]
LEAVE_AFTER = 3  # streamed deltas before the client goes away


def metric(root: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(root + "/metrics").text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def anna(embedded_hf: Path, twin_home: Path) -> str:
    twin = twin_home / "twins" / "anna"
    (twin / "dataset").mkdir(parents=True)
    (twin / "merged").symlink_to(embedded_hf, target_is_directory=True)
    rows = [
        json.dumps(
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}, ensure_ascii=False
        )
        for q, a in VAL
    ]
    (twin / "dataset" / "val.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return "anna"


def test_embedded_model_exported_to_onnx_and_served(anna: str, twin_home: Path, tmp_path: Path) -> None:
    result = export_onnx(OnnxConfig(name=anna))

    # Checked against transformers before quantization; int8 and int4 both measured on my replies.
    assert result.verification.top1_agreement >= 0.99
    assert [m.quant for m in result.measures] == ["fp32", "int4", "int8"]
    ppl = {m.quant: m.perplexity for m in result.measures}
    assert all(p.samples == len(VAL) and p.tokens > 30 for p in ppl.values())
    assert ppl["int8"].value / ppl["fp32"].value < 1.05
    size = {m.quant: m.size_bytes for m in result.measures}
    assert size["int4"] < size["int8"] < size["fp32"]
    twin = twin_home / "twins" / anna
    assert result.path == twin / "onnx" and (twin / "onnx" / "genai_config.json").is_file()
    assert sorted(p.name for p in twin.iterdir()) == ["dataset", "merged", "onnx", "twin.toml"]  # no scratch left
    for p in [result.path, *result.path.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600), p
    table = registry.read(anna)["onnx"]
    assert table["dir"] == "onnx" and table["quant"] == result.quant and table["size_bytes"] == result.size_bytes
    assert table["ppl_int4"] == round(ppl["int4"].value, 4) and table["ppl_int8"] == round(ppl["int8"].value, 4)

    log = tmp_path / "serve.log"
    with DaemonProcess(["--backend", "onnx", "--model", anna, "--n-ctx", "512", "--parallel", "2"], log_path=log) as d:
        client = openai.OpenAI(base_url=d.url, api_key="x", max_retries=0)
        assert f"{anna}-onnx" in {m.id for m in client.models.list()}
        args = dict(model=f"{anna}-onnx", messages=QUESTION, temperature=0, max_tokens=32)
        reply = client.chat.completions.create(**args)
        text = reply.choices[0].message.content or ""
        assert "Paris" in text, text
        assert reply.model == f"{anna}-onnx" and reply.choices[0].finish_reason == "stop"
        assert reply.usage.prompt_tokens > 10 and 3 < reply.usage.completion_tokens <= 32
        assert reply.system_fingerprint and reply.system_fingerprint.startswith("fp_")

        # Streaming with a stop string: the text ends right before it, usage comes last.
        chunks = list(
            client.chat.completions.create(**args, stop=["Paris"], stream=True, stream_options={"include_usage": True})
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == text[: text.index("Paris")]
        assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == reply.usage.prompt_tokens

        # A seed gives the same sample again.
        sampled = dict(model=f"{anna}-onnx", messages=QUESTION, temperature=0.9, max_tokens=12, seed=7)
        assert (
            client.chat.completions.create(**sampled).choices[0].message.content
            == client.chat.completions.create(**sampled).choices[0].message.content
        )

        # Biases work as on the GGUF: against the end tokens the reply runs to max_tokens; a foreign id is a 400.
        assert (
            client.chat.completions.create(**args, extra_body={"end_bias": -100}).choices[0].finish_reason == "length"
        )
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(**args, logit_bias={"999999999": 5})
        assert refused.value.body["param"] == "logit_bias" and "vocabulary" in refused.value.body["message"]

        # What the backend cannot honour is a 400 naming it.
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(**args, response_format={"type": "json_object"})
        assert refused.value.body["param"] == "response_format" and "ONNX" in refused.value.body["message"]
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(**args, logprobs=True)
        assert refused.value.body["param"] == "logprobs"

        # A client that leaves mid-stream frees its slot: the generation stops long before its 400 tokens.
        before = metric(d.root, "twin_completion_tokens_total")
        stream = client.chat.completions.create(
            model=f"{anna}-onnx", messages=LONG, max_tokens=400, stream=True, extra_body={"ignore_eos": True}
        )
        received = 0
        for chunk in stream:
            received += bool(chunk.choices and chunk.choices[0].delta.content)
            if received >= LEAVE_AFTER:
                break
        stream.close()
        wait_for(lambda: "client_disconnected" in log.read_text())
        wait_for(lambda: metric(d.root, "twin_slots_busy") == 0)
        assert LEAVE_AFTER <= metric(d.root, "twin_completion_tokens_total") - before < 200
