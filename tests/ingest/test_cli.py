"""`twin ingest` from the command line: the summary, and every bad input as one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twin import paths
from twin.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "telegram_sample" / "result.json"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(["ingest", *args])
        raise SystemExit(0)
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def snapshot(name: str) -> dict[str, bytes]:
    root = paths.twin_dir(name)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_help_lists_the_options(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for option in (
        "--me",
        "--name",
        "--gap",
        "--context",
        "--strip-emoji",
        "--keep",
        "--split",
        "--seed",
        "--max-reply-chars",
    ):
        assert option in out


def test_ingest_prints_the_summary(capsys, tg, write):
    path = write("result.json", tg.chat([tg.msg(1, 0, "Anna", "Как дела?"), tg.msg(2, 5, "Me", "норм 🔥")]))
    code, out, err = cli(capsys, str(path), "--me", "Me", "--name", "anna")
    assert code == 0, err
    assert err == ""
    assert "twin anna: dataset" in out and "messages read" in out and "samples" in out and "🔥" in out
    dataset = paths.twin_dir("anna") / "dataset"
    assert sorted(p.name for p in dataset.iterdir()) == ["stats.json", "train.jsonl", "val.jsonl"]
    assert json.loads((dataset / "stats.json").read_text())["samples"]["total"] == 1
    assert oct(dataset.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in dataset.iterdir())


def truncated_sample(write) -> tuple[Path, str]:
    text = SAMPLE.read_text(encoding="utf-8")
    return write("result.json", text[: len(text) // 2]), "the file ends too early"


BAD_INPUTS = {
    "not json": lambda write: (
        write("result.json", '{"name": "A", "type": "personal_chat", "messages": [{"id": 1,, }]}'),
        "line 1 (chat 'A', message #1): not valid JSON",
    ),
    "truncated": truncated_sample,
    "other shape": lambda write: (write("result.json", {"users": [1, 2]}), 'JSON without "messages" or "chats"'),
    "unknown whatsapp": lambda write: (
        write("chat.txt", "Chat with Anna\n12:00 Anna: hi\n"),
        "line 1: not a chat export twin knows",
    ),
    "binary": lambda write: (write("chat.txt", b"\x89PNG\r\n\x1a\n\x00\x00"), "line 1: not a chat export twin knows"),
    "not utf-8": lambda write: (
        write("chat.txt", b"01/02/2024, 10:00 - Anna: \xff\xfe\n01/02/2024, 10:01 - Me: ok\n"),
        "not UTF-8 text",
    ),
    "no such file": lambda write: (write("x.txt", "").parent / "missing.json", "no such file"),
    "folder without export": lambda write: (write("x.txt", "").parent, "is a folder without result.json"),
    "no messages from me": lambda write: (
        write("wa.txt", "01/02/2024, 10:00 - Anna: hi\n"),
        "no messages from Me: pass --me with one of the senders: Anna 1",
    ),
    "zero samples": lambda write: (
        write("wa.txt", "01/02/2024, 10:00 - Me: привет\n01/02/2024, 13:00 - Me: ау\n"),
        "no samples left (2 turns of mine; 2 no context)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_leaves_the_old_dataset(capsys, write, case):
    code, _, err = cli(capsys, str(SAMPLE), "--name", "dima")
    assert code == 0, err
    before = snapshot("dima")
    path, message = BAD_INPUTS[case](write)
    code, out, err = cli(capsys, str(path), "--me", "Me", "--name", "dima")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("twin: error: ")
    assert str(path) in err and message in err, err
    assert snapshot("dima") == before  # nothing written, nothing half-replaced
    assert sorted(p.name for p in paths.twin_dir("dima").iterdir()) == ["dataset", "twin.toml"]


@pytest.mark.parametrize("case", ["truncated", "no messages from me"])
def test_failed_first_run_leaves_no_twin_behind(capsys, write, case):
    path, message = BAD_INPUTS[case](write)
    code, _, err = cli(capsys, str(path), "--me", "Me", "--name", "fresh")
    assert code == 2 and message in err
    assert not paths.twin_dir("fresh").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--context", "0"], "--context must be between 1 and 64 turns, not 0"),
        (["--split", "alphabetical"], "--split must be one of random, time, not 'alphabetical'"),
        (["--keep", "passwords"], "--keep 'passwords' is not a kind of personal data"),
        (["--gap", "soon"], "--gap 'soon' is not a duration"),
        (["--merge", "-5m"], "--merge '-5m' is not a duration"),
        (["--val-fraction", "0.9"], "--val-fraction must be between 0 and 0.5, not 0.9"),
        (["--max-reply-chars", "-1"], "--max-reply-chars must be 0 (no cap) or more, not -1"),
        (["--name", "../etc"], "invalid twin name '../etc'"),
    ],
)
def test_bad_options_are_one_line(capsys, args, message):
    code, out, err = cli(capsys, str(SAMPLE), *args)
    assert code == 2 and out == ""
    assert err.startswith(f"twin: error: {message}") and err.count("\n") == 1
    assert not paths.twins_dir().exists()


def test_gap_and_merge_take_durations(capsys, tg, write):
    rows = [
        tg.msg(1, 0, "Anna", "a"),
        tg.msg(2, 100, "Me", "b"),
        tg.msg(3, 200, "Me", "c"),
        tg.msg(4, 5000, "Anna", "d"),
        tg.msg(5, 5010, "Me", "e"),
    ]
    path = write("result.json", tg.chat(rows))
    code, _, err = cli(capsys, str(path), "--me", "Me", "--gap", "2h", "--merge", "90s", "--val-fraction", "0")
    assert code == 0, err
    train = (paths.twin_dir("me") / "dataset" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(train) == 3 and '"a"' in train[2] and '"d"' in train[2]
