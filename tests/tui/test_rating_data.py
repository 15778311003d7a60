"""Validation samples for rating: read from val.jsonl, malformed lines named, rounds shuffled and stored."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tui import database
from tui.rating import load_samples, new_round, pick_twin, rated, save_round, val_path
from twin.errors import UserError


def test_samples_are_context_and_real_reply(built_twin: str) -> None:
    samples = load_samples(built_twin)
    assert [s.line for s in samples] == [1, 2]
    assert samples[1].context[-1] == {"role": "user", "content": "тоже норм"}
    assert samples[1].real == "ну и отлично 🙂"
    assert len({s.sha256 for s in samples}) == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", r"val\.jsonl:3: not valid JSON"),
        (
            '{"messages": [{"role": "user", "content": "only one"}]}',
            r"val\.jsonl:3: the last message must be my non-empty reply",
        ),
        (
            '{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}',
            r"val\.jsonl:3: the last message",
        ),
        ('{"messages": [{"role": "user"}, {"role": "assistant", "content": "b"}]}', r"val\.jsonl:3: expected"),
    ],
)
def test_a_malformed_line_is_named(built_twin: str, line: str, message: str) -> None:
    path = val_path(built_twin)
    path.write_text(path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=message):
        load_samples(built_twin)


def test_an_empty_split_says_how_to_get_samples(built_twin: str) -> None:
    val_path(built_twin).write_text("\n", encoding="utf-8")
    with pytest.raises(UserError, match="holds no samples: rebuild the dataset"):
        load_samples(built_twin)


def test_pick_twin(built_twin: str, twin_home: Path) -> None:
    assert pick_twin(None) == built_twin
    with pytest.raises(UserError, match=r"twin 'bob' has no validation split .*\(twins with one: alice\)"):
        pick_twin("bob")
    other = val_path("bob")
    other.parent.mkdir(parents=True)
    other.write_text(val_path(built_twin).read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UserError, match=r"several twins have a validation split \(alice, bob\): pick one with --name"):
        pick_twin(None)


def test_no_twin_at_all(twin_home: Path) -> None:
    with pytest.raises(UserError, match=r"no twin with a validation split .* `twin ingest EXPORT` first"):
        pick_twin(None)


def test_round_marks_unserved_variants_missing_and_shuffles(built_twin: str) -> None:
    sample = load_samples(built_twin)[0]
    orders = set()
    for seed in range(12):
        rnd = new_round(built_twin, sample, {"alice"}, random.Random(seed))
        orders.add(tuple(c.variant for c in rnd.candidates))
        by_variant = {c.variant: c for c in rnd.candidates}
        assert by_variant["real"].text == sample.real and by_variant["real"].ready
        assert (
            by_variant["twin"].model == "alice" and by_variant["twin"].text is None and not by_variant["twin"].missing
        )
        assert "does not serve the model 'alice-prompt'" in by_variant["prompt"].missing
    assert len(orders) > 1


def test_save_round_refuses_an_incomplete_round_and_stores_one_row_per_rated_reply(built_twin: str) -> None:
    db = database.connect()
    sample = load_samples(built_twin)[1]
    rnd = new_round(built_twin, sample, {"alice", "alice-prompt"}, random.Random(0))
    assert rnd.problem() == "wait until every reply is written"
    for c in rnd.candidates:
        if c.text is None:
            c.text = f"written by {c.model}"
    assert rnd.problem().startswith("score reply A, B, C")
    for score, c in enumerate(rnd.candidates, start=2):
        c.score = score
    assert rnd.problem() == "mark the reply most like you (key b)"
    with pytest.raises(ValueError):
        save_round(db, rnd, "{}")
    rnd.candidates[1].best = True
    assert save_round(db, rnd, json.dumps({"max_tokens": 8})) == 3
    rows = [dict(r) for r in db.execute("SELECT * FROM ratings ORDER BY position")]
    assert [r["variant"] for r in rows] == [c.variant for c in rnd.candidates]
    assert [r["score"] for r in rows] == [2, 3, 4]
    assert [r["best"] for r in rows] == [0, 1, 0]
    assert {r["sample_id"] for r in rows} == {2} and {r["twin"] for r in rows} == {"alice"}
    assert all(r["decoding"] == ("{}" if r["variant"] == "real" else '{"max_tokens": 8}') for r in rows)
    assert rated(db, built_twin) == {(2, sample.sha256)}
