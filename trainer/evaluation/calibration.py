"""`twin calibrate`: a bias on the end-of-reply tokens so the served twin's replies are as long as mine.

A small model fine-tuned on chat replies ends them early: on the development
corpus (George, 150 validation samples, the chat default) the trained twin
wrote 6.1 words a reply where George wrote 9.6, and its replies' style and
overlap suffered with it. Adding a bias to the end tokens' logits moves the
length smoothly; the mean words fell on a line in log space (bias 0, -1, -2:
6.05, 8.95, 13.6 words, the log rising 0.39 and 0.42 per unit), so two
measured rounds place the bias that gives my mean length:

1. replies to validation contexts at bias 0 (the chat default, seeded);
2. if they are more than 10% off my replies' mean length, again at the bias
   the corpus's slope (PRIOR_SLOPE) predicts, so the probe lands near the
   answer and the line's error there is small;
3. the bias read off the line through both, within ±4. The slope comes from
   each context's two replies (their length ratio, averaged in log space): a
   first version took it from the two means, and on one twin a few long
   replies made it 0.11 where the true slope was 0.45, and the bias −3.5;
4. where that bias lies more than VERIFY_GAP beyond the biases measured, it
   is measured too, and the bias is read again between the two measured
   points on either side of my length (at most MAX_ROUNDS rounds in all).
   The line is only a line near bias 0: on one twin the probe at −0.67 moved
   the length from 7.7 to 8.3 words (slope 0.07), the line put the bias at
   −3.65, and there the twin wrote 25 to 36 words where I write 10.

"My length" is the mean of my validation replies: with `--split time` the
newest sessions, the way I write now (on the development corpus 10.1 words,
where the older training replies average 10.6).

A twin served with several candidates reranked by MMI (twin.toml `[serve] candidates`, 6 after `twin build`)
writes longer replies than one draw: the stock lines it drops are short. Measuring the served decoding would
cost six times the decoding, so the rounds measure one draw a context and aim at my length divided by
twin.consensus.MMI_LENGTHENING (on the development corpus an aim of 8.1 words for my 10.1).

The replies come from the daemon, as a user gets them; the result goes to
twin.toml `[decoding]` with the GGUF it was measured on, and the daemon
applies it to that GGUF by default (a request's `end_bias` overrides it).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trainer.evaluation.generation import CHAT_DEFAULT, Decoding, daemon_generate
from trainer.style import mean_words, words
from twin import dataset, registry
from twin.errors import UserError

SAMPLES = 64  # validation contexts per round: the mean length to about ±12% (replies vary widely)
TOLERANCE = 0.10  # within this of my length already: no bias
PRIOR_SLOPE = 0.4  # log words per unit of negative bias measured on the development corpus: where to probe
LIMIT = 4.0  # the bias stays within ±LIMIT (e^4: odds of ending ×55 or ÷55)
MIN_SLOPE = 0.05  # log words per unit bias below which the bias does not move the length: keep 0
VERIFY_GAP = 0.5  # a bias this far beyond every measured one is measured before it is kept
MAX_ROUNDS = 4  # rounds of replies at most (bias 0, the probe, and two checks)


@dataclass(frozen=True)
class Calibration:
    end_bias: float
    target_words: float  # my validation replies' mean
    aim_words: float  # what one draw is fitted to: target_words, shorter for a twin served reranked (aim_words())
    measured: dict[float, float]  # bias -> the mean words of the replies at that bias
    samples: int
    gguf: str


def within(target: float, words: float) -> bool:
    """Whether `words` a reply is within TOLERANCE of `target` (or there is nothing to compare)."""
    return target <= 0 or words <= 0 or abs(math.log(target / words)) <= math.log1p(TOLERANCE)


def paired_ratio(before: Sequence[int], after: Sequence[int]) -> float:
    """The typical factor by which each reply's length changed (geometric mean; an empty reply counts as 1 word)."""
    pairs = list(zip(before, after, strict=True))
    return math.exp(sum(math.log(max(a, 1) / max(b, 1)) for b, a in pairs) / len(pairs)) if pairs else 1.0


