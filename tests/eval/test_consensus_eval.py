"""`twin eval --candidates`: a transformers variant's sampled reply is the consensus of its sample's draws."""

from __future__ import annotations

import dataclasses

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
    groups = [drawn[:3], drawn[3:]]
    assert all(len(set(g)) > 1 for g in groups), groups
    advanced: list[int] = []
    replies = hf_generate(
        model, tokenizer, samples, None, dataclasses.replace(decoding, candidates=3), 8, advanced.append
    )
    assert replies == [g[pick(g)] for g in groups]
    assert sum(advanced) == len(samples)
    assert "the consensus of 3 candidates" in dataclasses.replace(decoding, candidates=3).describe()
