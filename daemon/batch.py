"""Continuous batching: one llama.cpp context per loaded model, one sequence per slot, one batch per step.

As llama.cpp's server does (`server_slot`, `update_slots`), each step admits
waiting choices into free slots (the slot whose cached tokens share the longest
prefix with the prompt, so only the rest is evaluated), builds one batch (the
next token of every generating slot, then prompt tokens up to a chunk), decodes
it, samples every slot that has a row in it, emits the text, and frees the slots
that finished or whose client left. Only the engine's worker thread calls `step`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp

from daemon.fingerprint import gguf_sha256, served_sha256, system_fingerprint
from daemon.metrics import EngineMetrics
from daemon.model import LoadedModel
from daemon.sampling import (
    Sampler,
    TextTracker,
    TokenLogprob,
    check_grammar,
    check_logit_bias,
    model_logprob,
    token_logprob,
)
from daemon.schema import APIError, SamplingParams
from daemon.weights import batch_weights
from twin import llamacpp

log = logging.getLogger("twin.daemon")

# Prompt tokens evaluated per step, shared by the slots still reading their prompt: a long prompt delays the
# streams already generating by one chunk's decode at most each step.
PROMPT_CHUNK = 256

# The KV cache's V half is q8_0, not llama.cpp's f16 default, so that a prompt's logits do not depend on how it was
# cut into passes. llama.cpp's CPU flash attention has two kernels: for 64 or more query rows of one sequence in a
# pass (GGML_FA_TILE_Q) with K and V both f16 (or both f32), a tiled one in f32; otherwise one that rounds the query
# to f16 and accumulates in f16. With an f16 cache a prompt read fresh in one pass, the same prompt from the cache
# (its last token alone) and the same prompt beside another one in a step gave logits 0.4 to 0.8 apart (measured on
# the embedded model, 100- and 450-token prompts), enough to change a seeded reply. A q8_0 V always takes the one
# kernel: every one of those cases is bit-identical, at 3/4 of the memory. K stays f16: a q8_0 K was as exact but
# cost batching (4 streams 1.48-1.55x one, against 1.52-1.60x). The cost: a long first prompt is read with the
# short kernel (450 tokens: 1.47 against 0.98 s on 2 threads); later turns of a chat read under 64 new tokens.
V_CACHE_TYPE = llama_cpp.GGML_TYPE_Q8_0


@dataclass
class Started:
    prompt_tokens: int
    fingerprint: str = ""  # system_fingerprint of the GGUF that answers (daemon.fingerprint)


@dataclass
class Delta:
    index: int
    text: str
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass
class ChoiceDone:
    index: int
    finish_reason: str  # "stop", "length", or "cancelled" (never sent to a client)
    completion_tokens: int
    decode_seconds: float
    # A tracked candidate's generated token ids (its end token included) and their summed log-probability under
    # the model's own distribution; a scoring job's summed log-probability of the tokens it scored.
    tokens: list[int] = field(default_factory=list)
    logprob: float = 0.0


END = object()  # the last event of a request


@dataclass
class Ticket:
    """What the choices of one request share: its cancel flag, where its events go, its progress."""

    emit: Callable[[Any], None]
    prompt_tokens: int
    choices: int
    cancel: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.monotonic)
    started: bool = False

    def choice_done(self) -> None:
        self.choices -= 1
        if self.choices == 0:
            self.emit(END)


@dataclass
class Job:
    """One choice of a request: its prompt, its sampling and its seed."""

    ticket: Ticket
    index: int
    tokens: list[int]
    params: SamplingParams
    seed: int | None
    track: bool = False  # a candidate to rerank by mutual information: its ChoiceDone carries tokens and logprob
    # A scoring job: reads `tokens`, sums log p(tokens[i] | tokens[:i]) for i >= score_from, generates nothing
    score_from: int | None = None


@dataclass
class Slot:
    """One sequence of the context: the tokens its KV cache holds, and the choice it is working on, if any."""

    seq: int
    cached: list[int] = field(default_factory=list)  # exactly the tokens whose keys and values are in the cache
    last_used: float = 0.0
    job: Job | None = None
    sampler: Sampler | None = None
    text: TextTracker | None = None
    next_token: int | None = None  # sampled, to be decoded in the next batch
    row: int = -1  # the row of the batch being decoded whose logits this slot samples from
    feeding: list[int] = field(default_factory=list)  # this slot's tokens in the batch being decoded
    generated: int = 0
    limit: int = 0
    began: float = 0.0
    ids: list[int] = field(default_factory=list)  # a tracked candidate's generated tokens
    logprob: float = 0.0  # their summed log-probability, or a scoring job's
    scored: list[tuple[int, int]] = field(default_factory=list)  # a scoring job's (batch row, the token it predicts)

    @property
    def reading_prompt(self) -> bool:
        return self.job is not None and self.next_token is None and len(self.cached) < len(self.job.tokens)


# A cached prefix decides the slot only when it covers this share of the prompt (as llama.cpp's server's
# slot_prompt_similarity): every chat starts with the same system prompt, and a new chat that shares only
# that must not take the slot of a conversation that will come back.
REUSE_SHARE = 0.5


def choose_slot(free: list[Any], tokens: list[int]) -> Any:
    """The free slot with the longest cached prefix of `tokens` if it is long enough, else the least recently used.

    Any slot with `cached` tokens and `last_used` (this module's Slot, daemon.onnx_runner's OnnxSlot).
    """
    best = max(free, key=lambda s: (common_prefix(s.cached, tokens), -s.last_used))
    if common_prefix(best.cached, tokens) >= REUSE_SHARE * len(tokens):
        return best
    return min(free, key=lambda s: s.last_used)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Runner:
    """A loaded model with its context and slots; `submit` queues choices, `step` advances all of them."""

    def __init__(
        self,
        path: Path,
        n_ctx: int,
        threads: int,
        parallel: int,
        metrics: EngineMetrics,
        requantize: str = "auto",
        lora: Path | None = None,
    ) -> None:
        sha256 = served_sha256(path, lora)
        self.model = LoadedModel(batch_weights(path, gguf_sha256(path), parallel, requantize), lora)
        self.fingerprint = system_fingerprint(sha256)
        self.metrics = metrics
        n_ctx = min(n_ctx, self.model.n_ctx_train or n_ctx)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * parallel
        params.n_seq_max = parallel
        # One KV stream per sequence: each attends over its own cells only (the sequences share no prefix).
        params.kv_unified = False
        params.n_batch = PROMPT_CHUNK + parallel
        params.n_ubatch = params.n_batch
        params.n_threads = threads
        params.n_threads_batch = threads
        params.no_perf = True
        self.threads = threads
        try:
            self.ctx = self._new_context(params)
        except Exception:
            self.model.close()
            raise
        self.handle = llamacpp.context_handle(self.ctx)
        self.model.apply_adapter(self.handle)
        self.n_ctx = min(n_ctx, llama_cpp.llama_n_ctx_seq(self.handle))
        self.mem = llamacpp.context_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(params.n_batch, 0, 1)
        self.slots = [Slot(seq) for seq in range(parallel)]
        self.waiting: deque[Job] = deque()
        self.name = path.name

    def _new_context(self, params: Any) -> Any:
        """A context with an f16 K and a q8_0 V cache (V_CACHE_TYPE); all f16 where this model cannot have it
        (a head size that is not a multiple of 32, flash attention unavailable), said in the log."""
        params.type_k, params.type_v = llama_cpp.GGML_TYPE_F16, V_CACHE_TYPE
        try:
            return llamacpp.new_context(self.model.weights, params)
        except ValueError:  # llama-cpp-python's "Failed to create llama_context"
            log.warning("a q8_0 V cache is not possible for this model: f16, so caching may change a reply's bits")
            params.type_k = params.type_v = llama_cpp.GGML_TYPE_F16
            return llamacpp.new_context(self.model.weights, params)

    def check(self, params: SamplingParams, model_id: str) -> None:
        """The 400 a request's parameters would cause (a grammar llama.cpp refuses), before it takes a slot."""
        check_logit_bias(self.model.n_vocab, params)
        check_grammar(self.model.vocab, self.model.n_vocab, params)

    # --- called from the worker thread only ------------------------------------------------------

    def busy(self) -> bool:
        return bool(self.waiting) or any(s.job is not None for s in self.slots)

    def step(self) -> None:
        """One pass: free what was cancelled, admit, build one batch, decode, sample each slot, emit, free."""
        started = time.perf_counter()
        for slot in self.slots:
            if slot.job is not None and slot.job.ticket.cancel.is_set():
                self._finish(slot, "cancelled")
        self._admit()
        self._keep_adjacent()
        if not self._build_batch():
            return
        code = llama_cpp.llama_decode(self.handle, self.batch)
        if code != 0:
            self._fail_batch(code)
            return
        for slot in self.slots:
            if slot.feeding and slot.job is not None:
                prompt_part = min(len(slot.feeding), len(slot.job.tokens) - len(slot.cached))
                if prompt_part > 0:
                    self.metrics.record_prompt(self.name, evaluated=prompt_part)
                slot.cached += slot.feeding
                slot.feeding = []
                if slot.job.score_from is not None:
                    self._score(slot)
        generated = 0
        for slot in self.slots:
            if slot.row >= 0:
                row, slot.row = slot.row, -1
                self._take(slot, row)
                generated += 1
        self.metrics.record_step(self.name, generated, time.perf_counter() - started)

    def _score(self, slot: Slot) -> None:
        """A scoring job's rows of this batch added to its sum; all its tokens read, it is done."""
        for row, token in slot.scored:
            slot.logprob += model_logprob(llama_cpp.llama_get_logits_ith(self.handle, row), self.model.n_vocab, token)
        slot.scored = []
        if slot.job is not None and len(slot.cached) >= len(slot.job.tokens):
            self._finish(slot, "stop")

    def set_threads(self, threads: int) -> None:
        """Between steps: llama.cpp takes the new count from the next decode on."""
        if threads != self.threads:
            llama_cpp.llama_set_n_threads(self.handle, threads, threads)
            self.threads = threads

    def reset(self, error: APIError) -> None:
        """After a failure nobody understands: every choice here ends with `error`, the cache is emptied."""
        for job in self.waiting:
            job.ticket.emit(error)
            self._cancel_unstarted(job)
        self.waiting.clear()
        for slot in self.slots:
            if slot.job is not None:
                slot.job.ticket.emit(error)
                self._finish(slot, "cancelled")
            slot.cached, slot.feeding = [], []
        llama_cpp.llama_memory_clear(self.mem, True)

    def close(self) -> None:
        for job in self.waiting:
            self._cancel_unstarted(job)
        self.waiting.clear()
        for slot in self.slots:
            if slot.job is not None:
                self._finish(slot, "cancelled")
        if self.batch is not None:
            llama_cpp.llama_batch_free(self.batch)
            self.batch = None
        self.ctx.close()
        self.model.close()

    # --- the parts of a step ---------------------------------------------------------------------

    def _admit(self) -> None:
        # A client that left while its request waited costs nothing: its prompt is never evaluated.
        for job in [j for j in self.waiting if j.ticket.cancel.is_set()]:
            self.waiting.remove(job)
            self._cancel_unstarted(job)
        free = [s for s in self.slots if s.job is None]
        while free and self.waiting:
            job = self.waiting.popleft()
            slot = choose_slot(free, job.tokens)
            free.remove(slot)
            try:
                self._start(slot, job)
            except APIError as e:
                job.ticket.emit(e)
                job.ticket.choice_done()

    def _keep_adjacent(self) -> None:
        """Move busy sequences next to each other, so that one step is one pass through the model.

        Each sequence has its own KV stream (`kv_unified` off), and llama.cpp decodes a batch of
        several streams in one pass only over consecutive sequence ids; it cuts the batch at
        every gap (measured here: four streams on sequences 0, 2, 5, 7 took 43 ms a step, as
        many as eight, against 24 ms on 0-3). So the busy ones outside the best window of
        adjacent sequences are copied into its free ones (the whole stream is copied, exactly:
        30 ms for the embedded model's 8192 cells on a quiet machine, once), and the free slot takes the moved
        sequence's old stream, which still holds the same tokens for a later prefix match.
        """
        busy = [s for s in self.slots if s.job is not None]
        if len(busy) < 2:
            return
        seqs = {s.seq for s in busy}
        width = len(busy)
        start = max(range(len(self.slots) - width + 1), key=lambda a: (sum(a <= q < a + width for q in seqs), -a))
        window = range(start, start + width)
        by_seq = {s.seq: s for s in self.slots}
        room = sorted((by_seq[q] for q in window if by_seq[q].job is None), key=lambda s: s.last_used)
        for moved, free in zip((s for s in busy if s.seq not in window), room, strict=True):
            llama_cpp.llama_memory_seq_rm(self.mem, free.seq, -1, -1)
            llama_cpp.llama_memory_seq_cp(self.mem, moved.seq, free.seq, -1, -1)
            moved.seq, free.seq = free.seq, moved.seq
            free.cached = list(moved.cached)
            self.metrics.record_move(self.name)

    def _start(self, slot: Slot, job: Job) -> None:
        ticket = job.ticket
        scoring = job.score_from is not None
        sampler = None if scoring else Sampler(self.model.vocab, self.model.n_vocab, job.params, job.seed)
        if not ticket.started:
            ticket.started = True
            self.metrics.record_queue_wait(time.monotonic() - ticket.submitted)
            ticket.emit(Started(ticket.prompt_tokens, self.fingerprint))
        # Keep at least the last prompt token to evaluate: its logits give the first generated token.
        keep = min(common_prefix(slot.cached, job.tokens), len(job.tokens) - 1)
        if job.score_from is not None:  # the token before the first scored one is read again: its logits score it
            keep = min(keep, job.score_from - 1)
        if not llama_cpp.llama_memory_seq_rm(self.mem, slot.seq, keep, -1):  # a recurrent model: all or nothing
            llama_cpp.llama_memory_seq_rm(self.mem, slot.seq, -1, -1)
            keep = 0
        del slot.cached[keep:]
        self.metrics.record_prompt(self.name, reused=keep)
        budget = self.n_ctx - len(job.tokens)
        p = job.params
        slot.job, slot.sampler, slot.text = job, sampler, TextTracker(p.stop)
        slot.limit = min(p.max_tokens, budget) if p.max_tokens is not None else budget
        slot.generated, slot.next_token, slot.began = 0, None, time.perf_counter()
        slot.ids, slot.logprob, slot.scored = [], 0.0, []

    def _build_batch(self) -> bool:
        """The next token of every generating slot, then prompt tokens (oldest request first) up to the chunk.

        The tokens go into the batch in the order of their sequence ids: llama.cpp gathers the
        streams of one pass by reading the batch in order and taking each next sequence id only
        (see `_keep_adjacent`), so adjacent sequences listed out of order are split too.
        """
        b = self.batch
        b.n_tokens = 0
        feed: dict[int, tuple[Slot, list[int], bool]] = {}  # seq -> (slot, tokens, whether the last wants logits)
        for slot in self.slots:
            if slot.job is not None and slot.next_token is not None:
                feed[slot.seq] = (slot, [slot.next_token], True)
                slot.next_token = None
        room = PROMPT_CHUNK
        readers = [s for s in self.slots if s.reading_prompt]
        for slot in sorted(readers, key=lambda s: s.job.ticket.submitted if s.job is not None else 0.0):
            if room <= 0:
                break
            assert slot.job is not None
            rest = slot.job.tokens[len(slot.cached) : len(slot.cached) + room]
            feed[slot.seq] = (slot, rest, len(slot.cached) + len(rest) == len(slot.job.tokens))
            room -= len(rest)
        for seq in sorted(feed):
            slot, tokens, logits_at_end = feed[seq]
            score_from = slot.job.score_from if slot.job is not None else None
            for k, token in enumerate(tokens):
                i = b.n_tokens
                pos = len(slot.cached) + k
                b.token[i] = token
                b.pos[i] = pos
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = seq
                if score_from is not None:  # a scoring job: the logits of each row that predicts a scored token
                    assert slot.job is not None
                    wants = score_from <= pos + 1 < len(slot.job.tokens)
                    if wants:
                        slot.scored.append((i, slot.job.tokens[pos + 1]))
                else:
                    wants = logits_at_end and k == len(tokens) - 1
                    if wants:
                        slot.row = i
                b.logits[i] = wants
                b.n_tokens = i + 1
            slot.feeding = list(tokens)
        return b.n_tokens > 0

    def _take(self, slot: Slot, row: int) -> None:
        """Sample this slot's token from its row, emit its text, and finish the slot if the choice is complete."""
        job = slot.job
        assert job is not None and slot.sampler is not None and slot.text is not None
        p = job.params
        token = slot.sampler.sample(self.handle, row)
        if job.track:
            slot.ids.append(token)
            slot.logprob += model_logprob(llama_cpp.llama_get_logits_ith(self.handle, row), self.model.n_vocab, token)
        # A grammar ends where it says so: past its end only end-of-generation is allowed.
        if self.model.is_eog(token) and (not p.ignore_eos or p.grammar is not None):
            self._finish(slot, "stop")
            return
        slot.generated += 1
        entry = None
        if p.logprobs:
            logits = llama_cpp.llama_get_logits_ith(self.handle, row)
            entry = token_logprob(logits, self.model.n_vocab, token, p.top_logprobs, self.model.piece)
        text, entries, hit = slot.text.feed(self.model.piece(token), entry)
        if text or entries:
            job.ticket.emit(Delta(job.index, text, entries))
        if hit:
            self._finish(slot, "stop", flush=False)
        elif slot.generated >= slot.limit:
            self._finish(slot, "length")
        else:
            slot.next_token = token

    def _finish(self, slot: Slot, reason: str, flush: bool = True) -> None:
        job = slot.job
        assert job is not None
        if flush and reason != "cancelled" and slot.text is not None:
            text, entries = slot.text.finish()
            if text or entries:
                job.ticket.emit(Delta(job.index, text, entries))
        seconds = time.perf_counter() - slot.began
        job.ticket.emit(ChoiceDone(job.index, reason, slot.generated, seconds, slot.ids, slot.logprob))
        if slot.sampler is not None:
            slot.sampler.close()
        slot.job, slot.sampler, slot.text, slot.next_token, slot.row = None, None, None, None, -1
        slot.feeding, slot.ids, slot.logprob, slot.scored = [], [], 0.0, []
        slot.last_used = time.monotonic()
        job.ticket.choice_done()

    def _cancel_unstarted(self, job: Job) -> None:
        job.ticket.emit(ChoiceDone(job.index, "cancelled", 0, 0.0))
        job.ticket.choice_done()

    def _fail_batch(self, code: int) -> None:
        """llama_decode failed: the slots in the batch lose their cache and their choices end in an error."""
        log.error("llama_decode returned %d for a batch of %d tokens", code, self.batch.n_tokens)
        error = APIError(500, f"generation failed: llama_decode returned {code}", type="server_error")
        for slot in self.slots:
            if slot.feeding and slot.job is not None:
                llama_cpp.llama_memory_seq_rm(self.mem, slot.seq, -1, -1)
                slot.cached = []
                slot.job.ticket.emit(error)
                self._finish(slot, "cancelled")
