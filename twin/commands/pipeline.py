"""Commands that build a twin: demo, build, and the stages one by one (ingest, train, persona, convert)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from twin import paths
from twin.build import DEFAULT_BUDGET_S
from twin.commands.options import default, train_option
from twin.errors import UserError
from twin.logs import setup_logging
from twin.threads import passive_for_torch

# The arguments `twin build` and `twin ingest` share.
Exports = Annotated[
    list[Path],
    typer.Argument(
        help="Chat exports: Telegram result.json (or its folder), WhatsApp .txt, plain JSON, JSONL.", show_default=False
    ),
]
Me = Annotated[
    list[str] | None,
    typer.Option(
        help="You: a display name or Telegram id (user123); repeatable. Optional for a whole-account Telegram export."
    ),
]


def demo_cmd(
    steps: Annotated[int, typer.Option(help="Training steps for the demo twin (a few seconds each on 2 cores).")] = 40,
) -> None:
    """Build a twin from the bundled sample export, serve it, and compare persona, twin and the real replies."""
    passive_for_torch()
    from twin.demo import run_demo

    setup_logging()
    run_demo(steps=steps)


def build_cmd(
    exports: Exports,
    me: Me = None,
    name: Annotated[str, typer.Option(help="The twin to build (twins/NAME).")] = "me",
    base: Annotated[str, train_option("base")] = default("base"),
    quant: Annotated[
        str,
        typer.Option(help="auto (measure the 4-bit types, keep the best), q4_k_m, q4_1, q4_0, q5_k_m, q8_0, f16, f32."),
    ] = "auto",
    time_budget: Annotated[
        str,
        typer.Option(
            help="Wall clock for the whole build (15m, 1h): training gets what the other stages leave, its step "
            "count set from the speed measured on its first steps, never more than --epochs. 0 = train for --epochs."
        ),
    ] = f"{DEFAULT_BUDGET_S / 60:g}m",
    epochs: Annotated[int, train_option("epochs")] = default("epochs"),
    max_steps: Annotated[int, train_option("max_steps")] = default("max_steps"),
    batch_size: Annotated[int, train_option("batch_size")] = default("batch_size"),
    max_length: Annotated[int, train_option("max_length")] = default("max_length"),
    lr: Annotated[float, train_option("lr")] = default("lr"),
    strip_emoji: Annotated[
        bool, typer.Option("--strip-emoji", help="Remove emoji from the dataset (kept by default: they are style).")
    ] = False,
    seed: Annotated[int, train_option("seed", help="Random seed (split, training).")] = default("seed"),
    split: Annotated[
        str, typer.Option(help="random: sessions shuffled by --seed; time: the latest sessions to validation.")
    ] = "random",
    device: Annotated[str, train_option("device")] = default("device"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue training from the twin's checkpoint when there is one.")
    ] = False,
    calibration_samples: Annotated[
        int,
        typer.Option(help="Validation contexts per round of fitting the reply length to yours (0 = skip it)."),
    ] = 64,
    events: Annotated[
        Path | None, typer.Option(help="Append the progress as JSON lines to this file (for programs following it).")
    ] = None,
) -> None:
    """From chat exports to a served twin in one go: ingest, train (LoRA + merge), convert to 4-bit GGUF, persona,
    and the reply length fitted to yours."""
    passive_for_torch()
    from trainer.ingest.run import parse_duration
    from trainer.train.config import TrainConfig
    from twin.build import BuildConfig, build, summary
    from twin.build_events import BuildEvents
    from twin.errors import UserError

    setup_logging()
    stream = BuildEvents(events)
    try:
        train = TrainConfig(
            name=name,
            base=base,
            epochs=epochs,
            max_steps=max_steps,
            batch_size=batch_size,
            max_length=max_length,
            lr=lr,
            seed=seed,
            device=device,
        )
        config = BuildConfig(
            time_budget_s=0.0 if time_budget.strip() in ("", "0") else parse_duration(time_budget, "--time-budget"),
            exports=exports,
            me=tuple(me or ()),
            train=train,
            quant=quant,
            ingest_options={"strip_emoji": strip_emoji, "seed": seed, "split": split},
            resume=resume,
            calibration_samples=calibration_samples,
        )
        result = build(config, out=lambda line: print(line, file=sys.stderr), events=stream)
    except UserError as e:  # the same line the CLI prints, for the program following the events
        stream({"event": "error", "message": str(e)})
        raise
    finally:
        stream.close()
    if result.quant_table:
        print(result.quant_table)
    print(summary(result))


def ingest_cmd(
    exports: Exports,
    me: Me = None,
    name: Annotated[str, typer.Option(help="The twin to build (twins/NAME/dataset).")] = "me",
    gap: Annotated[
        str, typer.Option(help="Silence that ends a conversation: 90s, 30m, 1h (a bare number is minutes).")
    ] = "1h",
    merge: Annotated[str, typer.Option(help="One sender's messages closer than this become one turn.")] = "5m",
    context: Annotated[int, typer.Option(help="Turns before each reply kept as its context.")] = 8,
    max_context_chars: Annotated[
        int, typer.Option(help="A longer context turn keeps only its last this many characters.")
    ] = 2000,
    max_reply_chars: Annotated[int, typer.Option(help="Drop replies longer than this (0: keep all).")] = 1000,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            help="Leave this kind of data as it is: url, email, phone, card, iban, ip, username, account, passport, id, address, birthdate (repeatable)."
        ),
    ] = None,
    strip_emoji: Annotated[
        bool, typer.Option("--strip-emoji", help="Remove emoji (kept by default: they are style).")
    ] = False,
    keep_duplicates: Annotated[
        bool, typer.Option("--keep-duplicates", help="Keep samples whose context and reply repeat exactly.")
    ] = False,
    split: Annotated[
        str, typer.Option(help="random: sessions shuffled by --seed; time: the latest sessions to validation.")
    ] = "random",
    seed: Annotated[int, typer.Option(help="Seed of the random split.")] = 0,
    val_fraction: Annotated[float, typer.Option(help="Share of samples held out for validation (0–0.5).")] = 0.2,
    include_channels: Annotated[bool, typer.Option("--include-channels", help="Read Telegram channels too.")] = False,
    include_bots: Annotated[bool, typer.Option("--include-bots", help="Read Telegram bot chats too.")] = False,
) -> None:
    """Turn chat exports into the twin's dataset: what others said, and what you answered."""
    from rich.console import Console

    from trainer.ingest.run import IngestConfig, ingest, parse_duration
    from trainer.ingest.summary import summary_table

    config = IngestConfig(
        exports=exports,
        me=tuple(me or ()),
        name=name,
        gap=parse_duration(gap, "--gap"),
        merge=parse_duration(merge, "--merge"),
        context=context,
        max_context_chars=max_context_chars,
        max_reply_chars=max_reply_chars,
        keep=frozenset(keep or ()),
        strip_emoji=strip_emoji,
        dedupe=not keep_duplicates,
        split=split,
        seed=seed,
        val_fraction=val_fraction,
        include_channels=include_channels,
        include_bots=include_bots,
    )
    result = ingest(config)
    console = Console()
    console.print(summary_table(result.name, result.stats))
    console.print(f"wrote {result.train} and {result.val}", markup=False, highlight=False)


