"""Commands that talk to the daemon: chat (and rating), eval."""

from __future__ import annotations

from typing import Annotated

import typer

from twin.errors import UserError
from twin.logs import setup_logging
from twin.threads import passive_for_torch


def chat_cmd(
    url: Annotated[
        str | None,
        typer.Option(
            help="The daemon's API address (default http://127.0.0.1:8642/v1; config chat.url, env TWIN_URL)."
        ),
    ] = None,
    rate: Annotated[bool, typer.Option("--rate", help="Rate how much the twin's replies sound like you.")] = False,
    name: Annotated[
        str | None, typer.Option(help="With --rate: the twin to rate (needed when there are several).")
    ] = None,
) -> None:
    """Chat with your twins through the daemon in the terminal (`--rate`: rate their replies against your own)."""
    from twin.config import ChatSettings, load

    settings = load(ChatSettings, {"url": url})
    if name is not None and not rate:
        raise UserError(
            "--name only goes with --rate: run `twin chat --rate --name NAME` (in chat, pick the model with F4)"
        )
    if rate:
        from tui.rate_app import run_rating

        run_rating(settings, name)
    else:
        from tui.chat_app import run_chat

        run_chat(settings)


def eval_cmd(
    name: Annotated[
        str | None, typer.Option(help="The twin to evaluate (default: the only twin with a dataset).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Validation samples to evaluate, spread over val.jsonl.")] = 200,
    compare: Annotated[
        tuple[str, str] | None, typer.Option(help="Evaluate two twins and set them side by side: --compare A B.")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest generated reply, in tokens.")] = 64,
    temperature: Annotated[float, typer.Option(help="0 = greedy decoding; above 0 samples with --seed.")] = 0.0,
    repetition_penalty: Annotated[
        float, typer.Option(help="Penalty on tokens among the last 64 generated (1 = off).")
    ] = 1.2,
    seed: Annotated[int, typer.Option(help="Seed for sampling (temperature above 0).")] = 0,
    max_context_chars: Annotated[
        int, typer.Option(help="Context given to each variant: the newest messages within this many characters.")
    ] = 2000,
    url: Annotated[
        str | None,
        typer.Option(
            help="A running daemon to use for the GGUF's replies (else one is started; config chat.url, env TWIN_URL)."
        ),
    ] = None,
    threads: Annotated[
        int,
        typer.Option(help="llama.cpp threads for the GGUF's perplexity and a daemon started here (0 = their default)."),
    ] = 0,
    greedy_only: Annotated[
        bool,
        typer.Option(
            "--greedy-only", help="Skip the second set of replies with the chat default (sampled, seeded): faster."
        ),
    ] = False,
    candidates: Annotated[
        int | None,
        typer.Option(
            help="Sampled replies: draw this many per sample and keep one by --rerank (the daemon's `candidates`);"
            " default: as the twin is served (twin.toml \\[serve] candidates; 6 after `twin build`, else 1)."
        ),
    ] = None,
    rerank: Annotated[
        str,
        typer.Option(
            help="How the kept candidate is chosen: mmi (mutual information with the context) or consensus"
            " (closest to the others)."
        ),
    ] = "mmi",
) -> None:
    """Measure how much the twin sounds like you: perplexity, ROUGE-L, chrF, style, ratings; writes twins/NAME/eval/."""
    passive_for_torch()
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
        sampled=not greedy_only,
        candidates=candidates,
        rerank=rerank,
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
