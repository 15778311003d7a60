"""The engine: owns the llama.cpp models and runs every generation, one at a time, off the event loop.

Requests pass one bounded queue (`Gate`) in front of a single worker thread; a
full queue answers 429. Tokens travel from the worker to the handler through an
asyncio queue, and the handler can stop a generation between two tokens (a
client that went away) by setting the job's cancel event.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from daemon.catalog import ModelSpec
from daemon.fingerprint import gguf_sha256, system_fingerprint
from daemon.schema import APIError, SamplingParams
from twin import llamacpp
from twin.chatformat import ChatTokenizer
from twin.errors import UserError
from twin.threads import llama_threads, physical_cores

log = logging.getLogger("twin.daemon")


@dataclass
class Started:
    prompt_tokens: int
    fingerprint: str = ""  # system_fingerprint of the GGUF that answers (daemon.fingerprint)


@dataclass
class Delta:
    index: int
    text: str


@dataclass
class ChoiceDone:
    index: int
    finish_reason: str  # "stop", "length", or "cancelled" (never sent to a client)
    completion_tokens: int
    decode_seconds: float


_END = object()


class StopMatcher:
    """Cuts generated text at the first stop sequence, holding back what could be the start of one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buf = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add text; return (text safe to emit, whether a stop sequence was hit)."""
        self.buf += text
        if not self.stops:
            out, self.buf = self.buf, ""
            return out, False
        hits = [i for i in (self.buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buf = self.buf[: min(hits)], ""
            return out, True
        keep = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buf)), keep, -1):
                if self.buf.endswith(s[:k]):
                    keep = k
                    break
        cut = len(self.buf) - keep
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


class LoadedModel:
    """One GGUF loaded into llama.cpp, with its chat template and context window."""

    def __init__(self, path: Path, n_ctx: int, threads: int) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        n_ctx = min(n_ctx, _context_length(path) or n_ctx)
        self.llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=min(512, n_ctx),
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        self.path = path
        self.fingerprint = system_fingerprint(gguf_sha256(path))
        self.threads = threads
        self.n_ctx = self.llm.n_ctx()
        self._vocab = llamacpp.vocab(self.llm)
        self.chat = ChatTokenizer.from_llama(self.llm)
        self.add_bos = llamacpp.adds_bos(self.llm)

    def close(self) -> None:
        self.llm.close()

    def set_threads(self, threads: int) -> None:
        """On the worker thread, between generations: llama.cpp takes the new count from the next decode on."""
        if threads != self.threads:
            self.llm.n_threads = self.llm.n_threads_batch = threads
            self._llama_cpp.llama_set_n_threads(self.llm.ctx, threads, threads)
            self.threads = threads

    def chat_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            # Templates carry their own special tokens (as in transformers' apply_chat_template): no extra BOS.
            # Message contents are plain text: `<|im_end|>` typed by a user cannot close its turn.
            return self.chat.tokens(messages)
        except Exception as e:  # a template's raise_exception(), e.g. roles out of order
            raise APIError(400, f"the model's chat template rejected the messages: {e}", param="messages") from None

    def text_tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=self.add_bos, special=False)

    def check_context(self, prompt_tokens: int, max_tokens: int | None, param: str) -> None:
        asked = prompt_tokens + (max_tokens or 0)
        if prompt_tokens >= self.n_ctx or (max_tokens is not None and asked > self.n_ctx):
            detail = f"{prompt_tokens} in the {param}" + (f", {max_tokens} in the completion" if max_tokens else "")
            raise APIError(
                400,
                f"This model's maximum context length is {self.n_ctx} tokens. However, you requested "
                f"{max(asked, prompt_tokens)} tokens ({detail}). Please reduce the length of the {param} or completion.",
                param=param,
                code="context_length_exceeded",
            )

    def generate(
        self,
        tokens: list[int],
        p: SamplingParams,
        cancel: threading.Event,
        emit: Callable[[str], None],
    ) -> ChoiceDone:
        """Generate one choice, emitting text as it becomes final; stops at EOS, a stop sequence, the budget or cancel."""
        llm = self.llm
        llm.set_seed(p.seed & 0xFFFFFFFF if p.seed is not None else self._llama_cpp.LLAMA_DEFAULT_SEED)
        budget = self.n_ctx - len(tokens)
        limit = min(p.max_tokens, budget) if p.max_tokens is not None else budget
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopMatcher(p.stop)
        count, reason, hit = 0, "length", False
        start = time.perf_counter()
        generator = llm.generate(
            tokens,
            top_k=p.top_k,
            top_p=p.top_p,
            min_p=p.min_p,
            temp=p.temperature,
            repeat_penalty=p.repetition_penalty,
            frequency_penalty=p.frequency_penalty,
            presence_penalty=p.presence_penalty,
        )
        try:
            for token in generator if limit > 0 else ():
                if cancel.is_set():
                    reason = "cancelled"
                    break
                if not p.ignore_eos and self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    reason = "stop"
                    break
                count += 1
                text, hit = stops.feed(decoder.decode(llm.detokenize([token])))
                if text:
                    emit(text)
                if hit:
                    reason = "stop"
                    break
                if count >= limit:
                    break
        finally:
            generator.close()
        if not hit:
            stops.feed(decoder.decode(b"", final=True))
            tail = stops.flush()
            if tail:
                emit(tail)
        return ChoiceDone(0, reason, count, time.perf_counter() - start)


def _context_length(path: Path) -> int | None:
    """The model's trained context length, read from the GGUF header without loading the weights."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
        arch_field = reader.fields.get("general.architecture")
        if arch_field is None:
            return None
        arch = arch_field.contents()
        field = reader.fields.get(f"{arch}.context_length")
        return int(field.contents()) if field is not None else None
    except Exception:  # an unusual header: let llama.cpp decide
        return None


