"""The `twin` command: a thin typer layer over the typed functions of each package.

Heavy imports (torch, llama.cpp) happen inside the commands, so `twin --help` is instant.
A `UserError` anywhere ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

try:  # typer vendors click since 0.20; its exceptions live there
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from twin import __version__, paths
from twin.errors import UserError

app = typer.Typer(
    name="twin",
    help="Learn how you write from your chat exports and serve a local model that answers like you.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold private messages
    context_settings={"help_option_names": ["-h", "--help"]},
)
service_app = typer.Typer(help="Run the daemon as a systemd user service.", no_args_is_help=True)
app.add_typer(service_app, name="service")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpx2", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command("version")
def version_cmd() -> None:
    """Print twin's version."""
    print(__version__)


@app.command("paths")
def paths_cmd() -> None:
    """Print the data, config and cache directories (XDG; TWIN_HOME moves them all)."""
    print(f"data    {paths.data_dir()}")
    print(f"config  {paths.config_file()}")
    print(f"cache   {paths.cache_dir()}")
    print(f"twins   {paths.twins_dir()}")


@app.command("serve")
def serve_cmd(
    model: Annotated[Optional[str], typer.Option(help="`default` (embedded SmolLM2-135M-Instruct) or a .gguf path.")] = None,
    host: Annotated[Optional[str], typer.Option(help="Address to bind; non-loopback needs an API key.")] = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port (0 picks a free one). [default: 8642]")] = None,
    api_key: Annotated[Optional[str], typer.Option(help="Require 'Authorization: Bearer KEY' (or TWIN_API_KEY).")] = None,
    queue_size: Annotated[Optional[int], typer.Option(help="Requests that may wait for the model before 429.")] = None,
    max_loaded: Annotated[Optional[int], typer.Option(help="Models kept in memory at once; others load on demand.")] = None,
    n_ctx: Annotated[Optional[int], typer.Option(help="Context window per model (capped by the model's own).")] = None,
    threads: Annotated[Optional[int], typer.Option(help="llama.cpp threads (0 = all cores).")] = None,
    max_body_bytes: Annotated[Optional[int], typer.Option(help="Largest request body accepted (413 beyond).")] = None,
    grace_seconds: Annotated[Optional[float], typer.Option(help="On SIGTERM, how long in-flight requests may finish.")] = None,
    cors_origin: Annotated[Optional[list[str]], typer.Option(help="Allow browser requests from this origin (repeatable).")] = None,
    log_content: Annotated[Optional[bool], typer.Option("--log-content", help="Log message text (off: it is private).")] = None,
) -> None:
    """Serve models on an OpenAI-compatible API (http://127.0.0.1:8642/v1 by default)."""
    import asyncio

    from daemon.catalog import build_catalog
    from daemon.server import run_server
    from twin.config import ServeSettings, load

    settings = load(
        ServeSettings,
        {
            "model": model,
            "host": host,
            "port": port,
            "api_key": api_key,
            "queue_size": queue_size,
            "max_loaded": max_loaded,
            "n_ctx": n_ctx,
            "threads": threads,
            "max_body_bytes": max_body_bytes,
            "grace_seconds": grace_seconds,
            "cors_origins": cors_origin or None,
            "log_content": log_content,
        },
    )
    setup_logging()
    catalog, primary = build_catalog(settings.model)

    def ready(url: str) -> None:
        print(f"twin serve: listening on {url} (models: {', '.join(sorted(catalog))})", flush=True)

    raise typer.Exit(asyncio.run(run_server(settings, catalog, primary, ready)))


@service_app.command("install")
def service_install() -> None:
    """Write the user unit to ~/.config/systemd/user/ and enable it (or print the steps without systemd)."""
    from daemon import service

    service.install()


@service_app.command("uninstall")
def service_uninstall() -> None:
    """Stop, disable and remove the user unit."""
    from daemon import service

    service.uninstall()


