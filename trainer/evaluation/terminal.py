"""What `twin eval` prints on stdout: rich tables of the headline figures, and the side-by-side comparison."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from trainer.evaluation.report import SHORT_NAMES, fmt
from trainer.evaluation.results import EvalResult

COLUMNS = (
    ("perplexity", "perplexity ↓", 2),
    ("rouge_l", "ROUGE-L ↑", 3),
    ("chrf", "chrF ↑", 3),
    ("style_distance", "style ↓", 3),
    ("vocabulary_overlap", "vocab ↑", 3),
    ("words_per_reply", "words", 1),
)


def summary_table(result: EvalResult) -> Table:
    table = Table(title=f"twin {result.name}: {len(result.samples)} validation samples", title_justify="left")
    table.add_column("variant")
    for _, header, _ in COLUMNS:
        table.add_column(header, justify="right")
    table.add_row("mine", "–", "1.000", "1.000", "0.000", "1.000", fmt(result.real_style["words"], 1), style="dim")
    for v in result.variants:
        if v.variant.missing:
            table.add_row(SHORT_NAMES[v.key], "[yellow]missing[/]", *[""] * (len(COLUMNS) - 1))
            continue
        s = v.summary()
        table.add_row(SHORT_NAMES[v.key], *(fmt(s[key], digits) for key, _, digits in COLUMNS))
    table.caption = "; ".join(f"{SHORT_NAMES[v.key]}: {v.variant.label}" for v in result.measured())
    return table


def print_result(result: EvalResult, console: Console | None = None) -> None:
    console = console or Console()
    console.print(summary_table(result))
    console.print(f"decoding: {result.decoding.describe()}", soft_wrap=True)
    for v in result.variants:
        if v.variant.missing:
            console.print(f"[yellow]{SHORT_NAMES[v.key]} missing[/]: {v.variant.missing}", soft_wrap=True)
    r = result.ratings
    if r.variants:
        parts = [f"{v.variant} {v.mean_score:.2f}/5, best {v.best_share:.0%}" for v in r.variants]
        console.print(f"human ratings ({r.rounds} rounds): " + "; ".join(parts))
    else:
        console.print(f"human ratings: {r.note}")
    f = r.friends
    if f is not None:
        parts = [f"{v.variant} {v.mean_score:.2f}/5" for v in f.variants]
        console.print(
            f"friends' survey ({f.rounds} rounds, {f.raters} raters): picked your real reply in "
            f"{f.share('real') or 0:.0%} (chance {f.chance:.0%}); " + "; ".join(parts)
        )
    console.print(f"report: {result.folder / 'report.md'}", soft_wrap=True)


def comparison_table(a: EvalResult, b: EvalResult) -> Table:
    table = Table(title=f"twin {a.name} vs twin {b.name}", title_justify="left")
    table.add_column("variant")
    table.add_column("metric")
    table.add_column(a.name, justify="right")
    table.add_column(b.name, justify="right")
    for key in SHORT_NAMES:
        va = next((v for v in a.variants if v.key == key), None)
        vb = next((v for v in b.variants if v.key == key), None)
        if va is None or vb is None:  # a report written before this variant existed
            continue
        if va.variant.missing and vb.variant.missing:
            continue
        sa, sb = va.summary(), vb.summary()
        for i, (metric, header, digits) in enumerate(COLUMNS):
            table.add_row(
                SHORT_NAMES[key] if i == 0 else "",
                header,
                "missing" if va.variant.missing else fmt(sa[metric], digits),
                "missing" if vb.variant.missing else fmt(sb[metric], digits),
                end_section=i == len(COLUMNS) - 1,
            )
    return table
