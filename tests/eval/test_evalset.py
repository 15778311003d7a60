"""Which validation samples an evaluation uses, and how much context each variant gets."""

from __future__ import annotations

import hashlib

from trainer.evaluation.evalset import line_hashes, load_samples, trim_context, val_path


def test_samples_are_spread_over_the_file_with_their_line_numbers(twins) -> None:
    pairs = [(f"вопрос {i}", f"ответ {i}") for i in range(10)]
    twins.exchanges("dima", pairs)
    path = val_path("dima")
    path.write_text(path.read_text(encoding="utf-8").replace("\n", "\n\n", 1), encoding="utf-8")  # a blank line 2

    every = load_samples("dima", limit=100, max_context_chars=2000)
    assert [s.line for s in every] == [1, *range(3, 12)]
    assert every[0].context == [{"role": "user", "content": "вопрос 0"}] and every[0].real == "ответ 0"
    assert [s.real for s in load_samples("dima", limit=4, max_context_chars=2000)] == [
        "ответ 0",
        "ответ 2",
        "ответ 5",
        "ответ 7",
    ]


def test_line_hashes_match_the_rating_mode(dataset_twin: str) -> None:
    lines = val_path(dataset_twin).read_text(encoding="utf-8").splitlines()
    hashes = line_hashes(val_path(dataset_twin))
    assert hashes[2] == hashlib.sha256(lines[1].strip().encode("utf-8")).hexdigest() and len(hashes) == 6


def test_context_keeps_the_newest_messages_within_the_budget() -> None:
    context = [
        {"role": "user", "content": "a" * 50},
        {"role": "assistant", "content": "b" * 30},
        {"role": "user", "content": "c" * 30},
    ]
    assert trim_context(context, 100) == context[1:]
    assert trim_context(context, 110) == context
    assert trim_context(context, 10) == [{"role": "user", "content": "c" * 10}]  # the newest one is kept, its end
