"""Reranking candidates by mutual information in the daemon (`rerank: "mmi"`, the default with `candidates`).

The runner tracks each candidate's log p(reply | context) while sampling it and reads it again after the bare
context (twin.consensus.bare_context) in a scoring job; the request returns the candidate with the highest
log p(r | c) − λ·log p(r | bare), and counts every candidate's tokens.
"""

from __future__ import annotations

import openai
import pytest

from daemon.batch import END, ChoiceDone, Delta, Job, Ticket
from daemon.schema import SamplingParams
from twin.embedded import MODEL_ID

ASK = dict(
    model=MODEL_ID,
    messages=[
        {"role": "system", "content": "You are Sam, who writes short messages."},
        {"role": "user", "content": "What would you cook tonight?"},
    ],
    max_tokens=16,
)


def _drain(runner, jobs: list[Job]) -> None:
    runner.waiting.extend(jobs)
    while runner.busy():
        runner.step()


def test_a_scoring_job_reads_again_exactly_what_sampling_tracked() -> None:
    """Teacher-forced scoring of a tracked candidate's tokens gives the log-probability it was sampled with,
    also when the scored tokens span several prompt chunks, and it generates nothing."""
    from daemon.batch import PROMPT_CHUNK, Runner
    from daemon.metrics import EngineMetrics
    from twin.embedded import embedded_gguf

    runner = Runner(embedded_gguf(), 1024, 1, 2, EngineMetrics())
    try:
        prompt = runner.model.chat_tokens(ASK["messages"])
        events: list = []
        params = SamplingParams(max_tokens=40, temperature=1.0)
        _drain(runner, [Job(Ticket(events.append, len(prompt), 1), 0, prompt, params, 7, track=True)])
        done = next(e for e in events if isinstance(e, ChoiceDone))
        assert done.finish_reason in ("stop", "length") and len(done.tokens) == done.completion_tokens + (
            done.finish_reason == "stop"
        )
        assert done.logprob < 0
        # a long prefix: the reply's tokens start a few tokens before the end of the first chunk
        filler = runner.model.text_tokens(" and" * (PROMPT_CHUNK - len(prompt) - 5))
        for prefix in (prompt, filler + prompt):
            scored: list = []
            tokens = prefix + done.tokens
            _drain(runner, [Job(Ticket(scored.append, 0, 1), 0, tokens, params, None, score_from=len(prefix))])
            assert not any(isinstance(e, Delta) for e in scored)
            result = next(e for e in scored if isinstance(e, ChoiceDone))
            assert result.completion_tokens == 0 and result.finish_reason == "stop"
            if prefix is prompt:
                assert result.logprob == pytest.approx(done.logprob, abs=1e-3)
            else:  # another context, another likelihood, but still a sum of log-probabilities
                assert result.logprob < 0 and result.logprob != pytest.approx(done.logprob, abs=1e-3)
            assert scored[-1] is END
    finally:
        runner.close()


def test_the_reply_is_one_of_the_same_seeds_draws_and_every_draw_is_counted(daemon) -> None:
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    draws = client.chat.completions.create(**ASK, temperature=1.0, seed=41, n=4)
    texts = [c.message.content or "" for c in draws.choices]
    assert len(set(texts)) > 1, texts
    chosen = client.chat.completions.create(**ASK, temperature=1.0, seed=41, extra_body={"candidates": 4})
    assert chosen.choices[0].message.content in texts
    assert chosen.usage.completion_tokens == draws.usage.completion_tokens
    assert chosen.usage.prompt_tokens == draws.usage.prompt_tokens
    again = client.chat.completions.create(
        **ASK, temperature=1.0, seed=41, extra_body={"candidates": 4, "rerank": "mmi"}
    )
    assert again.choices[0].message.content == chosen.choices[0].message.content  # the pick is deterministic
    stream = client.chat.completions.create(**ASK, temperature=1.0, seed=41, stream=True, extra_body={"candidates": 4})
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert streamed == chosen.choices[0].message.content
    # two choices, each one of its own four draws (seeds 41-44 and 45-48)
    both = client.chat.completions.create(**ASK, temperature=1.0, seed=41, n=2, extra_body={"candidates": 4})
    second = client.chat.completions.create(**ASK, temperature=1.0, seed=45, n=4)
    assert both.choices[0].message.content == chosen.choices[0].message.content
    assert both.choices[1].message.content in [c.message.content for c in second.choices]


