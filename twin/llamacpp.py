"""The private parts of llama-cpp-python that twin uses, in one place (pyproject bounds the version below 0.4).

`Llama` has no public way to read a token's text with its special markers, the
vocabulary handle the sampler needs, or whether the model adds BOS; these reach
into `Llama._model` (llama_cpp._internals.LlamaModel). The daemon's batching
engine drives llama.cpp itself: it loads weights and makes contexts with the
`_internals` wrappers (which own and free the C objects) and reads their raw
handles. And the library's own log callback lives in `llama_cpp._logger`.
Everything else twin calls is the public `llama_cpp.llama_*` C API. A new
llama-cpp-python minor is checked here first.

Every model twin opens goes through `runtime()` (`load_weights`, `open_llama`): on a
llama.cpp built with AMX (a native build on a Xeon that has it), llama.cpp's AMX
weight buffer crashes the process in the first pass of two tokens or more (seen
here on 0.3.36 on every file type that buffer takes; ggml-org/llama.cpp#20824 is
the same crash, closed unfixed), so there the models load without llama.cpp's
extra buffer types (AMX, and the CPU weight repacking with it).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger("twin.llamacpp")


@functools.cache
def runtime() -> ModuleType:
    """The `llama_cpp` module, its default model parameters made safe on this build (once per process).

    Where llama.cpp was built with AMX, `llama_model_default_params()` leaves the extra buffer types out
    (`use_extra_bufts=False`); `Llama` takes no such argument and reads those defaults, so the function is
    replaced in the module `Llama` calls it from, and in the package that re-exports it.
    """
    import llama_cpp
    from llama_cpp import llama_cpp as lib

    if built_with_amx():
        original = lib.llama_model_default_params

        def without_extra_buffers() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        lib.llama_model_default_params = without_extra_buffers
        llama_cpp.llama_model_default_params = without_extra_buffers
        log.info("llama.cpp is built with AMX, whose weight buffer crashes it: models load without extra buffer types")
    return llama_cpp


def built_with_amx() -> bool:
    """Whether this llama.cpp was compiled with AMX (its system info lists `AMX_INT8 = 1`)."""
    import llama_cpp

    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


def open_llama(path: Path | str, **kwargs: Any) -> Any:
    """`llama_cpp.Llama(model_path=path, **kwargs)`, with `runtime()`'s model defaults."""
    return runtime().Llama(model_path=str(path), **kwargs)


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


def load_weights(path: Path) -> Any:
    """A GGUF's weights and vocabulary (`_internals.LlamaModel`: vocab, n_vocab(), n_ctx_train(), add_bos_token(),
    tokenize(), token_get_text(), metadata(), close()), without a context."""
    from llama_cpp import _internals

    # verbose=False would redirect the process' stdout/stderr while loading, which is not thread-safe.
    return _internals.LlamaModel(path_model=str(path), params=runtime().llama_model_default_params(), verbose=True)


def load_vocabulary(path: Path) -> Any:
    """A GGUF's vocabulary and metadata without its weights (a vocab-only `_internals.LlamaModel`); `close()` frees it.

    A file that is not a complete GGUF raises ValueError.
    """
    from llama_cpp import _internals

    params = runtime().llama_model_default_params()
    params.vocab_only = True
    return _internals.LlamaModel(path_model=str(path), params=params, verbose=True)


def file_metadata(path: Path) -> dict[str, str]:
    """A GGUF's metadata (`general.file_type`, ...), read without loading its weights."""
    model = load_vocabulary(path)
    try:
        return dict(model.metadata())
    finally:
        model.close()


def new_context(weights: Any, params: Any) -> Any:
    """A context (KV cache) on `weights` with `llama_context_params`; `close()` frees it."""
    from llama_cpp import _internals

    return _internals.LlamaContext(model=weights, params=params, verbose=False)


def model_handle(weights: Any) -> Any:
    """The raw `llama_model_p` of weights from `load_weights`, for llama_adapter_lora_init."""
    return weights.model


def context_handle(ctx: Any) -> Any:
    """The raw `llama_context_p` of a context from `new_context`, for llama_decode and friends."""
    return ctx.ctx


def context_memory(ctx: Any) -> Any:
    """The context's `llama_memory_t` (its KV cache), for the llama_memory_* calls."""
    return ctx.memory


def library_log_callback() -> Any:
    """llama-cpp-python's own log callback, to put back after collecting llama.cpp's log lines."""
    from llama_cpp import _logger

    return _logger.llama_log_callback
