"""A full disk, for real: a small tmpfs mounted in a private mount namespace (`unshare`), so nothing on the host changes.

The command runs as `python -m twin ARGS` (or `python ARGS` with `twin_cli=False`) inside the namespace; what it left on
the disk is listed before the namespace (and the tmpfs) goes away.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Mount the tmpfs, copy a prepared TWIN_HOME in, fill the disk but ROOM bytes, run the command, list what is left.
_SCRIPT = """
set -u
mount -t tmpfs -o size="$SIZE" tmpfs "$DISK" || exit 99
if [ -n "$PREPARED" ]; then cp -a "$PREPARED/." "$DISK/"; fi
if [ -n "$ROOM" ]; then
    dd if=/dev/zero of="$DISK/.fill" bs=4096 2>/dev/null
    truncate -s "-$ROOM" "$DISK/.fill"
fi
"$PY" "$@"
code=$?
rm -f "$DISK/.fill"
(cd "$DISK/$LISTED" 2>/dev/null && find . -mindepth 1 | sort) > "$LISTING"
cat "$DISK/twins/me/twin.toml" > "$TOML" 2>/dev/null
exit $code
"""


@dataclass
class DiskRun:
    code: int
    stderr: str
    left: list[str]  # paths left under the listed folder, as find prints them ("./dataset/train.jsonl")
    toml: str  # twins/me/twin.toml on the disk afterwards; "" when there is none


def disk_of(tmp_path: Path) -> Path:
    """Where the disk is mounted (exists before the run, so a command line can name paths on it)."""
    return tmp_path / "disk"


def run_on_full_disk(
    tmp_path: Path,
    *args: str,
    size: str = "8m",
    room: int | None = None,
    prepared: Path | None = None,
    listed: str = ".",
    as_home: bool = True,
    timeout: float = 600,
    twin_cli: bool = True,
) -> DiskRun:
    """`twin ARGS` on a `size` tmpfs: `prepared` copied in, then filled but `room` bytes (None: left empty).

    `as_home`: the disk is TWIN_HOME. `listed`: the folder of the disk whose paths are reported.
    """
    disk = disk_of(tmp_path)
    disk.mkdir(exist_ok=True)
    listing, toml = tmp_path / "listing.txt", tmp_path / "twin.toml"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "SIZE": size,
        "DISK": str(disk),
        "PREPARED": str(prepared or ""),
        "ROOM": "" if room is None else str(room),
        "LISTED": listed,
        "PY": sys.executable,
        "LISTING": str(listing),
        "TOML": str(toml),
    }
    if as_home:
        env["TWIN_HOME"] = str(disk)
    proc = subprocess.run(
        [
            "unshare",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            _SCRIPT,
            "sh",
            *(("-m", "twin") if twin_cli else ()),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode != 99, f"could not mount a test tmpfs: {proc.stderr}"
    return DiskRun(proc.returncode, proc.stderr, listing.read_text().split(), toml.read_text() if toml.exists() else "")
