"""Twins on disk as the pipeline leaves them, for tests that serve or rate them without training one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from twin import embedded, paths, registry

Sample = list[tuple[str, str]]  # (role, content) turns, the last one my reply


def env_with_home(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a child process (a daemon, the CLI): this run's TWIN_* settings dropped, TWIN_HOME=home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env["TWIN_HOME"] = str(home)
    env.update(extra)
    return env


def serve_embedded(name: str, copy: bool = False) -> Path:
    """Give twin `name` the embedded GGUF as its model, registered as `twin convert` registers a q4_1 build.

    Linked by default; `copy` for a test that must not share the file.
    """
    folder = paths.private_dir(paths.twin_dir(name))
    target = folder / "model-q4_1.gguf"
    if copy:
        shutil.copyfile(embedded.embedded_gguf(), target)
    else:
        target.symlink_to(embedded.embedded_gguf())
    registry.update(name, "model", {"gguf": target.name, "quant": "q4_1"})
    return target


def twin_on_embedded(
    name: str, samples: list[Sample], splits: tuple[str, ...] = ("val",), system_prompt: str | None = None
) -> str:
    """Twin `name`: `samples` as its dataset's `splits`, the embedded GGUF as its model, a persona when given."""
    folder = paths.private_dir(paths.twin_dir(name))
    paths.private_dir(folder / "dataset")
    lines = [json.dumps({"messages": [{"role": r, "content": c} for r, c in s]}, ensure_ascii=False) for s in samples]
    for split in splits:
        (folder / "dataset" / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    serve_embedded(name)
    if system_prompt is not None:
        (folder / "persona.json").write_text(json.dumps({"system_prompt": system_prompt}), encoding="utf-8")
        registry.update(name, "persona", {"file": "persona.json", "base": "default"})
    return name
