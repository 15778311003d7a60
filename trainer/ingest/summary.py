"""What ingest reports: stats.json, the [dataset] table of twin.toml, and the summary table it prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from trainer.ingest.clean import KINDS
from twin.dataset import DATASET_DIR, STATS, TRAIN, VAL

if TYPE_CHECKING:
    from trainer.ingest.clean import Cleaner
    from trainer.ingest.dataset import DatasetBuilder
    from trainer.ingest.messages import Tally
    from trainer.ingest.run import IngestConfig


def summary_table(name: str, stats: dict) -> Table:
    """One row per figure, grouped; everything comes from stats.json."""
    table = Table(title=f"twin {name}: dataset", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    for item in stats["inputs"]:
        _row(table, "input", f"{item['path']} ({item['format']}): {item['messages']} messages, {item['mine']} mine")
    _row(table, "messages read", str(stats["messages_read"]))
    for why, n in stats["skipped"].items():
        _row(table, f"  skipped: {why}", str(n))
    if stats["chats_skipped"]:
        _row(table, "chats skipped", ", ".join(f"{k} {v}" for k, v in stats["chats_skipped"].items()))
    if stats["unknown_fields"]:
        _row(table, "unknown fields", ", ".join(f"{k} {v}" for k, v in list(stats["unknown_fields"].items())[:8]))
    _row(table, "my turns", str(stats["my_turns"]))
    for why, n in stats["dropped"].items():
        _row(table, f"  dropped: {why}", str(n))
    if stats.get("context_cut"):
        limit = stats["settings"]["max_context_chars"]
        _row(table, "context turns cut", f"{stats['context_cut']} (to their last {limit} characters)")
    samples, sessions = stats["samples"], stats["sessions"]
    _row(table, "samples", f"{samples['total']} (train {samples['train']}, val {samples['val']})")
    _row(
        table,
        "sessions",
        f"{sessions['train'] + sessions['val']} with samples (train {sessions['train']}, val {sessions['val']})",
    )
    if stats["placeholders"]:
        _row(table, "replaced", ", ".join(f"{k} {v}" for k, v in stats["placeholders"].items()))
    r = stats["replies"]
    _row(table, "mean reply", f"{r['mean_chars']} chars, {r['mean_words']} words")
    _row(table, "starts lowercase", f"{r['lowercase_start']:.0%}")
    _row(
        table,
        "with emoji",
        f"{r['with_emoji']:.0%}" + (f"  {' '.join(e for e, _ in r['top_emoji'][:8])}" if r["top_emoji"] else ""),
    )
    _row(table, "ends with", ", ".join(f"{k} {v:.0%}" for k, v in list(r["ends_with"].items())[:6]))
    _row(table, "top chats", ", ".join(f"{name} {n}" for name, n in stats["top_chats"][:5]))
    return table


def _row(table: Table, what: str, value: str) -> None:
    # Text, not markup: chat names may hold [brackets]
    table.add_row(Text(what), Text(value))


def dataset_stats(
    config: IngestConfig, inputs: list[dict], tally: Tally, builder: DatasetBuilder, cleaner: Cleaner, split: dict
) -> dict:
    """What stats.json holds: what was read and skipped, what was kept, and how I write."""
    return {
        "inputs": inputs,
        "messages_read": tally.read,
        "skipped": dict(tally.skipped.most_common()),
        "unknown_fields": dict(tally.unknown_fields.most_common(50)),
        "chats_skipped": dict(tally.chats_skipped.most_common()),
        "my_turns": builder.my_turns,
        "samples": {"train": split["train"], "val": split["val"], "total": split["train"] + split["val"]},
        "dropped": dict(builder.dropped.most_common()),
        "context_cut": builder.context_cut,
        "sessions": {
            "conversations": builder.conversation_sessions,
            "train": split["sessions_train"],
            "val": split["sessions_val"],
        },
        "replies": builder.habits.summary(),
        "placeholders": {k: v for k, v in cleaner.counts.items() if v},
        "top_chats": [[name, n] for name, n in builder.chats.most_common(10)],
        "settings": settings(config),
    }


def settings(config: IngestConfig) -> dict:
    return {
        "me": list(config.me),
        "gap_seconds": config.gap,
        "merge_seconds": config.merge,
        "context_turns": config.context,
        "max_reply_chars": config.max_reply_chars,
        "max_context_chars": config.max_context_chars,
        "replaced": [k for k in KINDS if k not in config.keep],
        "strip_emoji": config.strip_emoji,
        "dedupe": config.dedupe,
        "split": config.split,
        "seed": config.seed,
        "val_fraction": config.val_fraction,
        "include_channels": config.include_channels,
        "include_bots": config.include_bots,
    }


def registry_table(config: IngestConfig, inputs: list[dict], split: dict) -> dict:
    """The [dataset] table of twin.toml: where the files are, how many samples, and the settings that made them."""
    return {
        "dir": DATASET_DIR,
        "train": f"{DATASET_DIR}/{TRAIN}",
        "val": f"{DATASET_DIR}/{VAL}",
        "stats": f"{DATASET_DIR}/{STATS}",
        "train_samples": split["train"],
        "val_samples": split["val"],
        "sources": [i["path"] for i in inputs],
        "formats": [i["format"] for i in inputs],
        **settings(config),
        "me": sorted({who for i in inputs for who in i["me"]}),  # as resolved: --me, or the account's owner
    }
