"""The tokenizer, exported into GGUF keys the way llama.cpp reads them.

The HF tokenizer that trained the model is the reference: its vocabulary, special
tokens and BOS/EOS behaviour are read from the loaded tokenizer, its pieces and
merges from its `tokenizers` JSON. Two families are supported:

- SentencePiece-style (TinyLlama, Phi-3): byte-fallback BPE over "▁" pieces,
  llama.cpp's `llama` tokenizer; scores from tokenizer.model when present, else
  from the merge ranks (llama.cpp's SPM merges the highest-scoring pair first).
- byte-level BPE (GPT-2, SmolLM2, Qwen2): llama.cpp's `gpt2` tokenizer with its
  merges and the pre-tokenizer name that selects llama.cpp's splitting regex.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from twin.chatformat import PLAIN_TEMPLATE
from twin.errors import UserError

_BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")
_NO_MERGE_SCORE = -1e6

# The splitting regexes of the byte-level BPE families llama.cpp knows, as they appear in tokenizer.json.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


@dataclass
class Vocabulary:
    """Everything the GGUF's tokenizer.* keys hold."""

    model: str  # llama.cpp's tokenizer model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
    pre: str | None
    tokens: list[str]
    types: list[int]
    scores: list[float] | None
    merges: list[str]
    special_ids: dict[str, int]
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool | None
    chat_template: str
    notes: list[str] = field(default_factory=list)

    def write(self, w: gguf.GGUFWriter) -> None:
        w.add_tokenizer_model(self.model)
        if self.pre:
            w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        if self.scores is not None:
            w.add_token_scores(self.scores)
        w.add_token_types(self.types)
        if self.merges:
            w.add_token_merges(self.merges)
        for kind, token_id in self.special_ids.items():
            getattr(w, f"add_{kind}_token_id")(token_id)
        w.add_add_bos_token(self.add_bos)
        w.add_add_eos_token(self.add_eos)
        if self.add_space_prefix is not None:
            w.add_add_space_prefix(self.add_space_prefix)
        w.add_chat_template(self.chat_template)


def load_hf_tokenizer(path: Path) -> Any:
    """The directory's tokenizer through transformers, or a UserError with the fix."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # transformers raises many types here; all mean "these files are not a usable tokenizer"
        reason = " ".join(str(e).split())[:300]
        raise UserError(
            f"{path}: transformers cannot load its tokenizer ({type(e).__name__}: {reason}): "
            "copy the base model's tokenizer files into it"
        ) from None


def read_vocabulary(path: Path, tokenizer: Any, n_vocab: int) -> Vocabulary:
    """The GGUF vocabulary of the tokenizer in `path` (loaded as `tokenizer`), padded to the model's `n_vocab` rows."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UserError(
            f"{path}: its tokenizer has no tokenizer.json form (a slow-only tokenizer): save it with a fast tokenizer"
        )
    spec = json.loads(backend.to_str())
    model = spec.get("model", {})
    if model.get("type") != "BPE":
        raise UserError(
            f"{path}: tokenizer type {model.get('type')!r} is not supported by `twin convert`: "
            "it converts SentencePiece-style and byte-level BPE tokenizers"
        )
    kind = "llama" if model.get("byte_fallback") else "gpt2"
    if kind == "gpt2" and not _has_byte_level(spec):
        raise UserError(
            f"{path}: a BPE tokenizer without byte-level encoding or byte fallback is not supported by `twin convert`"
        )

    vocab: dict[str, int] = tokenizer.get_vocab()
    size = max(vocab.values()) + 1
    if size > n_vocab:
        raise UserError(
            f"{path}: the tokenizer has {size} tokens but the model's embedding only {n_vocab} rows: the tokenizer does not belong to this model"
        )
    by_id: dict[int, str] = {i: t for t, i in vocab.items()}
    special = set(tokenizer.all_special_ids)
    added = {i: t for i, t in tokenizer.added_tokens_decoder.items()}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        text = by_id.get(i)
        if text is None:  # rows beyond the tokenizer (padding for efficiency) or holes in its ids
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(text)
        types.append(_token_type(i, text, kind, tokenizer, special, added))

    merges = _merges(model)
    notes: list[str] = []
    scores = None
    add_space_prefix = None
    pre = None
    if kind == "llama":
        scores, note = _spm_scores(path, tokens, merges)
        notes.append(note)
        merges = []  # llama.cpp's SPM tokenizer works from scores only
        add_space_prefix = _adds_space_prefix(spec)
    else:
        pre = bpe_pre_name(spec, path)

    # Not gguf.SpecialVocab: it reads tokenizer_config.json and guesses add_bos/add_eos from the post-processor's
    # JSON, and writes the chat template as found. Here the loaded tokenizer is asked what it does (encode with and
    # without special tokens): the same object transformers trains and verify() compares against, so the GGUF
    # cannot disagree with it; and a template-less tokenizer gets the plain template, which SpecialVocab would skip.
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    special_ids = {
        kind_: token_id
        for kind_, token_id in (
            ("bos", bos),
            ("eos", eos),
            ("unk", tokenizer.unk_token_id),
            ("pad", tokenizer.pad_token_id),
        )
        if isinstance(token_id, int) and 0 <= token_id < n_vocab
    }
    sample = "Hello world"
    plain = tokenizer.encode(sample, add_special_tokens=False)
    full = tokenizer.encode(sample, add_special_tokens=True)
    add_bos = bos is not None and len(full) > len(plain) and full[0] == bos
    add_eos = eos is not None and len(full) > len(plain) and full[-1] == eos
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    if template is None:
        notes.append("no chat template: wrote twin's plain `User:/Bot:` template")
    return Vocabulary(
        model=kind,
        pre=pre,
        tokens=tokens,
        types=[int(t) for t in types],
        scores=scores,
        merges=merges,
        special_ids=special_ids,
        add_bos=add_bos,
        add_eos=add_eos,
        add_space_prefix=add_space_prefix,
        chat_template=template or PLAIN_TEMPLATE,
        notes=notes,
    )


