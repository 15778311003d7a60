"""The private parts of llama-cpp-python that twin uses, in one place (pyproject bounds the version below 0.4).

`Llama` has no public way to read a token's text with its special markers, the
vocabulary handle the sampler needs, or whether the model adds BOS; these reach
into `Llama._model` (llama_cpp._internals.LlamaModel). A new llama-cpp-python
minor is checked here first.
"""

from __future__ import annotations

from typing import Any


def token_text(llm: Any, token: int) -> str:
    """The token's text as the vocabulary holds it (special tokens included); '' for a missing token (-1)."""
    return llm._model.token_get_text(token) if token >= 0 else ""


def vocab(llm: Any) -> Any:
    """The model's `llama_vocab` pointer, for the low-level sampling and detokenizing calls."""
    return llm._model.vocab


def adds_bos(llm: Any) -> bool:
    """Whether the model's tokenizer puts BOS in front of a prompt (GGUF `tokenizer.ggml.add_bos_token`)."""
    return bool(llm._model.add_bos_token())


def low_level_model(llm: Any) -> Any:
    """The `llama_cpp._internals.LlamaModel` behind a `Llama` (the weights and vocabulary the daemon loads directly)."""
    return llm._model
