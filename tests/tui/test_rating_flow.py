"""`twin chat --rate` against a real daemon serving a built twin: the rounds shown, and the rows stored."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime

from tui.rate_app import RateApp
from tui.rating import load_samples
from tui.rating_screen import CandidateCard, RatingScreen
from twin.config import ChatSettings

SCORES = ["4", "2", "5"]  # given to replies A, B, C in the order shown


def round_ready(app: RateApp) -> bool:
    """The round is on screen with every reply written (or known to be missing)."""
    screen = app.screen
    if not isinstance(screen, RatingScreen) or screen.round is None:
        return False
    cards = list(screen.query(CandidateCard))
    bodies = [str(card.query_one(".body").render()) for card in cards if card.is_mounted]
    return len(bodies) == len(screen.round.candidates) and all(b and b != "(being written…)" for b in bodies)


async def test_rating_stores_one_row_per_reply_with_the_best_marked(built_twin, own_daemon, wait_for, quick) -> None:
    daemon = own_daemon()  # TWIN_HOME is this test's: it serves alice and alice-prompt
    samples = {s.line: s for s in load_samples(built_twin)}
    app = RateApp(ChatSettings(url=daemon.url), built_twin, sampling=quick, rng=random.Random(5))
    shown = []
    async with app.run_test(size=(100, 40)) as pilot:
        for _ in samples:
            await wait_for(pilot, lambda: round_ready(app), "a round's replies")
            screen = app.screen
            rnd = screen.round
            shown.append(rnd)
            cards = list(screen.query(CandidateCard))
            assert sorted(c.variant for c in rnd.candidates) == ["prompt", "real", "twin"]
            assert all(c.ready for c in rnd.candidates)
            assert [str(card.query_one(".title").render()) for card in cards] == ["Reply A", "Reply B", "Reply C"]
            assert next(c for c in rnd.candidates if c.variant == "real").text == samples[rnd.sample.line].real

            await pilot.press("enter")  # nothing scored yet: refused
            assert app.screen is screen
            for key in SCORES:  # scoring moves on to the next unscored reply
                await pilot.press(key)
            await pilot.press("up", "b", "enter")  # C is selected after the last score: B is the best
        await wait_for(pilot, lambda: "nothing left to rate" in str(app.query_one("#done").render()), "the end")

    db = sqlite3.connect(app.db_path)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM ratings ORDER BY id")]
    assert len(rows) == 6
    for rnd in shown:
        mine = sorted((r for r in rows if r["round_id"] == rnd.id), key=lambda r: r["position"])
        assert [r["variant"] for r in mine] == [c.variant for c in rnd.candidates]
        assert [r["score"] for r in mine] == [int(s) for s in SCORES]
        assert [r["best"] for r in mine] == [0, 1, 0]
        assert {r["sample_id"] for r in mine} == {rnd.sample.line}
        assert {r["sample_sha256"] for r in mine} == {rnd.sample.sha256}
        assert {r["twin"] for r in mine} == {"alice"}
        by_variant = {r["variant"]: r for r in mine}
        assert by_variant["twin"]["model"] == "alice" and by_variant["prompt"]["model"] == "alice-prompt"
        assert by_variant["real"]["model"] == "" and by_variant["real"]["reply"] == rnd.sample.real
        assert json.loads(by_variant["twin"]["decoding"])["max_tokens"] == quick.max_tokens
        assert all(datetime.fromisoformat(r["rated_at"]).tzinfo is not None for r in mine)
    assert {r.sample.line for r in shown} == set(samples)

    again = RateApp(ChatSettings(url=daemon.url), built_twin, sampling=quick)
    assert again.todo == []  # rated samples are not asked again
    again.db.close()


async def test_a_variant_the_daemon_does_not_serve_is_shown_missing(built_twin, daemon, wait_for, quick) -> None:
    # The session daemon has its own TWIN_HOME: it serves neither alice nor alice-prompt.
    app = RateApp(ChatSettings(url=daemon.url), built_twin, sampling=quick, rng=random.Random(1))
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: round_ready(app), "the round")
        screen = app.screen
        rnd = screen.round
        missing = [c for c in rnd.candidates if c.missing]
        assert sorted(c.variant for c in missing) == ["prompt", "twin"]
        bodies = [str(card.query_one(".body").render()) for card in screen.query(CandidateCard)]
        assert sum("not available: the daemon does not serve the model" in b for b in bodies) == 2
        real = next(i for i, c in enumerate(rnd.candidates) if c.variant == "real")
        missing_index = next(i for i, c in enumerate(rnd.candidates) if c.missing)
        list(screen.query(CandidateCard))[missing_index].focus()
        await pilot.press("3", "b")  # not rateable: nothing happens to it
        assert all(c.score is None and not c.best for c in missing)
        list(screen.query(CandidateCard))[real].focus()
        await pilot.press("3", "b", "enter")
        await wait_for(pilot, lambda: app.saved == 1, "the save")
        rows = app.db.execute("SELECT variant, score, best FROM ratings").fetchall()
        assert [tuple(r) for r in rows] == [("real", 3, 1)]
        await pilot.press("s")  # skip the second sample: nothing stored
        await wait_for(pilot, lambda: "nothing left to rate" in str(app.query_one("#done").render()), "the end")
        assert app.db.execute("SELECT count(*) FROM ratings").fetchone()[0] == 1
