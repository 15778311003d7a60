"""The report's pictures (matplotlib, PNG bytes): metric bars per variant, reply lengths real vs generated."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from trainer.style import FEATURES

# (summary key, title, which way is better)
METRICS = (
    ("perplexity", "Perplexity of my replies", "lower is better"),
    ("rouge_l", "ROUGE-L F1 vs my reply", "higher is better"),
    ("chrf", "chrF vs my reply", "higher is better"),
    ("style_distance", "Style distance from mine", "lower is better"),
)
COLORS = {"real": "#444444", "prompt": "#e0a030", "lora": "#3070c0", "gguf": "#30a070", "onnx": "#a040a0"}


def _figure_bytes(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def metric_bars(title: str, groups: Sequence[tuple[str, str, dict[str, float | None]]]) -> bytes:
    """One panel per metric; a bar per (label, color key, summary) group; missing values leave a gap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.4))
    for ax, (key, name, better) in zip(axes, METRICS):
        shown = [g for g in groups if g[2].get(key) is not None]  # my own replies have no perplexity
        labels = [g[0] for g in shown]
        values: list[float] = [g[2][key] for g in shown]  # type: ignore[misc]  # None filtered out above
        heights = [v if math.isfinite(v) else 0.0 for v in values]
        bars = ax.bar(range(len(shown)), heights, color=[COLORS.get(g[1], "#888888") for g in shown])
        for bar, v in zip(bars, values):
            text = "n/a" if not math.isfinite(v) else (f"{v:.1f}" if key == "perplexity" else f"{v:.2f}")
            ax.annotate(
                text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8
            )
        ax.set_xticks(range(len(shown)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"{name}\n({better})", fontsize=9)
        if key in ("rouge_l", "chrf"):
            ax.set_ylim(0, max(1.0, max(heights) * 1.15))
        else:
            ax.set_ylim(0, max([*heights, 1e-09]) * 1.2 or 1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _figure_bytes(fig)


def length_distributions(title: str, series: Sequence[tuple[str, str, Sequence[float]]]) -> bytes:
    """Histograms of words per reply: my real replies against each variant's, on shared bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = max((max(values) for _, _, values in series if values), default=1)
    bins = range(0, int(longest) + 2)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for label, key, values in series:
        ax.hist(
            list(values),
            bins=bins,
            histtype="stepfilled" if key == "real" else "step",
            alpha=0.35 if key == "real" else 1.0,
            linewidth=1.8,
            color=COLORS.get(key, "#888888"),
            label=label,
        )
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(FEATURES["words"][0])
    ax.set_ylabel("replies")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _figure_bytes(fig)
