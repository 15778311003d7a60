"""`twin calibrate`: the reply length fitted by an end bias, and the daemon serving the twin with it (issue 11)."""

from __future__ import annotations

import math
import subprocess
import sys

import openai
import pytest

from daemon.process import DaemonProcess
from tests.eval.conftest import EXCHANGES, conversation
from trainer.evaluation import calibration
from trainer.evaluation.calibration import LIMIT, MAX_ROUNDS, between, fit, needs_check, solve, within
from twin import registry
from twin.consensus import MMI_LENGTHENING
from twin.embedded import MODEL_ID

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def twin_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twin", *args], capture_output=True, text=True, timeout=600)


# --- the fit, on lengths that follow the log-linear law exactly -------------------------------------


def law(bias: float, at_zero: float = 5.0, slope: float = 0.5) -> float:
    return at_zero * math.exp(-slope * bias)


def test_the_bias_is_read_off_the_line_through_two_measured_points():
    # A twin that writes 5 words where I write 10: the bias that doubles the length, from any probe.
    for probe in (-0.5, -1.4, -3.0):
        assert solve(10.0, law(0), probe, law(probe)) == pytest.approx(-math.log(2) / 0.5, abs=1e-3)
    # Too long: a positive bias.
    assert solve(2.5, law(0), 1.0, law(1.0)) == pytest.approx(math.log(2) / 0.5, abs=1e-3)


def test_no_bias_when_close_enough_flat_or_out_of_range():
    assert solve(5.2, 5.0, -1.0, 9.0) == 0.0  # within 10% already
    assert solve(10.0, 5.0, -1.0, 5.05) == 0.0  # the bias does not move the length: it would only distort
    assert solve(10.0, 5.0, -1.0, 4.0) == 0.0  # shorter with a negative bias: not this model of length
    assert solve(1000.0, 5.0, -1.0, law(-1.0)) == -LIMIT


def test_between_reads_the_bias_off_the_two_points_around_my_length():
    points = {0.0: law(0), -1.0: law(-1.0), -3.0: law(-3.0)}  # 5, 8.2, 22.4 words
    assert between(10.0, points) == pytest.approx(-math.log(2) / 0.5, abs=1e-3)  # between -1 and -3
    assert between(30.0, points) == pytest.approx(-math.log(6) / 0.5, abs=1e-3)  # beyond: the two nearest
    assert between(10.0, {0.0: 5.0}) == 0.0
    assert between(1e6, points) == -LIMIT


def test_a_bias_beyond_what_was_measured_is_checked():
    assert needs_check(-3.65, [0.0, -0.67]) and needs_check(2.0, [0.0, 1.0])
    assert not needs_check(-1.0, [0.0, -0.67]) and not needs_check(-0.3, [0.0, -0.67])


def curve(bias: float) -> float:
    """A twin whose length barely moves near bias 0 and fast beyond it (the development twin of round 7: 7.7
    words at 0, 8.3 at -0.67, 25 to 36 at -3.65)."""
    return (
        7.7 * math.exp(0.053 * max(-bias, 0) + 0.088 * max(-bias, 0) ** 2) if bias <= 0 else 7.7 * math.exp(-0.3 * bias)
    )


def test_the_fit_checks_a_far_bias_and_lands_on_my_length():
    asked: list[float] = []

    def replies_at(bias: float) -> list[int]:
        asked.append(bias)
        base = curve(bias)
        return [max(1, round(base * f)) for f in (0.5, 0.8, 1.0, 1.2, 1.5) * 8]

    measured: dict[float, float] = {}
    target = 10.08
    bias = fit(target, replies_at, measured)
    # The line through 0 and the probe alone would extrapolate far (the old result): it is measured, found long.
    line = solve(target, measured[0.0], asked[1], measured[asked[1]])
    assert line < -2.0 and curve(line) > 1.3 * target
    assert asked[2] < -2.0 and len(asked) <= MAX_ROUNDS
    assert within(target, curve(bias)), (bias, curve(bias), measured)
    assert list(measured) == asked


def test_the_fit_stops_at_once_when_the_length_is_right():
    measured: dict[float, float] = {}
    assert fit(10.0, lambda bias: [10] * 16, measured) == 0.0
    assert list(measured) == [0.0]


# --- on the embedded model, through the daemon -------------------------------------------------------


@pytest.fixture
def short_twin(twins):
    """A twin whose replies (in its dataset) are far longer than the embedded model's answers to them."""
    long_reply = " ".join(["word"] * 60)
    twins.dataset("cal", [conversation(q, long_reply) for q, _ in EXCHANGES * 2])
    twins.gguf("cal")
    return "cal"


