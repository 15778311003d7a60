"""`twin bot setup` and `twin bot` as a user runs them: the token checked, stored 0600 and never in a log line;
`twin service install --bot`."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from daemon import service
from tests.bot.fake_telegram import TOKEN
from tests.bot.people import OWNER


def env_for(telegram, daemon, **extra: str) -> dict[str, str]:
    env = {**os.environ, "TWIN_API_URL": telegram.api_url, "TWIN_URL": daemon.url if daemon else "", **extra}
    return {k: v for k, v in env.items() if v}


async def run_twin(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "twin", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def test_setup_checks_stores_0600_and_prints_the_code(telegram, twin_home: Path) -> None:
    code, out, err = await run_twin(["bot", "setup"], env_for(telegram, None, TWIN_BOT_TOKEN=TOKEN))
    assert code == 0, err
    path = twin_home / "config" / "bot-token"
    assert path.read_text().strip() == TOKEN and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "bot @twin_test_bot" in out and TOKEN not in out + err
    assert re.search(r"/start [0-9a-f]{8}\n", out)
    assert [c.method for c in telegram.calls] == ["getMe"]


async def test_setup_with_a_refused_or_malformed_token_says_so_in_one_line(telegram, twin_home: Path) -> None:
    wrong = "123456789:BBB-not-the-right-token-at-all-000000"
    code, _, err = await run_twin(["bot", "setup"], env_for(telegram, None, TWIN_BOT_TOKEN=wrong))
    assert code == 2 and err.strip().count("\n") == 0 and "Telegram refused this token" in err
    assert wrong not in err and not (twin_home / "config" / "bot-token").exists()
    code, _, err = await run_twin(["bot", "setup"], env_for(telegram, None, TWIN_BOT_TOKEN="hello"))
    assert code == 2 and "not a bot token" in err


async def test_run_without_a_token_says_how_to_set_up(twin_home: Path) -> None:
    code, _, err = await run_twin(["bot"], {**os.environ})
    assert code == 2 and "run `twin bot setup`" in err


async def test_the_token_is_in_no_log_line(telegram, daemon, twin_home: Path) -> None:
    env = env_for(telegram, daemon, TWIN_BOT_TOKEN=TOKEN)
    _, out, _ = await run_twin(["bot", "setup"], env)
    claim_code = re.search(r"/start ([0-9a-f]{8})", out).group(1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "twin", "bot", "--verbose", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        telegram.send(OWNER, f"/start {claim_code}")
        await telegram.reply(OWNER["id"], "You own this bot now")
        telegram.refuse("sendMessage", retry_after=1)  # a flood refusal is logged too
        telegram.send(OWNER, "/generate Say hello.")
        await telegram.wait_for(lambda calls: len(telegram.of("sendMessage", OWNER["id"])) >= 2, "the reply")
    finally:
        proc.terminate()
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    log = out.decode() + err.decode()
    assert "getUpdates" in log or "HTTP Request" in log or "DEBUG" in log  # it did log, verbosely
    assert "flood limit" in log
    secret = TOKEN.partition(":")[2]
    assert TOKEN not in log and secret not in log
    assert "<bot-token>" in log  # where a URL held it, the placeholder stands


def test_bot_unit_renders_for_this_installation(twin_home: Path) -> None:
    text = service.render_unit(unit=service.BOT_UNIT_NAME)
    assert f"ExecStart={service.twin_executable()} bot\n" in text
    assert "After=network-online.target twin.service" in text and "Wants=network-online.target twin.service" in text
    assert f"ReadWritePaths={twin_home} {twin_home / 'cache'}" in text
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "Restart=on-failure"):
        assert line in text


def test_service_install_bot_without_systemd(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = subprocess.run(
        [sys.executable, "-m", "twin", "service", "install", "--bot"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "xdg-config" / "systemd" / "user" / "twin-bot.service"
    assert "bot" in unit.read_text() and "systemctl --user enable --now twin-bot" in result.stdout
    removed = subprocess.run(
        [sys.executable, "-m", "twin", "service", "uninstall", "--bot"], capture_output=True, text=True, timeout=60
    )
    assert removed.returncode == 0 and not unit.exists()


async def test_setup_takes_the_token_file_of_the_config(telegram, twin_home: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "my-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    env = env_for(telegram, None, TWIN_TOKEN_FILE=str(token_file))
    code, _, err = await run_twin(["bot", "setup"], env)
    assert code == 2 and f"chmod 600 {token_file}" in err  # readable by others: refused, not used
    token_file.chmod(0o600)
    code, out, err = await run_twin(["bot", "setup"], env)
    assert code == 0, err
    assert f"stored in {token_file}" in out and token_file.read_text().strip() == TOKEN
