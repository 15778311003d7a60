"""`twin eval`: measure every variant of a twin on its validation split and write the report.

The recipe reads top to bottom: pick the twin and its samples, find the
variants (missing ones are reported with the command that builds them), then
for each variant perplexity and replies — the transformers ones in this
process, the served GGUF's perplexity in llama.cpp and its replies through the
daemon — then overlap, style and the human ratings, and the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from trainer.evaluation import report
from trainer.evaluation.collapse import measure, participants
from trainer.evaluation.evalset import EvalSample, line_hashes, load_samples
from trainer.evaluation.generation import CHAT_DEFAULT, Decoding, daemon_generate, hf_generate
from trainer.evaluation.overlap import overlap
from trainer.evaluation.perplexity import gguf_perplexity, hf_perplexity, onnx_perplexity
from trainer.evaluation.ratings import summarize
from trainer.evaluation.results import EvalResult, VariantResult
from trainer.evaluation.style import compare_style, style_means
from trainer.evaluation.variants import find_variants
from twin import paths, registry
from twin.config import ChatSettings
from twin.dataset import VAL, val_path
from twin.errors import UserError

EXAMPLES = 10
REBUILD = {"prompt": "twin persona", "lora": "twin train", "gguf": "twin convert", "onnx": "twin convert --format onnx"}


@dataclass
class EvalConfig:
    """What `twin eval` takes; each field is the command-line option of the same name."""

    name: str | None = None  # the twin; None = the only twin with a validation split
    limit: int = 200  # validation samples evaluated (spread evenly over val.jsonl)
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    repetition_penalty: float = 1.2
    seed: int = 0
    max_context_chars: int = 2000  # context given to every variant: the newest messages within this many characters
    batch_size: int = 8  # transformers generation batch
    threads: int = 0  # llama.cpp threads (the GGUF's perplexity, a daemon started here); 0 = their default
    sampled: bool = True  # also write the replies with the chat default (sampled, seeded) when decoding greedily
    # sampled replies: draws per sample, one kept by `rerank` (twin.consensus); None: as the twin is served
    # (twin.toml [serve] candidates, which `twin build` sets), so the figures are those of what people chat with
    candidates: int | None = None
    rerank: str = "mmi"
    progress: bool = True
    chat: ChatSettings = field(default_factory=ChatSettings)  # where a running daemon may already be

    def __post_init__(self) -> None:
        if self.name is not None:
            paths.check_name(self.name)
        _check(1 <= self.limit <= 100_000, "limit", "must be between 1 and 100000", self.limit)
        _check(1 <= self.max_new_tokens <= 2048, "max-new-tokens", "must be between 1 and 2048", self.max_new_tokens)
        _check(0 <= self.temperature <= 2, "temperature", "must be between 0 (greedy) and 2", self.temperature)
        _check(
            0 < self.repetition_penalty <= 10,
            "repetition-penalty",
            "must be above 0 and at most 10 (1 = off)",
            self.repetition_penalty,
        )
        _check(self.max_context_chars >= 1, "max-context-chars", "must be at least 1", self.max_context_chars)
        _check(1 <= self.batch_size <= 256, "batch-size", "must be between 1 and 256", self.batch_size)
        _check(self.threads >= 0, "threads", "must be 0 (default) or more", self.threads)
        from twin.consensus import MAX_CANDIDATES

        _check(
            self.candidates is None or 1 <= self.candidates <= MAX_CANDIDATES,
            "candidates",
            f"must be between 1 (one draw) and {MAX_CANDIDATES}",
            self.candidates,
        )

        from twin.consensus import RERANKS

        _check(self.rerank in RERANKS, "rerank", f"must be one of {', '.join(RERANKS)}", self.rerank)

    @property
    def decoding(self) -> Decoding:
        return Decoding(
            self.max_new_tokens,
            self.temperature,
            self.repetition_penalty,
            self.seed,
            candidates=self.candidates or 1,
            rerank=self.rerank,
        )

    @property
    def sampled_decoding(self) -> Decoding | None:
        """The chat default with this run's token budget and seed; None when the main decoding samples already."""
        if not self.sampled or self.temperature > 0:
            return None
        return dataclasses.replace(
            CHAT_DEFAULT,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            candidates=self.candidates or 1,
            rerank=self.rerank,
        )


