"""The collapse, length and speaker figures on crafted replies: a collapsed set scores as collapsed."""

from __future__ import annotations

import pytest

from daemon.schema import SamplingParams
from trainer.evaluation.collapse import distinct, measure, normalized, participants
from trainer.evaluation.generation import CHAT_DEFAULT

REAL = [
    "sure, i can bring the chairs tomorrow",
    "no idea, ask the landlord about the heating",
    "the train leaves at seven so we should hurry",
    "i liked the second movie better than the first",
    "we are out of milk again, can you grab some",
    "maybe on sunday if the weather holds up",
]


def test_a_collapsed_set_scores_as_collapsed() -> None:
    collapsed = ["Oh, I'm sorry."] * 5 + ["oh im sorry"]
    c = measure(collapsed, REAL)
    varied = measure(REAL[::-1], REAL)
    assert c.top_share == pytest.approx(5 / 6)  # "im" and "i'm" are different words: one reply stays apart
    assert c.top[0] == ("oh i'm sorry", 5)
    assert c.distinct_2 < 0.4 < 0.9 < varied.distinct_2
    assert c.distinct_1 < varied.distinct_1
    assert varied.top_share == pytest.approx(1 / 6)
    assert c.length_ratio < 0.5 and varied.length_ratio == pytest.approx(1.0)


def test_distinct_counts_ngrams_over_the_whole_set() -> None:
    assert distinct(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b), (b a), (a b)
    assert distinct(["", "!!"], 2) == 0.0
    assert normalized("  Hey, YOU!! ") == "hey you"


def test_speaking_as_someone_else_is_counted_only_for_participants() -> None:
    contexts = [[{"role": "user", "content": "Monica: are you coming?"}, {"role": "assistant", "content": "yes"}]]
    names = participants(contexts)
    assert names == {"monica"}
    replies = ["Monica: sure, see you", "note: bring cake", "User: hello", "ok: fine by me"]
    c = measure(replies, REAL, names)
    assert c.speaker_share == pytest.approx(2 / 4)  # Monica and the generic 'User', not 'note' or 'ok'


def test_the_evaluations_chat_default_is_the_daemons() -> None:
    daemon = SamplingParams()
    assert (CHAT_DEFAULT.temperature, CHAT_DEFAULT.top_p, CHAT_DEFAULT.top_k, CHAT_DEFAULT.min_p) == (
        daemon.temperature,
        daemon.top_p,
        daemon.top_k,
        daemon.min_p,
    )
    assert CHAT_DEFAULT.repetition_penalty == daemon.repetition_penalty
    assert daemon.candidates is None and CHAT_DEFAULT.candidates == 1  # the daemon's: the model's own, else 1
    assert CHAT_DEFAULT.rerank == daemon.rerank == "mmi"


def test_sampled_replies_draw_independently_per_sample_and_repeat_per_run(daemon) -> None:
    """The real daemon: one context asked under twelve validation lines gives different replies (one seed for
    every request would draw the same numbers, so the same reply twelve times), and the same ones again, through
    the session's long-lived daemon whose slots hold other tests' prompts (daemon.batch.V_CACHE_TYPE)."""
    import dataclasses

    from trainer.evaluation.evalset import EvalSample
    from trainer.evaluation.generation import daemon_generate, sample_seed
    from twin.embedded import MODEL_ID

    context = [{"role": "user", "content": "Name one thing you would pack for a trip."}]
    samples = [EvalSample(line, context, "a towel") for line in range(1, 13)]
    decoding = dataclasses.replace(CHAT_DEFAULT, max_new_tokens=6, seed=7)
    assert [sample_seed(7, s) for s in samples] == list(range(8, 20))
    replies = daemon_generate(daemon.url, "", MODEL_ID, samples, None, decoding)
    assert len(set(replies)) > 1, replies
    assert daemon_generate(daemon.url, "", MODEL_ID, samples, None, decoding) == replies