@service_app.command("status")
def service_status() -> None:
    """Show whether the unit is installed and running."""
    from daemon import service

    raise typer.Exit(service.status())


@app.command("convert")
def convert_cmd(
    name: Annotated[Optional[str], typer.Option("--name", help="A built twin: converts twins/NAME/merged and registers the GGUF for `twin serve`.")] = None,
    model_dir: Annotated[Optional[Path], typer.Option("--model-dir", help="Any Hugging Face model folder (config.json, *.safetensors, tokenizer).")] = None,
    quant: Annotated[str, typer.Option(help="auto (measure q4_k_m, q4_1, q4_0 on validation replies, keep the best), q4_k_m, q4_1, q4_0, q5_k_m, q8_0, f16 or f32.")] = "auto",
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="GGUF file to write. [default: twins/NAME/model-<quant>.gguf or ./<dir>-<quant>.gguf]")] = None,
    val: Annotated[Optional[Path], typer.Option(help="Validation conversations (val.jsonl) for --quant auto. [default: the twin's dataset/val.jsonl]")] = None,
    threads: Annotated[int, typer.Option(help="llama.cpp threads for checking and measuring (0 = half the logical CPUs).")] = 0,
) -> None:
    """Convert a merged model to GGUF, verify it against transformers, quantize it (4-bit chosen by measurement)."""
    from convert.pipeline import ConvertConfig, convert, report

    config = ConvertConfig(name=name, model_dir=model_dir, quant=quant, output=output, val=val, threads=threads)
    print(report(convert(config)), flush=True)


