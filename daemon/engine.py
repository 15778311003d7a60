"""The engine: owns the loaded models and runs every generation on one worker thread, many at a time.

A request passes its model's `Gate` (up to `parallel` requests in, `queue_size`
more waiting, the rest get 429), is tokenized off the event loop, and its choices
go to the model's `Runner` (daemon/batch.py), which decodes all of its slots in
one batch a step. Events travel back to the handler through an asyncio queue. A
client that leaves sets the request's cancel flag: waiting choices are dropped
before any prompt evaluation, running ones free their slot at the next step.

Models: each loaded GGUF has its own context and slots. A model counts its
requests (`Resident.users`) and is unloaded only at zero: to make room under
`max_loaded`, after `idle_unload` seconds unused, or once a newer version of its
file was loaded (a rebuilt twin: running requests finish on the old weights).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.batch import END, ChoiceDone, Delta, Job, Runner, Started, Ticket
from daemon.catalog import ModelSpec
from daemon.metrics import EngineMetrics
from daemon.model import check_context
from daemon.schema import MAX_SEQUENCES, APIError, SamplingParams, with_end_bias
from twin.errors import UserError
from twin.threads import llama_threads, physical_cores

__all__ = ["ChoiceDone", "Delta", "Engine", "Generation", "Started"]

log = logging.getLogger("twin.daemon")

GONE_POLL_SECONDS = 0.2  # how often a request checks that its client is still connected


class Gate:
    """Up to `capacity` requests of one model at a time; at most `queue_size` wait in order, the rest get 429."""

    def __init__(self, capacity: int, queue_size: int) -> None:
        self.capacity = capacity
        self.queue_size = queue_size
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def enter(self, gone: asyncio.Event) -> bool:
        """Take a place; False if the client left while waiting for one (then nothing is held)."""
        if self.active < self.capacity and not self._waiters:
            self.active += 1
            return True
        if len(self._waiters) >= self.queue_size:
            raise APIError(
                429,
                f"the server is busy: {len(self._waiters)} requests are already waiting; retry shortly",
                type="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": "1"},
            )
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        left = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({turn, left}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._give_up(turn)
            raise
        finally:
            left.cancel()
        if turn.done():
            return True  # handed over by leave(); a client that also left is cancelled downstream
        self._give_up(turn)
        return False

    def _give_up(self, turn: asyncio.Future[None]) -> None:
        if turn.done() and not turn.cancelled():
            self.leave()  # the place was handed to us just now: pass it on
        else:
            turn.cancel()
            self._waiters.remove(turn)

    def leave(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # the place goes straight to the next in line
                return
        self.active -= 1


@dataclass
class Resident:
    """A loaded model and who uses it."""

    runner: Runner
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)
    retired: bool = False  # a newer version of the same file is loaded: unload when the last user leaves


class Worker:
    """The one thread that touches llama.cpp contexts: runs queued calls, then steps every busy runner once."""

    def __init__(self, threads: Callable[[], int]) -> None:
        self._threads = threads  # llama.cpp threads for the next step (twin.threads.llama_threads: load-following)
        self._calls: deque[Callable[[], None]] = deque()
        self._wake = threading.Condition()
        self._runners: list[Runner] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="twin-engine", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], None]) -> None:
        with self._wake:
            self._calls.append(fn)
            self._wake.notify()

    def add(self, runner: Runner, jobs: list[Job]) -> None:
        def admit() -> None:
            if runner not in self._runners:
                self._runners.append(runner)
            runner.waiting.extend(jobs)

        self.call(admit)

    def remove(self, runner: Runner) -> None:
        def close() -> None:
            if runner in self._runners:
                self._runners.remove(runner)
            runner.close()

        self.call(close)

    def stop(self) -> None:
        """Run the calls still queued (closing runners), then end the thread; runners left are closed here."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()
        for runner in self._runners:
            runner.close()
        self._runners.clear()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._calls and not self._stopping and not any(r.busy() for r in self._runners):
                    self._wake.wait()
                calls, self._calls = list(self._calls), deque()
            for fn in calls:
                try:
                    fn()
                except Exception:
                    log.exception("engine call failed")
            if self._stopping:  # the last calls closed the runners
                return
            busy = [r for r in self._runners if r.busy()]
            threads = self._threads() if busy else 0
            for runner in busy:
                runner.set_threads(threads)  # between steps; a no-op unless the count changed
                try:
                    runner.step()
                except Exception:  # a bug: the runner's requests end in a 500, the others carry on
                    log.exception("decoding step failed on %s", runner.name)
                    runner.reset(APIError(500, "generation failed: internal error", type="server_error"))