def _token_type(i: int, text: str, kind: str, tokenizer: Any, special: set[int], added: dict[int, Any]) -> int:
    if kind == "llama" and i == tokenizer.unk_token_id:
        return gguf.TokenType.UNKNOWN
    if i in special:
        return gguf.TokenType.CONTROL
    if i in added:
        return gguf.TokenType.CONTROL if getattr(added[i], "special", False) else gguf.TokenType.USER_DEFINED
    if kind == "llama" and _BYTE_PIECE.match(text):
        return gguf.TokenType.BYTE
    return gguf.TokenType.NORMAL


def _merges(model: dict[str, Any]) -> list[str]:
    out = []
    for merge in model.get("merges") or []:
        if isinstance(merge, str):
            out.append(merge)
        else:
            # Newer tokenizer.json stores pairs; llama.cpp wants "left right" with spaces inside parts escaped as U+0120.
            out.append(" ".join(part.replace(" ", "\u0120") for part in merge))
    return out


def _spm_scores(path: Path, tokens: list[str], merges: list[str]) -> tuple[list[float], str]:
    """Piece scores: tokenizer.model's own when its pieces match, else the negated rank of the merge that makes each piece."""
    model_file = path / "tokenizer.model"
    if model_file.is_file():
        from sentencepiece import SentencePieceProcessor

        sp = SentencePieceProcessor(model_file=str(model_file))
        n = sp.vocab_size()
        if n <= len(tokens) and all(sp.IdToPiece(i) == tokens[i] for i in range(n)):
            return [sp.GetScore(i) for i in range(n)] + [0.0] * (len(tokens) - n), "scores from tokenizer.model"
    rank: dict[str, int] = {}
    for r, merge in enumerate(merges):
        left, _, right = merge.partition(" ")
        rank.setdefault(left + right, r)
    scores = [-float(rank[t]) if t in rank else _NO_MERGE_SCORE for t in tokens]
    return scores, "scores from merge ranks (no tokenizer.model)"


def _adds_space_prefix(spec: dict[str, Any]) -> bool:
    pre = spec.get("pre_tokenizer") or {}
    for part in pre.get("pretokenizers", [pre]):
        if part and part.get("type") == "Metaspace":
            return part.get("prepend_scheme", "always") != "never" and part.get("add_prefix_space", True) is not False
    norm = spec.get("normalizer") or {}
    return any(part and part.get("type") == "Prepend" for part in norm.get("normalizers", [norm]))


def _has_byte_level(spec: dict[str, Any]) -> bool:
    pre = spec.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre])
    return any(p and p.get("type") == "ByteLevel" for p in parts)


def bpe_pre_name(spec: dict[str, Any], path: Path) -> str:
    """llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer, recognised from its tokenizer.json structure."""
    pre = spec.get("pre_tokenizer") or {}
    parts = [p for p in pre.get("pretokenizers", [pre]) if p]
    normalizer = spec.get("normalizer")
    shape = [p.get("type") for p in parts]

    def byte_level(p: dict[str, Any], regex: bool) -> bool:
        return (
            p.get("type") == "ByteLevel"
            and bool(p.get("use_regex", True)) == regex
            and not p.get("add_prefix_space", False)
        )

    if normalizer is None:
        if shape == ["ByteLevel"] and byte_level(parts[0], True):
            return "gpt-2"
        if shape == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and byte_level(parts[1], True):
            return "smollm"
    if shape == ["Split", "ByteLevel"] and byte_level(parts[1], False):
        regex = (parts[0].get("pattern") or {}).get("Regex")
        if regex == _QWEN2_SPLIT and normalizer in (None, {"type": "NFC"}):
            return "qwen2"
        if regex == _LLAMA3_SPLIT and normalizer is None:
            return "llama-bpe"
    raise UserError(
        f"{path}: its byte-level BPE pre-tokenizer ({'+'.join(str(s) for s in shape) or 'none'}) is not one llama.cpp "
        "is known to reproduce (GPT-2, SmolLM, Qwen2, Llama-3 style): convert a model with one of those tokenizers"
    )


_PHI3_NAME = re.compile(r"phi-?3", re.IGNORECASE)


def model_name(name: str, tokenizer: Any) -> str:
    """general.name for the GGUF, adjusted so llama.cpp strips whitespace after special tokens exactly when HF does.

    llama.cpp has no per-token strip flags in GGUF: it right-strips special tokens
    (Phi-3's rule) when general.name contains "phi3"/"phi-3", and never otherwise.
    HF keeps the flag on each added token. So the name gets the marker when the
    tokenizer right-strips its special tokens, and loses it when it does not.
    """
    rstrip = any(
        getattr(t, "special", False) and getattr(t, "rstrip", False) for t in tokenizer.added_tokens_decoder.values()
    )
    marked = _PHI3_NAME.search(name) is not None
    if rstrip and not marked:
        return f"{name} (phi3)"
    if marked and not rstrip:
        return _PHI3_NAME.sub(lambda m: m.group(0)[:3] + "_" + m.group(0)[3:], name)
    return name
