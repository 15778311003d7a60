"""Tiny random models, built in seconds with tokenizers trained here: no download, no real weights.

`convertible(kind)` covers every architecture and tokenizer family the converter
handles (SentencePiece and byte-level BPE, their chat templates); `trainable(arch)`
is smaller and shares the embedded model's tokenizer, for LoRA steps. Both save
with save_pretrained, as the trainer leaves merged/.
"""

from __future__ import annotations

import json
from pathlib import Path

# Text in the languages twin's users write (Russian, English, emoji), for training the tokenizers.
CORPUS = [
    "Привет! Как дела? Давно не виделись 😀",
    "Hello world, how are you doing today? 🎉",
    "Я думаю, что это хорошая идея. The quick brown fox jumps over the lazy dog.",
    "Москва — столица России. Paris is the capital of France!",
    "Встретимся завтра в 10:30 у метро? Sure, see you at 10:30 👍",
    "Спасибо большое за помощь, ты лучший 🙏 thanks a lot!",
    "numbers 12345 and 67890, цифры 2024 год, ёжик и ель",
    '   spaces\tand tabs\nnew lines\n\n and more — dashes, «кавычки» and "quotes"',
]
# TinyLlama/Zephyr style: role markers as plain text, turns closed by </s>.
ZEPHYR_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PHI3_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _corpus() -> list[str]:
    return CORPUS * 30


def train_sentencepiece(folder: Path) -> Path:
    """A Llama-style SentencePiece BPE model (identity normalization, dummy prefix, byte fallback)."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "sp"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()),
        model_prefix=str(prefix),
        vocab_size=420,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def spm_tokenizer(folder: Path, extra_special: list[str] | None = None, template: str = ZEPHYR_TEMPLATE):
    """An HF LlamaTokenizer from a SentencePiece model trained here; `extra_special` are appended as special tokens."""
    import shutil

    from transformers import AutoTokenizer

    src = folder / "spm-src"
    src.mkdir(parents=True)
    shutil.copy(train_sentencepiece(folder / "spm-train"), src / "tokenizer.model")
    (src / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "LlamaTokenizer",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "add_bos_token": True,
                "add_eos_token": False,
                "legacy": False,
            }
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(str(src))
    if extra_special:
        tokenizer.add_special_tokens({"additional_special_tokens": extra_special})
    tokenizer.chat_template = template
    return tokenizer


def bpe_tokenizer(kind: str, special: list[str], template: str | None, eos: str):
    """A byte-level BPE tokenizer trained here; `kind` picks the pre-tokenizer of gpt2, smollm or qwen2."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    if kind == "gpt2":
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    elif kind == "smollm":
        tk.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
    elif kind == "qwen2":
        tk.normalizer = normalizers.NFC()
        tk.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    tk.decoder = decoders.ByteLevel()
    first = special if kind != "qwen2" else []  # qwen2 keeps its specials after the merges' vocabulary
    trainer = trainers.BpeTrainer(
        vocab_size=700, special_tokens=first, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tk.train_from_iterator(_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tk, eos_token=eos, bos_token=None if kind == "qwen2" else special[0], unk_token=None
    )
    if kind == "qwen2":
        tokenizer.add_special_tokens({"additional_special_tokens": special})
        tokenizer.pad_token = special[0]
    if template:
        tokenizer.chat_template = template
    return tokenizer


def _save(folder: Path, model, tokenizer) -> Path:  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def convertible(kind: str, folder: Path) -> Path:
    """Save a tiny random model of `kind` (llama-spm, llama-bpe, phi3, qwen2, gpt2) with its tokenizer into `folder`."""
    import torch
    from tokenizers import AddedToken
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        Phi3Config,
        Phi3ForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(0)
    common = dict(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, initializer_range=0.1
    )
    work = folder.parent / f"{folder.name}-work"
    if kind == "llama-spm":
        tokenizer = spm_tokenizer(work)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            num_key_value_heads=2,
            max_position_embeddings=256,
            bos_token_id=1,
            eos_token_id=2,
            tie_word_embeddings=False,
            **common,
        )
        out = _save(folder, LlamaForCausalLM(config), tokenizer)
        # TinyLlama ships tokenizer.model beside tokenizer.json: keep it (scores come from it).
        (out / "tokenizer.model").write_bytes((work / "spm-src" / "tokenizer.model").read_bytes())
        return out
    if kind == "llama-bpe":
        tokenizer = bpe_tokenizer(
            "smollm", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], CHATML_TEMPLATE, eos="<|im_end|>"
        )
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            num_key_value_heads=2,
            max_position_embeddings=256,
            bos_token_id=0,
            eos_token_id=2,
            tie_word_embeddings=True,
            **common,
        )
        return _save(folder, LlamaForCausalLM(config), tokenizer)
    if kind == "phi3":
        tokenizer = spm_tokenizer(work, ["<|endoftext|>"], PHI3_TEMPLATE)
        # Phi-3's chat markers strip the whitespace after them (rstrip), as in its tokenizer.json.
        markers = [
            AddedToken(t, rstrip=True, special=True, normalized=False)
            for t in ("<|assistant|>", "<|end|>", "<|user|>", "<|system|>")
        ]
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|endoftext|>", *markers]})
        tokenizer.eos_token = "<|endoftext|>"
        # Phi-3 pads its embedding beyond the tokenizer (32064 rows for 32011 tokens): so does this one.
        config = Phi3Config(
            vocab_size=len(tokenizer) + 9,
            num_key_value_heads=4,
            max_position_embeddings=256,
            original_max_position_embeddings=256,
            sliding_window=None,
            pad_token_id=None,
            bos_token_id=1,
            eos_token_id=2,
            tie_word_embeddings=False,
            **common,
        )
        out = _save(folder, Phi3ForCausalLM(config), tokenizer)
        assert not (out / "tokenizer.model").exists()  # merge-rank scores are exercised here
        return out
    if kind == "qwen2":
        tokenizer = bpe_tokenizer(
            "qwen2", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], CHATML_TEMPLATE, eos="<|im_end|>"
        )
        config = Qwen2Config(
            vocab_size=len(tokenizer) + 13,
            num_key_value_heads=2,
            max_position_embeddings=256,
            tie_word_embeddings=True,
            use_sliding_window=False,
            **common,
        )
        model = Qwen2ForCausalLM(config)
        with torch.no_grad():  # Qwen2 initialises its q/k/v biases to zero: make them matter
            for layer in model.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    proj.bias.normal_(0, 0.3)
        return _save(folder, model, tokenizer)
    if kind == "gpt2":
        tokenizer = bpe_tokenizer("gpt2", ["<|endoftext|>"], None, eos="<|endoftext|>")
        tokenizer.save_pretrained(folder)
        return random_gpt2(
            folder, vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=128, bos_token_id=0,
            eos_token_id=0, initializer_range=0.1,
        )  # fmt: skip
    raise ValueError(kind)


