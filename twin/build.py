"""`twin build`: a chat export all the way to a served twin — ingest, persona, train (LoRA + merge), convert.

A straight line over each stage's own typed function; each stage keeps its
progress display, and this module numbers the stages and sums them up at the end.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.train.budget import MIN_TRAIN_S, RESERVE_TOKENS_PER_S  # constants: budget.py imports no torch
from trainer.train.config import TrainConfig  # a plain dataclass: its defaults, not the trainer
from twin import embedded, paths
from twin.errors import UserError

STAGES = ("ingest", "train", "convert", "persona", "calibrate")
# What a time budget keeps back for the stages after training, measured for the embedded model on 2 cores
# training at budget.RESERVE_TOKENS_PER_S (on the development corpus: conversion with --quant auto, i.e. f16, its
# check, three 4-bit types and four perplexities, the persona, the length calibration's two to four rounds of 64
# replies: 394 s at 95.6 tokens/s; 320-350 s on a machine training at 115). Training scales it by the speed it
# measures: those stages run on the same cores.
AFTER_TRAINING_S = 400.0
DEFAULT_BUDGET_S = 900.0  # `twin build` by default: a served twin within 15 minutes (fewer on a small export)
MIN_BUDGET_S = 180
MIN_CALIBRATION_SAMPLES = 8  # the mean length of fewer replies is noise (trainer.evaluation.calibration)


@dataclass
class BuildConfig:
    """What `twin build` needs: the exports and who I am, the training stage's settings, and the other stages' knobs."""

    exports: list[Path]
    # the training stage (validated when made): its name is the twin's, its time budget is set per build
    train: TrainConfig
    me: tuple[str, ...] = ()
    quant: str = "auto"
    time_budget_s: float = DEFAULT_BUDGET_S  # the whole build's wall clock; training gets what the rest leaves (0: off)
    ingest_options: dict[str, Any] = field(default_factory=dict)  # the rest of IngestConfig, by field name
    resume: bool = False  # continue training from the twin's checkpoint when there is one
    calibration_samples: int = 64  # validation contexts per round of `twin calibrate` (0: skip it)

    def __post_init__(self) -> None:
        """Check every stage's settings before the first one runs: no bad option found after training."""
        from convert.quantize import check_quant
        from trainer.bases import resolve_base

        if not self.exports:
            raise UserError("name at least one chat export: twin build EXPORT... [--me WHO]")
        self.quant = check_quant(self.quant)
        if 0 < self.calibration_samples < MIN_CALIBRATION_SAMPLES or self.calibration_samples < 0:
            raise UserError(
                f"--calibration-samples must be 0 (skip) or at least {MIN_CALIBRATION_SAMPLES}, got {self.calibration_samples}"
            )
        if self.time_budget_s < 0:
            raise UserError(f"--time-budget must be 0 (off) or a duration such as 15m, got {self.time_budget_s}s")
        if self.time_budget_s and self.time_budget_s < MIN_BUDGET_S:
            raise UserError(
                f"--time-budget {self.time_budget_s:.0f}s leaves no time to train: give at least {MIN_BUDGET_S // 60} minutes"
            )
        if self.base in embedded.ALIASES:
            embedded.embedded_gguf()
        else:
            if self.quant == "adapter":
                raise UserError(
                    f"--quant adapter serves the base's own GGUF with the LoRA, and --base {self.base} is not a GGUF: "
                    "use --base default or pick another --quant (auto)"
                )
            resolve_base(self.base)  # a local directory or a downloaded hub model; offline errors say how to get it

    @property
    def name(self) -> str:
        return self.train.name

    @property
    def base(self) -> str:
        return self.train.base

    def train_config(self, time_budget_s: float = 0.0) -> TrainConfig:
        """The training stage's TrainConfig with `time_budget_s` for training and the stages after it (their
        AFTER_TRAINING_S reserved)."""
        reserved = AFTER_TRAINING_S if time_budget_s else 0.0
        return dataclasses.replace(self.train, time_budget_s=time_budget_s, time_reserved_s=reserved)


@dataclass
class BuildResult:
    name: str
    samples: tuple[int, int]  # train, validation
    val_perplexity: float | None
    quant: str
    gguf: Path
    gguf_bytes: int
    persona_base: str
    seconds: dict[str, float]
    quant_table: str = ""


def _stage(out: Callable[[str], None], number: int, title: str) -> float:
    out(f"[{number}/{len(STAGES)}] {title}")
    return time.perf_counter()


def build(
    config: BuildConfig, out: Callable[[str], None] = print, events: Callable[[dict[str, Any]], None] | None = None
) -> BuildResult:
    """Run every stage for `config.name`, holding its build lock; a failing stage stops the build with its own error.

    `events` receives the machine-readable progress (see twin.build_events).
    """
    from twin import registry
    from twin.lock import twin_lock

    # The twin's lock every stage takes (`twin.lock`; jobs wait on it): a second build is refused, and so
    # is a `twin train --name` of the same twin while this build runs.
    with twin_lock(config.name, "twin build"):
        registry.read(config.name)  # a broken twin.toml fails before the first stage
        return _build(config, out, events or (lambda event: None))


