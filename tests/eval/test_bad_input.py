"""`twin eval` mistakes: one line naming the problem and the fix, exit code 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twin import registry
from twin.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", *argv])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def one_line(err: str, start: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith(start), err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for option in ("--name", "--limit", "--compare", "--temperature", "--repetition-penalty", "--url"):
        assert option in out


def test_no_twin_at_all(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 2 and out == ""
    one_line(err, "twin: error: no twin with a validation split under ")
    assert "build one with `twin ingest EXPORT` first" in err


def test_a_twin_without_a_dataset(capsys: pytest.CaptureFixture[str], twin_home: Path) -> None:
    registry.update("bob", "persona", {"file": "persona.json", "base": "default"})
    code, out, err = run(capsys, "--name", "bob")
    assert code == 2 and out == ""
    one_line(err, "twin: error: twin 'bob' has no dataset (")
    assert err.rstrip().endswith("build it with `twin ingest EXPORT --name bob`")
    assert not (twin_home / "twins" / "bob" / "eval").exists()


def test_an_unknown_twin(capsys: pytest.CaptureFixture[str], dataset_twin: str) -> None:
    code, _, err = run(capsys, "--name", "nobody")
    assert code == 2
    one_line(err, "twin: error: no twin named 'nobody' (twins: ")


def test_a_twin_with_nothing_to_measure_lists_the_commands(
    capsys: pytest.CaptureFixture[str], dataset_twin: str, twin_home: Path
) -> None:
    code, out, err = run(capsys, "--name", dataset_twin)
    assert code == 2 and out == ""
    one_line(err, "twin: error: twin 'dima' has nothing to evaluate yet: ")
    for command in ("`twin persona --name dima`", "`twin train --name dima`", "`twin convert --name dima`"):
        assert command in err
    assert not (twin_home / "twins" / "dima" / "eval").exists()


def test_compare_with_a_missing_twin(
    capsys: pytest.CaptureFixture[str], dataset_twin: str, twins, twin_home: Path
) -> None:
    twins.gguf(dataset_twin)  # the twin that exists could be measured
    code, out, err = run(capsys, "--compare", dataset_twin, "ghost")
    assert code == 2 and out == ""
    one_line(err, "twin: error: ")
    assert "'ghost'" in err and "twin ingest EXPORT --name ghost" in err
    assert not (twin_home / "twins" / "dima" / "eval").exists()  # nothing ran for the twin that exists
    assert not (twin_home / "comparisons").exists()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--compare", "dima", "dima"], "twin: error: --compare needs two different twins, got 'dima' twice"),
        (["--compare", "dima"], "twin: error: Option '--compare' requires 2 arguments"),
        (["--name", "dima", "--compare", "a", "b"], "twin: error: use either --name or --compare A B, not both"),
        (["--limit", "0"], "twin: error: --limit must be between 1 and 100000, got 0"),
        (["--temperature", "3"], "twin: error: --temperature must be between 0 (greedy) and 2, got 3.0"),
        (["--repetition-penalty", "0"], "twin: error: --repetition-penalty must be above 0"),
        (["--candidates", "0"], "twin: error: --candidates must be between 1 (one draw) and 8, got 0"),
        (["--candidates", "9"], "twin: error: --candidates must be between 1 (one draw) and 8, got 9"),
        (["--rerank", "best"], "twin: error: --rerank must be one of mmi, consensus, got 'best'"),
        (["--name", "../x"], "twin: error: invalid twin name '../x'"),
        (["--url", "ftp://x"], "twin: error: setting url must start with http:// or https://"),
    ],
)
def test_bad_options(capsys: pytest.CaptureFixture[str], dataset_twin: str, argv: list[str], line: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    one_line(err, line)


def test_a_malformed_validation_line_is_named(
    capsys: pytest.CaptureFixture[str], dataset_twin: str, twin_home: Path
) -> None:
    folder = twin_home / "twins" / dataset_twin / "dataset"
    with open(folder / "val.jsonl", "a", encoding="utf-8") as f:
        f.write(
            json.dumps({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}) + "\n"
        )
    code, _, err = run(capsys, "--name", "dima")
    assert code == 2
    one_line(err, f"twin: error: {folder / 'val.jsonl'}:7: the last message must be my non-empty reply")


def test_an_empty_validation_split(capsys: pytest.CaptureFixture[str], twins) -> None:
    folder = twins.dataset("dima", [])
    code, _, err = run(capsys, "--name", "dima")
    assert code == 2
    one_line(err, f"twin: error: {folder / 'val.jsonl'} holds no samples: ingest more chat history")
