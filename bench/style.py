"""Does the twin sound like its person on a real chat? One build on a time budget, then `twin eval`.

Runs, each as the CLI a user would run, in a temporary TWIN_HOME:

1. `twin build EXPORT --me WHO --split time --time-budget BUDGET` (ingest, train, convert, persona);
2. `twin serve --model NAME` until its first reply: build + this = time_to_twin_s;
3. `twin eval --limit N`: every variant greedy and with the chat default (sampled, seed 0, as the twin
   is served: the most mutually informative of its 6 candidates per sample; `--candidates K` overrides).

and prints the figures of eval/report.json as name=value lines: per variant
(prompt, lora, gguf) and decoding (greedy, sampled) ROUGE-L, chrF, style
distance, words per reply, distinct-1/-2, the share of the most frequent reply
and of replies spoken as someone else; the person's own figures; perplexities;
the issue's goals as goal_*=0/1; and the persona's sampled overlap at the LoRA's
length (its replies cut to the LoRA's word count sample by sample, and to its mean).

    python bench/style.py [--export ../shared/corpora/seinfeld/result.json] [--me George]
                          [--budget 15m] [--limit 150] [--candidates K] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NAME = "bench"
DEFAULT_EXPORT = REPO / ".." / "shared" / "corpora" / "seinfeld" / "result.json"


def twin(args: list[str], env: dict[str, str]) -> float:
    """Run `twin ARGS` (its output to our stderr); the seconds it took."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "twin", *args], env=env, check=True, stdout=sys.stderr)
    return time.perf_counter() - started


def first_reply_seconds(env: dict[str, str], home: Path) -> float:
    """From `twin serve --model NAME` to the twin's first chat reply."""
    import openai

    from daemon.process import DaemonProcess

    started = time.perf_counter()
    with DaemonProcess(["--model", NAME], env=env, log_path=home / "serve.log") as proc:
        client = openai.OpenAI(base_url=proc.url, api_key="not-needed-on-loopback")
        client.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "hey, you there?"}], max_tokens=16
        )
        return time.perf_counter() - started


def print_build_figures(build_s: float, serve_s: float) -> None:
    from twin import registry

    data = registry.read(NAME)
    print(f"time_to_twin_s={build_s + serve_s:.1f}")
    print(f"build_s={build_s:.1f}")
    print(f"serve_first_reply_s={serve_s:.1f}")
    print(f"train_steps={data['train'].get('steps')}")
    print(f"train_tokens_per_s={data['train'].get('tokens_per_s')}")
    print(f"end_bias={data.get('decoding', {}).get('end_bias', 0.0)}")
    print(f"goal_time_to_twin_900s={int(build_s + serve_s <= 900)}")


def print_figures(report: dict, build_s: float, serve_s: float, train: dict, generations: Path | None = None) -> None:
    from twin import registry

    def line(name: str, value: object) -> None:
        if isinstance(value, float):
            value = round(value, 4)
        print(f"{name}={value}")

    line("time_to_twin_s", round(build_s + serve_s, 1))
    line("build_s", round(build_s, 1))
    line("serve_first_reply_s", round(serve_s, 1))
    line("train_steps", train.get("steps"))
    line("train_tokens", train.get("tokens"))
    line("train_tokens_per_s", train.get("tokens_per_s"))
    line("train_samples", train.get("train_samples"))
    line("eval_samples", report["samples"])
    decoding = registry.read(NAME).get("decoding", {})
    line("end_bias", decoding.get("end_bias", 0.0))  # `twin calibrate`'s, served by default
    sampled = report.get("sampled_decoding") or {}
    line("sampled_candidates", sampled.get("candidates", 1))
    line("sampled_rerank", sampled.get("rerank", "consensus") if sampled.get("candidates", 1) > 1 else "none")
    real = report["real"]["collapse"]
    line("person_words", real["words"])
    line("person_distinct_2", real["distinct_2"])
    line("person_top_share", real["top_share"])
    variants = report["variants"]
    ppl = {}
    for key in ("prompt", "lora", "gguf"):
        v = variants.get(key, {})
        if v.get("status") != "measured":
            line(f"{key}_status", "missing")
            continue
        ppl[key] = v["perplexity"]
        line(f"{key}_perplexity", v["perplexity"])
        for how, figures in (("greedy", v), ("sampled", v.get("sampled"))):
            if not figures:
                continue
            collapse = figures["collapse"]
            for name in ("rouge_l", "chrf", "style_distance", "words_per_reply"):
                line(f"{key}_{how}_{name}", figures[name])
            for name in ("distinct_1", "distinct_2", "top_share", "speaker_share", "length_ratio"):
                line(f"{key}_{how}_{name}", collapse[name])
    if "prompt" in ppl and "lora" in ppl:
        line("lora_perplexity_gain_vs_prompt", 1 - ppl["lora"] / ppl["prompt"])
    if "lora" in ppl and "gguf" in ppl:
        line("gguf_perplexity_over_lora", ppl["gguf"] / ppl["lora"])
    # The goals, on the chat default (what people chat with); greedy figures are above.
    lora, prompt = variants.get("lora", {}).get("sampled"), variants.get("prompt", {}).get("sampled")
    if lora and prompt:
        beats = lora["rouge_l"] > prompt["rouge_l"] and lora["chrf"] > prompt["chrf"]
        beats = beats and lora["style_distance"] < prompt["style_distance"]
        line("goal_beats_prompt_sampled", int(beats))
        line("goal_perplexity_25pct", int(1 - ppl["lora"] / ppl["prompt"] >= 0.25))
        c = lora["collapse"]
        line("goal_top_reply_3pct_sampled", int(c["top_share"] <= 0.03))
        line("goal_distinct_2_sampled", int(c["distinct_2"] >= 0.8 * real["distinct_2"]))
        line("goal_length_25pct_sampled", int(abs(c["words"] / real["words"] - 1) <= 0.25))
    line("goal_time_to_twin_900s", int(build_s + serve_s <= 900))
    if "lora" in ppl and "gguf" in ppl:
        line("goal_gguf_within_3pct", int(ppl["gguf"] / ppl["lora"] <= 1.03))
    if generations is not None and lora and prompt:
        for name, value in at_lora_length(generations).items():
            line(f"prompt_sampled_at_lora_length_{name}", value)


