"""Whole conversations from per-reply samples: every one of my turns supervised in one sequence.

A dataset line is one reply with the turns before it as context, so the same
turns are re-encoded in up to `--context` samples. Consecutive lines of one
session overlap: the next line's context ends with my previous reply and what
came after it. `join` glues such lines back into the conversation they came
from; `encode_turns` labels every one of my turns in it. An epoch then reads
each message about once instead of up to eight times.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.train.samples import IGNORE, Sample, truncate
from twin.errors import UserError

Messages = list[dict[str, str]]
OVERLAP_TURNS = 2  # a conversation cut into pieces repeats this many turns as context (unlabelled)


def join(conversations: list[Messages]) -> list[tuple[int, Messages]]:
    """Consecutive samples whose contexts continue one another, glued into one conversation each.

    A sample extends the conversation before it when its messages, up to some
    point, are the conversation's last messages and that point is my reply
    (the conversation's end); the rest of the sample is appended. Anything
    else (a new session, a thread reference that breaks the order) starts a
    new conversation. Returns (index of its first sample, messages) per conversation.
    """
    out: list[tuple[int, Messages]] = []
    for i, messages in enumerate(conversations):
        if out:
            cut = _continues(out[-1][1], messages)
            if cut:
                out[-1][1].extend(messages[cut:])
                continue
        out.append((i, list(messages)))
    return out


def _continues(conv: Messages, messages: Messages) -> int:
    """How many leading messages of `messages` are already `conv`'s tail (0 when it does not continue)."""
    last = conv[-1]
    for j in range(len(messages) - 2, -1, -1):
        if messages[j] == last and j + 1 <= len(conv) and messages[: j + 1] == conv[len(conv) - j - 1 :]:
            return j + 1
    return 0


def pieces(conv: Messages, lengths: list[int], max_tokens: int) -> list[Messages]:
    """The conversation cut at turn boundaries into pieces of at most about `max_tokens` (by `lengths`, one per
    message); each piece after the first starts with the last OVERLAP_TURNS turns of the one before as context.

    A piece always reaches the first reply after its first message, over the
    budget if need be (a long message before it): the encoding then cuts the
    oldest tokens, so no reply is left out for want of room.
    """
    out: list[Messages] = []
    start = 0
    while start < len(conv):
        used, end = 0, start
        while end < len(conv) and (
            end == start or used + lengths[end] <= max_tokens or not _has_reply(conv[start + 1 : end])
        ):
            used += lengths[end]
            end += 1
        out.append(conv[start:end])
        if end >= len(conv):
            break
        start = max(end - OVERLAP_TURNS, start + 1)
    return [p for p in out if _has_reply(p[1:])]


def _has_reply(messages: Messages) -> bool:
    return any(m["role"] == "assistant" for m in messages)


def encode_turns(tokenizer: Any, messages: Messages, max_length: int, label_first: bool = False) -> Sample:
    """Render a conversation once and label every assistant turn (but a leading one) and its end-of-turn token.

    Each turn is located as `encode` does for one reply: the rendering of the
    messages before it with a generation prompt must be a prefix of the whole;
    the turn's text follows. A leading assistant turn has no context to answer
    and stays unlabelled unless `label_first`.
    """
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or (i == 0 and not label_first) or not m["content"].strip():
            continue
        prefix = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True) if i else ""
        if not full.startswith(prefix):
            raise ValueError("the chat template renders the context differently with and without the reply")
        stripped = m["content"].strip()
        found = full.find(stripped, len(prefix))
        if found < 0:
            raise ValueError("the chat template does not render the reply verbatim")
        spans.append((len(prefix) if i else found, found + len(stripped)))

    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    special = set(tokenizer.all_special_ids)
    labels = [IGNORE] * len(ids)
    t = 0
    for n, (s, e) in enumerate(spans):
        while t < len(ids) and offsets[t][1] <= s:
            t += 1
        while t < len(ids) and offsets[t][0] < e:
            labels[t] = ids[t]
            t += 1
        # the end of the turn: the first special token after the reply, before the next one's text
        nxt = spans[n + 1][0] if n + 1 < len(spans) else len(full)
        while t < len(ids) and offsets[t][0] < nxt and ids[t] not in special:
            t += 1
        if t < len(ids) and offsets[t][0] < nxt:
            labels[t] = ids[t]
            t += 1
        elif n + 1 == len(spans):  # a template that closes turns with no special token: EOS after the last
            ids.append(tokenizer.eos_token_id)
            labels.append(tokenizer.eos_token_id)
    return truncate(ids, labels, max_length)


def encode_conversations(
    tokenizer: Any, conversations: list[Messages], max_length: int, path: Path | None = None
) -> list[Sample]:
    """Join the samples into conversations, cut them into pieces of about `max_length` tokens, label my turns.

    A sample's leading system message (its chat and addressee) stays out of the
    joining; each piece of a conversation starts with its first sample's.
    """
    systems = [c[:1] if c and c[0]["role"] == "system" else [] for c in conversations]
    bodies = [c[len(s) :] for c, s in zip(conversations, systems, strict=True)]
    out: list[Sample] = []
    for first, body in join(bodies):
        system = systems[first]
        # message lengths by characters/3.5 are close enough to cut at; the final encoding truncates exactly
        lengths = [len(m["content"]) * 2 // 7 + 4 for m in body]
        budget = max_length - sum(len(m["content"]) * 2 // 7 + 8 for m in system)
        for piece in pieces(body, lengths, max(budget, 16)):
            try:
                sample = encode_turns(tokenizer, system + piece, max_length)
            except ValueError as e:
                raise UserError(
                    f"{path or 'dataset'}: sample {first}: {e}: this base's chat template cannot be trained on; "
                    "pick another --base or train with --per-reply"
                ) from None
            if any(lab != IGNORE for lab in sample.labels):
                out.append(sample)
    return out
