"""`twin train` and `twin persona` on a full disk (issue 16, case 2): one line naming the disk, nothing half-registered.

The disk is a real tmpfs in a private mount namespace (`unshare`), filled up to
the room each test leaves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FULL_DISK = """
set -u
mount -t tmpfs -o size=8m tmpfs "$HOME_DIR" || exit 99
cp -a "$PREPARED/." "$HOME_DIR/"
dd if=/dev/zero of="$HOME_DIR/.fill" bs=4096 2>/dev/null
truncate -s "-$ROOM" "$HOME_DIR/.fill"
"$PY" -m twin "$@"
code=$?
rm -f "$HOME_DIR/.fill"
(cd "$HOME_DIR/twins/me" && find . -mindepth 1 | sort) > "$LISTING"
cat "$HOME_DIR/twins/me/twin.toml" > "$TOML" 2>/dev/null
exit $code
"""


def run_on_full_disk(prepared: Path, tmp_path: Path, room: int, *args: str) -> tuple[int, str, list[str], str]:
    """(exit code, stderr, paths left in twins/me, its twin.toml) of `twin ARGS` with `room` bytes free."""
    home = tmp_path / "disk"
    home.mkdir()
    listing, toml = tmp_path / "listing.txt", tmp_path / "twin.toml"
    env = {
        **os.environ,
        "TWIN_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "PREPARED": str(prepared),
        "HOME_DIR": str(home),
        "ROOM": str(room),
        "PY": sys.executable,
        "LISTING": str(listing),
        "TOML": str(toml),
    }
    proc = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", FULL_DISK, "sh", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 99, f"could not mount a test tmpfs: {proc.stderr}"
    return proc.returncode, proc.stderr, listing.read_text().split(), toml.read_text() if toml.exists() else ""


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
    code, err, left, toml = run_on_full_disk(prepared, tmp_path, 8 * 1024, *args)
    assert code == 2
    line = error_line(err)
    assert "no space left on the disk of" in line and "while training" in line
    assert "[train]" not in toml and "[dataset]" in toml
    assert [p for p in left if not p.startswith("./dataset")] in (["./twin.toml"], ["./train_log.jsonl", "./twin.toml"])


def test_persona_on_a_full_disk(prepared: Path, tmp_path: Path) -> None:
    """No room for persona.json and its table: neither is there afterwards (never written but not registered)."""
    for room in (0, 4096, 8192):
        code, err, left, toml = run_on_full_disk(prepared, tmp_path, room, "persona", "--name", "me")
        assert code == 2, (room, err)
        line = error_line(err)
        assert "no space left on the disk of" in line, line
        assert "[persona]" not in toml
        assert "./persona.json" not in left and not [p for p in left if p.endswith(".tmp")], left
        shutil.rmtree(tmp_path / "disk")
