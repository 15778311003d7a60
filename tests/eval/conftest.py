"""Evaluation tests: small twins built on disk, the embedded model's HF copy made once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.twins import serve_embedded

EXCHANGES = [
    ("Что делаешь?", "да ничего, сижу)"),
    ("Пойдём в кино на выходных?", "го, только не на ужастик)))"),
    ("Ты где?", "щас буду 👌"),
    ("Как дела?", "норм, а ты?"),
    ("Are you free tonight?", "yep, after 8 🔥"),
    ("Видел новости?", "неа, что там"),
]


def conversation(question: str, reply: str) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]}


class TwinBuilder:
    """Writes a twin's parts as the stages would: its dataset, a persona, a GGUF, the base model in the cache."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def dataset(self, name: str, val: list[dict], train: list[dict] | None = None) -> Path:
        folder = self.home / "twins" / name / "dataset"
        folder.mkdir(parents=True, exist_ok=True)
        for split, rows in (("val", val), ("train", train if train is not None else val)):
            (folder / f"{split}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
            )
        return folder

    def exchanges(self, name: str, pairs: list[tuple[str, str]] = EXCHANGES) -> str:
        self.dataset(name, [conversation(q, r) for q, r in pairs])
        return name

    def persona(self, name: str, prompt: str) -> None:
        from twin import paths, registry

        (paths.twin_dir(name) / "persona.json").write_text(
            json.dumps({"system_prompt": prompt}, ensure_ascii=False), encoding="utf-8"
        )
        registry.update(name, "persona", {"file": "persona.json", "base": "default"})

    def gguf(self, name: str) -> None:
        """Register a GGUF as `twin convert` would; here the embedded model itself, copied in."""
        serve_embedded(name, copy=True)


@pytest.fixture
def twins(twin_home: Path) -> TwinBuilder:
    return TwinBuilder(twin_home)


@pytest.fixture
def dataset_twin(twins: TwinBuilder) -> str:
    """Twin `dima` with a validation split of six short exchanges and nothing else."""
    return twins.exchanges("dima")
