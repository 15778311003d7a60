"""XDG paths with the TWIN_HOME override, and settings: defaults < config.toml < TWIN_* < flags."""

from __future__ import annotations

import subprocess
import sys

import pytest

from twin import paths
from twin.config import ServeSettings, load
from twin.errors import UserError


def test_twin_home_moves_everything(twin_home):
    assert paths.data_dir() == twin_home
    assert paths.config_file() == twin_home / "config" / "config.toml"
    assert paths.cache_dir() == twin_home / "cache"
    assert paths.twin_dir("anna") == twin_home / "twins" / "anna"


def test_xdg_directories_without_twin_home(monkeypatch, tmp_path):
    monkeypatch.delenv("TWIN_HOME")
    assert paths.data_dir() == tmp_path / "xdg-data" / "twin"
    assert paths.config_file() == tmp_path / "xdg-config" / "twin" / "config.toml"
    assert paths.cache_dir() == tmp_path / "xdg-cache" / "twin"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # invalid per the spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.data_dir() == tmp_path / "home" / ".local" / "share" / "twin"


def test_twin_paths_command(twin_home):
    out = subprocess.run([sys.executable, "-m", "twin", "paths"], capture_output=True, text=True, check=True).stdout
    assert f"data    {twin_home}" in out
    assert str(twin_home / "config" / "config.toml") in out


@pytest.mark.parametrize("name", ["", "../up", "a/b", ".hidden", "x" * 65])
def test_bad_twin_names_are_refused(name):
    with pytest.raises(UserError, match="invalid twin name"):
        paths.twin_dir(name)


def write_config(text: str) -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(text)


def test_settings_precedence(monkeypatch):
    assert load(ServeSettings).port == 8642
    write_config("[serve]\nport = 9000\nqueue_size = 3\n")
    assert load(ServeSettings).port == 9000
    monkeypatch.setenv("TWIN_PORT", "9100")
    settings = load(ServeSettings)
    assert (settings.port, settings.queue_size) == (9100, 3)
    assert load(ServeSettings, {"port": 9200, "queue_size": None}).port == 9200


@pytest.mark.parametrize(
    ("config", "env", "needle"),
    [
        ("[serve\nport=1", {}, "not valid TOML"),
        ("[serve]\nprot = 1\n", {}, "unknown setting serve.prot"),
        ("[serve]\nport = 'abc'\n", {}, "serve.port must be int"),
        ("", {"TWIN_QUEUE_SIZE": "many"}, "TWIN_QUEUE_SIZE must be int"),
        ("", {"TWIN_LOG_CONTENT": "maybe"}, "TWIN_LOG_CONTENT must be bool"),
        ("[serve]\nqueue_size = 0\n", {}, "setting queue_size must be at least 1"),
    ],
)
def test_bad_settings_name_the_culprit(config, env, needle, monkeypatch):
    write_config(config)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(UserError, match=needle.replace("[", r"\[")):
        load(ServeSettings)


def test_bad_config_file_is_one_line_exit_2():
    write_config("[serve]\nport = 'abc'\n")
    result = subprocess.run([sys.executable, "-m", "twin", "serve"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("twin: error: ") and result.stderr.count("\n") == 1


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "twin", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("serve", "paths", "service", "demo", "export", "pack", "unpack"):
        assert command in out


def test_unknown_option_is_a_usage_error_exit_2():
    result = subprocess.run([sys.executable, "-m", "twin", "serve", "--nope"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--nope" in result.stderr and result.stderr.count("\n") == 1


def test_badly_typed_option_is_one_line_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "twin", "serve", "--port", "abc"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "'--port'" in result.stderr and "--help" in result.stderr


def test_no_arguments_prints_help_exit_0():
    result = subprocess.run([sys.executable, "-m", "twin"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Commands" in result.stdout