def _check(ok: bool, name: str, why: str, value: object) -> None:
    if not ok:
        raise UserError(f"--{name} {why}, got {value!r}")


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not enabled, transient=False) as progress:
        yield progress


def check_twin(name: str | None, config: EvalConfig) -> tuple[str, list[EvalSample]]:
    """The twin's name and samples, or a UserError before any work (no dataset, no variant to measure)."""
    name = registry.resolve_name(name, VAL)
    if not paths.twin_dir(name).is_dir():
        known = ", ".join(n.parent.name for n in sorted(paths.twins_dir().glob("*/twin.toml"))) or "none yet"
        raise UserError(f"no twin named {name!r} (twins: {known}): build it with `twin ingest EXPORT --name {name}`")
    samples = load_samples(name, config.limit, config.max_context_chars, conditioned(name))
    variants = find_variants(name)
    if not any(v.available for v in variants):
        fixes = "; ".join(v.missing for v in variants)
        raise UserError(f"twin {name!r} has nothing to evaluate yet: {fixes}")
    return name, samples


def evaluate(config: EvalConfig) -> EvalResult:
    """Measure every available variant of the twin on its validation samples; write twins/<name>/eval/."""
    name, samples = check_twin(config.name, config)
    if config.candidates is None:
        config = dataclasses.replace(config, candidates=registry.candidates(name))
    variants = find_variants(name)
    decoding = config.decoding
    real = [s.real for s in samples]
    names = participants([s.context for s in samples])
    results = [VariantResult(v) for v in variants]
    daemon_notes: list[str] = []

    with _progress(config.progress) as progress:
        for result in results:
            v = result.variant
            if v.missing:
                continue
            started = time.perf_counter()
            try:
                if v.key in ("prompt", "lora"):
                    _measure_hf(name, result, samples, decoding, config, progress)
                else:
                    daemon_notes.append(_measure_served(result, samples, decoding, config, progress))
            except (UserError, ValueError) as e:  # a model that will not load, a daemon that will not start
                result.variant = dataclasses.replace(
                    v, missing=f"could not be measured ({e}): rebuild it with `{REBUILD[v.key]} --name {name}`"
                )
                result.perplexity = None
                continue
            result.seconds = time.perf_counter() - started
            assert result.replies is not None
            for decoded in (result, result.sampled):
                if decoded is not None and decoded.replies is not None:
                    decoded.overlap = overlap(decoded.replies, real)
                    decoded.style = compare_style(decoded.replies, real)
                    decoded.collapse = measure(decoded.replies, real, names)

    n = len(samples)
    examples = sorted({int(i * n / min(EXAMPLES, n)) for i in range(min(EXAMPLES, n))})
    evaluated = EvalResult(
        name=name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        folder=paths.twin_dir(name) / report.EVAL_DIR,
        val_samples=len(line_hashes(val_path(name))),
        samples=samples,
        decoding=decoding,
        max_context_chars=config.max_context_chars,
        variants=results,
        real_style=style_means(real),
        ratings=summarize(name, line_hashes(val_path(name))),
        daemon="; ".join(daemon_notes) or "not used (no GGUF measured)",
        examples=examples,
        real_collapse=measure(real, real, names),
        sampled_decoding=config.sampled_decoding,
    )
    report.write(evaluated)
    return evaluated


def conditioned(name: str) -> bool:
    """Whether the twin was trained with the system line naming chat and addressee (the default)."""
    return bool(registry.read(name).get("train", {}).get("settings", {}).get("condition", True))


