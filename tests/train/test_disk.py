"""`twin train` and `twin persona` on a full disk (issue 16, case 2): one line naming the disk, nothing half-registered.

The disk is a real tmpfs in a private mount namespace (`unshare`), filled up to
the room each test leaves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.disk import disk_of, run_on_full_disk


def error_line(stderr: str) -> str:
    """The one `twin: error:` line that ends stderr (training's progress lines may come before it)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert [line for line in lines if "error" in line.lower()] == lines[-1:], stderr
    assert lines[-1].startswith("twin: error: ")
    return lines[-1]


@pytest.fixture
def prepared(twin_home: Path, make_dataset) -> Path:
    """A TWIN_HOME with twin `me` ingested (dataset + [dataset]), ready to copy onto the small disk."""
    make_dataset("me")
    (twin_home / "twins" / "me" / "twin.toml").write_text('[dataset]\ndir = "dataset"\n')
    return twin_home


def test_train_on_a_full_disk(prepared: Path, tmp_path: Path, tiny_gpt2: Path) -> None:
    """No room for the adapter: one line, exit 2, no adapter/ merged/ or [train], no temporary file left."""
    args = ("train", "--name", "me", "--base", str(tiny_gpt2), "--max-steps", "1", "--batch-size", "2")
    run = run_on_full_disk(tmp_path, *args, room=8 * 1024, prepared=prepared, listed="twins/me")
    assert run.code == 2
    line = error_line(run.stderr)
    assert "no space left on the disk of" in line and "while training" in line
    assert "[train]" not in run.toml and "[dataset]" in run.toml
    left = [p for p in run.left if not p.startswith("./dataset")]
    assert left in (["./twin.toml"], ["./train_log.jsonl", "./twin.toml"])


def test_persona_on_a_full_disk(prepared: Path, tmp_path: Path) -> None:
    """No room for persona.json and its table: neither is there afterwards (never written but not registered)."""
    for room in (0, 4096, 8192):
        run = run_on_full_disk(tmp_path, "persona", "--name", "me", room=room, prepared=prepared, listed="twins/me")
        assert run.code == 2, (room, run.stderr)
        line = error_line(run.stderr)
        assert "no space left on the disk of" in line, line
        assert "[persona]" not in run.toml
        assert "./persona.json" not in run.left and not [p for p in run.left if p.endswith(".tmp")], run.left
        shutil.rmtree(disk_of(tmp_path))
