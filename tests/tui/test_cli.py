"""`twin chat`: its options, and every mistake ends in one line and exit code 2 before any screen opens."""

from __future__ import annotations

import pytest

from twin.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["chat", *argv])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["chat", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--url" in out and "--rate" in out and "--name" in out


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--url", "ftp://example"], "twin: error: setting url must start with http:// or https://"),
        (["--name", "alice"], "twin: error: --name only goes with --rate: run `twin chat --rate --name NAME`"),
        (["--rate"], "twin: error: no twin with a validation split under"),
        (["--rate", "--name", "../etc"], "twin: error: invalid twin name '../etc'"),
        (["--rate", "--name", "bob"], "twin: error: twin 'bob' has no validation split at"),
    ],
)
def test_mistakes_end_in_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], line: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(line)


def test_bad_config_value_is_named(
    capsys: pytest.CaptureFixture[str], twin_home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWIN_MAX_TOKENS", "0")
    code, _, err = run(capsys)
    assert code == 2 and err == "twin: error: setting max_tokens must be at least 1\n"


def test_a_broken_validation_split_is_named_before_the_screen_opens(
    capsys: pytest.CaptureFixture[str], built_twin: str
) -> None:
    from tui.rating import val_path

    val_path(built_twin).write_text("{oops\n", encoding="utf-8")
    code, _, err = run(capsys, "--rate", "--name", built_twin)
    assert code == 2 and err.count("\n") == 1
    assert "val.jsonl:1: not valid JSON" in err and "twin ingest" in err


def test_an_unreadable_history_is_named_before_the_screen_opens(capsys: pytest.CaptureFixture[str], twin_home) -> None:
    twin_home.mkdir(parents=True, exist_ok=True)
    (twin_home / "chat.db").write_bytes(b"not a database " * 200)
    code, _, err = run(capsys)
    assert code == 2 and err.count("\n") == 1
    assert "chat.db is not a usable SQLite database" in err and "move it away" in err