def _measure_hf(
    name: str,
    result: VariantResult,
    samples: list[EvalSample],
    decoding: Decoding,
    config: EvalConfig,
    progress: Progress,
) -> None:
    from trainer.evaluation import models

    v = result.variant
    label = report.SHORT_NAMES[v.key]
    loading = progress.add_task(f"{label}: loading the model", total=1)
    model, tokenizer = models.load(v)
    progress.update(loading, completed=1)
    try:
        task = progress.add_task(f"{label}: perplexity", total=len(samples))
        result.perplexity = hf_perplexity(model, tokenizer, samples, v.system_prompt, lambda: progress.advance(task))
        task = progress.add_task(f"{label}: replies", total=len(samples))
        # The trained twin writes with its calibrated end bias, as the daemon serves it; the persona with none.
        bias = registry.end_bias(name) if v.key == "lora" else None
        result.replies = hf_generate(
            model,
            tokenizer,
            samples,
            v.system_prompt,
            dataclasses.replace(decoding, end_bias=bias),
            config.batch_size,
            lambda k: progress.advance(task, k),
        )
        if config.sampled_decoding is not None:
            task = progress.add_task(f"{label}: replies, chat default (sampled)", total=len(samples))
            result.sampled = VariantResult(v)
            result.sampled.replies = hf_generate(
                model,
                tokenizer,
                samples,
                v.system_prompt,
                dataclasses.replace(config.sampled_decoding, end_bias=bias),
                config.batch_size,
                lambda k: progress.advance(task, k),
            )
    finally:
        del model
        gc.collect()
    ending = f", the twin's end bias {bias:+g} (twin calibrate; the daemon serves it so)" if bias else ""
    result.backends = {
        "perplexity": "transformers (fp32, CPU)",
        "generation": f"transformers generate (batches of {config.batch_size}){ending}",
    }


def _measure_served(
    result: VariantResult, samples: list[EvalSample], decoding: Decoding, config: EvalConfig, progress: Progress
) -> str:
    """A variant the daemon serves (GGUF or ONNX): perplexity in its runtime, in process; replies over the API."""
    from trainer.evaluation.served import daemon_for

    v = result.variant
    label = report.SHORT_NAMES[v.key]
    runtime = "onnxruntime-genai" if v.onnx is not None else "llama.cpp"
    task = progress.add_task(f"{label}: perplexity ({runtime})", total=len(samples))
    if v.onnx is not None:
        result.perplexity = onnx_perplexity(v.onnx, samples, None, lambda: progress.advance(task))
    else:
        assert v.gguf is not None
        result.perplexity = gguf_perplexity(
            v.gguf, samples, None, config.threads, lambda: progress.advance(task), v.lora
        )
    with (
        tempfile.TemporaryDirectory(prefix="twin-eval-") as tmp,
        daemon_for(v.served_id, config.chat, Path(tmp) / "serve.log", config.threads) as served,
    ):
        task = progress.add_task(f"{label}: replies via the daemon ({v.served_id})", total=len(samples))
        result.replies = daemon_generate(
            served.url, served.api_key, v.served_id, samples, None, decoding, lambda k: progress.advance(task, k)
        )
        if config.sampled_decoding is not None:
            task = progress.add_task(f"{label}: replies via the daemon, chat default (sampled)", total=len(samples))
            result.sampled = VariantResult(v)
            result.sampled.replies = daemon_generate(
                served.url,
                served.api_key,
                v.served_id,
                samples,
                None,
                config.sampled_decoding,
                lambda k: progress.advance(task, k),
            )
    how = (
        f"a daemon started for this evaluation at {served.url} (stopped after it)"
        if served.started
        else f"the running daemon at {served.url}"
    )
    bias = registry.end_bias(v.served_id.removesuffix("-onnx"))
    ending = f", its default end bias {bias:+g} (twin calibrate)" if bias else ""
    result.backends = {"perplexity": f"{runtime} (in process)", "generation": f"{how}, model `{v.served_id}`{ending}"}
    return f"{how}, OpenAI API, model `{v.served_id}`"
