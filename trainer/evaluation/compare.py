"""`twin eval --compare A B`: two twins evaluated with the same settings, set side by side.

Both twins are checked before any work (a missing one is a one-line error);
each gets its own eval/ report, and the comparison is written to
`<data dir>/comparisons/A-vs-B/` (compare.md, compare.json, metrics.png).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from trainer.evaluation import plots
from trainer.evaluation.report import SHORT_NAMES, cell, fmt
from trainer.evaluation.results import EvalResult
from trainer.evaluation.run import EvalConfig, check_twin, evaluate
from trainer.evaluation.terminal import COLUMNS
from twin import paths
from twin.errors import UserError
from twin.files import atomic_dir, write_bytes, write_json, write_text


@dataclass
class Comparison:
    a: EvalResult
    b: EvalResult
    folder: Path


def compare(names: tuple[str, str], config: EvalConfig) -> Comparison:
    """Evaluate twins A and B with `config`'s settings and write their comparison."""
    a, b = names
    if a == b:
        raise UserError(f"--compare needs two different twins, got {a!r} twice")
    for name in names:
        check_twin(name, config)
    results = [evaluate(dataclasses.replace(config, name=name)) for name in names]
    folder = paths.data_dir() / "comparisons" / f"{a}-vs-{b}"
    write(results[0], results[1], folder)
    return Comparison(results[0], results[1], folder)


def markdown(a: EvalResult, b: EvalResult) -> str:
    out = [
        f"# twin `{a.name}` vs twin `{b.name}`",
        "",
        f"Each on its own validation split ({len(a.samples)} and {len(b.samples)} samples); decoding: {a.decoding.describe()}.",
        f"Full reports: `{a.folder / 'report.md'}`, `{b.folder / 'report.md'}`.",
        "",
        f"| variant | metric | {a.name} | {b.name} |",
        "| --- | --- | ---: | ---: |",
    ]
    for va, vb in zip(a.variants, b.variants):
        if va.variant.missing and vb.variant.missing:
            continue
        sa, sb = va.summary(), vb.summary()
        for key, header, digits in COLUMNS:
            left = "missing" if va.variant.missing else fmt(sa[key], digits)
            right = "missing" if vb.variant.missing else fmt(sb[key], digits)
            out.append(f"| {SHORT_NAMES[va.key]} | {cell(header)} | {left} | {right} |")
    out += ["", "![metrics](metrics.png)", ""]
    return "\n".join(out)


def write(a: EvalResult, b: EvalResult, folder: Path) -> None:
    groups = [(f"{r.name}: {SHORT_NAMES[v.key]}", v.key, v.summary()) for r in (a, b) for v in r.measured()]
    paths.private_dir(folder.parent)
    with atomic_dir(folder) as tmp:
        write_text(tmp / "compare.md", markdown(a, b))
        write_json(tmp / "compare.json", {"twins": [a.name, b.name], "reports": [a.as_json(), b.as_json()]})
        write_bytes(tmp / "metrics.png", plots.metric_bars(f"twin {a.name} vs twin {b.name}", groups))
