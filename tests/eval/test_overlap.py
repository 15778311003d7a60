"""ROUGE-L and chrF on replies in any script: Russian scores like English, identical replies score 1."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.evaluation.overlap import overlap, rouge_l_scores
from trainer.style import tokens, words


def test_rouge_score_default_tokenizer_drops_cyrillic() -> None:
    """Why the project brings its own tokenizer: with the default one two Russian replies always score 0."""
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rougeL"])
    assert default.score("ну да, сижу дома", "ну да, сижу дома")["rougeL"].fmeasure == 0


def test_cyrillic_pair_with_shared_words_scores_above_zero() -> None:
    result = overlap(["да ничего, сижу дома"], ["ничего особенного, сижу на работе"])
    assert 0 < result.rouge_l < 1
    assert 0 < result.chrf < 1
    # "ничего", "сижу" in order: LCS 2 of 4 and 5 words
    assert result.rouge_l == pytest.approx(2 * (2 / 4) * (2 / 5) / (2 / 4 + 2 / 5))


def test_identical_pair_scores_one() -> None:
    text = "го, только не на ужастик))) 🔥"
    result = overlap([text], [text])
    assert result.rouge_l == 1.0
    assert result.chrf == pytest.approx(1.0)


def test_unrelated_replies_score_zero() -> None:
    result = overlap(["привет"], ["yes"])
    assert result.rouge_l == 0.0
    assert result.chrf_each == [0.0]


def test_tokens_keep_every_script_and_emoji_lowercased() -> None:
    assert tokens("Ну ДА, don’t 🔥👌 Ελλάδα 東京 v2") == ["ну", "да", "don’t", "🔥", "👌", "ελλάδα", "東京", "v2"]
    assert words("Ну ДА, don’t 🔥👌 Ελλάδα 東京 v2") == ["ну", "да", "don’t", "ελλάδα", "東京", "v2"]
    assert tokens("ok 👍🏽 🇷🇺 👨\u200d👩\u200d👧") == ["ok", "👍🏽", "🇷🇺", "👨\u200d👩\u200d👧"]  # one emoji each
    assert rouge_l_scores(["🔥"], ["👌"]) == [0.0]


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="2 generated replies for 1 real ones"):
        overlap(["a", "b"], ["a"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=40), st.text(min_size=1, max_size=40)), min_size=1, max_size=5))
def test_scores_stay_in_unit_interval(pairs: list[tuple[str, str]]) -> None:
    result = overlap([g for g, _ in pairs], [r for _, r in pairs])
    assert 0.0 <= result.rouge_l <= 1.0
    assert 0.0 <= result.chrf <= 1.0 + 1e-9
    assert all(0.0 <= x <= 1.0 + 1e-9 for x in result.rouge_l_each + result.chrf_each)


def test_replies_are_cleaned_the_same_way_for_every_backend() -> None:
    from trainer.evaluation.generation import clean_reply

    assert clean_reply("  норм 🔥\nUser: а ты?\nBot: я") == "норм 🔥"
    assert clean_reply("ну да, ёжкин \ufffd") == "ну да, ёжкин"
    assert clean_reply("line one\nline two") == "line one\nline two"
