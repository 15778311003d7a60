"""The ONNX backend's runner: the same interface as daemon/batch.py's llama.cpp Runner, on onnxruntime-genai.

onnxruntime-genai has no continuous batching across requests, so each slot owns
one `Sequence` (its own KV cache) and a step advances every busy slot by one
forward pass in turn: admit waiting choices (the slot whose cache shares the
longest prefix, as the llama.cpp runner does), read a new prompt in one pass,
sample each slot's token, emit its text, free what finished or was cancelled.
Only the engine's worker thread calls `step`. No torch and no llama.cpp context.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from daemon.batch import ChoiceDone, Delta, Job, Started, choose_slot, common_prefix
from daemon.fingerprint import gguf_sha256, system_fingerprint
from daemon.metrics import EngineMetrics
from daemon.onnx_sampling import LogitSampler, check_onnx_params
from daemon.sampling import TextTracker, check_logit_bias
from daemon.schema import APIError, SamplingParams
from twin.onnxgenai import OnnxModel, Sequence

log = logging.getLogger("twin.daemon")


class OnnxPrompts:
    """Prompt tokenization for the engine (`runner.model`), as daemon.model.LoadedModel offers it for a GGUF."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.end_ids = sorted(model.eos_ids)

    def chat_tokens(self, messages: list[dict[str, str]], param: str = "messages") -> list[int]:
        try:
            return self.model.chat.tokens(messages)
        except Exception as e:  # a template's raise_exception(), e.g. roles out of order
            raise APIError(400, f"the model's chat template rejected the messages: {e}", param=param) from None

    def text_tokens(self, text: str) -> list[int]:
        return self.model.tokenize(text, special=False, add_special=self.model.add_bos)


@dataclass
class OnnxSlot:
    seq: Sequence | None = None  # created on first use: each holds a KV cache of n_ctx tokens
    last_used: float = 0.0
    job: Job | None = None
    sampler: LogitSampler | None = None
    text: TextTracker | None = None
    logits: np.ndarray | None = None  # what the next token is sampled from; None while the prompt is unread
    generated: list[int] = field(default_factory=list)
    shown: str = ""  # the text of `generated` emitted so far
    limit: int = 0
    began: float = 0.0

    @property
    def cached(self) -> list[int]:
        return self.seq.tokens if self.seq is not None else []


