"""The prompt-only twin: a compact system prompt made of my style, measured on my replies, and a few of my exchanges.

No training: the daemon serves it on a base GGUF as `<name>-prompt`. The prompt
is kept short on purpose, because the small embedded model loops on long
persona prompts (DESIGN.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.persona import style
from trainer.train.samples import read_jsonl
from twin import embedded, paths, registry
from twin.dataset import DATASET_DIR, TRAIN
from twin.errors import UserError
from twin.files import write_json, writing
from twin.lock import twin_lock

PERSONA_FILE = "persona.json"
MAX_EXAMPLE_CHARS = 80  # per side of an example: the whole prompt stays a few hundred characters
MAX_EXAMPLES = 10

_HEAD = {
    "ru": (
        "Ты отвечаешь вместо меня, как ответил бы я сам: своими словами, без пояснений. Мой стиль: {d}.",
        "Примеры моих ответов:",
    ),
    "en": (
        "You reply in my place, the way I would: in my own words, no explanations. My style: {d}.",
        "Examples of my replies:",
    ),
}


def build_persona(
    name: str, *, examples: int = 3, base: str = "default", dataset_dir: str | None = None
) -> dict[str, Any]:
    """Write twins/<name>/persona.json from the training split and register it ([persona] in twin.toml).

    Returns what was written: `system_prompt` (what the daemon puts first),
    `style` (the measured figures and their description), `examples` (the
    few-shot exchanges it quotes) and `base` (the GGUF it is served on).
    """
    if not 0 <= examples <= MAX_EXAMPLES:
        raise UserError(f"--examples must be between 0 and {MAX_EXAMPLES}, got {examples}")
    base = _check_base(base)
    folder = paths.twin_dir(name)
    with writing(folder, "writing the persona"), twin_lock(name, "twin persona"):
        return _build(name, folder, examples, base, dataset_dir)


def _build(name: str, folder: Path, examples: int, base: str, dataset_dir: str | None) -> dict[str, Any]:
    registry.finish_pending(name)
    registry.read(name)  # a broken twin.toml fails before anything is written
    train_file = (Path(dataset_dir).expanduser() if dataset_dir else folder / DATASET_DIR) / TRAIN
    conversations = read_jsonl(train_file)
    if not conversations:
        raise UserError(f"dataset file {train_file} has no samples: ingest more chat history with `twin ingest`")

    replies = [c[-1]["content"] for c in conversations]
    measured = style.describe(replies)
    chosen = pick_examples(conversations, examples, measured["words_median"])
    persona = {
        "system_prompt": render_prompt(measured, chosen),
        "style": measured,
        "examples": chosen,
        "base": base,
    }
    # persona.json and [persona] as one unit: never a persona written but not registered.
    with registry.replacing(name) as unit:
        write_json(unit.dir / PERSONA_FILE, persona)
        unit.set("persona", {"file": PERSONA_FILE, "base": base, "examples": len(chosen), "replies": len(replies)})
    return persona


def _check_base(base: str) -> str:
    if base in embedded.ALIASES:
        return "default"
    path = Path(base).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise UserError(f"persona base {base!r} is neither `default` nor an existing .gguf file: pass one of those")
    return str(path.resolve())


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[: MAX_EXAMPLE_CHARS - 1].rstrip() + "…"


def pick_examples(conversations: list[list[dict[str, str]]], k: int, typical_words: float) -> list[dict[str, str]]:
    """K exchanges (the other's last message, my reply) whose replies are of typical length, all different."""
    candidates = []
    for i, conv in enumerate(conversations):
        asked = next((m["content"] for m in reversed(conv[:-1]) if m["role"] == "user"), "")
        reply = conv[-1]["content"]
        if not asked.strip() or len(reply) > 2 * MAX_EXAMPLE_CHARS:
            continue
        words = len(reply.split())
        candidates.append((abs(words - typical_words), i, asked, reply))
    chosen: list[dict[str, str]] = []
    seen: set[str] = set()
    for _, _, asked, reply in sorted(candidates):
        key = reply.strip().lower()
        if key in seen:
            continue
        seen.add(key)
        chosen.append({"user": _clip(asked), "assistant": _clip(reply)})
        if len(chosen) == k:
            break
    return chosen


def render_prompt(measured: dict[str, Any], chosen: list[dict[str, str]]) -> str:
    head, examples_title = _HEAD["ru" if measured["language"] == "ru" else "en"]
    lines = [head.format(d=measured["description"])]
    if chosen:
        lines.append(examples_title)
        lines.extend(f"— {e['user']} → {e['assistant']}" for e in chosen)
    return "\n".join(lines)