def train_cmd(
    name: Annotated[str | None, typer.Option(help="The twin (default: the only one with a dataset).")] = None,
    # None: a flag not given (a resumed run keeps the checkpoint's setting; a fresh one TrainConfig's default)
    base: Annotated[str | None, train_option("base")] = None,
    epochs: Annotated[int | None, train_option("epochs")] = None,
    max_steps: Annotated[int | None, train_option("max_steps")] = None,
    batch_size: Annotated[int | None, train_option("batch_size")] = None,
    grad_accum: Annotated[int | None, train_option("grad_accum")] = None,
    lr: Annotated[float | None, train_option("lr")] = None,
    warmup_ratio: Annotated[float | None, train_option("warmup_ratio")] = None,
    weight_decay: Annotated[float | None, train_option("weight_decay")] = None,
    max_length: Annotated[int | None, train_option("max_length")] = None,
    lora_r: Annotated[int | None, train_option("lora_r")] = None,
    lora_alpha: Annotated[int | None, train_option("lora_alpha")] = None,
    lora_dropout: Annotated[float | None, train_option("lora_dropout")] = None,
    lora_target: Annotated[list[str] | None, train_option("lora_targets")] = None,
    eval_every: Annotated[int | None, train_option("eval_every")] = None,
    max_val_samples: Annotated[int | None, train_option("max_val_samples")] = None,
    patience: Annotated[int | None, train_option("patience")] = None,
    min_delta: Annotated[float | None, train_option("min_delta")] = None,
    log_every: Annotated[int | None, train_option("log_every")] = None,
    gradient_checkpointing: Annotated[bool | None, train_option("gradient_checkpointing")] = None,
    device: Annotated[str | None, train_option("device")] = None,
    seed: Annotated[int | None, train_option("seed")] = None,
    dataset: Annotated[str | None, train_option("dataset_dir")] = None,
    resume: Annotated[bool, train_option("resume")] = False,
    time_budget: Annotated[str | None, train_option("time_budget_s", show_default=False)] = None,
    per_reply: Annotated[bool | None, train_option("whole_conversations")] = None,
    no_condition: Annotated[bool | None, train_option("condition")] = None,
) -> None:
    """Fine-tune a base model on a twin's dataset with LoRA; writes adapter/ and merged/ (Ctrl-C saves a checkpoint)."""
    passive_for_torch()
    from trainer.train.run import TrainConfig, resume_config, train
    from twin.registry import resolve_name

    flags = {
        "base": base,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "lr": lr,
        "warmup_ratio": warmup_ratio,
        "weight_decay": weight_decay,
        "max_length": max_length,
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "lora_dropout": lora_dropout,
        "lora_targets": lora_target,
        "eval_every": eval_every,
        "max_val_samples": max_val_samples,
        "patience": patience,
        "min_delta": min_delta,
        "log_every": log_every,
        "gradient_checkpointing": gradient_checkpointing,
        "device": device,
        "seed": seed,
        "dataset_dir": dataset,
        "whole_conversations": None if per_reply is None else not per_reply,
        "condition": None if no_condition is None else not no_condition,
    }
    if time_budget is not None:
        from trainer.ingest.run import parse_duration

        flags["time_budget_s"] = parse_duration(time_budget, "--time-budget")
    given: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    name = resolve_name(name)
    config = resume_config(name, given) if resume else TrainConfig(name=name, **given)
    setup_logging()
    result = train(config)
    if result.interrupted and not result.checkpointed:
        print("twin train: interrupted before training began; nothing was changed", file=sys.stderr)
        raise typer.Exit(128 + result.signal)
    if result.interrupted:
        print(
            f"twin train: stopped at step {result.steps}/{result.total_steps}; checkpoint saved. "
            f"Continue with `twin train --name {name} --resume`",
            file=sys.stderr,
        )
        raise typer.Exit(128 + result.signal)
    print(f"trained {name}: {result.steps} steps, {result.tokens} tokens, {result.tokens_per_s:.0f} tokens/s")
    if result.best_val_loss is not None:
        import math

        print(
            (
                f"validation loss {result.first_val_loss:.4f} -> "
                if result.first_val_loss is not None
                else "validation loss "
            )
            + f"{result.best_val_loss:.4f} "
            f"(perplexity {math.exp(min(result.best_val_loss, 50)):.2f}, best at step {result.best_step})"
        )
    print(f"adapter: {result.adapter_dir}")
    print(f"merged:  {result.merged_dir}")


