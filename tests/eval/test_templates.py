"""Chat templates that refuse some contexts (roles must alternate, user first): fewer old messages, or the sample is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.evaluation.evalset import EvalSample
from trainer.evaluation.generation import _prompt
from trainer.evaluation.perplexity import conversation, split_reply

# User first, then strictly alternating, as Mistral/Gemma-style templates demand.
STRICT = (
    "{% for m in messages %}"
    "{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('roles must alternate user/assistant') }}{% endif %}"
    "[{{ m['role'] }}] {{ m['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


@pytest.fixture
def strict_tokenizer(embedded_hf: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_hf)
    tokenizer.chat_template = STRICT
    return tokenizer


def test_generation_prompt_drops_old_messages_until_the_template_accepts(strict_tokenizer) -> None:
    sample = EvalSample(3, [{"role": "assistant", "content": "я тут"}, {"role": "user", "content": "ты где?"}], "дома")
    assert _prompt(strict_tokenizer, sample, None) == "[user] ты где?\n[assistant] "


def test_perplexity_leaves_out_a_sample_the_template_refuses(strict_tokenizer) -> None:
    def render(messages, gen):
        return strict_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)

    ok = EvalSample(1, [{"role": "user", "content": "ты где?"}], "дома")
    refused = EvalSample(2, [{"role": "assistant", "content": "я тут"}, {"role": "user", "content": "ты где?"}], "дома")
    assert split_reply(render, conversation(ok, None)) == ("[user] ты где?\n[assistant] ", "дома\n")
    assert split_reply(render, conversation(refused, None)) is None
