"""`twin eval --compare A B` through the CLI: both twins evaluated, a side-by-side table, the comparison files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twin import paths
from twin.cli import main


def test_compare_two_twins(capsys: pytest.CaptureFixture[str], twins, embedded_hf: Path, twin_home: Path) -> None:
    twins.exchanges("alice")
    twins.exchanges("bob", [("Привет!", "привет)"), ("Ты где?", "дома"), ("Спишь?", "нет")])
    for name in ("alice", "bob"):
        (paths.twin_dir(name) / "merged").symlink_to(embedded_hf, target_is_directory=True)  # an untrained "LoRA" model

    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--compare", "alice", "bob", "--limit", "2", "--max-new-tokens", "8"])
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 0
    assert "twin alice vs twin bob" in out and "ROUGE-L ↑" in out and "comparison: " in out

    folder = twin_home / "comparisons" / "alice-vs-bob"
    data = json.loads((folder / "compare.json").read_text(encoding="utf-8"))
    assert data["twins"] == ["alice", "bob"]
    assert [r["samples"] for r in data["reports"]] == [2, 2]
    for report in data["reports"]:
        assert report["variants"]["lora"]["status"] == "measured" and report["variants"]["gguf"]["status"] == "missing"
    markdown = (folder / "compare.md").read_text(encoding="utf-8")
    assert "| LoRA | perplexity ↓ |" in markdown and "| variant | metric | alice | bob |" in markdown
    assert (folder / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("alice", "bob"):  # each twin has its own full report too
        assert (twin_home / "twins" / name / "eval" / "report.md").is_file()