def test_mmi_and_consensus_pick_differently_somewhere(daemon) -> None:
    """Over a few seeds the two reranks disagree at least once: `rerank` really chooses the pick."""
    from twin.consensus import pick

    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    differ = 0
    for seed in (3, 11, 19, 27):
        draws = [
            c.message.content or ""
            for c in client.chat.completions.create(**ASK, temperature=1.0, seed=seed, n=4).choices
        ]
        mmi = client.chat.completions.create(**ASK, temperature=1.0, seed=seed, extra_body={"candidates": 4})
        consensus = client.chat.completions.create(
            **ASK, temperature=1.0, seed=seed, extra_body={"candidates": 4, "rerank": "consensus"}
        )
        assert consensus.choices[0].message.content == draws[pick(draws)]
        differ += mmi.choices[0].message.content != consensus.choices[0].message.content
    assert differ >= 1


@pytest.mark.parametrize(
    ("extra", "needle"),
    [({"rerank": "best"}, "expected one of mmi, consensus"), ({"rerank": 1}, "rerank")],
)
def test_a_bad_rerank_is_an_openai_shaped_400(daemon, extra: dict, needle: str) -> None:
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**ASK, extra_body={"candidates": 2, **extra})
    assert needle in str(caught.value.message)
    assert (caught.value.body or {}).get("param") == "rerank"


class _Scores:
    """Stands in for the runner's scoring jobs in a Rerank: records what it was asked, answers when told."""

    def __init__(self, answer: bool = True) -> None:
        self.asked: list[tuple[int, list[list[int]]]] = []
        self.answer = answer

    def __call__(self, choice: int, replies: list[list[int]]) -> bool:
        self.asked.append((choice, replies))
        return self.answer


def test_rerank_holds_the_request_end_until_every_choice_is_scored_and_drops_cancelled_candidates() -> None:
    from daemon.engine import Rerank

    out: list = []
    scores = _Scores()
    rerank = Rerank(3, out.append, scores)
    for i, (text, lp, reason) in enumerate(
        [("oh, im sorry.", -4.0, "stop"), ("the soup, obviously", -9.0, "stop"), ("", 0.0, "cancelled")]
    ):
        rerank.take(Delta(i, text))
        rerank.take(ChoiceDone(i, reason, 5, 0.1, [10 + i, 2], lp))
    rerank.take(END)
    assert out == [] and scores.asked == [(0, [[10, 2], [11, 2]])]  # the cancelled candidate is not scored
    rerank.scored(0, ChoiceDone(0, "stop", 0, 0.0, [], -3.0))  # the stock line is as likely with no context
    rerank.scored(0, ChoiceDone(1, "stop", 0, 0.0, [], -20.0))
    assert out == []
    rerank.scored(0, END)
    assert len(out) == 3
    assert out[0].text == "the soup, obviously" and out[0].index == 0
    assert out[1].finish_reason == "stop" and out[1].completion_tokens == 15  # every candidate was decoded
    assert out[2] is END


def test_candidates_all_cancelled_while_scored_end_the_choice_cancelled() -> None:
    from daemon.engine import Rerank

    out: list = []
    rerank = Rerank(2, out.append, _Scores())
    for i in range(2):
        rerank.take(Delta(i, f"reply {i}"))
        rerank.take(ChoiceDone(i, "stop", 3, 0.1, [i], -1.0))
    rerank.take(END)
    rerank.scored(0, ChoiceDone(0, "cancelled", 0, 0.0))
    rerank.scored(0, ChoiceDone(1, "cancelled", 0, 0.0))
    rerank.scored(0, END)
    assert out[0].finish_reason == "cancelled" and out[-1] is END and len(out) == 2


def test_a_twin_is_served_with_its_candidates_and_a_broken_value_names_the_fix(twin_home) -> None:
    from daemon.catalog import twin_specs
    from tests.helpers.twins import twin_on_embedded
    from twin import registry
    from twin.errors import UserError

    twin_on_embedded("sam", [[("user", "hi"), ("assistant", "hey")]])
    assert twin_specs("sam")[0].candidates == 1  # nothing said: one draw, as any GGUF
    registry.update("sam", "serve", {"candidates": 6})
    assert twin_specs("sam")[0].candidates == 6
    for bad in ("six", 0, 9, True):
        registry.update("sam", "serve", {"candidates": bad})
        with pytest.raises(UserError, match=r"\[serve\] candidates must be a whole number from 1 to 8.*twin.toml"):
            twin_specs("sam")


def test_candidates_too_long_to_score_are_settled_by_consensus_at_once() -> None:
    from daemon.engine import Rerank
    from twin.consensus import pick

    out: list = []
    texts = ["see you at seven", "see you at seven then", "the zebra flew"]
    rerank = Rerank(3, out.append, _Scores(answer=False))
    for i, text in enumerate(texts):
        rerank.take(Delta(i, text))
        rerank.take(ChoiceDone(i, "length", 4, 0.1, [i], -1.0))
    rerank.take(END)
    assert out[0].text == texts[pick(texts)] and out[1].finish_reason == "length" and out[2] is END