class OnnxRunner:
    """An exported ONNX folder with `parallel` slots; `step` advances all of them by one token."""

    backend = "onnx"

    def __init__(self, path: Path, n_ctx: int, threads: int, parallel: int, metrics: EngineMetrics) -> None:
        self.onnx = OnnxModel(path)
        self.model = OnnxPrompts(self.onnx)
        self.fingerprint = system_fingerprint(gguf_sha256(path))
        self.metrics = metrics
        self.n_ctx = min(n_ctx, self.onnx.n_ctx_train or n_ctx)
        self.slots = [OnnxSlot() for _ in range(parallel)]
        self.waiting: deque[Job] = deque()
        self.name = path.name if path.name != "onnx" else f"{path.parent.name}/onnx"
        self.threads = threads

    def check(self, params: SamplingParams, model_id: str) -> None:
        check_onnx_params(params, model_id)
        check_logit_bias(self.onnx.n_vocab, params)

    # --- called from the worker thread only ------------------------------------------------------

    def busy(self) -> bool:
        return bool(self.waiting) or any(s.job is not None for s in self.slots)

    def set_threads(self, threads: int) -> None:
        self.threads = threads  # onnxruntime's intra-op pool is fixed when the model loads

    def step(self) -> None:
        started = time.perf_counter()
        for slot in self.slots:
            if slot.job is not None and slot.job.ticket.cancel.is_set():
                self._finish(slot, "cancelled")
        self._admit()
        generated = 0
        for slot in self.slots:
            if slot.job is None:
                continue
            if slot.logits is None:
                self._read_prompt(slot)
            self._take(slot)
            generated += 1
        if generated:
            self.metrics.record_step(self.name, generated, time.perf_counter() - started)

    def reset(self, error: APIError) -> None:
        for job in self.waiting:
            job.ticket.emit(error)
            self._cancel_unstarted(job)
        self.waiting.clear()
        for slot in self.slots:
            if slot.job is not None:
                slot.job.ticket.emit(error)
                self._finish(slot, "cancelled")
            if slot.seq is not None:
                slot.seq.close()
                slot.seq = None

    def close(self) -> None:
        for job in self.waiting:
            self._cancel_unstarted(job)
        self.waiting.clear()
        for slot in self.slots:
            if slot.job is not None:
                self._finish(slot, "cancelled")
            if slot.seq is not None:
                slot.seq.close()
                slot.seq = None
        self.onnx.close()

    # --- the parts of a step ---------------------------------------------------------------------

    def _admit(self) -> None:
        for job in [j for j in self.waiting if j.ticket.cancel.is_set()]:
            self.waiting.remove(job)
            self._cancel_unstarted(job)
        free = [s for s in self.slots if s.job is None]
        while free and self.waiting:
            job = self.waiting.popleft()
            slot = choose_slot(free, job.tokens)
            free.remove(slot)
            self._start(slot, job)

    def _start(self, slot: OnnxSlot, job: Job) -> None:
        ticket = job.ticket
        if not ticket.started:
            ticket.started = True
            self.metrics.record_queue_wait(time.monotonic() - ticket.submitted)
            ticket.emit(Started(ticket.prompt_tokens, self.fingerprint))
        p = job.params
        budget = self.n_ctx - len(job.tokens)
        slot.job, slot.sampler, slot.text = job, LogitSampler(p, job.seed), TextTracker(p.stop)
        slot.limit = min(p.max_tokens, budget) if p.max_tokens is not None else budget
        slot.generated, slot.shown, slot.logits, slot.began = [], "", None, time.perf_counter()

    def _read_prompt(self, slot: OnnxSlot) -> None:
        assert slot.job is not None
        tokens = slot.job.tokens
        if slot.seq is None:
            slot.seq = self.onnx.sequence(self.n_ctx)
        # Keep at least the last prompt token to evaluate: its logits give the first generated token.
        keep = min(common_prefix(slot.seq.tokens, tokens), len(tokens) - 1)
        slot.seq.rewind(keep)
        slot.logits = slot.seq.feed(tokens[keep:])
        self.metrics.record_prompt(self.name, evaluated=len(tokens) - keep, reused=keep)

    def _take(self, slot: OnnxSlot) -> None:
        job, seq = slot.job, slot.seq
        assert job is not None and seq is not None and slot.sampler is not None and slot.text is not None
        assert slot.logits is not None
        token = slot.sampler.sample(slot.logits)
        if token in self.onnx.eos_ids and not job.params.ignore_eos:
            self._finish(slot, "stop")
            return
        slot.generated.append(token)
        text, _, hit = slot.text.feed(self._new_text(slot).encode("utf-8"), None)
        if text:
            job.ticket.emit(Delta(job.index, text))
        if hit:
            self._finish(slot, "stop", flush=False)
        elif len(slot.generated) >= slot.limit:
            self._finish(slot, "length")
        else:
            slot.logits = seq.feed([token])

    def _new_text(self, slot: OnnxSlot) -> str:
        """What the newest token adds to the decoded text (held back while it ends inside a UTF-8 character)."""
        text = self.onnx.decode(slot.generated)
        if text.endswith("\ufffd") or not text.startswith(slot.shown):
            return ""
        new, slot.shown = text[len(slot.shown) :], text
        return new

    def _finish(self, slot: OnnxSlot, reason: str, flush: bool = True) -> None:
        job = slot.job
        assert job is not None
        if flush and reason != "cancelled" and slot.text is not None:
            rest = self.onnx.decode(slot.generated)[len(slot.shown) :]
            tail, _, _ = slot.text.feed(rest.encode("utf-8"), None) if rest else ("", [], False)
            text, _ = slot.text.finish()
            if tail + text:
                job.ticket.emit(Delta(job.index, tail + text))
        job.ticket.emit(ChoiceDone(job.index, reason, len(slot.generated), time.perf_counter() - slot.began))
        slot.job, slot.sampler, slot.text, slot.logits = None, None, None, None
        slot.last_used = time.monotonic()
        job.ticket.choice_done()

    def _cancel_unstarted(self, job: Job) -> None:
        job.ticket.emit(ChoiceDone(job.index, "cancelled", 0, 0.0))
        job.ticket.choice_done()