@app.command("ingest")
def ingest_cmd(
    exports: Annotated[list[Path], typer.Argument(help="Chat exports: Telegram result.json (or its folder), WhatsApp .txt, plain JSON, JSONL.", show_default=False)],
    me: Annotated[Optional[list[str]], typer.Option(help="You: a display name or Telegram id (user123); repeatable. Optional for a whole-account Telegram export.")] = None,
    name: Annotated[str, typer.Option(help="The twin to build (twins/NAME/dataset).")] = "me",
    gap: Annotated[str, typer.Option(help="Silence that ends a conversation: 90s, 30m, 1h (a bare number is minutes).")] = "1h",
    merge: Annotated[str, typer.Option(help="One sender's messages closer than this become one turn.")] = "5m",
    context: Annotated[int, typer.Option(help="Turns before each reply kept as its context.")] = 8,
    max_reply_chars: Annotated[int, typer.Option(help="Drop replies longer than this (0: keep all).")] = 1000,
    keep: Annotated[Optional[list[str]], typer.Option(help="Leave this kind of data as it is: url, email, phone, card, iban, ip (repeatable).")] = None,
    strip_emoji: Annotated[bool, typer.Option("--strip-emoji", help="Remove emoji (kept by default: they are style).")] = False,
    keep_duplicates: Annotated[bool, typer.Option("--keep-duplicates", help="Keep samples whose context and reply repeat exactly.")] = False,
    split: Annotated[str, typer.Option(help="random: sessions shuffled by --seed; time: the latest sessions to validation.")] = "random",
    seed: Annotated[int, typer.Option(help="Seed of the random split.")] = 0,
    val_fraction: Annotated[float, typer.Option(help="Share of samples held out for validation (0–0.5).")] = 0.2,
    include_channels: Annotated[bool, typer.Option("--include-channels", help="Read Telegram channels too.")] = False,
    include_bots: Annotated[bool, typer.Option("--include-bots", help="Read Telegram bot chats too.")] = False,
) -> None:
    """Turn chat exports into the twin's dataset: what others said, and what you answered."""
    from rich.console import Console

    from trainer.ingest import IngestConfig, ingest, parse_duration
    from trainer.summary import summary_table

    config = IngestConfig(
        exports=exports,
        me=tuple(me or ()),
        name=name,
        gap=parse_duration(gap, "--gap"),
        merge=parse_duration(merge, "--merge"),
        context=context,
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


@app.command("chat")
def chat_cmd(
    url: Annotated[Optional[str], typer.Option(help="The daemon's API address (default http://127.0.0.1:8642/v1; config chat.url, env TWIN_URL).")] = None,
    rate: Annotated[bool, typer.Option("--rate", help="Rate how much the twin's replies sound like you.")] = False,
    name: Annotated[Optional[str], typer.Option(help="With --rate: the twin to rate (needed when there are several).")] = None,
) -> None:
    """Chat with your twins through the daemon in the terminal (`--rate`: rate their replies against your own)."""
    from twin.config import ChatSettings, load

    settings = load(ChatSettings, {"url": url})
    if name is not None and not rate:
        raise UserError("--name only goes with --rate: run `twin chat --rate --name NAME` (in chat, pick the model with F4)")
    if rate:
        from tui.rate_app import run_rating

        run_rating(settings, name)
    else:
        from tui.chat_app import run_chat

        run_chat(settings)


@app.command("train")
def train_cmd(
    name: Annotated[Optional[str], typer.Option(help="The twin (default: the only one with a dataset).")] = None,
    base: Annotated[Optional[str], typer.Option(help="default (embedded SmolLM2-135M), tinyllama, phi3-mini, qwen2.5-0.5b, qwen2.5-1.5b, gpt2, distilgpt2, a hub id or a directory.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Passes over the training split. Default: 3.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps to run instead (0 = epochs decide).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Samples per micro-batch. Default: 8.")] = None,
    grad_accum: Annotated[Optional[int], typer.Option(help="Micro-batches per optimizer step. Default: 1.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate. Default: 2e-4.")] = None,
    warmup_ratio: Annotated[Optional[float], typer.Option(help="Share of steps warming up before the cosine decay. Default: 0.05.")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="AdamW weight decay. Default: 0.")] = None,
    max_length: Annotated[Optional[int], typer.Option(help="Tokens per sample; older context is cut first. Default: 256.")] = None,
    lora_r: Annotated[Optional[int], typer.Option(help="LoRA rank. Default: 16.")] = None,
    lora_alpha: Annotated[Optional[int], typer.Option(help="LoRA alpha. Default: 32.")] = None,
    lora_dropout: Annotated[Optional[float], typer.Option(help="LoRA dropout. Default: 0.05.")] = None,
    lora_target: Annotated[Optional[list[str]], typer.Option(help="Module to adapt (repeatable; default: every linear projection).")] = None,
    eval_every: Annotated[Optional[int], typer.Option(help="Validate every N steps, and after each epoch. Default: 100.")] = None,
    max_val_samples: Annotated[Optional[int], typer.Option(help="Validation samples used. Default: 256.")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Stop after N validations without improvement (0 = never). Default: 3.")] = None,
    min_delta: Annotated[Optional[float], typer.Option(help="Smallest validation-loss fall that counts as improvement. Default: 0.")] = None,
    log_every: Annotated[Optional[int], typer.Option(help="Steps between lines in train_log.jsonl. Default: 10.")] = None,
    gradient_checkpointing: Annotated[Optional[bool], typer.Option("--gradient-checkpointing", help="Recompute activations: less memory, about 30% slower.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N, mps. Default: auto.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed. Default: 0.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset folder (default: the twin's dataset/).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint.")] = False,
) -> None:
    """Fine-tune a base model on a twin's dataset with LoRA; writes adapter/ and merged/ (Ctrl-C saves a checkpoint)."""
    from trainer.train import TrainConfig, resume_config, train
    from trainer.twin_name import resolve_name

    flags = {
        "base": base, "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size, "grad_accum": grad_accum,
        "lr": lr, "warmup_ratio": warmup_ratio, "weight_decay": weight_decay, "max_length": max_length,
        "lora_r": lora_r, "lora_alpha": lora_alpha, "lora_dropout": lora_dropout, "lora_targets": lora_target,
        "eval_every": eval_every, "max_val_samples": max_val_samples, "patience": patience, "min_delta": min_delta,
        "log_every": log_every, "gradient_checkpointing": gradient_checkpointing, "device": device, "seed": seed,
        "dataset_dir": dataset,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    name = resolve_name(name)
    config = resume_config(name, flags) if resume else TrainConfig(name=name, **flags)
    setup_logging()
    result = train(config)
    if result.interrupted:
        print(f"twin train: stopped at step {result.steps}/{result.total_steps}; checkpoint saved. "
              f"Continue with `twin train --name {name} --resume`", file=sys.stderr)
        raise typer.Exit(128 + result.signal)
    print(f"trained {name}: {result.steps} steps, {result.tokens} tokens, {result.tokens_per_s:.0f} tokens/s")
    if result.best_val_loss is not None:
        import math

        print(f"validation loss {result.first_val_loss:.4f} -> {result.best_val_loss:.4f} "
              f"(perplexity {math.exp(min(result.best_val_loss, 50)):.2f}, best at step {result.best_step})")
    print(f"adapter: {result.adapter_dir}")
    print(f"merged:  {result.merged_dir}")


@app.command("persona")
def persona_cmd(
    name: Annotated[Optional[str], typer.Option(help="The twin (default: the only one with a dataset).")] = None,
    examples: Annotated[int, typer.Option(help="Few-shot exchanges put in the prompt.")] = 3,
    base: Annotated[str, typer.Option(help="The model the daemon puts the persona on: default (embedded) or a .gguf path.")] = "default",
    dataset: Annotated[Optional[str], typer.Option(help="Dataset folder (default: the twin's dataset/).")] = None,
) -> None:
    """Build the prompt-only twin: a style summary and a few examples from your messages (served as <name>-prompt)."""
    from trainer.persona import build_persona
    from trainer.twin_name import resolve_name

    name = resolve_name(name)
    persona = build_persona(name, examples=examples, base=base, dataset_dir=dataset)
    print(persona["system_prompt"])
    print(f"\nsaved {paths.twin_dir(name) / 'persona.json'}; `twin serve` offers it as model {name}-prompt", file=sys.stderr)


@app.command("build")
def build_cmd(
    exports: Annotated[list[Path], typer.Argument(help="Chat exports: Telegram result.json (or its folder), WhatsApp .txt, plain JSON, JSONL.", show_default=False)],
    me: Annotated[Optional[list[str]], typer.Option(help="You: a display name or Telegram id (user123); repeatable. Optional for a whole-account Telegram export.")] = None,
    name: Annotated[str, typer.Option(help="The twin to build (twins/NAME).")] = "me",
    base: Annotated[str, typer.Option(help="default (embedded SmolLM2-135M), tinyllama, phi3-mini, qwen2.5-0.5b, qwen2.5-1.5b, gpt2, distilgpt2, a hub id or a directory.")] = "default",
    quant: Annotated[str, typer.Option(help="auto (measure the 4-bit types, keep the best), q4_k_m, q4_1, q4_0, q5_k_m, q8_0, f16, f32.")] = "auto",
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 3,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps instead (0 = epochs decide).")] = 0,
    batch_size: Annotated[int, typer.Option(help="Samples per step.")] = 8,
    max_length: Annotated[int, typer.Option(help="Tokens per sample; older context is cut first.")] = 512,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-4,
    strip_emoji: Annotated[bool, typer.Option("--strip-emoji", help="Remove emoji from the dataset (kept by default: they are style).")] = False,
    seed: Annotated[int, typer.Option(help="Random seed (split, training).")] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N, mps.")] = "auto",
) -> None:
    """From chat exports to a served twin in one go: ingest, train (LoRA + merge), convert to 4-bit GGUF, persona."""
    from twin.build import BuildConfig, build, summary

    setup_logging()
    config = BuildConfig(
        exports=exports, me=tuple(me or ()), name=name, base=base, quant=quant, epochs=epochs, max_steps=max_steps,
        batch_size=batch_size, max_length=max_length, lr=lr, seed=seed, device=device,
        ingest_options={"strip_emoji": strip_emoji, "seed": seed},
    )
    result = build(config, out=lambda line: print(line, file=sys.stderr))
    if result.quant_table:
        print(result.quant_table)
    print(summary(result))


@app.command("eval")
def eval_cmd(
    name: Annotated[Optional[str], typer.Option(help="The twin to evaluate (default: the only twin with a dataset).")] = None,
    limit: Annotated[int, typer.Option(help="Validation samples to evaluate, spread over val.jsonl.")] = 200,
    compare: Annotated[Optional[tuple[str, str]], typer.Option(help="Evaluate two twins and set them side by side: --compare A B.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest generated reply, in tokens.")] = 64,
    temperature: Annotated[float, typer.Option(help="0 = greedy decoding; above 0 samples with --seed.")] = 0.0,
    repetition_penalty: Annotated[float, typer.Option(help="Penalty on tokens among the last 64 generated (1 = off).")] = 1.2,
    seed: Annotated[int, typer.Option(help="Seed for sampling (temperature above 0).")] = 0,
    max_context_chars: Annotated[int, typer.Option(help="Context given to each variant: the newest messages within this many characters.")] = 2000,
    url: Annotated[Optional[str], typer.Option(help="A running daemon to use for the GGUF's replies (else one is started; config chat.url, env TWIN_URL).")] = None,
    threads: Annotated[int, typer.Option(help="llama.cpp threads for the GGUF's perplexity and a daemon started here (0 = their default).")] = 0,
) -> None:
    """Measure how much the twin sounds like you: perplexity, ROUGE-L, chrF, style, ratings; writes twins/NAME/eval/."""
    import os

    # Before torch loads OpenMP: spinning worker threads slow down 10x or more when the cores are shared (a daemon, a TUI).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from trainer.evaluation.run import EvalConfig, evaluate
    from trainer.evaluation.terminal import comparison_table, print_result
    from twin.config import ChatSettings, load

    if compare and name:
        raise UserError("use either --name or --compare A B, not both")
    config = EvalConfig(
        name=name,
        limit=limit,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        repetition_penalty=repetition_penalty,
        seed=seed,
        max_context_chars=max_context_chars,
        threads=threads,
        chat=load(ChatSettings, {"url": url}),
    )
    setup_logging()
    if compare:
        from rich.console import Console

        from trainer.evaluation.compare import compare as run_compare

        comparison = run_compare(compare, config)
        console = Console()
        console.print(comparison_table(comparison.a, comparison.b))
        console.print(f"comparison: {comparison.folder / 'compare.md'}", soft_wrap=True)
        return
    print_result(evaluate(config))


@app.command("demo")
def demo_cmd(
    steps: Annotated[int, typer.Option(help="Training steps for the demo twin (about 10 s each on 2 cores).")] = 20,
) -> None:
    """Build a twin from the bundled sample export, serve it, and compare persona, twin and the real replies."""
    from twin.demo import run_demo

    setup_logging()
    run_demo(steps=steps)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `twin` script: every user error ends in one line on stderr and exit code 2."""
    try:
        code = app(args=argv, standalone_mode=False)
    except UserError as e:
        print(f"twin: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except click_exceptions.NoArgsIsHelpError as e:
        print(e.ctx.get_help() if e.ctx else e.format_message())
        sys.exit(0)
    except click_exceptions.UsageError as e:
        where = e.ctx.command_path if e.ctx else "twin"
        print(f"twin: error: {e.format_message()} (see `{where} --help`)", file=sys.stderr)
        sys.exit(2)
    except click_exceptions.ClickException as e:
        print(f"twin: error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("twin: interrupted", file=sys.stderr)
        sys.exit(130)
    # Like click's standalone mode, always exit: with a command's typer.Exit code, else 0.
    sys.exit(code if isinstance(code, int) else 0)
