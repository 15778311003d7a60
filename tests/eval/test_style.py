"""Style features and the distance between generated and real replies."""

from __future__ import annotations

import pytest

from trainer.evaluation.style import compare_style, smd, style_means, vocabulary_overlap
from trainer.style import feature_values


def test_features_of_known_replies() -> None:
    values = feature_values(["Привет! Как дела?", "норм))) 🔥👌"])
    assert values["words"] == [3.0, 1.0]
    assert values["emoji"] == [0.0, 2.0]
    assert values["starts_upper"] == [1.0, 0.0]
    assert values["capitals"][0] == pytest.approx(2 / 13)
    assert values["punctuation"][1] == pytest.approx(3 / len("норм))) 🔥👌"))
    assert feature_values(["Да.", "Ну...", "нет"])["full_stop"] == [1.0, 0.0, 0.0]


def test_the_same_replies_are_at_distance_zero() -> None:
    replies = ["норм)", "го 🔥", "Ну такое."]
    result = compare_style(replies, replies)
    assert result.distance == 0
    assert result.vocabulary_overlap == 1
    assert result.means == style_means(replies)


def test_formal_replies_are_farther_from_mine_than_casual_ones() -> None:
    mine = ["норм)", "го 🔥", "щас буду", "ну такое)))"]
    casual = ["норм 🔥", "го)", "ну щас", "такое)"]
    formal = ["Здравствуйте! Я сейчас занят.", "Хорошо, договорились.", "Спасибо за информацию.", "Буду через час."]
    assert compare_style(casual, mine).distance < compare_style(formal, mine).distance
    assert vocabulary_overlap(casual, mine) > vocabulary_overlap(formal, mine)


def test_standardized_mean_difference() -> None:
    assert smd([1.0, 1.0], [1.0, 1.0]) == 0
    assert smd([0.0, 2.0], [0.0, 2.0]) == 0
    # means 3 and 1; pooled sample std of [2, 4, 0, 2] is sqrt(8/3)
    assert smd([2.0, 4.0], [0.0, 2.0]) == pytest.approx(2 / (8 / 3) ** 0.5)


def test_one_ending_rule_for_every_report() -> None:
    """trainer.style.ending is what stats.json, the persona and the full_stop feature all read."""
    from trainer.style import ending, first_letter

    cases = {"Да.": ".", "Ну...": "...", "ну..": "...", "ок…": "...", "норм)))": ")", "эх(": "(", "Ок. 👍": "emoji"}
    cases |= {"го!": "!", "где?": "?", "щас буду": "no mark", "": "no mark"}
    assert {text: ending(text) for text in cases} == cases
    assert [first_letter(t) for t in ("👍 ok", "12 Ок", "!!!")] == ["o", "О", ""]
