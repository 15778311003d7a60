"""The table `twin ingest` prints: what was read, what was kept, and how I write."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text


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
    samples, sessions = stats["samples"], stats["sessions"]
    _row(table, "samples", f"{samples['total']} (train {samples['train']}, val {samples['val']})")
    _row(table, "sessions", f"{sessions['train'] + sessions['val']} with samples (train {sessions['train']}, val {sessions['val']})")
    if stats["placeholders"]:
        _row(table, "replaced", ", ".join(f"{k} {v}" for k, v in stats["placeholders"].items()))
    r = stats["replies"]
    _row(table, "mean reply", f"{r['mean_chars']} chars, {r['mean_words']} words")
    _row(table, "starts lowercase", f"{r['lowercase_start']:.0%}")
    _row(table, "with emoji", f"{r['with_emoji']:.0%}" + (f"  {' '.join(e for e, _ in r['top_emoji'][:8])}" if r["top_emoji"] else ""))
    _row(table, "ends with", ", ".join(f"{k} {v:.0%}" for k, v in list(r["ends_with"].items())[:6]))
    _row(table, "top chats", ", ".join(f"{name} {n}" for name, n in stats["top_chats"][:5]))
    return table


def _row(table: Table, what: str, value: str) -> None:
    # Text, not markup: chat names may hold [brackets]
    table.add_row(Text(what), Text(value))
