"""Rendering and label masks: only my reply and its end-of-turn token carry labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.train.batches import collate, epoch_batches, sequential_batches
from trainer.train.samples import IGNORE, encode, ensure_chat_template, read_jsonl
from twin.chatformat import PLAIN_TEMPLATE
from twin.errors import UserError

CONVERSATION = [
    {"role": "system", "content": "Chat with Anna."},
    {"role": "user", "content": "Идёшь завтра?"},
    {"role": "assistant", "content": "не знаю пока"},
    {"role": "user", "content": "Ну скажи)"},
    {"role": "assistant", "content": "ладно, иду 👍"},
]


def _labelled(sample) -> list[int]:
    return [lab for lab in sample.labels if lab != IGNORE]


def test_chatml_mask_is_exactly_the_reply_and_im_end(embedded_hf: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_hf)
    sample = encode(tok, CONVERSATION, max_length=512)
    full = tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert tok.decode(sample.input_ids) == full.rstrip("\n")  # the trailing newline after <|im_end|> is cut

    reply_ids = tok("ладно, иду 👍", add_special_tokens=False)["input_ids"]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert _labelled(sample) == [*reply_ids, im_end]
    # The labelled tokens are the last ones: everything before (system, Anna, my earlier reply) is context.
    n = len(reply_ids) + 1
    assert all(lab == IGNORE for lab in sample.labels[:-n])
    assert sample.labels[-n:] == sample.input_ids[-n:]


def test_plain_format_for_a_base_without_template(tiny_models: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    assert not tok.chat_template
    assert ensure_chat_template(tok) is True
    assert tok.chat_template == PLAIN_TEMPLATE
    sample = encode(tok, CONVERSATION, max_length=512)
    text = tok.decode(sample.input_ids)
    assert (
        text
        == "Chat with Anna.\nUser: Идёшь завтра?\nBot: не знаю пока<|endoftext|>\nUser: Ну скажи)\nBot: ладно, иду 👍<|endoftext|>"
    )
    assert tok.decode(_labelled(sample)) == " ладно, иду 👍<|endoftext|>"


def test_reply_without_context_labels_only_the_reply(embedded_hf: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_hf)
    sample = encode(tok, [{"role": "assistant", "content": "сам напишу"}], max_length=512)
    assert tok.decode(_labelled(sample)) == "сам напишу<|im_end|>"


def test_truncation_drops_old_context_first(embedded_hf: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_hf)
    long_context = [{"role": "user", "content": "слово " * 200}, {"role": "assistant", "content": "ок"}]
    sample = encode(tok, long_context, max_length=32)
    assert len(sample) == 32
    assert tok.decode(_labelled(sample)) == "ок<|im_end|>"
    long_reply = [{"role": "user", "content": "?"}, {"role": "assistant", "content": "да " * 100}]
    sample = encode(tok, long_reply, max_length=32)
    assert len(sample) == 32 and sample.labels[-1] != IGNORE


def test_batches_group_lengths_and_pad_to_the_longest() -> None:
    from trainer.train.samples import Sample

    lengths = [5, 50, 7, 48, 6, 49, 8, 47] * 8
    batches = epoch_batches(lengths, batch_size=4, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches == epoch_batches(lengths, batch_size=4, seed=1, epoch=0)
    assert batches != epoch_batches(lengths, batch_size=4, seed=1, epoch=1)
    for b in batches:  # each batch holds only short or only long samples
        assert max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 3
    assert [len(b) for b in sequential_batches([3, 1, 2], 2)] == [2, 1]

    batch = collate([Sample([1, 2, 3], [IGNORE, 2, 3]), Sample([4], [4])], pad_id=0)
    assert batch.input_ids.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch.labels.tolist() == [[IGNORE, 2, 3], [4, IGNORE, IGNORE]]
    assert batch.real_tokens == 4 and batch.label_tokens == 3


@pytest.mark.parametrize(
    "line, problem",
    [
        ("{not json", "not valid JSON"),
        ('{"text": "hi"}', 'expected {"messages"'),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "needs a role"),
        ('{"messages": [{"role": "user", "content": "x"}]}', "the last message must be my non-empty reply"),
    ],
)
def test_malformed_dataset_lines_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "train.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(UserError) as e:
        read_jsonl(path)
    assert f"{path}:2:" in str(e.value) and problem in str(e.value)
