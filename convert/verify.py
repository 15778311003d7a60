"""Check a converted GGUF against the HF model it came from: tokens token for token, logits within a tolerance.

Always run on the f16/f32 file before any quantization, so a conversion bug
(a missing permutation, a wrong pre-tokenizer) is caught where it happens and
never hidden behind quantization noise.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convert.llama_runtime import eval_threads, llama_log
from twin import llamacpp
from twin.errors import UserError

# Logits are compared on these (HF's tokens fed to both); tokenization is compared on these and TOKENIZE_ONLY.
PROMPTS = (
    "The capital of France is",
    "Привет! Как у тебя дела? Давно не виделись 😀",
    "Hello 👋 мир, this is a mixed строка with emoji 🎉🔥 and numbers 12345.",
)
# No sample starts with whitespace: there HF's Metaspace (legacy=False) skips SentencePiece's dummy prefix while
# SentencePiece itself and llama.cpp add it, a difference no GGUF key can express.
TOKENIZE_ONLY = (
    "Привет, как дела? Hello, how are you? 😀🎉 Это mixed текст — with ёжик, 2024 год and émigré café.",
    "two  spaces,\ttabs\nand\n\nnew lines   — ЁЛКИ-палки!!! 🤖👍🏽",
)
CHAT = [
    {"role": "user", "content": "Привет! Как дела? 😀"},
    {"role": "assistant", "content": "Норм, а у тебя? Hello!"},
    {"role": "user", "content": "What is the capital of France?"},
]


@dataclass(frozen=True)
class Tolerance:
    """How close llama.cpp must come to transformers: top-1 agreement, and max |Δlogit| relative to the logits' scale."""

    min_top1: float
    rel_max_abs_diff: float


# f32 differs by summation order and ggml's f16 GELU table (GPT-2: ~4e-4 of the logit scale); f16 rounds every
# weight, and llama.cpp's f16 matmuls round activations too (SmolLM2: ~2e-3).
TOLERANCES = {"f32": Tolerance(0.99, 2e-3), "f16": Tolerance(0.90, 0.01)}
GGML_TYPE_F32 = 0


@dataclass(frozen=True)
class Verification:
    texts: int
    positions: int
    top1_agreement: float
    max_abs_diff: float
    logit_scale: float
    allowed_diff: float
    min_top1: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.top1_agreement >= self.min_top1 and self.max_abs_diff <= self.allowed_diff

    def summary(self) -> str:
        return (
            f"verify: tokenization checked on {self.texts} texts; top-1 agreement {self.top1_agreement:.1%} over "
            f"{self.positions} positions (need {self.min_top1:.0%}); max |Δlogit| {self.max_abs_diff:.4g} "
            f"(allowed {self.allowed_diff:.4g}, logits up to {self.logit_scale:.3g})"
        )


def compare_tokens(llm: Any, tokenizer: Any, sentencepiece: bool) -> tuple[int, list[str]]:
    """Tokenize every sample both ways; a UserError at the first difference. Returns (texts compared, notes)."""
    texts = [(t, True) for t in (*PROMPTS, *TOKENIZE_ONLY)]
    if tokenizer.chat_template:
        rendered = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
        texts.append((rendered, False))  # a template carries its own special tokens, as in the daemon
    notes = []
    for text, add_special in texts:
        hf = list(tokenizer.encode(text, add_special_tokens=add_special))
        cpp = llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True)
        if hf == cpp:
            continue
        if sentencepiece and not add_special:
            extra = _space_prefixes_after_specials(cpp, tokenizer)
            if extra and [t for i, t in enumerate(cpp) if i not in extra] == hf:
                notes.append(
                    f"llama.cpp adds SentencePiece's space prefix after special tokens and transformers does not: "
                    f"{len(extra)} extra '▁' in the chat sample (in serving only)"
                )
                continue
        at = next((i for i, (a, b) in enumerate(zip(hf, cpp)) if a != b), min(len(hf), len(cpp)))
        raise UserError(
            f"conversion check failed: llama.cpp tokenizes {text[:40]!r}… differently from transformers "
            f"(first difference at token {at}: {hf[at : at + 3]} vs {cpp[at : at + 3]}); this tokenizer is not "
            "converted correctly — please report it"
        )
    return len(texts), notes


def _space_prefixes_after_specials(tokens: list[int], tokenizer: Any) -> set[int]:
    """Positions of a lone '▁' right after a special token: what llama.cpp's SPM tokenizer adds there."""
    space = tokenizer.convert_tokens_to_ids("▁")
    specials = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    return {i for i in range(1, len(tokens)) if tokens[i] == space and tokens[i - 1] in specials}


def hf_logits(model_dir: Path, token_lists: list[list[int]]) -> list[np.ndarray]:
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress display is on stderr already
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True)
    model.eval()
    try:
        with torch.inference_mode():
            return [model(torch.tensor([ids])).logits[0].float().numpy() for ids in token_lists]
    finally:
        del model
        gc.collect()


def verify(
    gguf_path: Path, model_dir: Path, tokenizer: Any, float_type: str, sentencepiece: bool, threads: int = 0
) -> Verification:
    """Compare `gguf_path` (f16 or f32) with the HF model in `model_dir`; raises a UserError beyond tolerance."""
    token_lists = [list(tokenizer.encode(p)) for p in PROMPTS]
    reference = hf_logits(model_dir, token_lists)
    threads = eval_threads(threads)
    with llama_log():
        llm = llamacpp.open_llama(
            gguf_path,
            n_ctx=max(64, max(len(t) for t in token_lists) + 8),
            logits_all=True,
            # An f32 KV cache (llama.cpp's default is f16) keeps cache rounding out of what is measured: the conversion.
            type_k=GGML_TYPE_F32,
            type_v=GGML_TYPE_F32,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        try:
            texts, notes = compare_tokens(llm, tokenizer, sentencepiece)
            ours = []
            for ids in token_lists:
                llm.reset()
                llm.eval(ids)
                ours.append(np.array(llm.scores[: len(ids)], dtype=np.float32))
        finally:
            llm.close()
    return compare_logits(reference, ours, TOLERANCES[float_type], texts, notes, "llama.cpp")


def compare_logits(
    reference: list[np.ndarray], ours: list[np.ndarray], tol: Tolerance, texts: int, notes: list[str], runtime: str
) -> Verification:
    """Logits of the same tokens from transformers (`reference`) and a converted model; a UserError beyond `tol`."""
    ref = np.concatenate(reference)
    got = np.concatenate(ours)
    scale = float(np.abs(ref).max())
    max_diff = float(np.abs(ref - got).max())
    allowed = tol.rel_max_abs_diff * max(scale, 1.0)
    # The runtime's pick agrees when transformers ranks it best up to the measured noise (random tiny models have near-ties).
    picked = got.argmax(axis=1)
    agree = ref[np.arange(len(ref)), picked] >= ref.max(axis=1) - min(max_diff, allowed)
    result = Verification(texts, len(ref), float(agree.mean()), max_diff, scale, allowed, tol.min_top1, notes)
    if not result.ok:
        raise UserError(
            f"conversion check failed, {runtime} disagrees with transformers ({result.summary()}): please report it"
        )
    return result
