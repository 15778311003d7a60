"""Reply perplexity under an exported ONNX twin: `convert.perplexity.measure`'s rules with onnxruntime-genai as backend.

Same conversations, same template split, same windows as the GGUF's measure, so
the figures in twin.toml's `[onnx]` and `[model]` tables compare directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from convert.perplexity import QUANT_WINDOW, Messages, Perplexity, measure
from twin.onnxgenai import OnnxModel


class OnnxScorer:
    """An ONNX folder for scoring replies, rendering chats with its own template as the daemon does."""

    def __init__(self, model: OnnxModel, window: int) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.model = model
        self._formatters = {
            gen: Jinja2ChatFormatter(
                model.template, eos_token=model.eos_text, bos_token=model.bos_text, add_generation_prompt=gen
            )
            for gen in (True, False)
        }
        self._sequence = model.sequence(window + 1)

    def render(self, messages: Messages, add_generation_prompt: bool) -> str:
        return self._formatters[add_generation_prompt](messages=messages).prompt  # type: ignore[arg-type]

    def tokenize(self, text: str) -> list[int]:
        return self.model.tokenize(text, special=True)

    def reply_nll(self, prefix: list[int], reply: list[int]) -> float:
        """Summed NLL of `reply` after `prefix`: the prefix in one pass, then the reply token by token (KV cached)."""
        seq = self._sequence
        seq.rewind(0)
        logits = seq.feed(prefix)
        total = 0.0
        for i, token in enumerate(reply):
            row = logits.astype(np.float64)
            top = row.max()
            total += float(top + np.log(np.exp(row - top).sum()) - row[token])
            if i + 1 < len(reply):
                logits = seq.feed([token])
        return total

    def close(self) -> None:
        self._sequence.close()


@contextlib.contextmanager
def open_onnx_scorer(folder: Path, window: int) -> Iterator[OnnxScorer]:
    model = OnnxModel(folder)
    scorer = OnnxScorer(model, window)
    try:
        yield scorer
    finally:
        scorer.close()
        model.close()


def onnx_reply_perplexity(
    folder: Path,
    conversations: Sequence[Messages],
    window: int = QUANT_WINDOW,
    advance: Callable[[], None] = lambda: None,
) -> Perplexity:
    """exp(mean NLL) of the reply tokens of `conversations` under the ONNX model in `folder`."""
    with open_onnx_scorer(folder, window) as scorer:
        # onnxruntime-genai refuses positions beyond the model's context length (llama.cpp would run past it).
        window = min(window, scorer.model.n_ctx_train or window)
        return measure(conversations, scorer.render, scorer.tokenize, scorer.reply_nll, window, advance)
