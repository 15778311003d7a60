"""The systemd user unit: rendered for this installation, accepted by systemd-analyze, installed without systemd."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from daemon import service


def test_rendered_unit_points_at_this_twin_and_its_data_dir(twin_home):
    text = service.render_unit()
    assert f"ExecStart={service.twin_executable()} serve" in text
    assert f"ReadWritePaths={twin_home} {twin_home / 'cache'}" in text
    for line in (
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "StandardError=journal",
    ):
        assert line in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    unit = tmp_path / "twin.service"
    unit.write_text(service.render_unit())
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "twin.service" not in result.stderr  # no warning about our unit (unknown keys only warn)


def test_install_without_systemd_writes_the_unit_and_prints_the_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no systemctl to be found
    result = subprocess.run(
        [sys.executable, "-m", "twin", "service", "install"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "xdg-config" / "systemd" / "user" / "twin.service"
    assert unit.is_file()
    assert "ExecStart=" in unit.read_text()
    assert "systemctl --user enable --now twin" in result.stdout

    status = subprocess.run(
        [sys.executable, "-m", "twin", "service", "status"], capture_output=True, text=True, timeout=60
    )
    assert "installed" in status.stdout

    removed = subprocess.run(
        [sys.executable, "-m", "twin", "service", "uninstall"], capture_output=True, text=True, timeout=60
    )
    assert removed.returncode == 0 and not unit.exists()
