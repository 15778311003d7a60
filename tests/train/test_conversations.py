"""Whole conversations: overlapping per-reply samples glued back, every one of my turns labelled once."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.train.conversations import encode_conversations, encode_turns, join, pieces
from trainer.train.samples import IGNORE, ensure_chat_template

ME, THEM = "assistant", "user"


def m(role: str, text: str) -> dict[str, str]:
    return {"role": role, "content": text}


# One session as ingest writes it with a context of 3 turns: each sample is the turns before a reply, plus the reply.
TURNS = [
    m(THEM, "Anna: are you coming tonight?"),
    m(ME, "not sure yet"),
    m(THEM, "Anna: come on"),
    m(ME, "fine, i'll be there"),
    m(THEM, "Bob: bring snacks"),
    m(ME, "chips ok?"),
]
SAMPLES = [TURNS[0:2], TURNS[0:4], TURNS[2:6]]  # the last one's window no longer holds the first turns


def test_samples_of_one_session_join_into_the_conversation() -> None:
    other = [m(THEM, "a new day"), m(ME, "morning")]
    joined = join([*SAMPLES, other])
    assert [msgs for _, msgs in joined] == [TURNS, other]
    assert [first for first, _ in joined] == [0, 3]


def test_a_sample_that_does_not_continue_starts_a_new_conversation() -> None:
    broken = [m(THEM, "Anna: something else"), m(ME, "not sure yet"), m(THEM, "x"), m(ME, "y")]
    assert len(join([SAMPLES[0], broken])) == 2


@pytest.fixture(scope="module")
def tokenizer(embedded_hf: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_hf)


def _labelled_text(tok, sample) -> str:
    return tok.decode([t for t, lab in zip(sample.input_ids, sample.labels, strict=True) if lab != IGNORE])


def test_every_one_of_my_turns_and_its_end_of_turn_is_labelled(tokenizer) -> None:
    system = [m("system", "Chat: Friends (group). Talking to: Anna.")]
    sample = encode_turns(tokenizer, system + TURNS, max_length=512)
    assert _labelled_text(tokenizer, sample) == "not sure yet<|im_end|>fine, i'll be there<|im_end|>chips ok?<|im_end|>"
    assert tokenizer.decode(sample.input_ids).startswith("<|im_start|>system\nChat: Friends (group).")


def test_a_leading_turn_of_mine_is_context(tokenizer) -> None:
    sample = encode_turns(tokenizer, TURNS[1:4], max_length=512)
    assert _labelled_text(tokenizer, sample) == "fine, i'll be there<|im_end|>"


def test_the_plain_format_closes_each_turn_with_eos(embedded_hf: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_hf)
    tok.chat_template = None
    ensure_chat_template(tok)
    sample = encode_turns(tok, TURNS[:4], max_length=512)
    eos = tok.eos_token
    assert _labelled_text(tok, sample) == f" not sure yet{eos} fine, i'll be there{eos}"


def test_long_conversations_are_cut_into_pieces_that_overlap() -> None:
    conv = [m(THEM if i % 2 == 0 else ME, f"turn {i}") for i in range(10)]
    out = pieces(conv, [10] * 10, max_tokens=40)
    assert all(len(p) <= 4 for p in out)
    assert out[0] == conv[:4] and out[1][:2] == conv[2:4]  # two turns of the last piece repeat as context
    covered = {m["content"] for p in out for m in p[1:] if m["role"] == ME}
    assert covered == {f"turn {i}" for i in range(1, 10, 2)}  # every turn of mine is labelled in some piece


def test_the_whole_dataset_costs_fewer_tokens_than_one_sample_per_reply(tokenizer) -> None:
    from trainer.train.samples import encode

    system = [m("system", "Chat: Friends (group).")]
    samples = [system + s for s in SAMPLES]
    whole = encode_conversations(tokenizer, samples, max_length=512)
    per_reply = [encode(tokenizer, s, 512) for s in samples]
    assert len(whole) == 1
    labels = sum(lab != IGNORE for lab in whole[0].labels)
    assert labels == sum(sum(lab != IGNORE for lab in s.labels) for s in per_reply)
    assert len(whole[0]) < sum(len(s) for s in per_reply)


def test_a_message_longer_than_a_piece_still_leaves_the_reply_after_it_labelled(tokenizer) -> None:
    """A long message before a reply: the piece goes over budget to reach the reply, and the oldest tokens are cut."""
    conv = [m(THEM, "word " * 400), m(ME, "ok then")]
    assert pieces(conv, [120, 4], max_tokens=32) == [conv]
    (sample,) = encode_conversations(tokenizer, [conv], max_length=32)
    assert len(sample) == 32
    assert _labelled_text(tokenizer, sample) == "ok then<|im_end|>"
