"""`twin service install|uninstall|status [--bot]`: the systemd user units that keep `twin serve` (twin.service)
and `twin bot` (twin-bot.service) running."""

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
BOT_UNIT_NAME = "twin-bot.service"


def unit_name(bot: bool = False) -> str:
    return BOT_UNIT_NAME if bot else UNIT_NAME


def unit_template(unit: str = UNIT_NAME) -> str:
    """systemd/<unit>, shipped as package data of `daemon` (a symbolic link in the repository)."""
    return resources.files("daemon").joinpath(unit).read_text(encoding="utf-8")


def twin_executable() -> str:
    """The absolute path of the `twin` command that is running now (inside its virtual environment)."""
    beside = Path(sys.executable).parent / "twin"
    if beside.is_file():
        return str(beside)
    found = shutil.which("twin")
    if found:
        return str(Path(found).resolve())
    raise UserError("cannot find the `twin` executable: install the package (`make install`) and retry")


def render_unit(
    executable: str | None = None, data_dir: Path | None = None, cache_dir: Path | None = None, unit: str = UNIT_NAME
) -> str:
    """The unit with ExecStart and the writable paths of this installation."""
    text = unit_template(unit)
    exe = executable or twin_executable()
    data = data_dir or paths.data_dir()
    cache = cache_dir or paths.cache_dir()
    text = text.replace("ExecStart=%h/.local/bin/twin ", f"ExecStart={exe} ")
    return text.replace("ReadWritePaths=%h/.local/share/twin %h/.cache/twin", f"ReadWritePaths={data} {cache}")


def unit_path(unit: str = UNIT_NAME) -> Path:
    config = os.environ.get("XDG_CONFIG_HOME")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "systemd" / "user" / unit


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


def install(out=print, bot: bool = False) -> Path:
    """Write the unit; enable and start it when a systemd user manager is running, else print the steps."""
    from twin.files import write_text

    unit = unit_name(bot)
    short = unit.removesuffix(".service")
    path = unit_path(unit)
    for d in (paths.data_dir(), paths.cache_dir()):
        paths.private_dir(d)  # ReadWritePaths must exist or the unit fails to start
    write_text(path, render_unit(unit=unit))
    os.chmod(path, 0o644)
    out(f"wrote {path}")
    if systemd_available():
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", unit)
        out(f"enabled and started: `systemctl --user status {short}`, logs: `journalctl --user -u {short} -f`")
    else:
        out("no systemd user manager is running here; to start the service on a machine with systemd:")
        out("  systemctl --user daemon-reload")
        out(f"  systemctl --user enable --now {short}")
        out("  loginctl enable-linger $USER   # keep it running after you log out")
        out(f"or run it in the foreground: twin {'bot' if bot else 'serve'}")
    return path


def uninstall(out=print, bot: bool = False) -> None:
    unit = unit_name(bot)
    path = unit_path(unit)
    if systemd_available():
        subprocess.run(["systemctl", "--user", "disable", "--now", unit], capture_output=True)
    if path.exists():
        path.unlink()
        out(f"removed {path}")
    else:
        out(f"no unit at {path}: nothing to remove")
    if systemd_available():
        _systemctl("daemon-reload")


def status(out=print, bot: bool = False) -> int:
    unit = unit_name(bot)
    path = unit_path(unit)
    out(f"unit file: {path} ({'installed' if path.exists() else 'not installed'})")
    if systemd_available():
        result = subprocess.run(["systemctl", "--user", "status", "--no-pager", unit], capture_output=True, text=True)
        out(result.stdout.rstrip() or result.stderr.rstrip())
        return 0
    out("systemd user manager: not running here (start the daemon with `twin serve`)")
    return 0