def random_gpt2(folder: Path, **config: object) -> Path:
    """A randomly initialised GPT-2 of `config` (GPT2Config's fields) saved into `folder`, seeded."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(GPT2Config(**config)).save_pretrained(folder)
    return folder


def small_gpt2(out: Path, texts: list[str], **config: object) -> Path:
    """A random GPT-2 of `config` with `small_gpt2_tokenizer(texts)`: EOS doubles as BOS."""
    from transformers import AutoTokenizer

    small_gpt2_tokenizer(out, texts)
    tok = AutoTokenizer.from_pretrained(out)
    return random_gpt2(out, vocab_size=len(tok), bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, **config)


def small_gpt2_tokenizer(out: Path, texts: list[str]) -> None:
    """A small byte-level BPE trained on `texts`, wrapped as a GPT-2 tokenizer: no chat template, EOS <|endoftext|>."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    corpus = texts * 4 + ["User: Bot: hello world the quick brown fox"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    tok = GPT2TokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    tok.chat_template = None
    tok.save_pretrained(out)


PHI3_TRAIN_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)


def trainable(arch: str, out: Path, embedded_dir: Path, texts: list[str]) -> Path:
    """A tiny random model of `arch` for quick LoRA steps, saved as an HF checkpoint directory.

    Llama, Qwen2 and Phi-3 take the embedded model's tokenizer (its chat template); GPT-2 gets a small
    one trained on `texts`, without a template.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, Phi3Config, Qwen2Config

    torch.manual_seed(0)
    if arch == "gpt2":
        return small_gpt2(out, texts, n_layer=2, n_head=2, n_embd=32, n_positions=256)
    else:
        tok = AutoTokenizer.from_pretrained(embedded_dir)
        if arch == "phi3":
            tok.add_special_tokens(
                {"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]}
            )
            tok.chat_template = PHI3_TRAIN_TEMPLATE
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
