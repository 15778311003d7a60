"""Collecting samples into the dataset files: length cap, de-duplication, sessions, the split.

Samples are written once, as they come, to a scratch file in the dataset's
temporary directory; only the sessions' sample counts and end times stay in
memory. When every export is read the split is chosen and one sequential pass
writes train.jsonl and val.jsonl.
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from collections.abc import Callable
from json.encoder import encode_basestring
from pathlib import Path

from trainer.ingest.messages import Chat, Sample
from trainer.ingest.replies import ReplyHabits
from trainer.ingest.sessions import Conversation, SessionSettings, cap_context, fragment
from trainer.ingest.split import choose_val
from twin.dataset import TRAIN, VAL

_SCRATCH = ".samples.tmp"


class DatasetBuilder:
    """Receives samples (from conversations or ready-made), keeps what passes, and writes the split."""

    def __init__(
        self, out_dir: Path, settings: SessionSettings, clean: Callable[[str], str], max_reply_chars: int, dedupe: bool
    ) -> None:
        self.out_dir = out_dir
        self.clean = clean
        self.settings = settings
        self.max_reply_chars = max_reply_chars
        self.dedupe = dedupe
        self._scratch_path = out_dir / _SCRATCH
        # errors="replace": a lone surrogate from a broken export must not stop the whole run
        self._scratch = open(self._scratch_path, "w", encoding="utf-8", errors="replace", buffering=1 << 20)  # noqa: SIM115  # closed in write_split()
        self._seen: set[int] = set()
        self._counts = array("q")
        self._ends = array("d")
        self._session_key: object = None
        self._conversations = 0
        self._timeless = 0
        self.dropped: Counter = Counter()
        self.habits = ReplyHabits()
        self.chats: Counter = Counter()
        self.my_turns = 0
        self.context_cut = 0  # context turns cut to settings.context_chars
        self.conversation_sessions = 0
        self._open: list[Conversation] = []

    def conversation(self, chat: Chat) -> Conversation:
        """A builder of samples for one chat; call `close()` on it when the chat ends."""
        self._conversations += 1
        serial = self._conversations

        meta = f',"chat":{encode_basestring(chat.name)},"chat_kind":{encode_basestring(chat.kind)}'

        def emit(session: object, time: float, fragments: list[str], reply: str, talking_to: str) -> None:
            self._add(
                (serial, session),
                time,
                fragments,
                reply,
                chat.name,
                f'{meta},"talking_to":{encode_basestring(talking_to)}',
            )

        return Conversation(chat, self.settings, self.clean, emit, self._skip)

    def finish_conversation(self, conv: Conversation) -> None:
        conv.close()
        self.my_turns += conv.my_turns
        self.context_cut += conv.context_cut
        if conv.last_time is not None:
            self.conversation_sessions += conv.session + 1

    def add_sample(self, sample: Sample, source: str) -> None:
        """A ready-made sample (plain, JSONL): its own session, older than any dated one."""
        self._timeless += 1
        self.my_turns += 1
        reply = sample.messages[-1][1]
        context = []
        for role, content in sample.messages[:-1]:
            content, cut = cap_context(content, self.settings.context_chars)
            self.context_cut += cut
            context.append(fragment(role, content))
        self._add(
            ("timeless", self._timeless),
            float(self._timeless),
            [*context, fragment(*sample.messages[-1])],
            reply,
            source,
        )

    def _skip(self, reason: str) -> None:
        self.dropped[reason] += 1

    def _add(self, key: object, time: float, fragments: list[str], reply: str, chat: str, meta: str = "") -> None:
        """One sample; `meta` is the JSON text of its chat fields (`,"chat":…`), written after its messages."""
        if self.max_reply_chars and len(reply) > self.max_reply_chars:
            self.dropped["reply too long"] += 1
            return
        if self.dedupe:
            h = hash(tuple(fragments))
            if h in self._seen:
                self.dropped["duplicate"] += 1
                return
            self._seen.add(h)
        if key != self._session_key:
            self._session_key = key
            self._counts.append(0)
            self._ends.append(time)
        index = len(self._counts) - 1
        self._counts[index] += 1
        if time > self._ends[index]:
            self._ends[index] = time
        self._scratch.write(f'{index}\t{{"messages":[{",".join(fragments)}]{meta}}}\n')
        self.habits.add(reply)
        self.chats[chat] += 1

    @property
    def samples(self) -> int:
        return sum(self._counts)

    def write_split(self, fraction: float, mode: str, seed: int) -> dict:
        """Write train.jsonl and val.jsonl from the scratch file; returns their sample and session counts."""
        self._scratch.close()
        val = choose_val(self._counts, self._ends, fraction, mode, seed)
        n_train = n_val = 0
        with (
            open(self._scratch_path, encoding="utf-8") as scratch,
            open(self.out_dir / TRAIN, "w", encoding="utf-8") as train,
            open(self.out_dir / VAL, "w", encoding="utf-8") as valf,
        ):
            for line in scratch:
                index, _, sample = line.partition("\t")
                if int(index) in val:
                    valf.write(sample)
                    n_val += 1
                else:
                    train.write(sample)
                    n_train += 1
        os.unlink(self._scratch_path)
        for name in (TRAIN, VAL):
            os.chmod(self.out_dir / name, 0o600)
        return {
            "train": n_train,
            "val": n_val,
            "sessions_train": len(self._counts) - len(val),
            "sessions_val": len(val),
        }

    def abort(self) -> None:
        self._scratch.close()
