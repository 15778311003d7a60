"""Consensus decoding in the daemon (`candidates` with `rerank: "consensus"`): the consensus of the same seeds' draws."""

from __future__ import annotations

import openai
import pytest

from twin.consensus import pick
from twin.embedded import MODEL_ID

ASK = dict(model=MODEL_ID, messages=[{"role": "user", "content": "What would you cook tonight?"}], max_tokens=16)


def test_candidates_return_the_consensus_of_the_same_seeds_draws_streamed_or_not(daemon) -> None:
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    # With k candidates, choice 0's candidate c is seeded seed + c: the choices of the same request with n = k
    draws = client.chat.completions.create(**ASK, temperature=1.0, seed=41, n=4)
    texts = [c.message.content or "" for c in draws.choices]
    assert len(set(texts)) > 1, texts
    chosen = client.chat.completions.create(
        **ASK, temperature=1.0, seed=41, extra_body={"candidates": 4, "rerank": "consensus"}
    )
    assert len(chosen.choices) == 1
    assert chosen.choices[0].message.content == texts[pick(texts)]
    assert chosen.usage.completion_tokens == draws.usage.completion_tokens  # every candidate was decoded
    assert chosen.usage.prompt_tokens == draws.usage.prompt_tokens
    stream = client.chat.completions.create(
        **ASK, temperature=1.0, seed=41, stream=True, extra_body={"candidates": 4, "rerank": "consensus"}
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert streamed == texts[pick(texts)]
    # two choices, each the consensus of its own four draws (seeds 41-44 and 45-48)
    both = client.chat.completions.create(
        **ASK, temperature=1.0, seed=41, n=2, extra_body={"candidates": 4, "rerank": "consensus"}
    )
    second = client.chat.completions.create(**ASK, temperature=1.0, seed=45, n=4)
    others = [c.message.content or "" for c in second.choices]
    assert [c.message.content for c in both.choices] == [texts[pick(texts)], others[pick(others)]]


def test_greedy_decoding_ignores_candidates(daemon) -> None:
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    plain = client.chat.completions.create(**ASK, temperature=0)
    with_candidates = client.chat.completions.create(
        **ASK, temperature=0, extra_body={"candidates": 4, "rerank": "consensus"}
    )
    assert with_candidates.choices[0].message.content == plain.choices[0].message.content
    assert with_candidates.usage.completion_tokens == plain.usage.completion_tokens


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"candidates": 0}, "candidates"),
        ({"candidates": 9}, "candidates"),
        ({"candidates": "4"}, "candidates"),
        ({"candidates": 4, "n": 5}, "n × candidates is at most 16, got 5 × 4"),
    ],
)
def test_bad_candidates_are_an_openai_shaped_400(daemon, extra: dict, needle: str) -> None:
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**ASK, extra_body=extra)
    assert caught.value.status_code == 400
    assert needle in str(caught.value.message)
    assert (caught.value.body or {}).get("param") == "candidates"
