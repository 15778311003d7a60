"""Would reranking sampled candidates by mutual information help the twin? An offline measurement on a built twin.

On the twin that `bench/style.py --home DIR` built, the merged LoRA (transformers, as `twin eval` runs it) draws K
replies per validation sample with the chat default, scores each by log p(reply | context) and by log p(reply) under
a bare context (twin.consensus.bare_context: the sample's system line and a user saying "hey"), and prints, for each single draw, the consensus
pick (twin.consensus), the longest, and MMI picks (score = log p(r | c) − λ·log p(r), summed or per token), the
figures of `twin eval`: ROUGE-L, chrF, words per reply, distinct-2, the share of the most frequent reply.
This is the measurement that chose the daemon's and `twin eval`'s default rerank and its λ (twin.consensus).

`--plot FILE` draws chrF and ROUGE-L against words per reply for every pick, the person's length with the
issue's ±25% band, and, from the twin's last `twin eval` (eval/generations.jsonl, when there is one), the
persona's sampled replies cut to 4, 6, … words: both metrics rise with length, so a pick is better than the
persona only where it lies above the persona's curve at its own length.

    python bench/mmi.py --home DIR [--name bench] [--candidates 6] [--limit 150] [--cache FILE] [--plot FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


Scores = list[list[tuple[float, float, int]]]  # per sample, per candidate: (−log p(r | c), −log p(r | bare), tokens)


def draw_and_score(
    model: Any, tokenizer: Any, samples: list[Any], variant: Any, decoding: Any, k: int
) -> tuple[list[list[str]], Scores]:
    """k draws per sample, and per draw (−log p(r | context), −log p(r | bare context), reply tokens), as
    `twin eval --rerank mmi` scores them (trainer.evaluation.generation: tracked while sampling, then forced)."""
    from trainer.evaluation.generation import _hf_generate, bare_logprobs

    started = time.perf_counter()
    rows = [s for s in samples for _ in range(k)]
    drawn = _hf_generate(model, tokenizer, rows, variant.system_prompt, decoding, 32, lambda n: None, track=True)
    print(f"draw_s={time.perf_counter() - started:.1f}", flush=True)
    started = time.perf_counter()
    groups: list[list[str]] = []
    scores: Scores = []
    for i, sample in enumerate(samples):
        group = drawn[i * k : (i + 1) * k]
        unconditional = bare_logprobs(model, tokenizer, sample, variant.system_prompt, group)
        groups.append([d.text for d in group])
        scores.append([(-d.logprob, -u, len(d.ids)) for d, u in zip(group, unconditional, strict=True)])
    print(f"score_s={time.perf_counter() - started:.1f}", flush=True)
    return groups, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="the TWIN_HOME bench/style.py --home built its twin in")
    parser.add_argument("--name", default="bench")
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--weights", default="0.5,0.75,1,1.25,1.5", help="the λ values to pick with, comma-separated")
    parser.add_argument("--cache", type=Path, help="a JSON file keeping the draws and their scores between runs")
    parser.add_argument("--plot", type=Path, help="a PNG of chrF and ROUGE-L against words per reply")
    args = parser.parse_args()
    if args.home is None or not (args.home / "twins" / args.name / "merged").is_dir():
        print("mmi_status=not_measured (needs --home DIR with a twin built by `bench/style.py --home DIR`)")
        return
    os.environ["TWIN_HOME"] = str(args.home)
    from trainer.evaluation import models
    from trainer.evaluation.collapse import distinct, normalized
    from trainer.evaluation.evalset import load_samples
    from trainer.evaluation.generation import CHAT_DEFAULT
    from trainer.evaluation.overlap import overlap
    from trainer.evaluation.run import EvalConfig, conditioned
    from trainer.evaluation.variants import find_variants
    from twin import registry
    from twin.consensus import pick

    k = args.candidates
    samples = load_samples(args.name, args.limit, EvalConfig().max_context_chars, conditioned(args.name))
    variant = next(v for v in find_variants(args.name) if v.key == "lora")
    model, tokenizer = models.load(variant)
    decoding = dataclasses.replace(CHAT_DEFAULT, end_bias=registry.end_bias(args.name))
    cached = json.loads(args.cache.read_text()) if args.cache is not None and args.cache.exists() else None
    groups: list[list[str]]
    scores: Scores
    if cached is not None:
        groups = cached["groups"]
        scores = [[(float(c), float(u), int(n)) for c, u, n in row] for row in cached["scores"]]
    else:
        groups, scores = draw_and_score(model, tokenizer, samples, variant, decoding, k)
        if args.cache is not None:
            args.cache.write_text(json.dumps({"groups": groups, "scores": scores}))
    real = [s.real for s in samples]
    points: dict[str, tuple[float, float, float]] = {}  # label: (words, chrF, ROUGE-L)

    def show(label: str, chosen: list[str]) -> None:
        figures = overlap(chosen, real)
        top = Counter(normalized(x) for x in chosen).most_common(1)[0][1] / len(chosen)
        words = sum(len(x.split()) for x in chosen) / len(chosen)
        points[label] = (words, figures.chrf, figures.rouge_l)
        print(
            f"{label}_rouge_l={figures.rouge_l:.4f} {label}_chrf={figures.chrf:.4f} {label}_words={words:.2f}"
            f" {label}_distinct_2={distinct(chosen, 2):.4f} {label}_top_share={top:.4f}"
        )

    for j in range(k):
        show(f"draw{j}", [g[j] for g in groups])
    show("consensus", [g[pick(g)] for g in groups])
    show("longest", [max(g, key=len) for g in groups])
    for lam in (float(w) for w in args.weights.split(",")):
        for per_token in (False, True):
            chosen = []
            for g, row in zip(groups, scores, strict=True):
                value = [(-c + lam * u) / (n if per_token else 1) for c, u, n in row]
                chosen.append(g[value.index(max(value))])
            show(f"mmi_{lam:g}_{'token' if per_token else 'sum'}", chosen)
    if args.plot is not None:
        person = sum(len(x.split()) for x in real) / len(real)
        persona = persona_curve(args.home / "twins" / args.name / "eval" / "generations.jsonl", overlap)
        plot(points, person, persona, args.plot)
        print(f"plot={args.plot}")


def persona_curve(generations: Path, overlap: Any) -> list[tuple[float, float, float]]:
    """(words, chrF, ROUGE-L) of the persona's sampled replies in `twin eval`'s generations, cut to 4, 6, … words
    (and whole); empty when the twin has not been evaluated."""
    if not generations.is_file():
        return []
    rows = [json.loads(line) for line in generations.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("prompt", {}).get("sampled")]
    if not rows:
        return []
    real = [r["real"] for r in rows]
    persona = [r["prompt"]["sampled"].split() for r in rows]
    curve = []
    for cut in [*range(4, max(len(w) for w in persona), 2), None]:
        kept = [" ".join(words[:cut]) for words in persona]
        figures = overlap(kept, real)
        curve.append((sum(len(x.split()) for x in kept) / len(kept), figures.chrf, figures.rouge_l))
    return curve


def plot(
    points: dict[str, tuple[float, float, float]],
    person: float,
    persona: list[tuple[float, float, float]],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, column, name in ((axes[0], 1, "chrF (β = 2)"), (axes[1], 2, "ROUGE-L")):
        ax.axvspan(person * 0.75, person * 1.25, color="#dddddd", label="the person's words ±25%")
        ax.axvline(person, color="#444444", linewidth=0.8)
        if persona:
            ax.plot(
                [c[0] for c in persona], [c[column] for c in persona], color="#e0a030", marker=".", label="persona, cut"
            )
        for label, point in points.items():
            kind = "draw" if label.startswith("draw") else "per token" if label.endswith("token") else label
            color = {"draw": "#999999", "consensus": "#a040a0", "longest": "#30a070", "per token": "#80b0e0"}
            ax.scatter(point[0], point[column], color=color.get(kind, "#3070c0"), s=22, zorder=3)
            if not label.startswith("draw"):
                ax.annotate(
                    label.removesuffix("_sum"),
                    (point[0], point[column]),
                    fontsize=7,
                    xytext=(3, 2),
                    textcoords="offset points",
                )
        ax.set_xlabel("words per reply (mean)")
        ax.set_ylabel(name)
        ax.set_title(f"{name}: the LoRA's picks of its draws (grey: single draws)", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