def persona_cmd(
    name: Annotated[str | None, typer.Option(help="The twin (default: the only one with a dataset).")] = None,
    examples: Annotated[int, typer.Option(help="Few-shot exchanges put in the prompt.")] = 3,
    base: Annotated[
        str, typer.Option(help="The model the daemon puts the persona on: default (embedded) or a .gguf path.")
    ] = "default",
    dataset: Annotated[str | None, typer.Option(help="Dataset folder (default: the twin's dataset/).")] = None,
    show_examples: Annotated[
        bool,
        typer.Option("--show-examples", help="Print the whole prompt, real exchanges included (they are private)."),
    ] = False,
) -> None:
    """Build the prompt-only twin: a style summary and a few examples from your messages (served as <name>-prompt)."""
    from trainer.persona.run import build_persona
    from twin.registry import resolve_name

    name = resolve_name(name)
    persona = build_persona(name, examples=examples, base=base, dataset_dir=dataset)
    if show_examples:
        print(persona["system_prompt"])
    else:  # the style line only: the examples are real messages, and stdout often ends up in logs
        print(persona["system_prompt"].split("\n", 1)[0])
        if persona["examples"]:
            print(f"({len(persona['examples'])} example exchanges kept in persona.json; --show-examples prints them)")
    print(
        f"\nsaved {paths.twin_dir(name) / 'persona.json'}; `twin serve` offers it as model {name}-prompt",
        file=sys.stderr,
    )