def _build(config: BuildConfig, out: Callable[[str], None], events: Callable[[dict[str, Any]], None]) -> BuildResult:
    import dataclasses

    from convert.pipeline import ConvertConfig, convert, progress_bars
    from trainer.evaluation.calibration import bars_advance, calibrate, describe
    from trainer.ingest.run import IngestConfig, ingest
    from trainer.persona.run import build_persona
    from trainer.train import checkpoint
    from trainer.train.run import train

    seconds: dict[str, float] = {}
    build_started = time.perf_counter()

    def stage(number: int, title: str) -> float:
        events({"event": "stage", "stage": STAGES[number - 1], "number": number, "of": len(STAGES), "title": title})
        return _stage(out, number, title)

    started = stage(1, "reading the chat exports")
    data = ingest(IngestConfig(exports=list(config.exports), me=config.me, name=config.name, **config.ingest_options))
    seconds["ingest"] = time.perf_counter() - started
    out(f"      {data.train_samples} training and {data.val_samples} validation samples")
    events({"event": "ingested", "train_samples": data.train_samples, "val_samples": data.val_samples})

    started = stage(2, "training the LoRA adapter and merging it")
    budget = 0.0
    if config.time_budget_s:
        budget = max(MIN_TRAIN_S, config.time_budget_s - (started - build_started))
        out(
            f"      time budget: {budget:.0f}s of {config.time_budget_s:.0f}s left for training, conversion, persona and "
            f"calibration (those three take about {AFTER_TRAINING_S:.0f}s at {RESERVE_TOKENS_PER_S:.0f} training tokens/s, "
            "scaled by the speed measured)"
        )
    train_config = config.train_config(budget)
    if config.resume and checkpoint.exists(paths.twin_dir(config.name) / checkpoint.CHECKPOINT_DIR):
        out("      resuming from the checkpoint")
        events({"event": "resumed"})
        train_config = dataclasses.replace(train_config, resume=True)
    trained = train(train_config, on_event=events)
    seconds["train"] = time.perf_counter() - started
    if trained.interrupted:
        raise UserError(
            f"training was interrupted; continue with `twin train --name {config.name} --resume`, "
            f"then `twin convert --name {config.name}`"
        )

    started = stage(3, "converting to GGUF and choosing the 4-bit type")
    converted = convert(ConvertConfig(name=config.name, quant=config.quant))
    seconds["convert"] = time.perf_counter() - started
    events({"event": "converted", "quant": converted.quant, "gguf": str(converted.path), "bytes": converted.size_bytes})

    started = stage(4, "writing the prompt-only persona")
    persona_base = _persona_base(config.base, converted.quant, out)
    build_persona(config.name, base=persona_base)
    seconds["persona"] = time.perf_counter() - started

    started = stage(5, "fitting the reply length to mine")
    from twin import registry
    from twin.consensus import TWIN_CANDIDATES

    # First: the calibration fits the length of the twin as served (trainer.evaluation.calibration.aim_words).
    registry.update(config.name, "serve", {"candidates": TWIN_CANDIDATES})
    out(f"      served sampling {TWIN_CANDIDATES} replies a turn, the one most tied to the conversation returned (MMI)")
    if config.calibration_samples:
        with progress_bars() as bars:
            calibrated = calibrate(config.name, config.calibration_samples, advance=bars_advance(bars))
        seconds["calibrate"] = time.perf_counter() - started
        out(f"      {describe(calibrated)}")
        events({"event": "calibrated", "end_bias": calibrated.end_bias, "words": calibrated.measured})
    else:
        out("      skipped (--calibration-samples 0): served without an end bias")

    val_ppl = math.exp(trained.best_val_loss) if trained.best_val_loss is not None else None
    events(
        {
            "event": "done",
            "name": config.name,
            "gguf": str(converted.path),
            "trained_tokens": trained.tokens,
            "steps": trained.steps,
            "val_perplexity": val_ppl,
        }
    )
    return BuildResult(
        name=config.name,
        samples=(data.train_samples, data.val_samples),
        val_perplexity=val_ppl,
        quant=converted.quant,
        gguf=converted.path,
        gguf_bytes=converted.size_bytes,
        persona_base=persona_base,
        seconds=seconds,
        quant_table=converted.table(),
    )


def _persona_base(base: str, quant: str, out: Callable[[str], None]) -> str:
    """The GGUF the prompt-only variant runs on: the untrained base, in the same quant as the twin.

    The embedded base is a GGUF already; any other base is converted once into the cache.
    """
    if base in embedded.ALIASES:
        return "default"
    from convert.pipeline import ConvertConfig, convert
    from trainer.bases import resolve_base

    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-") or "base"
    target = paths.cache_dir() / "gguf" / f"{slug}-{quant}.gguf"
    if not target.is_file():
        out(f"      converting the base {base} for the prompt-only variant (once)")
        convert(ConvertConfig(model_dir=resolve_base(base), quant=quant, output=target))
    return str(target)


def summary(result: BuildResult) -> str:
    """The short report printed at the end of `twin build`."""
    twin_dir = paths.twin_dir(result.name)
    ppl = f"{result.val_perplexity:.2f}" if result.val_perplexity is not None else "n/a (no validation split)"
    total = sum(result.seconds.values())
    took = ", ".join(f"{stage} {result.seconds[stage]:.0f}s" for stage in STAGES if stage in result.seconds)
    lines = [
        f"twin {result.name!r} is built in {total / 60:.1f} min ({took})",
        f"  samples              {result.samples[0]} train, {result.samples[1]} validation",
        f"  validation perplexity {ppl}",
        f"  model                {result.gguf.name} ({result.quant}, {result.gguf_bytes / 2**20:.1f} MB)",
        f"  files                {twin_dir}",
        "",
        "chat with it:",
        "  twin serve          # in one terminal (or: twin service install)",
        f"  twin chat           # pick '{result.name}' or its prompt-only variant '{result.name}-prompt'",
        f"  any OpenAI client:  base_url=http://127.0.0.1:8642/v1, model='{result.name}'",
    ]
    return "\n".join(lines)