def solve(target: float, at_zero: float, probe: float, at_probe: float) -> float:
    """The bias whose mean length is `target`, on the log-linear line through (0, at_zero) and (probe, at_probe)."""
    if within(target, at_zero) or at_probe <= 0:
        return 0.0
    gap = math.log(target / at_zero)
    slope = -math.log(at_probe / at_zero) / probe  # log words gained per unit of negative bias
    if slope < MIN_SLOPE:
        return 0.0
    return round(max(-LIMIT, min(LIMIT, -gap / slope)), 3)


def between(target: float, points: dict[float, float]) -> float:
    """The bias for `target` words on the log-linear line through the two measured points (bias -> words) that
    lie on either side of it, or the two nearest to it when all lie on one side; within ±LIMIT."""
    if len(points) < 2 or target <= 0:
        return 0.0
    by_words = sorted(points.items(), key=lambda p: p[1])
    below = [p for p in by_words if p[1] <= target]
    above = [p for p in by_words if p[1] > target]
    if below and above:
        (b0, w0), (b1, w1) = below[-1], above[0]
    else:
        (b0, w0), (b1, w1) = sorted(by_words, key=lambda p: abs(math.log(max(p[1], 1e-3) / target)))[:2]
    if w0 <= 0 or w1 <= 0 or w0 == w1 or b0 == b1:
        return round(b0, 3)
    slope = math.log(w1 / w0) / (b1 - b0)  # log words per unit of bias
    return round(max(-LIMIT, min(LIMIT, b0 + math.log(target / w0) / slope)), 3)


def needs_check(bias: float, measured: Sequence[float]) -> bool:
    """Whether `bias` lies more than VERIFY_GAP beyond the range of the measured biases."""
    return bias < min(measured) - VERIFY_GAP or bias > max(measured) + VERIFY_GAP


def fit(target: float, replies_at: Callable[[float], list[int]], measured: dict[float, float]) -> float:
    """The end bias for `target` words a reply; `replies_at(bias)` gives each context's reply length (in words)
    at that bias, the same contexts and seeds every round; `measured` gets each round's mean (bias -> words)."""
    lengths: dict[float, list[int]] = {}

    def round_at(bias: float) -> float:
        lengths[bias] = replies_at(bias)
        measured[bias] = round(sum(lengths[bias]) / max(len(lengths[bias]), 1), 3)
        return measured[bias]

    at_zero = round_at(0.0)
    if within(target, at_zero):
        return 0.0
    probe = round(max(-LIMIT, min(LIMIT, -math.log(target / at_zero) / PRIOR_SLOPE)), 2)
    round_at(probe)
    # The slope from each context's own two replies (the same seed at both biases): a few long replies
    # move a mean of 64 by more than the bias does, their ratios far less.
    bias = solve(target, at_zero, probe, at_zero * paired_ratio(lengths[0.0], lengths[probe]))
    while bias != 0.0 and len(measured) < MAX_ROUNDS and needs_check(bias, list(measured)):
        if within(target, round_at(bias)):
            break
        # Each point as its contexts' paired change from bias 0 (as the probe's slope above).
        bias = between(target, {b: at_zero * paired_ratio(lengths[0.0], lengths[b]) for b in measured})
    return bias


def aim_words(target: float, candidates: int) -> float:
    """The mean words one draw should have so that the twin as served, `candidates` draws a reply reranked by MMI,
    writes `target` words."""
    from twin.consensus import MMI_LENGTHENING

    return target / MMI_LENGTHENING if candidates > 1 else target


def my_mean_words(name: str) -> float:
    """The mean words of my replies in the twin's validation split: the length the twin should write."""
    path = dataset.val_path(name)
    if not path.is_file():
        raise UserError(
            f"twin {name!r} has no dataset ({path} is missing): build it with `twin ingest EXPORT --name {name}`"
        )
    return mean_words([line.messages[-1]["content"] for line in dataset.read(path)])


