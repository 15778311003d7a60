"""The pipeline's files under faults (issue 16): full disk, unwritable folders, umask 000, other users, orphans.

A full disk is real: a tmpfs mounted in a private mount namespace (`unshare`),
filled up to the room a test leaves. An unwritable folder is real too: the run
drops the capability that lets root write anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.disk import run_on_full_disk
from twin import embedded

REPO = Path(__file__).resolve().parents[2]


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TWIN_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **extra,
    }


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("twin: error: ")
    return lines[0]


def write_export(path: Path, samples: int = 400) -> Path:
    """A JSONL export (one ready-made sample a line) large enough to fill a nearly full disk."""
    rows = [
        {"messages": [{"role": "user", "content": f"question {i} " * 20}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(samples)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_ingest_on_a_full_disk(tmp_path: Path) -> None:
    """Case 2: the dataset does not fit: one line naming the disk (not the input), nothing registered or left."""
    export = write_export(tmp_path / "export.jsonl")
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    run = run_on_full_disk(tmp_path, "ingest", str(export), "--name", "me", room=16 * 1024, prepared=prepared)
    assert run.code == 2
    line = one_error_line(run.stderr)
    assert "no space left on the disk of" in line and "while writing the dataset" in line
    assert str(export) not in line  # the input is fine
    assert run.left == [] and run.toml == ""


def test_unwritable_data_directory(tmp_path: Path) -> None:
    """Case 2: a data directory the user cannot write: one line naming it and the fix, exit 2."""
    export = write_export(tmp_path / "export.jsonl", samples=20)
    home = tmp_path / "locked"
    home.mkdir(mode=0o500)
    proc = subprocess.run(
        ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", '"$PY" -m twin ingest "$EXPORT"'],
        env=env_for(home, PY=sys.executable, EXPORT=str(export)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert f"cannot write in {home} (Permission denied)" in line
    assert "check that folder's permissions or set TWIN_HOME to another folder" in line
    assert list(home.iterdir()) == []


def test_everything_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """Case 3: under umask 000 every folder twin creates is 0700 and every file 0600."""
    export = write_export(tmp_path / "export.jsonl", samples=20)
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "twin", "ingest", str(export)],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0),
    )
    assert proc.returncode == 0, proc.stderr
    made = [home, *home.rglob("*")]
    assert len(made) >= 7  # home, twins, me, dataset, train.jsonl, val.jsonl, stats.json, twin.toml
    for path in made:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def test_the_daemon_refuses_a_twin_others_can_write(tmp_path: Path) -> None:
    """Case 3: a twin folder other users can write could hold a planted model: `twin serve` will not load it."""
    home = tmp_path / "home"
    folder = home / "twins" / "me"
    folder.mkdir(parents=True, mode=0o700)
    os.chmod(home, 0o700)
    os.chmod(home / "twins", 0o700)
    (folder / "model.gguf").symlink_to(embedded.embedded_gguf())
    (folder / "twin.toml").write_text('[model]\ngguf = "model.gguf"\n')
    os.chmod(folder, 0o777)
    proc = subprocess.run(
        [sys.executable, "-m", "twin", "serve", "--model", "me", "--port", "0"],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert f"{folder} can be written by other users (mode 777)" in line and f"chmod 700 {folder}" in line


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    assert proc.wait() == 0
    return proc.pid


def test_orphans_of_dead_runs_are_removed(tmp_path: Path, twin_home: Path, base_in_cache: Path) -> None:
    """Case 5: temporary files of killed runs go on the next run; those of live processes stay."""
    from trainer.bases import embedded_hf_dir
    from trainer.ingest.run import IngestConfig, ingest

    dead, alive = _dead_pid(), os.getpid()
    folder = twin_home / "twins" / "me"
    folder.mkdir(parents=True)
    (folder / f".merged.pid{dead}.k2j3h4ab.tmp").mkdir()
    (folder / f".merged.pid{dead}.k2j3h4ab.tmp" / "model.safetensors").write_bytes(b"x" * 1000)
    (folder / f".model-f16.gguf.pid{dead}.zz81hq0a.gguf.tmp").write_bytes(b"GGUF")
    (folder / f".merged.pid{alive}.q0q0q0q0.tmp").mkdir()
    cache = base_in_cache.parent
    (cache / f".{embedded.MODEL_ID}.pid{dead}.abcd1234.tmp").mkdir()

    ingest(IngestConfig(exports=[write_export(tmp_path / "e.jsonl", 20)], progress=False))
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [f".merged.pid{alive}.q0q0q0q0.tmp"]
    assert embedded_hf_dir() == base_in_cache
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
