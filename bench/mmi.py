"""Would reranking sampled candidates by mutual information help the twin? An offline measurement on a built twin.

On the twin that `bench/style.py --home DIR` built, the merged LoRA (transformers, as `twin eval` runs it) draws K
replies per validation sample with the chat default, scores each by log p(reply | context) and by log p(reply) under
a bare context (the sample's system line and a user saying "hey"), and prints, for each single draw, the consensus
pick (twin.consensus), the longest, and MMI picks (score = log p(r | c) − λ·log p(r), summed or per token), the
figures of `twin eval`: ROUGE-L, chrF, words per reply, distinct-2, the share of the most frequent reply.
Nothing here is served yet: it is the measurement that decides whether the daemon should rerank.

    python bench/mmi.py --home DIR [--name bench] [--candidates 6] [--limit 150]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def reply_nll(model: Any, tokenizer: Any, messages: list[dict[str, str]], reply: str) -> tuple[float, int]:
    """(summed negative log-likelihood, tokens) of `reply` as the assistant's next turn after `messages`, split
    into context and reply as `twin eval`'s perplexity splits them (convert.perplexity.split_reply)."""
    import torch

    from convert.perplexity import split_reply

    def render(chat: list[dict[str, str]], gen: bool) -> str:
        return str(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=gen))

    parts = split_reply(render, [*messages, {"role": "assistant", "content": reply}])
    if parts is None:
        raise SystemExit(f"bench/mmi.py: the chat template cannot split the reply {reply!r} from its context")
    prefix, r = (tokenizer(text, add_special_tokens=False)["input_ids"] for text in parts)
    logits = model(input_ids=torch.tensor([prefix + r]), logits_to_keep=len(r) + 1).logits[0, :-1]
    return float(torch.nn.functional.cross_entropy(logits, torch.tensor(r), reduction="sum")), len(r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="the TWIN_HOME bench/style.py --home built its twin in")
    parser.add_argument("--name", default="bench")
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--limit", type=int, default=150)
    args = parser.parse_args()
    if args.home is None or not (args.home / "twins" / args.name / "merged").is_dir():
        print("mmi_status=not_measured (needs --home DIR with a twin built by `bench/style.py --home DIR`)")
        return
    os.environ["TWIN_HOME"] = str(args.home)
    import torch

    from trainer.evaluation import models
    from trainer.evaluation.collapse import distinct, normalized
    from trainer.evaluation.evalset import load_samples, with_system
    from trainer.evaluation.generation import CHAT_DEFAULT, _hf_generate
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
    started = time.perf_counter()
    drawn = _hf_generate(
        model, tokenizer, [s for s in samples for _ in range(k)], variant.system_prompt, decoding, 32, lambda n: None
    )
    print(f"draw_s={time.perf_counter() - started:.1f}", flush=True)
    groups = [drawn[i * k : (i + 1) * k] for i in range(len(samples))]
    started = time.perf_counter()
    scores = []  # per sample, per candidate: (nll given the context, nll given a bare context, reply tokens)
    with torch.inference_mode():
        for sample, group in zip(samples, groups, strict=True):
            context = with_system(sample.context, variant.system_prompt)
            bare = [*(m for m in context if m["role"] == "system"), {"role": "user", "content": "hey"}]
            row = []
            for c in group:
                given, tokens = reply_nll(model, tokenizer, context, c)
                row.append((given, reply_nll(model, tokenizer, bare, c)[0], tokens))
            scores.append(row)
    print(f"score_s={time.perf_counter() - started:.1f}", flush=True)
    real = [s.real for s in samples]

    def show(label: str, chosen: list[str]) -> None:
        figures = overlap(chosen, real)
        top = Counter(normalized(x) for x in chosen).most_common(1)[0][1] / len(chosen)
        words = sum(len(x.split()) for x in chosen) / len(chosen)
        print(
            f"{label}_rouge_l={figures.rouge_l:.4f} {label}_chrf={figures.chrf:.4f} {label}_words={words:.2f}"
            f" {label}_distinct_2={distinct(chosen, 2):.4f} {label}_top_share={top:.4f}"
        )

    for j in range(k):
        show(f"draw{j}", [g[j] for g in groups])
    show("consensus", [g[pick(g)] for g in groups])
    show("longest", [max(g, key=len) for g in groups])
    for lam in (0.5, 0.75, 1.0):
        for per_token in (False, True):

            def score(c: float, u: float, n: int, lam: float = lam, per_token: bool = per_token) -> float:
                return (-c + lam * u) / (n if per_token else 1)

            chosen = [g[max(range(k), key=lambda i, s=s: score(*s[i]))] for g, s in zip(groups, scores, strict=True)]
            show(f"mmi_{lam:g}_{'token' if per_token else 'sum'}", chosen)


if __name__ == "__main__":
    main()
