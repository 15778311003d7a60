"""The `twin` command: a thin typer layer over the typed functions of each package.

Heavy imports (torch, llama.cpp) happen inside the commands, so `twin --help` is instant.
A `UserError` anywhere ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Optional

import click
import typer

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


@app.command("demo")
def demo_cmd() -> None:
    """Start the daemon on the embedded model, ask it one question through the OpenAI SDK, stop."""
    from twin.demo import run_demo

    setup_logging()
    run_demo()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `twin` script: user errors become one line and exit code 2."""
    try:
        # Without standalone mode click returns a command's `typer.Exit(code)` instead of exiting.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except UserError as e:
        print(f"twin: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        print("twin: aborted", file=sys.stderr)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)
        sys.exit(130)