class Gate:
    """One generation at a time; at most `queue_size` requests wait, the rest get 429."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.waiting = 0
        self._lock = asyncio.Lock()

    async def enter(self) -> None:
        if self._lock.locked() and self.waiting >= self.queue_size:
            raise APIError(
                429,
                f"the server is busy: {self.waiting} requests are already waiting; retry shortly",
                type="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": "1"},
            )
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1

    def leave(self) -> None:
        self._lock.release()


class Generation:
    """One request's work on the worker thread, consumed as events; leaving the block cancels and waits for it."""

    def __init__(self, engine: Engine, job: Callable[[threading.Event, Callable[[Any], None]], None]) -> None:
        self._engine = engine
        self._job = job
        self.cancel = threading.Event()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._future: asyncio.Future[None] | None = None

    async def __aenter__(self) -> Generation:
        await self._engine.gate.enter()
        loop = asyncio.get_running_loop()

        def emit(event: Any) -> None:
            loop.call_soon_threadsafe(self._queue.put_nowait, event)

        def run() -> None:
            try:
                self._job(self.cancel, emit)
            except APIError as e:
                emit(e)
            except Exception as e:  # a bug: logged with its traceback, answered as a 500
                log.exception("generation failed")
                emit(APIError(500, f"generation failed: {e}", type="server_error"))
            finally:
                emit(_END)

        self._future = loop.run_in_executor(self._engine.executor, run)
        return self

    async def events(self) -> AsyncIterator[Any]:
        while True:
            event = await self._queue.get()
            if event is _END:
                return
            if isinstance(event, APIError):
                raise event
            yield event

    def remaining(self) -> list[Any]:
        """After the block: the events nobody consumed (a generation cut short still reports its token count)."""
        out = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is not _END and not isinstance(event, APIError):
                out.append(event)
        return out

    async def __aexit__(self, *exc: object) -> None:
        self.cancel.set()
        try:
            if self._future is not None:
                await asyncio.shield(self._future)
        finally:
            self._engine.gate.leave()


