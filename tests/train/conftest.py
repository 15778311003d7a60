"""Training tests share one HF copy of the embedded model: dequantized once per session, linked into each test's cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.tiny_models import small_gpt2, trainable

# Replies in one recognisable style (short, lowercase, emoji, ')' smiles), so a few LoRA steps visibly learn it.
EXCHANGES = [
    ("Привет, как дела?", "норм 👍 а ты?"),
    ("Ты где?", "ага, щас буду)"),
    ("Пойдём гулять?", "давай, через час 😊"),
    ("Что делаешь?", "да ничего, сижу)"),
    ("Когда будешь дома?", "скоро буду 👍"),
    ("Видел новости?", "неа, что там?"),
    ("Are you free tonight?", "yep, after 8 😊"),
    ("Did you finish the report?", "almost done 👍"),
    ("What time is the meeting?", "at 3, dont be late)"),
    ("Can you call me?", "ok, in 5 min 👍"),
]


TEXTS = [q + " " + r for q, r in EXCHANGES]  # what the tiny GPT-2's tokenizer is trained on


def conversation(i: int) -> dict:
    question, reply = EXCHANGES[i % len(EXCHANGES)]
    system = {"role": "system", "content": "Chat with a friend."}
    return {"messages": [system, {"role": "user", "content": question}, {"role": "assistant", "content": reply}]}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_style_dataset(folder: Path, n_train: int = 16, n_val: int = 6) -> Path:
    write_jsonl(folder / "train.jsonl", [conversation(i) for i in range(n_train)])
    write_jsonl(folder / "val.jsonl", [conversation(i + 3) for i in range(n_val)])
    return folder


@pytest.fixture(scope="session")
def style_dataset():
    """style_dataset(folder, n_train, n_val) writes {train,val}.jsonl in the ingest format, one reply style."""
    return write_style_dataset


@pytest.fixture
def make_dataset(twin_home: Path):
    """make_dataset(name, n_train, n_val) writes twins/<name>/dataset/{train,val}.jsonl in the ingest format."""

    def make(name: str = "me", n_train: int = 16, n_val: int = 6) -> Path:
        return write_style_dataset(twin_home / "twins" / name / "dataset", n_train, n_val)

    return make


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, embedded_hf: Path) -> dict[str, Path]:
    """Tiny random Llama, Qwen2, Phi-3 and GPT-2 checkpoints (built once per session)."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: trainable(arch, root / arch, embedded_hf, TEXTS) for arch in ("llama", "qwen2", "phi3", "gpt2")}


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 with its own small tokenizer: built in seconds, no embedded model needed."""
    return trainable("gpt2", tmp_path_factory.mktemp("tiny-gpt2") / "gpt2", Path(), TEXTS)


@pytest.fixture(scope="session")
def wide_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random GPT-2 of ~170 MB: saving its merged copy takes long enough to be interrupted on purpose."""
    return small_gpt2(
        tmp_path_factory.mktemp("wide-gpt2") / "gpt2", TEXTS, n_layer=6, n_head=12, n_embd=768, n_positions=128
    )
