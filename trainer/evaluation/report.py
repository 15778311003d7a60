"""eval/ in the twin's directory: report.md, report.json, generations.jsonl and the PNG plots, swapped in as a whole."""

from __future__ import annotations

import json
import math
from pathlib import Path

from trainer.evaluation import plots
from trainer.evaluation.results import RATING_VARIANT, EvalResult
from trainer.style import FEATURES, feature_values
from twin.files import atomic_dir, write_bytes, write_json, write_text

EVAL_DIR = "eval"
CONTEXT_SHOWN = 3  # messages of context in the examples table
SHORT_NAMES = {"prompt": "prompt-only", "lora": "LoRA", "gguf": "GGUF", "onnx": "ONNX"}


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def cell(text: str) -> str:
    """Text for one markdown table cell: pipes escaped, lines joined with <br>."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>").strip() or "∅"


def context_cell(messages: list[dict[str, str]]) -> str:
    shown = messages[-CONTEXT_SHOWN:]
    lines = ["…"] if len(messages) > len(shown) else []
    lines += [f"{'me' if m['role'] == 'assistant' else 'them'}: {m['content']}" for m in shown if m["role"] != "system"]
    return cell("\n".join(lines))


def markdown(result: EvalResult) -> str:
    measured = result.measured()
    out = [
        f"# Does twin `{result.name}` sound like me?",
        "",
        f"Evaluated {result.created} on {len(result.samples)} of the {result.val_samples} validation samples "
        f"(`dataset/val.jsonl`, spread evenly; context cut to the newest {result.max_context_chars} characters).",
        "",
        f"**Decoding** (every variant): {result.decoding.describe()}.",
        f"Served GGUF replies: {result.daemon}.",
        "",
        "## Summary",
        "",
        "| variant | perplexity ↓ | ROUGE-L ↑ | chrF ↑ | style distance ↓ | vocabulary overlap ↑ | words per reply |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| my real replies | – | 1.000 | 1.000 | 0.000 | 1.000 | {fmt(result.real_style['words'], 1)} |",
    ]
    for v in measured:
        s = v.summary()
        out.append(
            f"| {cell(v.variant.label)} | {fmt(s['perplexity'], 2)} | {fmt(s['rouge_l'])} | {fmt(s['chrf'])} | "
            f"{fmt(s['style_distance'])} | {fmt(s['vocabulary_overlap'])} | {fmt(s['words_per_reply'], 1)} |"
        )
    missing = [v for v in result.variants if v.variant.missing]
    if missing:
        out += ["", "Not measured:", ""] + [f"- **{SHORT_NAMES[v.key]}**: {v.variant.missing}" for v in missing]
    out += ["", "![metrics per variant](metrics.png)", "", "Backends:", ""]
    out += [
        f"- {SHORT_NAMES[v.key]}: perplexity by {v.backends.get('perplexity')}, replies by {v.backends.get('generation')} ({v.seconds:.0f} s)"
        for v in measured
    ]

    out += collapse_section(result)
    out += [
        "",
        "## Style",
        "",
        "Means over the replies; in brackets the standardized mean difference from mine (0 = same).",
        "",
    ]
    out.append("| feature | mine | " + " | ".join(SHORT_NAMES[v.key] for v in measured) + " |")
    out.append("| --- | ---: |" + " ---: |" * len(measured))
    for name, (what, _) in FEATURES.items():
        row = [
            f"{fmt(v.style.means[name], 2)} ({fmt(v.style.distances[name], 2)})" if v.style else "–" for v in measured
        ]
        out.append(f"| {what} | {fmt(result.real_style[name], 2)} | " + " | ".join(row) + " |")
    out += ["", "![reply lengths](lengths.png)", ""]

    out += ["## Human ratings (`twin chat --rate`, and friends in the bot's `/survey`)", ""]
    r = result.ratings
    if r.variants:
        out.append(
            f"Mine: {r.rounds} rated rounds"
            + (f" ({r.stale} rows of an older dataset left out)" if r.stale else "")
            + "."
        )
    else:
        out.append(f"Mine: {r.note}.")
    f = r.friends
    if f is not None:
        out.append(
            f"Friends: {f.rounds} rounds by {f.raters} raters; they picked my real reply as mine in "
            f"{f.share('real') or 0:.0%} of rounds (a blind guess: {f.chance:.0%}; a twin that fools them brings it "
            "down to chance)."
        )
    if r.variants or f is not None:
        header = (
            "| reply | ratings | mean score (1–5) | picked as most like me | rated at least as high as my real reply |"
        )
        rule = "| --- | ---: | ---: | ---: | ---: |"
        if f is not None:  # the friends' columns beside mine
            header += " friends' ratings | friends' mean score | friends picked it as mine |"
            rule += " ---: | ---: | ---: |"
        out += ["", header, rule]
        names = {"twin": "served GGUF (twin)", "prompt": "prompt-only", "real": "my real reply"}
        for variant, label in names.items():
            vr = next((v for v in r.variants if v.variant == variant), None)
            fr = next((v for v in f.variants if v.variant == variant), None) if f is not None else None
            if vr is None and fr is None:
                continue
            at_least = "–" if vr is None or vr.at_least_real_share is None else f"{vr.at_least_real_share:.0%}"
            cells = [str(vr.ratings), f"{vr.mean_score:.2f}", f"{vr.best_share:.0%}", at_least] if vr else ["–"] * 4
            if f is not None:
                cells += [str(fr.ratings), f"{fr.mean_score:.2f}", f"{fr.best_share:.0%}"] if fr else ["–"] * 3
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")

    out += [f"## Examples ({len(result.examples)})", ""]
    out.append("| context | my reply | " + " | ".join(SHORT_NAMES[v.key] for v in measured) + " |")
    out.append("| --- | --- |" + " --- |" * len(measured))
    for i in result.examples:
        example = result.samples[i]
        replies = [cell(v.replies[i]) if v.replies else "–" for v in measured]
        out.append(f"| {context_cell(example.context)} | {cell(example.real)} | " + " | ".join(replies) + " |")

    out += [
        "",
        "## How this was measured",
        "",
        "- **Perplexity**: exp of the mean negative log-likelihood of the tokens of my real reply (its text and the chat",
        "  template's end of turn) given the context rendered with the model's chat template; context tokens are not scored.",
        "  The prompt-only variant gets the persona as system prompt.",
        "- **ROUGE-L**: F1 of the longest common word subsequence (`rouge_score`), with a Unicode tokenizer: words of any",
        "  script and each emoji, lowercased, no stemming. Mean over the samples.",
        "- **chrF**: corpus-level character n-gram F-score (sacrebleu, n ≤ 6, β = 2), divided by 100.",
        "- **Style distance**: per feature, |mean(generated) − mean(mine)| divided by the standard deviation of both sets",
        "  pooled; the mean over the features above. **Vocabulary overlap**: Jaccard index of the sets of words used.",
        f"- Ratings: {'mapped' if r.variants else 'would be mapped'} from the rating mode's variants "
        + ", ".join(f"`{b}` = {SHORT_NAMES[a]}" for a, b in RATING_VARIANT.items())
        + ".",
        "",
    ]
    return "\n".join(out)


def collapse_section(result: EvalResult) -> list[str]:
    """Collapse, length and speaking as someone else, per variant: the evaluation's decoding and the chat default."""
    real = result.real_collapse
    if real is None:
        return []
    decodings = [("as above", lambda v: v)]
    if result.sampled_decoding is not None:
        decodings.append(("chat default", lambda v: v.sampled))
    out = [
        "",
        "## Collapse and length",
        "",
        "distinct-n: distinct word n-grams over all of them; top reply: share of the most frequent reply;",
        "length: mean words per reply over mine; as someone else: replies that begin with another participant's name.",
    ]
    if result.sampled_decoding is not None:
        out.append(f"Chat default: {result.sampled_decoding.describe()}.")
    out += [
        "",
        "| variant | decoding | distinct-1 | distinct-2 | top reply | words (× mine) | as someone else |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        f"| my real replies | – | {fmt(real.distinct_1)} | {fmt(real.distinct_2)} | {real.top_share:.1%} | "
        f"{fmt(real.words, 1)} (1.00) | {real.speaker_share:.1%} |",
    ]
    tops = [("my real replies", real)]
    for v in result.measured():
        for how, pick in decodings:
            c = pick(v).collapse if pick(v) is not None else None
            if c is None:
                continue
            out.append(
                f"| {SHORT_NAMES[v.key]} | {how} | {fmt(c.distinct_1)} | {fmt(c.distinct_2)} | {c.top_share:.1%} | "
                f"{fmt(c.words, 1)} ({c.length_ratio:.2f}) | {c.speaker_share:.1%} |"
            )
            tops.append((f"{SHORT_NAMES[v.key]}, {how}", c))
    out += ["", "Most frequent replies:", ""]
    for label, c in tops:
        shown = ", ".join(f"“{cell(r) if r else '∅'}” ×{n}" for r, n in c.top)
        out.append(f"- {label}: {shown}")
    return out


def write(result: EvalResult) -> Path:
    """Write the whole eval/ folder of the twin at once; returns it. Files 0600, folder 0700."""
    measured = result.measured()
    groups = [("mine", "real", {"perplexity": None, "rouge_l": 1.0, "chrf": 1.0, "style_distance": 0.0})]
    groups += [(SHORT_NAMES[v.key], v.key, v.summary()) for v in measured]
    real_words = feature_values([s.real for s in result.samples])["words"]
    series = [("mine", "real", real_words)]
    series += [
        (SHORT_NAMES[v.key], v.key, feature_values(v.replies)["words"]) for v in measured if v.replies is not None
    ]
    with atomic_dir(result.folder) as tmp:
        write_text(tmp / "report.md", markdown(result))
        write_json(tmp / "report.json", result.as_json())
        write_text(
            tmp / "generations.jsonl",
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in result.generations()),
        )
        write_bytes(
            tmp / "metrics.png",
            plots.metric_bars(f"twin {result.name}: {len(result.samples)} validation samples", groups),
        )
        write_bytes(
            tmp / "lengths.png",
            plots.length_distributions(f"twin {result.name}: reply length, mine vs generated", series),
        )
    return result.folder
