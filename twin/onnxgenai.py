"""An exported ONNX twin (`twins/<name>/onnx/`) in ONNX Runtime GenAI: the one adapter the converter and daemon share.

The folder is what onnxruntime-genai's model builder writes: `model.onnx` (+ its
weights), `genai_config.json`, the HF tokenizer files and the chat template.
Inference (the KV cache included) is onnxruntime-genai's; tokens come from the
folder's `tokenizer.json` through HF `tokenizers` (Rust, no torch), so that chat
prompts are tokenized as the daemon does for a GGUF (`twin.chatformat.ChatTokenizer`:
a message's text can never become a control token). Sampling is the caller's: a
`Sequence` hands back each step's logits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from twin.chatformat import PLAIN_TEMPLATE, ChatTokenizer
from twin.errors import UserError

INSTALL = "install the ONNX backend with `pip install 'twin[onnx]'`"
CONFIG = "genai_config.json"


def genai() -> Any:
    """The onnxruntime_genai module, or one UserError saying how to install it."""
    try:
        import onnxruntime_genai
    except ImportError:
        raise UserError(f"onnxruntime-genai is not installed: {INSTALL}") from None
    return onnxruntime_genai


def is_onnx_dir(path: Path) -> bool:
    return (path / CONFIG).is_file()


def _token_text(value: Any) -> str:
    if isinstance(value, dict):  # an AddedToken as tokenizer_config.json spells it
        return str(value.get("content", ""))
    return str(value or "")


class OnnxModel:
    """The weights (onnxruntime-genai), the tokenizer and the chat template of one exported folder."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        og = genai()
        if not is_onnx_dir(folder):
            raise UserError(f"{folder} is not an exported ONNX model (no {CONFIG}): run `twin convert --format onnx`")
        self.folder = folder
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))["model"]
        self.n_ctx_train = int(config.get("context_length", 0))
        self.n_vocab = int(config["vocab_size"])
        eos = config.get("eos_token_id", [])
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.weights = og.Model(str(folder))
        self._plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._plain.encode_special_tokens = True  # message text: `<|im_end|>` stays plain text
        self._parsing = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tk_config = _read_json(folder / "tokenizer_config.json")
        self.add_bos = bool(tk_config.get("add_bos_token", False))
        jinja = folder / "chat_template.jinja"
        template = jinja.read_text(encoding="utf-8") if jinja.is_file() else tk_config.get("chat_template")
        specials = {t.content: i for i, t in self._parsing.get_added_tokens_decoder().items() if t.special}
        self.chat = ChatTokenizer(
            template or PLAIN_TEMPLATE,
            bos_token=_token_text(tk_config.get("bos_token")),
            eos_token=_token_text(tk_config.get("eos_token")),
            tokenize=lambda raw: self._plain.encode(raw.decode("utf-8"), add_special_tokens=False).ids,
            specials=specials,
        )
        self.template = template or PLAIN_TEMPLATE
        self.bos_text = _token_text(tk_config.get("bos_token"))
        self.eos_text = _token_text(tk_config.get("eos_token"))

    def tokenize(self, text: str, *, special: bool, add_special: bool = False) -> list[int]:
        """Token ids of `text`; `special`: control tokens written in the text are parsed (a rendered template)."""
        tokenizer = self._parsing if special else self._plain
        return tokenizer.encode(text, add_special_tokens=add_special).ids

    def decode(self, ids: list[int]) -> str:
        return self._parsing.decode(ids, skip_special_tokens=True)

    def sequence(self, max_length: int) -> Sequence:
        """A new KV cache for up to `max_length` tokens (capped by the model's context length)."""
        return Sequence(self, min(max_length, self.n_ctx_train or max_length))

    def close(self) -> None:
        del self.weights


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class Sequence:
    """One sequence's KV cache in onnxruntime-genai: feed tokens, read the last position's logits, rewind."""

    def __init__(self, model: OnnxModel, max_length: int) -> None:
        og = genai()
        params = og.GeneratorParams(model.weights)
        params.set_search_options(max_length=max_length, batch_size=1)
        self._generator = og.Generator(model.weights, params)
        self.tokens: list[int] = []  # exactly what the cache holds

    def feed(self, tokens: list[int]) -> np.ndarray:
        """Run `tokens` after what is cached; the logits (float32, vocabulary-sized) that follow the last one."""
        self._generator.append_tokens(np.asarray(tokens, dtype=np.int32))
        self.tokens += tokens
        return np.asarray(self._generator.get_logits(), dtype=np.float32)[0, -1]

    def rewind(self, keep: int) -> None:
        """Forget every cached token after the first `keep`."""
        if keep < len(self.tokens):
            self._generator.rewind_to(keep)
            del self.tokens[keep:]

    def close(self) -> None:
        del self._generator
