"""Commands that run the daemon: serve, and the systemd user service."""

from __future__ import annotations

from typing import Annotated

import typer

from twin.logs import setup_logging


def serve_cmd(
    model: Annotated[
        str | None,
        typer.Option(help="`default` (embedded SmolLM2-135M-Instruct), a built twin's name, or a .gguf path."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="What serves --model: llama.cpp (its GGUF) or onnx (its ONNX export, needs twin[onnx])."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind; non-loopback needs an API key.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (0 picks a free one). Default: 8642.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Require 'Authorization: Bearer KEY' (or TWIN_API_KEY).")] = None,
    queue_size: Annotated[int | None, typer.Option(help="Requests that may wait for the model before 429.")] = None,
    max_loaded: Annotated[
        int | None, typer.Option(help="Models kept in memory at once; others load on demand.")
    ] = None,
    n_ctx: Annotated[int | None, typer.Option(help="Context window per request (capped by the model's own).")] = None,
    parallel: Annotated[
        int | None, typer.Option(help="Requests of one model decoded together in one batch. Default: 4.")
    ] = None,
    requantize: Annotated[
        str | None,
        typer.Option(
            help="auto: with --parallel above 1, decode q4_1/q5_1 files from a q8_0 copy made once in the cache "
            "(llama.cpp's CPU kernels batch q8_0, not q4_1; 1.5x the memory); off: the file as it is. Default: auto."
        ),
    ] = None,
    idle_unload: Annotated[
        str | None, typer.Option(help="Free a model nobody used for this long (90s, 10m, 1h; 0 = never).")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="llama.cpp threads (0 = all cores).")] = None,
    max_body_bytes: Annotated[int | None, typer.Option(help="Largest request body accepted (413 beyond).")] = None,
    max_upload_mb: Annotated[
        int | None, typer.Option(help="Largest file POST /v1/files accepts, in MB (streamed to disk). Default: 2048.")
    ] = None,
    train_threads: Annotated[
        int | None, typer.Option(help="Torch threads of a fine-tuning job's build, run at nice 10 (0 = all cores).")
    ] = None,
    grace_seconds: Annotated[
        float | None, typer.Option(help="On SIGTERM, how long in-flight requests may finish.")
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Allow browser requests from this origin (repeatable).")
    ] = None,
    log_content: Annotated[
        bool | None, typer.Option("--log-content", help="Log message text (off: it is private).")
    ] = None,
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
            "backend": backend,
            "host": host,
            "port": port,
            "api_key": api_key,
            "queue_size": queue_size,
            "max_loaded": max_loaded,
            "n_ctx": n_ctx,
            "parallel": parallel,
            "requantize": requantize,
            "idle_unload": idle_unload,
            "threads": threads,
            "max_body_bytes": max_body_bytes,
            "max_upload_mb": max_upload_mb,
            "train_threads": train_threads,
            "grace_seconds": grace_seconds,
            "cors_origins": cors_origin or None,
            "log_content": log_content,
        },
    )
    setup_logging()
    catalog, primary = build_catalog(settings.model, settings.backend)

    def ready(url: str) -> None:
        print(f"twin serve: listening on {url} (models: {', '.join(sorted(catalog))})", flush=True)

    raise typer.Exit(asyncio.run(run_server(settings, catalog, primary, ready)))


BotFlag = Annotated[
    bool, typer.Option("--bot", help="The Telegram bot's unit (twin-bot.service) instead of the daemon's.")
]


def service_install(bot: BotFlag = False) -> None:
    """Write the user unit to ~/.config/systemd/user/ and enable it (or print the steps without systemd)."""
    from daemon import service

    service.install(bot=bot)


def service_uninstall(bot: BotFlag = False) -> None:
    """Stop, disable and remove the user unit."""
    from daemon import service

    service.uninstall(bot=bot)


def service_status(bot: BotFlag = False) -> None:
    """Show whether the unit is installed and running."""
    from daemon import service

    raise typer.Exit(service.status(bot=bot))
