"""A twin with only its GGUF: the other variants are reported missing with their commands; a running daemon is reused."""

from __future__ import annotations

import json
import math
import urllib.request
from pathlib import Path

from daemon.process import DaemonProcess
from trainer.evaluation.run import EvalConfig, evaluate
from twin.config import ChatSettings


def rate_two_rounds(name: str) -> None:
    """Two rounds of `twin chat --rate`, stored by the TUI's own code: the twin scored 4 and 2, my replies 5 and 2."""
    from tui import database
    from tui.rating import Candidate, Round, load_samples, save_round

    db = database.connect()
    for sample, (twin_score, real_score) in zip(load_samples(name), ((4, 5), (2, 2))):
        twin = Candidate("twin", name, text="норм", score=twin_score, best=twin_score >= real_score)
        real = Candidate("real", "", text=sample.real, score=real_score, best=twin_score < real_score)
        save_round(db, Round(name, sample, [twin, real]), "{}")
    db.close()


def test_gguf_only_twin_through_a_running_daemon(dataset_twin: str, twins, twin_home: Path) -> None:
    twins.gguf(dataset_twin)
    rate_two_rounds(dataset_twin)
    with DaemonProcess(["--model", "default", "--threads", "1"], log_path=twin_home / "serve.log") as running:
        result = evaluate(
            EvalConfig(
                name=dataset_twin,
                limit=3,
                max_new_tokens=12,
                threads=1,
                progress=False,
                chat=ChatSettings(url=running.url),
            )
        )
        # The evaluation used this daemon and left it running.
        with urllib.request.urlopen(running.root + "/health", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(running.root + "/metrics", timeout=5) as r:
            metrics = r.read().decode()
    assert result.daemon == f"the running daemon at {running.url}, OpenAI API, model `dima`"
    # 3 samples, each answered greedily and with the chat default's sampling (reported side by side).
    assert 'twin_requests_total{path="/v1/chat/completions",status="200"} 6' in metrics.splitlines()

    by = {v.key: v for v in result.variants}
    assert by["prompt"].variant.missing == "no persona yet: build it with `twin persona --name dima`"
    assert by["lora"].variant.missing.endswith("train it with `twin train --name dima`")
    gguf = by["gguf"]
    assert not gguf.variant.missing and gguf.variant.label == "served GGUF (q4_1)"
    assert gguf.perplexity is not None and math.isfinite(gguf.perplexity.value) and gguf.perplexity.value > 1
    assert gguf.perplexity.samples == 3 and gguf.perplexity.tokens > 3
    assert gguf.replies is not None and len(gguf.replies) == 3 and all(r.strip() for r in gguf.replies)

    folder = twin_home / "twins" / "dima" / "eval"
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["variants"]["prompt"] == {
        "key": "prompt",
        "label": "prompt-only (base + persona)",
        "status": "missing",
        "missing": "no persona yet: build it with `twin persona --name dima`",
    }
    assert report["variants"]["gguf"]["status"] == "measured" and report["samples"] == 3
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "- **prompt-only**: no persona yet: build it with `twin persona --name dima`" in markdown
    assert "- **LoRA**: not trained yet" in markdown
    assert "2 rated rounds." in markdown
    assert "| served GGUF (twin) | 2 | 3.00 | 50% | 50% |" in markdown
    assert "| my real reply | 2 | 3.50 | 50% | – |" in markdown
    assert report["ratings"]["rounds"] == 2
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert {p.name for p in folder.iterdir()} == {
        "report.md",
        "report.json",
        "generations.jsonl",
        "metrics.png",
        "lengths.png",
    }
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in folder.iterdir())


def test_a_broken_gguf_is_reported_not_fatal(dataset_twin: str, twin_home: Path) -> None:
    from twin import registry

    (twin_home / "twins" / "dima" / "model-q4_1.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    registry.update(dataset_twin, "model", {"gguf": "model-q4_1.gguf", "quant": "q4_1"})
    result = evaluate(EvalConfig(name=dataset_twin, limit=2, threads=1, progress=False))
    gguf = next(v for v in result.variants if v.key == "gguf")
    assert gguf.variant.missing.startswith("could not be measured (")
    assert gguf.variant.missing.endswith("rebuild it with `twin convert --name dima`")
    report = json.loads((twin_home / "twins" / "dima" / "eval" / "report.json").read_text(encoding="utf-8"))
    assert report["variants"]["gguf"]["status"] == "missing" and report["daemon"] == "not used (no GGUF measured)"
