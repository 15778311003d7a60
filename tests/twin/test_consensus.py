"""Consensus decoding's choice on crafted candidates: the reply the others agree with, not the stray or the longest."""

from __future__ import annotations

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
