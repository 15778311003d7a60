"""Training samples: dataset lines rendered with the base's chat template, tokenized, with labels on my reply only.

A dataset line is `{"messages": [{"role", "content"}, ...]}` whose last message is
my (assistant) reply. The sample's labels cover that reply's tokens and the
end-of-turn token after it; everything before (system prompt, the others'
messages, my earlier turns) is context and masked with -100.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin import dataset
from twin.chatformat import PLAIN_TEMPLATE
from twin.errors import UserError

IGNORE = -100
# No tokenizer puts more characters than this in one token (BPE merges stop well before): max_length tokens
# of text never need more than max_length × this many characters, so the rest is cut before tokenizing.
CHARS_PER_TOKEN = 16


@dataclass(frozen=True)
class Sample:
    input_ids: list[int]
    labels: list[int]  # IGNORE on context tokens

    def __len__(self) -> int:
        return len(self.input_ids)


def read_jsonl(path: Path, max_chars: int | None = None) -> list[list[dict[str, str]]]:
    """The conversations of a dataset file; a UserError naming file and line for anything malformed.

    With `max_chars`, each conversation keeps at most that many characters of
    context (the newest) and of reply (its beginning), as training's truncation
    would: memory is bounded by the sample length, not by the longest message.
    """
    return [clip(line.messages, max_chars) if max_chars else line.messages for line in dataset.read(path)]


def clip(messages: list[dict[str, str]], max_chars: int) -> list[dict[str, str]]:
    """The conversation with at most `max_chars` of context, the newest kept, and the reply's first `max_chars`."""
    *context, reply = messages
    kept: list[dict[str, str]] = []
    room = max_chars
    for m in reversed(context):
        if room <= 0:
            break
        text = m["content"]
        kept.append({"role": m["role"], "content": text[-room:] if len(text) > room else text})
        room -= len(text)
    kept.reverse()
    return [*kept, {"role": reply["role"], "content": reply["content"][:max_chars]}]


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give a tokenizer without a chat template (GPT-2) the plain `User:/Bot:` format; True when it was added."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = PLAIN_TEMPLATE
    return True


def encode(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> Sample:
    """Render one conversation and label my last reply plus its end-of-turn token.

    The reply is located by rendering the context with a generation prompt: the
    full rendering must extend it. Tokens overlapping the reply's characters
    carry labels, then the first special token after the reply (the end of turn);
    a template that closes the turn with no special token gets EOS appended.
    """
    context, reply = messages[:-1], messages[-1]["content"]
    prefix = tokenizer.apply_chat_template(context, tokenize=False, add_generation_prompt=True) if context else ""
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prefix):
        raise ValueError("the chat template renders the context differently with and without the reply")
    stripped = reply.strip()
    found = full.find(stripped, len(prefix))
    if found < 0:
        raise ValueError("the chat template does not render the reply verbatim")
    # Without context the prefix is empty and would label the template's own preamble.
    start = len(prefix) if context else found
    end = found + len(stripped)

    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    special = set(tokenizer.all_special_ids)
    labels = [IGNORE] * len(ids)
    cut = 0
    closed = False
    for i, (a, b) in enumerate(offsets):
        if b > start and a < end:
            labels[i] = ids[i]
            cut = i + 1
        elif a >= end and ids[i] in special:
            labels[i] = ids[i]
            cut = i + 1
            closed = True
            break
    ids, labels = ids[:cut], labels[:cut]
    if not closed:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    return truncate(ids, labels, max_length)


def truncate(ids: list[int], labels: list[int], max_length: int) -> Sample:
    """Keep the newest tokens: old context goes first; a reply longer than max_length keeps its beginning."""
    if len(ids) <= max_length:
        return Sample(ids, labels)
    first = next((i for i, lab in enumerate(labels) if lab != IGNORE), 0)
    start = min(len(ids) - max_length, first)
    return Sample(ids[start : start + max_length], labels[start : start + max_length])


def encode_all(tokenizer: Any, conversations: list[list[dict[str, str]]], max_length: int, path: Path) -> list[Sample]:
    out = []
    for i, messages in enumerate(conversations):
        try:
            out.append(encode(tokenizer, messages, max_length))
        except ValueError as e:
            raise UserError(
                f"{path}: sample {i}: {e}: this base's chat template cannot be trained on; pick another --base"
            ) from None
    return out