class Rerank:
    """Candidates of each choice in, the chosen one out (twin.consensus): what a request with `candidates` > 1 sees.

    Job `c * k + i` is candidate i of choice c. A choice's text waits until its k candidates are done, then the
    one chosen is replayed as choice c; its completion tokens count every candidate's, since every one was
    decoded. Cancelled candidates (the client left) take no part; all cancelled, the choice is too.

    By mutual information (`score` given): the candidates were tracked (their tokens and log p(r | context) came
    with their ChoiceDone), `score(choice, replies)` reads each again after the bare context (False: it cannot,
    the choice is settled by consensus), and the scores come back through `scored`; the request's END waits
    for the last choice to settle. By consensus (`score`
    None): the candidate closest to the others, at once.
    """

    def __init__(
        self, k: int, deliver: Callable[[Any], None], score: Callable[[int, list[list[int]]], bool] | None
    ) -> None:
        self.k = k
        self._deliver = deliver
        self._score = score
        self._deltas: dict[int, list[Delta]] = {}
        self._done: dict[int, ChoiceDone] = {}
        self._waiting: dict[int, tuple[list[int], list[list[Delta]], list[ChoiceDone], dict[int, float]]] = {}
        self._end = False  # the request's END arrived while choices were being scored

    def take(self, event: Any) -> None:
        if isinstance(event, Delta):
            self._deltas.setdefault(event.index, []).append(event)
        elif isinstance(event, ChoiceDone):
            self._done[event.index] = event
            choice = event.index // self.k
            group = range(choice * self.k, (choice + 1) * self.k)
            if all(i in self._done for i in group):
                self._settle(choice, list(group))
        elif event is END and self._waiting:
            self._end = True
        else:
            self._deliver(event)

    def _settle(self, choice: int, group: list[int]) -> None:
        done = [self._done.pop(i) for i in group]
        deltas = [self._deltas.pop(i, []) for i in group]
        kept = [j for j, d in enumerate(done) if d.finish_reason != "cancelled"]
        if self._score is not None and len(kept) > 1:
            self._waiting[choice] = (kept, deltas, done, {})
            if self._score(choice, [done[j].tokens for j in kept]):
                return
            del self._waiting[choice]  # not scored (too long for the context): by consensus
        from twin.consensus import pick

        texts = ["".join(d.text for d in deltas[j]) for j in kept]
        self._replay(choice, kept[pick(texts)] if kept else None, deltas, done)

    def scored(self, choice: int, event: Any) -> None:
        """An event of choice `choice`'s scoring jobs: a candidate's bare log-probability, an error, or their END."""
        kept, deltas, done, bare = self._waiting[choice]
        if isinstance(event, ChoiceDone):
            if event.finish_reason != "cancelled":
                bare[kept[event.index]] = event.logprob
        elif event is END:
            from twin.consensus import pick_mmi

            del self._waiting[choice]
            scored = [j for j in kept if j in bare]
            best = scored[pick_mmi([done[j].logprob for j in scored], [bare[j] for j in scored])] if scored else None
            self._replay(choice, best, deltas, done)
            if self._end and not self._waiting:
                self._deliver(END)
        elif isinstance(event, APIError):
            self._deliver(event)

    def _replay(self, choice: int, best: int | None, deltas: list[list[Delta]], done: list[ChoiceDone]) -> None:
        tokens, seconds = sum(d.completion_tokens for d in done), sum(d.decode_seconds for d in done)
        if best is None:
            self._deliver(ChoiceDone(choice, "cancelled", tokens, seconds))
            return
        for d in deltas[best]:
            self._deliver(Delta(choice, d.text, d.logprobs))
        self._deliver(ChoiceDone(choice, done[best].finish_reason, tokens, seconds))