class Engine:
    """Serves the models of a catalog; keeps up to `max_loaded` GGUFs in memory, loading others on demand."""

    def __init__(
        self,
        catalog: dict[str, ModelSpec],
        *,
        queue_size: int,
        max_loaded: int,
        n_ctx: int,
        threads: int,
        rescan: Callable[[], dict[str, ModelSpec]] | None = None,
    ) -> None:
        self.catalog = catalog
        self._rescan = rescan
        self.max_loaded = max_loaded
        self.n_ctx = n_ctx
        self.requested_threads = threads  # 0: follow the load (twin.threads.llama_threads) before each request
        self.threads = threads or physical_cores()
        self.gate = Gate(queue_size)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-engine")
        self._loaded: OrderedDict[tuple[Path, int], LoadedModel] = OrderedDict()
        self.ready = False

    def refresh(self) -> None:
        """Pick up twins built since the daemon started (their twin.toml appeared or changed)."""
        if self._rescan is None:
            return
        try:
            self.catalog = self._rescan()
        except UserError as e:  # e.g. the primary twin's files vanished: keep serving what we had
            log.warning("could not rescan the twins: %s", e)

    def spec(self, model_id: str) -> ModelSpec:
        spec = self.catalog.get(model_id)
        if spec is None:
            self.refresh()
            spec = self.catalog.get(model_id)
        if spec is None:
            known = ", ".join(sorted(self.catalog))
            raise APIError(
                404,
                f"The model '{model_id}' does not exist on this server (available: {known})",
                param="model",
                code="model_not_found",
            )
        return spec

    def set_threads(self, threads: int) -> None:
        """Generate with `threads` (0: follow the load) from the next request on: fewer while a job trains."""
        self.requested_threads = threads  # each request applies it as it starts (_run)

    async def reload(self, model_id: str) -> None:
        """Load the current GGUF of `model_id` (a rebuilt twin) and free its older versions.

        Requests already running finish on the model they started with (the worker
        runs one generation at a time, and this waits for its turn in the gate);
        every request after this one gets the new file.
        """
        spec = self.spec(model_id)
        await self.gate.enter()
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, self._model, spec)
        finally:
            self.gate.leave()

    def loaded_paths(self) -> list[Path]:
        return [path for path, _ in self._loaded]

    def _model(self, spec: ModelSpec) -> LoadedModel:
        """On the worker thread: the loaded model for `spec`, loading it (and evicting the least recent) if needed.

        Keyed by path and modification time, so a rebuilt twin's new GGUF replaces the old one.
        """
        try:
            key = (spec.gguf, spec.gguf.stat().st_mtime_ns)
        except OSError as e:
            raise APIError(
                503, f"the model file of '{spec.id}' is gone ({e.strerror}): rebuild it", type="server_error"
            ) from None
        model = self._loaded.get(key)
        if model is not None:
            self._loaded.move_to_end(key)
            return model
        for stale in [k for k in self._loaded if k[0] == spec.gguf]:  # an older build of this file: nobody uses it now
            old = self._loaded.pop(stale)
            log.info("unloading the previous build of %s", old.path.name)
            old.close()
        while len(self._loaded) >= self.max_loaded:
            _, old = self._loaded.popitem(last=False)
            log.info("unloading %s", old.path.name)
            old.close()
        started = time.perf_counter()
        model = LoadedModel(spec.gguf, self.n_ctx, self.threads)
        log.info("loaded %s in %.1fs (context %d)", spec.gguf.name, time.perf_counter() - started, model.n_ctx)
        self._loaded[key] = model
        return model

    async def preload(self, model_id: str) -> None:
        """Load one model before answering /health with 200; requests queue behind it."""
        spec = self.spec(model_id)
        await self.gate.enter()
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, self._model, spec)
        finally:
            self.gate.leave()
        self.ready = True

    def chat(self, model_id: str, messages: list[dict[str, str]], params: SamplingParams, n: int) -> Generation:
        spec = self.spec(model_id)
        if spec.system_prompt:
            messages = _with_system(spec.system_prompt, messages)

        def prepare(model: LoadedModel) -> list[list[int]]:
            tokens = model.chat_tokens(messages)
            model.check_context(len(tokens), params.max_tokens, "messages")
            return [tokens]

        return Generation(self, lambda cancel, emit: self._run(spec, prepare, params, n, cancel, emit))

    def complete(self, model_id: str, prompts: list[str], params: SamplingParams, n: int) -> Generation:
        spec = self.spec(model_id)

        def prepare(model: LoadedModel) -> list[list[int]]:
            out = []
            for text in prompts:
                tokens = model.text_tokens(text)
                model.check_context(len(tokens), params.max_tokens, "prompt")
                out.append(tokens)
            return out

        return Generation(self, lambda cancel, emit: self._run(spec, prepare, params, n, cancel, emit))

    def _run(
        self,
        spec: ModelSpec,
        prepare: Callable[[LoadedModel], list[list[int]]],
        params: SamplingParams,
        n: int,
        cancel: threading.Event,
        emit: Callable[[Any], None],
    ) -> None:
        model = self._model(spec)
        model.set_threads(llama_threads(self.requested_threads))
        prompts = prepare(model)
        emit(Started(sum(len(t) for t in prompts), model.fingerprint))
        index = 0
        for tokens in prompts:
            for j in range(n):
                p = params if params.seed is None else replace(params, seed=params.seed + j)
                i = index
                done = model.generate(tokens, p, cancel, lambda text, i=i: emit(Delta(i, text)))  # type: ignore[misc]  # i bound per turn
                emit(replace(done, index=i))
                index += 1
                if cancel.is_set():
                    return

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        for model in self._loaded.values():
            model.close()
        self._loaded.clear()


def _with_system(system: str, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Put a variant's system prompt first, merged with the caller's own system message if there is one."""
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{system}\n\n{messages[0]['content']}"}, *messages[1:]]
    return [{"role": "system", "content": system}, *messages]
