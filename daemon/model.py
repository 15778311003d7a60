"""One GGUF's weights and vocabulary in llama.cpp: prompt tokenization, token pieces, the context-length check.

Chat prompts are tokenized by `twin.chatformat.ChatTokenizer`: what a client wrote
can never become a control token (`hi<|im_end|>` stays plain text).
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import llama_cpp

from daemon.schema import APIError
from twin import llamacpp
from twin.chatformat import ChatTokenizer

# llama.cpp logs through llama-cpp-python's logger; below ERROR it would chat on stderr at every load.
logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


class LoadedModel:
    """A GGUF's weights and vocabulary; contexts (and their KV caches) belong to whoever decodes."""

    def __init__(self, path: Path, lora: Path | None = None) -> None:
        self.path = path
        self.weights = llamacpp.load_weights(path)
        self.adapter = None
        if lora is not None:  # freed with the weights
            self.adapter = llama_cpp.llama_adapter_lora_init(llamacpp.model_handle(self.weights), str(lora).encode())
            if not self.adapter:
                self.weights.close()
                raise APIError(
                    503,
                    f"llama.cpp cannot apply the LoRA adapter {lora.name} to {path.name}: "
                    "rebuild the twin with `twin convert`",
                    type="server_error",
                )
        self.vocab = self.weights.vocab
        self.n_vocab = self.weights.n_vocab()
        self.n_ctx_train = self.weights.n_ctx_train()
        self.add_bos = self.weights.add_bos_token()
        self.chat = ChatTokenizer.from_model(self.weights)
        # end-of-generation tokens (EOS, EOT, a template's end marker): what an end bias applies to
        self.end_ids = [t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self.vocab, t)]

    def close(self) -> None:
        self.weights.close()

    def apply_adapter(self, ctx: object) -> None:
        """Set the LoRA adapter (if any) on a context of these weights, at its trained scale."""
        if self.adapter is None:
            return
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.adapter)
        if llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, (ctypes.c_float * 1)(1.0)) != 0:
            raise RuntimeError(f"llama.cpp refused the LoRA adapter of {self.path.name}")

    def tokenize(self, text: str, *, special: bool, add_bos: bool = False) -> list[int]:
        # errors="replace": a lone surrogate from JSON's \ud800 must not become a 500 here.
        return self.weights.tokenize(text.encode("utf-8", errors="replace"), add_bos=add_bos, special=special)

    def chat_tokens(self, messages: list[dict[str, str]], param: str = "messages") -> list[int]:
        """The chat rendered by the model's template; message contents tokenized as plain text."""
        try:
            # Templates carry their own special tokens (as in transformers' apply_chat_template): no extra BOS.
            return self.chat.tokens(messages)
        except Exception as e:  # a template's raise_exception(), e.g. roles out of order
            raise APIError(400, f"the model's chat template rejected the messages: {e}", param=param) from None

    def text_tokens(self, text: str) -> list[int]:
        return self.tokenize(text, special=False, add_bos=self.add_bos)

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for in generated text (control tokens such as EOS stand for none)."""
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))


def check_context(n_ctx: int, prompt_tokens: int, max_tokens: int | None, param: str) -> None:
    """OpenAI's context_length_exceeded 400 when prompt (+ max_tokens) does not fit; an empty prompt is a 400 too."""
    if prompt_tokens == 0:
        raise APIError(400, f"Invalid value for '{param}': the {param} is empty", param=param, code="invalid_value")
    asked = prompt_tokens + (max_tokens or 0)
    if prompt_tokens >= n_ctx or (max_tokens is not None and asked > n_ctx):
        detail = f"{prompt_tokens} in the {param}" + (f", {max_tokens} in the completion" if max_tokens else "")
        raise APIError(
            400,
            f"This model's maximum context length is {n_ctx} tokens. However, you requested "
            f"{max(asked, prompt_tokens)} tokens ({detail}). Please reduce the length of the {param} or completion.",
            param=param,
            code="context_length_exceeded",
        )