class Generation:
    """One request's work, consumed as events; leaving the block cancels what is left and waits for it."""

    def __init__(
        self,
        engine: Engine,
        spec: ModelSpec,
        prepare: Callable[[Runner], list[list[int]]],
        params: SamplingParams,
        n: int,
        choices: int,
        gone: Callable[[], bool] | None,
        bare: Callable[[Runner], list[int]] | None = None,
    ) -> None:
        self._engine = engine
        self._bare = bare  # a chat's bare context (twin.consensus.bare_context), tokenized: what MMI scores after
        self._choices = choices
        self._spec = spec
        self._prepare = prepare
        self._params = params
        self._n = n
        self._gone = gone
        self._left = asyncio.Event()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._finished = asyncio.Event()
        self._ticket: Ticket | None = None
        self._watch: asyncio.Task[None] | None = None
        self._gate: Gate | None = None
        self._resident: Resident | None = None
        self._arrived = time.monotonic()
        self._rerank: Rerank | None = None

    async def __aenter__(self) -> Generation:
        loop = asyncio.get_running_loop()
        self._watch = asyncio.create_task(self._watch_client())
        try:
            self._gate = self._engine.gate(self._spec)
            if not await self._gate.enter(self._left):
                self._gate = None
                self._abandon()
                return self
            self._resident = await self._engine.acquire(self._spec)
            runner = self._resident.runner
            p = with_end_bias(self._params, self._spec.end_bias, runner.model.end_ids)
            k = self._candidates(p)
            mmi = k > 1 and p.rerank == "mmi" and self._bare is not None and isinstance(runner, Runner)
            prompts = await loop.run_in_executor(self._engine.helpers, self._prepare, runner)
            bare = await loop.run_in_executor(self._engine.helpers, self._bare_tokens, runner) if mmi else None
            mmi = bare is not None
        except BaseException:
            await self._release()
            raise
        if self._left.is_set():
            self._abandon()
            return self

        def emitter(take: Callable[[Any], None]) -> Callable[[Any], None]:
            def emit(event: Any) -> None:
                try:
                    loop.call_soon_threadsafe(take, event)
                except RuntimeError:  # the event loop is gone (shutdown): nobody is listening any more
                    pass

            return emit

        self._ticket = ticket = Ticket(
            emitter(self._take), sum(len(t) for t in prompts), len(prompts) * self._n * k, submitted=self._arrived
        )

        def score(choice: int, replies: list[list[int]]) -> bool:
            """Each candidate of `choice` read after the bare context: its log p(reply), to Rerank.scored."""
            assert self._rerank is not None and bare is not None
            if len(bare) + max(len(r) for r in replies) > runner.n_ctx:
                return False
            scoring = Ticket(
                emitter(functools.partial(self._rerank.scored, choice)), 0, len(replies), ticket.cancel, started=True
            )
            jobs = [Job(scoring, i, bare + r, p, None, score_from=len(bare)) for i, r in enumerate(replies)]
            self._engine.worker.add(runner, jobs)
            return True

        if k > 1:
            self._rerank = Rerank(k, self._deliver, score if mmi else None)
        # Choice j's candidate c is seeded seed + j·k + c: with k = 1 choice j keeps seed + j, and the candidates
        # of a seeded request are the choices of the same request with n = k.
        jobs = [
            Job(ticket, (i * self._n + j) * k + c, tokens, p, None if p.seed is None else p.seed + j * k + c, mmi)
            for i, tokens in enumerate(prompts)
            for j in range(self._n)
            for c in range(k)
        ]
        self._engine.worker.add(runner, jobs)
        return self

    def _bare_tokens(self, runner: Runner) -> list[int] | None:
        """The bare context's tokens; None (rerank by consensus) where the chat template refuses it."""
        assert self._bare is not None
        try:
            return self._bare(runner)
        except APIError as e:
            log.warning("the bare context for mutual information is refused (%s): reranking by consensus", e)
            return None

    def _candidates(self, p: SamplingParams) -> int:
        """Sampled replies per choice: the request's `candidates`, else its model's default (within MAX_SEQUENCES
        of the request); greedy decoding draws one, since its candidates would all be the same reply."""
        if p.temperature == 0:
            return 1
        if p.candidates is not None:
            return p.candidates
        return max(1, min(self._spec.candidates, MAX_SEQUENCES // self._n))

    def _take(self, event: Any) -> None:
        """An event of the runner: through the reranking when the request samples candidates."""
        if self._rerank is not None:
            self._rerank.take(event)
        else:
            self._deliver(event)

    def _deliver(self, event: Any) -> None:
        self._queue.put_nowait(event)
        if event is END:
            self._finished.set()

    def _abandon(self) -> None:
        """The client left before anything ran: report every choice cancelled, evaluate nothing."""
        for i in range(self._choices):
            self._deliver(ChoiceDone(i, "cancelled", 0, 0.0))
        self._deliver(END)

    async def _watch_client(self) -> None:
        if self._gone is None:
            return
        while not self._gone():
            await asyncio.sleep(GONE_POLL_SECONDS)
        self._left.set()
        if self._ticket is not None:
            self._ticket.cancel.set()

    async def events(self) -> AsyncIterator[Any]:
        while True:
            event = await self._queue.get()
            if event is END:
                return
            if isinstance(event, APIError):
                raise event
            yield event

    def remaining(self) -> list[Any]:
        """After the block: the events nobody consumed (a generation cut short still reports its token count)."""
        out = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is not END and not isinstance(event, APIError):
                out.append(event)
        return out

    async def __aexit__(self, *exc: object) -> None:
        if self._ticket is not None:
            self._ticket.cancel.set()
            await asyncio.shield(self._finished.wait())
        await self._release()

    async def _release(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self._resident is not None:
            resident, self._resident = self._resident, None
            await self._engine.release(resident)
        if self._gate is not None:
            gate, self._gate = self._gate, None
            gate.leave()


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
        parallel: int = 4,
        requantize: str = "auto",
        idle_unload: float = 0.0,
        rescan: Callable[[], dict[str, ModelSpec]] | None = None,
    ) -> None:
        self.catalog = catalog
        self._rescan = rescan
        self.queue_size = queue_size
        self.max_loaded = max_loaded
        self.n_ctx = n_ctx
        self.parallel = parallel
        self.requantize = requantize  # "auto": q4_1/q5_1 files are decoded from a q8_0 copy (daemon.weights)
        self.idle_unload = idle_unload
        self.requested_threads = threads  # 0: follow the load (twin.threads.llama_threads) at every step
        self.threads = threads or physical_cores()  # what a context is created with, before its first step
        self.metrics = EngineMetrics()
        self.job_training = False  # a fine-tuning job of this daemon trains: fewer threads (twin.threads)
        self.worker = Worker(lambda: llama_threads(self.requested_threads, self.job_training))
        self.helpers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="twin-prepare")
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-load")
        self._gates: dict[Path, Gate] = {}
        self._loaded: OrderedDict[tuple[Path, int], Resident] = OrderedDict()
        self._changed: asyncio.Condition | None = None
        self._reaper: asyncio.Task[None] | None = None
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

    def gate(self, spec: ModelSpec) -> Gate:
        gate = self._gates.get(spec.gguf)
        if gate is None:
            gate = self._gates[spec.gguf] = Gate(self.parallel, self.queue_size)
        return gate

    @property
    def queue_depth(self) -> int:
        return sum(g.waiting for g in self._gates.values())

    def loaded_paths(self) -> list[Path]:
        return [path for path, _ in self._loaded]

    def slots(self) -> list[tuple[str, int, int]]:
        """(model file, busy slots, slots) of each loaded model, for /metrics."""
        out = []
        for res in self._loaded.values():
            slots = res.runner.slots
            out.append((res.runner.name, sum(s.job is not None for s in slots), len(slots)))
        return out

    # --- model lifecycle (event loop) ------------------------------------------------------------

    async def acquire(self, spec: ModelSpec) -> Resident:
        """The loaded model for `spec`, counted as used until `release`; loads it (making room) if needed.

        Keyed by path and modification time, so a rebuilt twin's new GGUF replaces the old one.
        """
        try:
            key = (spec.gguf, spec.gguf.stat().st_mtime_ns)
        except OSError as e:
            raise APIError(
                503, f"the model file of '{spec.id}' is gone ({e.strerror}): rebuild it", type="server_error"
            ) from None
        if self._changed is None:
            self._changed = asyncio.Condition()
        if self._reaper is None and self.idle_unload > 0:
            self._reaper = asyncio.create_task(self._unload_idle())
        res = self._loaded.get(key)
        if res is None:
            async with self._changed:  # one load at a time
                while (res := self._loaded.get(key)) is None:
                    self._retire_older(key)
                    if self._make_room():
                        res = await self._load(key, spec.lora)
                        break
                    await self._changed.wait()
        res.users += 1
        res.last_used = time.monotonic()
        self._loaded.move_to_end(key)
        return res

    async def release(self, res: Resident) -> None:
        res.users -= 1
        res.last_used = time.monotonic()
        if res.retired and res.users == 0:
            self._unload(res)
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    async def _load(self, key: tuple[Path, int], lora: Path | None) -> Resident:
        path = key[0]
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        runner = await loop.run_in_executor(
            self._loader,
            lambda: open_runner(path, self.n_ctx, self.threads, self.parallel, self.metrics, self.requantize, lora),
        )
        log.info(
            "loaded %s in %.1fs (context %d, %d slots)",
            path.name,
            time.perf_counter() - started,
            runner.n_ctx,
            len(runner.slots),
        )
        res = self._loaded[key] = Resident(runner)
        return res

    def _retire_older(self, key: tuple[Path, int]) -> None:
        for other_key, res in list(self._loaded.items()):
            if other_key[0] == key[0] and other_key != key and not res.retired:
                res.retired = True
                log.info("%s changed on disk: the new version replaces the old once its requests finish", key[0].name)
                if res.users == 0:
                    self._unload(res)

    def _make_room(self) -> bool:
        """Unload idle models until one more fits under max_loaded; False if every loaded one is in use."""
        while sum(not r.retired for r in self._loaded.values()) >= self.max_loaded:
            idle = [r for r in self._loaded.values() if not r.retired and r.users == 0]
            if not idle:
                return False
            self._unload(idle[0])  # the dict is in least-recently-used order
        return True

    def _unload(self, res: Resident) -> None:
        for key, other in list(self._loaded.items()):
            if other is res:
                del self._loaded[key]
        log.info("unloading %s", res.runner.name)
        self.worker.remove(res.runner)

    async def _unload_idle(self) -> None:
        while True:
            await asyncio.sleep(min(max(self.idle_unload / 4, 0.05), 30.0))
            now = time.monotonic()
            for res in list(self._loaded.values()):
                if res.users == 0 and now - res.last_used >= self.idle_unload:
                    log.info("%s unused for %.0fs", res.runner.name, now - res.last_used)
                    self._unload(res)

    async def reload(self, model_id: str) -> None:
        """Load the current GGUF of `model_id` (a rebuilt twin); older versions are freed once their requests end."""
        res = await self.acquire(self.spec(model_id))
        await self.release(res)

    def set_job_training(self, training: bool) -> None:
        """A fine-tuning job started or ended: the thread count follows from the next step on (twin.threads)."""
        self.job_training = training  # the worker applies it before each step

    async def preload(self, model_id: str) -> None:
        """Load one model before answering /health with 200; requests queue behind it."""
        res = await self.acquire(self.spec(model_id))
        await self.release(res)
        self.ready = True

    # --- requests --------------------------------------------------------------------------------

    def chat(
        self,
        model_id: str,
        messages: list[dict[str, str]],
        params: SamplingParams,
        n: int,
        gone: Callable[[], bool] | None = None,
        param: str = "messages",
    ) -> Generation:
        """A chat's generation; `param` is the request field an error about the conversation names."""
        spec = self.spec(model_id)
        if spec.system_prompt:
            messages = _with_system(spec.system_prompt, messages)

        def prepare(runner: Runner) -> list[list[int]]:
            tokens = runner.model.chat_tokens(messages, param)
            check_context(runner.n_ctx, len(tokens), params.max_tokens, param)
            runner.check(params, spec.id)
            return [tokens]

        def bare(runner: Runner) -> list[int]:
            from twin.consensus import bare_context

            return runner.model.chat_tokens(bare_context(messages), param)

        return Generation(self, spec, prepare, params, n, n, gone, bare)

    def complete(
        self,
        model_id: str,
        prompts: list[str],
        params: SamplingParams,
        n: int,
        gone: Callable[[], bool] | None = None,
    ) -> Generation:
        spec = self.spec(model_id)

        def prepare(runner: Runner) -> list[list[int]]:
            out = []
            for text in prompts:
                tokens = runner.model.text_tokens(text)
                check_context(runner.n_ctx, len(tokens), params.max_tokens, "prompt")
                out.append(tokens)
            runner.check(params, spec.id)
            return out

        return Generation(self, spec, prepare, params, n, n * len(prompts), gone)

    def close(self) -> None:
        """Free every model; from any thread, once no request is running."""
        if self._reaper is not None:
            try:
                self._reaper.get_loop().call_soon_threadsafe(self._reaper.cancel)
            except RuntimeError:  # its loop is already closed
                pass
        for res in self._loaded.values():
            self.worker.remove(res.runner)
        self.worker.stop()
        self._loaded.clear()
        self.helpers.shutdown(wait=True, cancel_futures=True)
        self._loader.shutdown(wait=True, cancel_futures=True)


def open_runner(
    path: Path,
    n_ctx: int,
    threads: int,
    parallel: int,
    metrics: EngineMetrics,
    requantize: str = "auto",
    lora: Path | None = None,
) -> Runner:
    """llama.cpp's runner for a GGUF file (with its LoRA adapter GGUF, if any), the ONNX backend's for an exported
    folder (both speak Runner's interface)."""
    if path.is_dir():
        from daemon.onnx_runner import OnnxRunner  # onnxruntime-genai is loaded only where an ONNX twin is served

        return OnnxRunner(path, n_ctx, threads, parallel, metrics)  # type: ignore[return-value]
    return Runner(path, n_ctx, threads, parallel, metrics, requantize, lora)


def _with_system(system: str, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Put a variant's system prompt first, merged with the caller's own system message if there is one."""
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{system}\n\n{messages[0]['content']}"}, *messages[1:]]
    return [{"role": "system", "content": system}, *messages]
