"""The rating mode's rows in chat.db, written by the TUI's own code, summed up per variant."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from trainer.evaluation.evalset import line_hashes, val_path
from trainer.evaluation.ratings import summarize
from tui import database
from tui.rating import Candidate, Round, load_samples, save_round


def rate(db, name: str, sample, scores: dict[str, int], best: str) -> None:
    """One round as the rating screen stores it: candidates shuffled, each scored, one marked best."""
    candidates = [
        Candidate(v, "" if v == "real" else (name if v == "twin" else f"{name}-prompt"), text=f"{v} reply")
        for v in scores
    ]
    random.Random(sample.line).shuffle(candidates)
    for c in candidates:
        c.score, c.best = scores[c.variant], c.variant == best
    save_round(db, Round(name, sample, candidates), '{"temperature": 0.7}')


def test_summary_per_variant(dataset_twin: str) -> None:
    samples = load_samples(dataset_twin)
    db = database.connect()
    rate(db, dataset_twin, samples[0], {"twin": 4, "prompt": 2, "real": 4}, best="real")
    rate(db, dataset_twin, samples[1], {"twin": 5, "prompt": 3, "real": 4}, best="twin")
    rate(db, dataset_twin, samples[2], {"twin": 2, "real": 5}, best="real")  # the persona variant was not served
    rate(db, "someone-else", samples[3], {"twin": 1, "real": 1}, best="real")
    db.close()

    summary = summarize(dataset_twin, line_hashes(val_path(dataset_twin)))
    by = {v.variant: v for v in summary.variants}
    assert summary.rounds == 3 and summary.stale == 0 and summary.note == ""
    assert by["twin"].ratings == 3 and by["twin"].mean_score == pytest.approx(11 / 3)
    assert by["twin"].best_share == pytest.approx(1 / 3)
    assert by["twin"].at_least_real_share == pytest.approx(2 / 3)  # 4>=4, 5>=4, 2<5
    assert by["prompt"].ratings == 2 and by["prompt"].mean_score == 2.5 and by["prompt"].at_least_real_share == 0
    assert by["real"].best_share == pytest.approx(2 / 3) and by["real"].at_least_real_share is None


def test_ratings_of_a_rebuilt_dataset_are_left_out(dataset_twin: str) -> None:
    samples = load_samples(dataset_twin)
    db = database.connect()
    rate(db, dataset_twin, samples[0], {"twin": 4, "real": 4}, best="real")
    rate(db, dataset_twin, samples[1], {"twin": 1, "real": 5}, best="real")
    db.close()
    path = val_path(dataset_twin)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace("сижу", "лежу")  # line 1 changed since it was rated
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    summary = summarize(dataset_twin, line_hashes(path))
    assert summary.rounds == 1 and summary.stale == 2
    assert [(v.variant, v.mean_score) for v in summary.variants] == [("twin", 1.0), ("real", 5.0)]


def test_no_database_says_how_to_rate(dataset_twin: str, twin_home: Path) -> None:
    summary = summarize(dataset_twin, line_hashes(val_path(dataset_twin)))
    assert summary.variants == [] and summary.note == "no ratings yet: rate replies with `twin chat --rate --name dima`"
    assert not (twin_home / "chat.db").exists()  # reading never creates the TUI's file


def test_an_unreadable_database_is_a_note_not_a_crash(dataset_twin: str, twin_home: Path) -> None:
    (twin_home / "chat.db").write_bytes(b"not a database at all" * 100)
    summary = summarize(dataset_twin, line_hashes(val_path(dataset_twin)))
    assert summary.variants == [] and "ratings left out" in summary.note


def test_friends_survey_rounds_are_summed_apart_from_mine(dataset_twin: str) -> None:
    samples = load_samples(dataset_twin)
    db = database.connect()
    rate(db, dataset_twin, samples[0], {"twin": 4, "real": 4}, best="real")  # mine (`twin chat --rate`)
    for rater, best in (("telegram:1", "real"), ("telegram:1", "twin"), ("telegram:2", "twin")):
        candidates = [Candidate(v, "" if v == "real" else dataset_twin, text=f"{v} reply") for v in ("twin", "real")]
        for c in candidates:
            c.score, c.best = 3, c.variant == best
        save_round(db, Round(dataset_twin, samples[1], candidates, rater=rater), "{}")
    db.close()

    summary = summarize(dataset_twin, line_hashes(val_path(dataset_twin)))
    assert summary.rounds == 1 and summary.share("real") == 1.0  # mine alone
    friends = summary.friends
    assert friends.rounds == 3 and friends.raters == 2 and friends.chance == 0.5
    assert friends.share("real") == pytest.approx(1 / 3) and friends.share("twin") == pytest.approx(2 / 3)
    assert summary.as_dict()["friends"]["raters"] == 2