def convert_cmd(
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="A built twin: converts twins/NAME/merged and registers the GGUF for `twin serve`."
        ),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="Any Hugging Face model folder (config.json, *.safetensors, tokenizer)."),
    ] = None,
    quant: Annotated[
        str,
        typer.Option(
            help="auto (measure q4_k_m, q4_1, q4_0 on validation replies, keep the best), q4_k_m, q4_1, q4_0, q5_k_m, q8_0, f16 or f32."
        ),
    ] = "auto",
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="GGUF file to write. [default: twins/NAME/model-<quant>.gguf or ./<dir>-<quant>.gguf]",
        ),
    ] = None,
    val: Annotated[
        Path | None,
        typer.Option(
            help="Validation conversations (val.jsonl) for --quant auto. [default: the twin's dataset/val.jsonl]"
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option(help="llama.cpp threads for checking and measuring (0 = half the logical CPUs).")
    ] = 0,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="gguf (llama.cpp) or onnx (ONNX Runtime GenAI: twins/NAME/onnx/, served as NAME-onnx; "
            "--quant auto, int4 or int8; needs twin[onnx]).",
        ),
    ] = "gguf",
) -> None:
    """Convert a merged model to GGUF (or ONNX), verify it against transformers, quantize it (chosen by measurement)."""
    passive_for_torch()
    if format.lower() == "onnx":
        _convert_onnx(name, model_dir, quant, output, val)
        return
    if format.lower() != "gguf":
        raise UserError(f"unknown --format {format!r}: pick gguf (llama.cpp) or onnx (ONNX Runtime)")
    from convert.pipeline import ConvertConfig, convert, report

    config = ConvertConfig(name=name, model_dir=model_dir, quant=quant, output=output, val=val, threads=threads)
    print(report(convert(config)), flush=True)


def calibrate_cmd(
    name: Annotated[str | None, typer.Option(help="The twin (default: the only one with a dataset).")] = None,
    samples: Annotated[int, typer.Option(help="Validation contexts replied to per round (two rounds at most).")] = 64,
    threads: Annotated[int, typer.Option(help="llama.cpp threads of the daemon started for it (0 = its default).")] = 0,
) -> None:
    """Fit the twin's reply length to yours: a bias on its end-of-reply tokens, measured on validation replies."""
    from convert.pipeline import progress_bars
    from trainer.evaluation.calibration import bars_advance, calibrate, describe
    from twin.registry import resolve_name

    name = resolve_name(name)
    with progress_bars() as bars:
        result = calibrate(name, samples, threads, bars_advance(bars))
    print(describe(result))
    print(f"saved in {paths.twin_dir(name) / 'twin.toml'} [decoding]; `twin serve` applies it to model {name}")


def _convert_onnx(name: str | None, model_dir: Path | None, quant: str, output: Path | None, val: Path | None) -> None:
    from convert.onnx_export import OnnxConfig, export_onnx, report

    if name is None or model_dir is not None or output is not None:
        raise UserError("`--format onnx` exports a built twin into its folder: pass --name NAME (no --model-dir or -o)")
    print(report(export_onnx(OnnxConfig(name=name, quant=quant, val=val))), flush=True)
