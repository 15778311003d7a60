"""`twin demo`: the README's first command. Builds a twin from the bundled sample export, serves it, and
shows three exchanges side by side: the base with the persona prompt, the twin, and the real reply."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from daemon.process import DaemonProcess
from trainer.train.config import TrainConfig
from twin import dataset
from twin.build import BuildConfig, build, summary
from twin.conditioning import FIELDS
from twin.errors import UserError

# English: the embedded model cannot write Russian (examples/telegram_sample/ stays for the ingest tests).
SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "telegram_sample_en" / "result.json"
NAME = "demo"
# A short training budget: a few minutes on 2 cores, about two passes over the sample's conversations.
STEPS = 80
# Low temperature: the 135M model drifts into invented words when sampled hotter.
DECODING = {"temperature": 0.3, "seed": 0, "max_tokens": 48}


@dataclass
class Exchange:
    context: list[dict[str, str]]
    persona: str
    twin: str
    real: str


def pick_samples(val_file: Path, count: int) -> list[list[dict[str, str]]]:
    """Validation samples a reader can follow: short contexts ending in a question or remark in words."""
    return [m for m, _ in pick_records(val_file, count)]


def pick_records(val_file: Path, count: int) -> list[tuple[list[dict[str, str]], dict[str, str]]]:
    """As pick_samples, each with its chat fields (the daemon's `twin` field: who the reply talks to)."""
    lines = dataset.read(val_file)
    fields = {id(line.messages): {k: str(line.record[k]) for k in FIELDS if line.record.get(k)} for line in lines}
    samples = [line.messages for line in lines]

    def wordy(text: str) -> bool:
        text = re.sub(r"<[A-Z_]+>", "", text.split(": ", 1)[-1])  # placeholders such as <URL> are not words
        return len(re.findall(r"\w{2,}", text)) >= 2

    readable = [m for m in samples if wordy(m[-2]["content"]) and re.search(r"\w", m[-1]["content"])]
    chosen = readable if len(readable) >= count else samples
    chosen.sort(key=lambda m: (len(m), sum(len(x["content"]) for x in m)))
    return [(m, fields[id(m)]) for m in chosen[:count]]


def run_demo(out=print, steps: int = STEPS, exchanges: int = 3) -> list[Exchange]:
    """Build the demo twin, start the daemon, ask both variants about `exchanges` validation contexts."""
    import openai

    from twin.consensus import TWIN_CANDIDATES

    if not SAMPLE.is_file():
        raise UserError(
            f"the bundled sample export is missing ({SAMPLE}): run `twin demo` from a clone of the repository"
        )
    result = build(BuildConfig(exports=[SAMPLE], train=TrainConfig(name=NAME, epochs=1, max_steps=steps)), out=out)
    out("")
    if result.quant_table:
        out("4-bit types measured on the validation replies (perplexity, lower is better):")
        out(result.quant_table)
    out(summary(result))

    samples = pick_records(dataset.val_path(NAME), exchanges)
    shown: list[Exchange] = []
    with tempfile.TemporaryDirectory(prefix="twin-demo-") as tmp:
        out("\nstarting the daemon and asking both variants…")
        with DaemonProcess(["--model", NAME], log_path=Path(tmp) / "serve.log") as daemon:
            client = openai.OpenAI(base_url=daemon.url, api_key="-", max_retries=0)

            def ask(model: str, context: list[dict[str, str]], twin: dict[str, str]) -> str:
                reply = client.chat.completions.create(  # type: ignore[call-overload]  # plain role/content dicts
                    model=model, messages=context, extra_body={"twin": twin, "candidates": TWIN_CANDIDATES}, **DECODING
                )
                return (reply.choices[0].message.content or "").strip()

            for messages, twin in samples:
                context, real = messages[:-1], messages[-1]["content"]
                shown.append(Exchange(context, ask(f"{NAME}-prompt", context, twin), ask(NAME, context, twin), real))
            url = daemon.url
    _print_exchanges(shown, out)
    out(
        f"\n(the daemon ran at {url} for the demo and has stopped; decoding: {DECODING}, for both variants the most"
        f" mutually informative of {TWIN_CANDIDATES} candidates, as a built twin is served)"
    )
    out("The embedded SmolLM2-135M is small and English-only; for your own Russian chats build on a multilingual")
    out(
        "base: `twin build result.json --base qwen2.5-0.5b` (download it once: `hf download Qwen/Qwen2.5-0.5B-Instruct`)."
    )
    out("Serve it yourself with `twin serve` and point any OpenAI client at http://127.0.0.1:8642/v1")
    out(
        f"  models: '{NAME}' (LoRA twin), '{NAME}-prompt' (persona prompt, no training), 'smollm2-135m-instruct' (base)"
    )
    out("  chat in the terminal: `twin chat`; rate the replies: `twin chat --rate --name demo`")
    return shown


def _print_exchanges(shown: list[Exchange], out) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="the sample person's chats: three variants side by side", show_lines=True)
    table.add_column("they wrote", max_width=34)
    table.add_column("base + persona prompt", max_width=30)
    table.add_column("twin (LoRA)", max_width=30)
    table.add_column("real reply", max_width=24)
    for ex in shown:
        last = ex.context[-1]["content"] if ex.context else ""
        table.add_row(last, ex.persona, ex.twin, ex.real)
    console = Console(width=130)
    with console.capture() as capture:
        console.print(table)
    out(capture.get().rstrip())