def calibrate(
    name: str,
    samples: int = SAMPLES,
    threads: int = 0,
    advance: Callable[[str, int, int], None] = lambda what, done, total: None,
) -> Calibration:
    """Measure the served twin's length at bias 0 (and a probe), write twin.toml `[decoding]`; `advance` shows progress."""
    from twin.lock import twin_lock

    with twin_lock(name, "twin calibrate"):
        return _calibrate(name, samples, threads, advance)


def _calibrate(name: str, samples: int, threads: int, advance: Callable[[str, int, int], None]) -> Calibration:
    from trainer.evaluation.evalset import load_samples
    from trainer.evaluation.run import EvalConfig, conditioned
    from trainer.evaluation.served import daemon_for
    from twin import paths
    from twin.config import ChatSettings

    if not paths.twin_dir(name).is_dir():
        raise UserError(f"no twin named {name!r} under {paths.twins_dir()}: build it with `twin build` first")
    data = registry.read(name)
    gguf = data.get("model", {}).get("gguf")
    if not gguf:
        raise UserError(f"twin {name!r} has no GGUF to calibrate: convert it first with `twin convert --name {name}`")
    from twin.build import MIN_CALIBRATION_SAMPLES

    if samples < MIN_CALIBRATION_SAMPLES:
        raise UserError(
            f"--samples must be at least {MIN_CALIBRATION_SAMPLES} (the mean length of fewer replies is noise), got {samples}"
        )
    target = my_mean_words(name)
    aim = aim_words(target, registry.candidates(name, data))
    contexts = load_samples(name, samples, EvalConfig.max_context_chars, conditioned(name))
    measured: dict[float, float] = {}
    # A daemon of its own: one already running may still serve the GGUF this conversion replaced.
    with (
        tempfile.TemporaryDirectory(prefix="twin-calibrate-") as tmp,
        daemon_for(name, ChatSettings(), Path(tmp) / "serve.log", threads, reuse=False) as served,
    ):

        def replies_at(bias: float) -> list[int]:
            label = f"replies at end bias {bias:+g}"
            done = 0
            advance(label, done, len(contexts))

            def step(k: int) -> None:
                nonlocal done
                done += k
                advance(label, done, len(contexts))

            decoding: Decoding = replace(CHAT_DEFAULT, end_bias=bias)
            replies = daemon_generate(served.url, served.api_key, name, contexts, None, decoding, step)
            return [len(words(r)) for r in replies]

        bias = fit(aim, replies_at, measured)
    result = Calibration(bias, round(target, 3), round(aim, 3), measured, len(contexts), gguf)
    registry.update(
        name,
        "decoding",
        {
            "end_bias": result.end_bias,
            "gguf": gguf,
            "target_words": result.target_words,
            "aim_words": result.aim_words,
            "samples": result.samples,
            "measured_biases": list(measured),
            "measured_words": list(measured.values()),
        },
    )
    return result


def describe(c: Calibration) -> str:
    points = ", ".join(f"{w:.1f} words at {b:+g}" for b, w in c.measured.items())
    aim = "" if c.aim_words == c.target_words else f", one draw aimed at {c.aim_words:.1f} (MMI's pick is longer)"
    if c.end_bias == 0:
        return f"end bias 0 (my replies: {c.target_words:.1f} words{aim}; the twin's: {points}, {c.samples} contexts)"
    return (
        f"end bias {c.end_bias:+.2f} for {c.target_words:.1f} words a reply, as mine{aim} "
        f"({points}, {c.samples} contexts)"
    )


def bars_advance(bars: Any) -> Callable[[str, int, int], None]:
    """An `advance` for `calibrate` drawing one bar per round on a started rich Progress."""
    tasks: dict[str, Any] = {}

    def advance(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = bars.add_task(label, total=total)
        bars.update(tasks[label], completed=done)

    return advance
