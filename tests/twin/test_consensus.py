"""Consensus decoding's choice on crafted candidates: the reply the others agree with, not the stray or the longest."""

from __future__ import annotations

import pytest

from twin.consensus import pick


def test_the_candidate_closest_to_the_others_is_picked() -> None:
    candidates = [
        "the zebra flew over a purple microwave",
        "we could meet at the station at seven",
        "meet me at the station at seven then",
        "let us meet at the station around seven",
    ]
    assert pick(candidates) in (1, 2, 3)
    assert pick(candidates[1:] + candidates[:1]) in (0, 1, 2)


def test_a_longer_reply_that_holds_the_others_is_not_preferred_for_its_length() -> None:
    from sacrebleu.metrics import CHRF

    short = ["sure, see you at seven", "sure, at seven", "see you at seven then"]
    longer = "sure, see you at seven then, sure, at seven, and then we can talk about the car"
    candidates = [longer, *short]
    # chrF at β = 2 (what `twin eval` reports) weights recall: there the longer reply would be the consensus
    recall = CHRF()
    summed = [sum(recall.sentence_score(h, [o]).score for o in candidates if o is not h) for h in candidates]
    assert max(range(4), key=summed.__getitem__) == 0
    assert pick(candidates) != 0


def test_one_candidate_and_ties_keep_the_first_draw() -> None:
    assert pick(["only one"]) == 0
    assert pick(["same", "same", "same"]) == 0


def test_mmi_prefers_the_reply_likely_here_over_the_one_likely_anywhere() -> None:
    from twin.consensus import pick_mmi

    # log p(r | context), log p(r | bare context): a stock line is likely in both, the fitting reply only here
    given = [-4.0, -9.0, -7.0]  # "oh, im sorry.", the fitting reply, a stray line
    bare = [-3.0, -20.0, -7.5]
    assert pick_mmi(given, bare) == 1  # its information: 11 nats, against -1 and 0.5
    assert pick_mmi(given, bare, weight=0.0) == 0  # without the bare term: the likeliest, the stock line
    assert pick_mmi([-5.0, -5.0], [-6.0, -6.0]) == 0  # a tie: the first
    with pytest.raises(ValueError, match="one bare score per candidate"):
        pick_mmi([-1.0, -2.0], [-1.0])


def test_the_bare_context_keeps_who_the_twin_is_and_to_whom_and_drops_the_conversation() -> None:
    from twin.consensus import BARE_MESSAGE, bare_context

    messages = [
        {"role": "system", "content": "Chat: Family (group). Replying to Mom."},
        {"role": "user", "content": "are you coming sunday?"},
        {"role": "assistant", "content": "yes"},
        {"role": "user", "content": "bring the cake"},
    ]
    bare = bare_context(messages)
    assert bare == [messages[0], {"role": "user", "content": BARE_MESSAGE}]
    assert bare_context(messages[1:]) == [{"role": "user", "content": BARE_MESSAGE}]
    bare[0]["content"] = "changed"
    assert messages[0]["content"].startswith("Chat: Family")  # copies, not the caller's dicts
