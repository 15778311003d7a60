"""`twin service install|uninstall|status`: the systemd user unit that keeps `twin serve` running."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from twin import paths
from twin.errors import UserError

UNIT_NAME = "twin.service"


def unit_template() -> str:
    """systemd/twin.service, shipped as package data of `daemon` (a symbolic link in the repository)."""
    return resources.files("daemon").joinpath(UNIT_NAME).read_text(encoding="utf-8")


def twin_executable() -> str:
    """The absolute path of the `twin` command that is running now (inside its virtual environment)."""
    beside = Path(sys.executable).parent / "twin"
    if beside.is_file():
        return str(beside)
    found = shutil.which("twin")
    if found:
        return str(Path(found).resolve())
    raise UserError("cannot find the `twin` executable: install the package (`make install`) and retry")


def render_unit(executable: str | None = None, data_dir: Path | None = None, cache_dir: Path | None = None) -> str:
    """The unit with ExecStart and the writable paths of this installation."""
    text = unit_template()
    exe = executable or twin_executable()
    data = data_dir or paths.data_dir()
    cache = cache_dir or paths.cache_dir()
    text = text.replace("ExecStart=%h/.local/bin/twin serve", f"ExecStart={exe} serve")
    return text.replace("ReadWritePaths=%h/.local/share/twin %h/.cache/twin", f"ReadWritePaths={data} {cache}")


def unit_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "systemd" / "user" / UNIT_NAME


def systemd_available() -> bool:
    """A running systemd user manager we can talk to (not the case in containers and CI)."""
    if shutil.which("systemctl") is None:
        return False
    result = subprocess.run(["systemctl", "--user", "is-system-running"], capture_output=True, text=True)
    return result.stdout.strip() not in ("", "offline") and "Failed to connect" not in result.stderr


def _systemctl(*args: str) -> None:
    result = subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"`systemctl --user {' '.join(args)}` failed: {result.stderr.strip() or result.stdout.strip()}")


def install(out=print) -> Path:
    """Write the unit; enable and start it when a systemd user manager is running, else print the steps."""
    from twin.files import write_text

    path = unit_path()
    for d in (paths.data_dir(), paths.cache_dir()):
        paths.private_dir(d)  # ReadWritePaths must exist or the unit fails to start
    write_text(path, render_unit())
    os.chmod(path, 0o644)
    out(f"wrote {path}")
    if systemd_available():
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", UNIT_NAME)
        out("enabled and started: `systemctl --user status twin`, logs: `journalctl --user -u twin -f`")
    else:
        out("no systemd user manager is running here; to start the service on a machine with systemd:")
        out("  systemctl --user daemon-reload")
        out("  systemctl --user enable --now twin")
        out("  loginctl enable-linger $USER   # keep it running after you log out")
        out("or run it in the foreground: twin serve")
    return path


def uninstall(out=print) -> None:
    path = unit_path()
    if systemd_available():
        subprocess.run(["systemctl", "--user", "disable", "--now", UNIT_NAME], capture_output=True)
    if path.exists():
        path.unlink()
        out(f"removed {path}")
    else:
        out(f"no unit at {path}: nothing to remove")
    if systemd_available():
        _systemctl("daemon-reload")


def status(out=print) -> int:
    path = unit_path()
    out(f"unit file: {path} ({'installed' if path.exists() else 'not installed'})")
    if systemd_available():
        result = subprocess.run(
            ["systemctl", "--user", "status", "--no-pager", UNIT_NAME], capture_output=True, text=True
        )
        out(result.stdout.rstrip() or result.stderr.rstrip())
        return 0
    out("systemd user manager: not running here (start the daemon with `twin serve`)")
    return 0
