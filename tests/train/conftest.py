"""Training tests share one HF copy of the embedded model: dequantized once per session, linked into each test's cache."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def _gpt2_tokenizer(out: Path) -> None:
    """A small byte-level BPE trained here, wrapped as a GPT-2 tokenizer: no chat template, EOS <|endoftext|>."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    corpus = [q + " " + r for q, r in EXCHANGES] * 4 + ["User: Bot: hello world the quick brown fox"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    tok = GPT2TokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    tok.chat_template = None
    tok.save_pretrained(out)


PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)


def build_tiny(arch: str, out: Path, embedded_dir: Path) -> Path:
    """A tiny random model of `arch` with a local tokenizer, saved as an HF checkpoint directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, LlamaConfig, Phi3Config, Qwen2Config

    torch.manual_seed(0)
    if arch == "gpt2":
        _gpt2_tokenizer(out)
        tok = AutoTokenizer.from_pretrained(out)
        config = GPT2Config(
            n_layer=2,
            n_head=2,
            n_embd=32,
            n_positions=256,
            vocab_size=len(tok),
            bos_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
        )
    else:
        tok = AutoTokenizer.from_pretrained(embedded_dir)
        if arch == "phi3":
            tok.add_special_tokens(
                {"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]}
            )
            tok.chat_template = PHI3_TEMPLATE
        tok.save_pretrained(out)
        common = dict(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        config = {"llama": LlamaConfig, "qwen2": Qwen2Config, "phi3": Phi3Config}[arch](**common)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, embedded_hf: Path) -> dict[str, Path]:
    """Tiny random Llama, Qwen2, Phi-3 and GPT-2 checkpoints (built once per session)."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: build_tiny(arch, root / arch, embedded_hf) for arch in ("llama", "qwen2", "phi3", "gpt2")}


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 with its own small tokenizer: built in seconds, no embedded model needed."""
    return build_tiny("gpt2", tmp_path_factory.mktemp("tiny-gpt2") / "gpt2", Path())


@pytest.fixture(scope="session")
def wide_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random GPT-2 of ~170 MB: saving its merged copy takes long enough to be interrupted on purpose."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config

    out = tmp_path_factory.mktemp("wide-gpt2") / "gpt2"
    _gpt2_tokenizer(out)
    tok = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=6,
        n_head=12,
        n_embd=768,
        n_positions=128,
        vocab_size=len(tok),
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out
