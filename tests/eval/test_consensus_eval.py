"""`twin eval --candidates`: a transformers variant's sampled reply is the consensus of its sample's draws."""

from __future__ import annotations

import dataclasses

import pytest

from trainer.evaluation.evalset import EvalSample
from trainer.evaluation.generation import CHAT_DEFAULT, _hf_generate, hf_generate
from twin.consensus import pick


def test_each_samples_reply_is_the_consensus_of_its_own_draws() -> None:
    from trainer.evaluation.models import load
    from trainer.evaluation.variants import Variant

    model, tokenizer = load(Variant("prompt", "embedded", hf_base="default"))
    samples = [
        EvalSample(1, [{"role": "user", "content": "What should I cook tonight?"}], "pasta"),
        EvalSample(2, [{"role": "user", "content": "Where are you going this weekend?"}], "the lake"),
    ]
    decoding = dataclasses.replace(CHAT_DEFAULT, max_new_tokens=10, seed=3)
    # The same rows, seed and batches that candidates=3 draws from: each sample three times, in one batch
    drawn = _hf_generate(model, tokenizer, [s for s in samples for _ in range(3)], None, decoding, 24, lambda n: None)
    texts = [d.text for d in drawn]
    groups = [texts[:3], texts[3:]]
    assert all(len(set(g)) > 1 for g in groups), groups
    advanced: list[int] = []
    replies = hf_generate(
        model,
        tokenizer,
        samples,
        None,
        dataclasses.replace(decoding, candidates=3, rerank="consensus"),
        8,
        advanced.append,
    )
    assert replies == [g[pick(g)] for g in groups]
    assert sum(advanced) == len(samples)
    assert "the consensus of 3 candidates" in dataclasses.replace(decoding, candidates=3, rerank="consensus").describe()


def test_mmi_keeps_the_draw_most_tied_to_its_context_with_the_scores_sampling_tracked() -> None:
    """The tracked log p(reply | context) of each draw is what teacher forcing gives; the kept reply is the
    pick_mmi of those and of log p(reply | bare context)."""
    from trainer.evaluation.generation import _prompt_ids, messages_for, reply_logprobs
    from trainer.evaluation.models import load
    from trainer.evaluation.variants import Variant
    from twin.consensus import bare_context, pick_mmi

    model, tokenizer = load(Variant("prompt", "embedded", hf_base="default"))
    samples = [
        EvalSample(1, [{"role": "user", "content": "What should I cook tonight?"}], "pasta"),
        EvalSample(2, [{"role": "user", "content": "Where are you going this weekend?"}], "the lake"),
    ]
    system = "You are Sam, who writes short messages."
    decoding = dataclasses.replace(CHAT_DEFAULT, max_new_tokens=10, seed=3)
    rows = [s for s in samples for _ in range(3)]
    drawn = _hf_generate(model, tokenizer, rows, system, decoding, 24, lambda n: None, track=True)
    assert [d.text for d in drawn] == [
        d.text for d in _hf_generate(model, tokenizer, rows, system, decoding, 24, lambda n: None)
    ]  # tracking changes nothing drawn
    expected = []
    for i, sample in enumerate(samples):
        group = drawn[i * 3 : (i + 1) * 3]
        assert len({d.text for d in group}) > 1, group
        context = _prompt_ids(tokenizer, messages_for(sample, system))
        forced = reply_logprobs(model, context, [d.ids for d in group])
        assert [d.logprob for d in group] == pytest.approx(forced, abs=1e-3)
        assert all(d.logprob < 0 and d.ids for d in group)
        bare = reply_logprobs(
            model, _prompt_ids(tokenizer, bare_context(messages_for(sample, system))), [d.ids for d in group]
        )
        expected.append(group[pick_mmi(forced, bare)].text)
    mmi = dataclasses.replace(decoding, candidates=3)
    assert mmi.rerank == "mmi"  # the default, as the daemon's
    assert hf_generate(model, tokenizer, samples, system, mmi, 8) == expected
    assert "the most mutually informative of 3 candidates" in mmi.describe()