def at_lora_length(generations: Path) -> dict[str, float]:
    """The persona's sampled overlap with my real replies, its replies cut to the LoRA's length.

    ROUGE-L and chrF (β = 2, recall-weighted) rise with length, and the persona writes 2-3 times my length.
    Two cuts: to the LoRA's word count sample by sample (`each_*`), and every reply to the LoRA's mean word
    count rounded (`mean_*`, which keeps words where I wrote long and the LoRA short). The goal lines stay as
    the issue defines them.
    """
    from trainer.evaluation.overlap import overlap
    from trainer.style import mean_words

    rows = [json.loads(line) for line in generations.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("prompt", {}).get("sampled") is not None and r.get("lora", {}).get("sampled")]
    real = [r["real"] for r in rows]
    persona = [r["prompt"]["sampled"].split() for r in rows]
    lora = [len(r["lora"]["sampled"].split()) for r in rows]
    mean = max(1, round(sum(lora) / len(lora)))
    out: dict[str, float] = {}
    for how, cut in (
        ("each", [" ".join(words[: max(1, n)]) for words, n in zip(persona, lora, strict=True)]),
        ("mean", [" ".join(words[:mean]) for words in persona]),
    ):
        figures = overlap(cut, real)
        out |= {f"{how}_rouge_l": figures.rouge_l, f"{how}_chrf": figures.chrf, f"{how}_words": mean_words(cut)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--me", default="George")
    parser.add_argument("--budget", default="15m", help="twin build --time-budget")
    parser.add_argument("--limit", type=int, default=150, help="validation samples evaluated")
    parser.add_argument(
        "--candidates",
        type=int,
        help="twin eval --candidates: the sampled rows' draws per sample (default: the twin's served default)",
    )
    parser.add_argument("--home", type=Path, help="TWIN_HOME to use and keep (default: a temporary one)")
    parser.add_argument("--skip-build", action="store_true", help="reuse the twin built in --home")
    parser.add_argument("--build-only", action="store_true", help="time the build and first reply; no evaluation")
    parser.add_argument(
        "--warm-base",
        type=Path,
        help="an imported embedded base (TWIN_HOME/cache/bases/<id>) to link in: its one-time import is left out",
    )
    args = parser.parse_args()
    if not args.export.is_file():
        sys.exit(f"bench/style.py: {args.export} does not exist: pass --export (a Telegram result.json)")

    with tempfile.TemporaryDirectory(prefix="twin-bench-style-") as tmp:
        home = args.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TWIN_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        times = home / "bench-times.json"
        if args.warm_base:
            from twin import embedded

            target = home / "cache" / "bases" / embedded.MODEL_ID
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(args.warm_base.resolve(), target_is_directory=True)
        if args.skip_build:
            build_s, serve_s = json.loads(times.read_text())
        else:
            build = ["build", str(args.export), "--me", args.me, "--name", NAME, "--split", "time"]
            build_s = twin([*build, "--time-budget", args.budget], env)
            serve_s = first_reply_seconds(env, home)
            times.write_text(json.dumps([build_s, serve_s]))
        if args.build_only:
            os.environ["TWIN_HOME"] = str(home)
            print_build_figures(build_s, serve_s)
            return
        chosen = [] if args.candidates is None else ["--candidates", str(args.candidates)]
        twin(["eval", "--name", NAME, "--limit", str(args.limit), *chosen], env)
        from twin import registry

        os.environ["TWIN_HOME"] = str(home)
        train = registry.read(NAME).get("train", {})
        report = json.loads((home / "twins" / NAME / "eval" / "report.json").read_text())
        print_figures(report, build_s, serve_s, train, home / "twins" / NAME / "eval" / "generations.jsonl")


if __name__ == "__main__":
    main()