def test_calibrate_measures_writes_and_the_daemon_serves_the_twin_with_it(short_twin, twin_home):
    result = twin_cli("calibrate", "--name", short_twin, "--samples", "8")
    assert result.returncode == 0, result.stderr
    assert "end bias -" in result.stdout
    decoding = registry.read(short_twin)["decoding"]
    assert decoding["gguf"] == registry.read(short_twin)["model"]["gguf"]
    assert decoding["target_words"] == decoding["aim_words"] == 60  # served one draw a reply: no rerank to allow for
    assert decoding["measured_biases"][0] == 0 and decoding["measured_biases"][1] < 0  # probed towards longer
    assert decoding["measured_words"][1] > decoding["measured_words"][0]
    assert -LIMIT <= decoding["end_bias"] < 0

    # The daemon applies the twin's bias by default; a request's end_bias replaces it; other models have none.
    registry.update(short_twin, "decoding", {**decoding, "end_bias": -100.0})
    with DaemonProcess([], log_path=twin_home / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="-", max_retries=0)
        ask = dict(messages=QUESTION, max_tokens=48, temperature=0)
        assert client.chat.completions.create(model=short_twin, **ask).choices[0].finish_reason == "length"
        plain = client.chat.completions.create(model=short_twin, **ask, extra_body={"end_bias": 0})
        assert plain.choices[0].finish_reason == "stop"
        assert client.chat.completions.create(model=MODEL_ID, **ask).choices[0].finish_reason == "stop"


def test_a_twin_served_reranked_is_fitted_shorter_by_one_draw(short_twin):
    # MMI's pick of several draws is longer than one draw: the rounds (one draw each) aim below my length.
    assert calibration.aim_words(10.0, 1) == 10.0
    assert calibration.aim_words(10.0, 6) == pytest.approx(10.0 / MMI_LENGTHENING)
    registry.update(short_twin, "serve", {"candidates": 6})
    result = twin_cli("calibrate", "--name", short_twin, "--samples", "8")
    assert result.returncode == 0, result.stderr
    decoding = registry.read(short_twin)["decoding"]
    assert decoding["target_words"] == 60
    assert decoding["aim_words"] == pytest.approx(60 / MMI_LENGTHENING, abs=1e-3)
    assert f"one draw aimed at {60 / MMI_LENGTHENING:.1f}" in result.stdout


def test_a_calibration_for_a_replaced_gguf_is_not_applied(short_twin, twin_home):
    registry.update(short_twin, "decoding", {"end_bias": -100.0, "gguf": "model-q4_k_m.gguf"})  # not the twin's
    assert registry.end_bias(short_twin) == 0.0
    with DaemonProcess([], log_path=twin_home / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="-", max_retries=0)
        reply = client.chat.completions.create(model=short_twin, messages=QUESTION, max_tokens=48, temperature=0)
        assert reply.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--name", "nosuch"], "no twin named 'nosuch'"),
        (["--name", "cal", "--samples", "3"], "--samples must be at least 8"),
    ],
)
def test_bad_calibrate_input_is_one_line_and_exit_2(short_twin, args, says):
    before = registry.read(short_twin)
    result = twin_cli("calibrate", *args)
    assert result.returncode == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert registry.read(short_twin) == before  # nothing written


def test_calibrate_without_a_gguf_says_convert_first(twins):
    twins.exchanges("raw")
    result = twin_cli("calibrate", "--name", "raw")
    assert result.returncode == 2 and "twin convert --name raw" in result.stderr
    assert "decoding" not in registry.read("raw")


def test_a_broken_end_bias_in_twin_toml_names_the_fix(short_twin):
    registry.update(short_twin, "decoding", {"end_bias": "long", "gguf": "model-q4_1.gguf"})
    with pytest.raises(Exception, match="twin calibrate --name cal"):
        registry.end_bias(short_twin)


def test_mean_words_counts_as_the_style_features_do():
    from trainer.evaluation.collapse import measure
    from trainer.style import feature_values, mean_words

    replies = ["да ничего, сижу)", "yep, after 8 🔥", "ok"]  # 3, 3 (the emoji is no word; the digit is) and 1
    assert mean_words(replies) == pytest.approx(7 / 3)
    assert measure(replies, replies).words == pytest.approx(7 / 3)
    assert [feature_values(replies)["words"]] == [[3.0, 3.0, 1.0]]


def test_the_slope_comes_from_each_context_s_own_pair_of_replies():
    # Every reply twice as long: a factor of 2, whatever the mix of short and long ones.
    assert calibration.paired_ratio([1, 3, 40], [2, 6, 80]) == pytest.approx(2.0)
    # One long reply cut short moves the means' ratio far below the typical factor; the pairs hardly notice.
    before, after = [2, 3, 4, 5, 60] * 4, [4, 6, 8, 10, 20] * 4
    assert sum(after) / sum(before) < 0.7
    assert calibration.paired_ratio(before, after) > 1.2
    assert calibration.paired_ratio([0, 2], [0, 2]) == pytest.approx(1.0)  # an empty reply counts as one word
