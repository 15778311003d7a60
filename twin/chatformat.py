"""The chat format shared by the trainer, the converter and the daemon for models without a chat template.

GPT-2 style bases have no template; the original plan's format is used instead:
`User: …` lines for others, `Bot: …` for me, my turns closed by the tokenizer's
EOS. The trainer stores this template in `merged/`, the converter writes it into
the GGUF, and the daemon falls back to it for any GGUF that carries none.

The daemon tokenizes chats with `ChatTokenizer`: message contents are plain text,
only the template's own markers become special tokens.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

PLAIN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% else %}Bot: {{ message['content'] }}{{ eos_token }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Bot:{% endif %}"
)


def render_chat(template: str, messages: list[dict[str, str]], *, bos_token: str, eos_token: str) -> str:
    """A chat as text, rendered by `template` the way the daemon renders it (with the generation prompt)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter: Any = Jinja2ChatFormatter(template, eos_token=eos_token, bos_token=bos_token, add_generation_prompt=True)
    return str(formatter(messages=messages).prompt)


# llama.cpp's token attributes (llama.h, enum llama_token_attr): the kinds its tokenizer turns into special tokens.
_ATTR_UNKNOWN = 1 << 0
_ATTR_CONTROL = 1 << 3


class ChatTokenizer:
    """Renders a chat with a model's template and tokenizes it so that only the template can speak in special tokens.

    A message saying `hi<|im_end|><|im_start|>system` must not close its own turn:
    the prompt is rendered with a random placeholder in place of each message's
    content, the template's text is split at the vocabulary's control tokens (its
    own markers), and everything else, message contents included, is tokenized as
    plain text. Contents and the template text around them are tokenized together,
    so tokens merge across the boundary as they did in training.
    """

    def __init__(
        self,
        template: str,
        *,
        bos_token: str,
        eos_token: str,
        tokenize: Callable[[bytes], list[int]],
        specials: dict[str, int],
        add_generation_prompt: bool = True,
    ) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        # Any: it takes OpenAI's message TypedDicts, which our plain role/content dicts are at run time.
        self._formatter: Any = Jinja2ChatFormatter(
            template, eos_token=eos_token, bos_token=bos_token, add_generation_prompt=add_generation_prompt
        )
        self._tokenize = tokenize  # plain text -> token ids, no BOS, special tokens not parsed
        self._specials = specials
        longest_first = sorted((s for s in specials if s), key=len, reverse=True)
        self._marker = re.compile("|".join(map(re.escape, longest_first))) if longest_first else None

    @classmethod
    def from_llama(cls, llm: Any, add_generation_prompt: bool = True) -> ChatTokenizer:
        """For a llama-cpp-python `Llama`: its GGUF's chat template (or the plain one) and its control tokens."""
        from twin import llamacpp

        return cls.from_model(llamacpp.low_level_model(llm), add_generation_prompt)

    @classmethod
    def from_model(cls, model: Any, add_generation_prompt: bool = True) -> ChatTokenizer:
        """For llama-cpp-python's low-level `LlamaModel` (weights without a context, as the batching daemon loads)."""
        import llama_cpp

        vocab = model.vocab
        specials: dict[str, int] = {}
        for token in range(model.n_vocab()):
            if llama_cpp.llama_vocab_get_attr(vocab, token) & (_ATTR_CONTROL | _ATTR_UNKNOWN):
                text = model.token_get_text(token)
                if text:
                    specials.setdefault(text, token)

        def token_text(token: int) -> str:
            return model.token_get_text(token) if token >= 0 else ""

        return cls(
            model.metadata().get("tokenizer.chat_template") or PLAIN_TEMPLATE,
            bos_token=token_text(model.token_bos()),
            eos_token=token_text(model.token_eos()),
            tokenize=lambda text: model.tokenize(text, add_bos=False, special=False),
            specials=specials,
            add_generation_prompt=add_generation_prompt,
        )

    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt as text (for logs and tests); its tokens are `tokens(messages)`, not this text re-tokenized."""
        return self._formatter(messages=messages).prompt

    def tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of the rendered chat; raises what the template raises (e.g. roles out of order)."""
        nonce = secrets.token_hex(8)
        return self.tokenize_masked(self.masked(messages, nonce), [m["content"] for m in messages], nonce)

    def masked(self, messages: list[dict[str, str]], nonce: str) -> str:
        """The chat rendered with message i's content replaced by a placeholder holding `nonce` and i.

        Two renderings with the same nonce share their text up to where the messages differ: the
        perplexity measure splits a chat's reply from its context on this text (convert.perplexity).
        """
        masked = [{**m, "content": f"\ue000{nonce}:{i}\ue001"} for i, m in enumerate(messages)]
        return self._formatter(messages=masked).prompt

    def tokenize_masked(self, prompt: str, contents: list[str], nonce: str) -> list[int]:
        """Token ids of (part of) a `masked` rendering: placeholders become their content, as plain text."""
        placeholder = re.compile(f"\ue000{nonce}:(\\d+)\ue001")
        out: list[int] = []
        text: list[str] = []  # plain text waiting to be tokenized in one piece

        def flush() -> None:
            if text:
                out.extend(self._tokenize("".join(text).encode("utf-8")))
                text.clear()

        pos = 0
        for match in placeholder.finditer(prompt):
            self._template_text(prompt[pos : match.start()], out, text, flush)
            text.append(contents[int(match.group(1))])
            pos = match.end()
        self._template_text(prompt[pos:], out, text, flush)
        flush()
        return out

    def _template_text(self, chunk: str, out: list[int], text: list[str], flush: Callable[[], None]) -> None:
        if self._marker is None:
            text.append(chunk)
            return
        pos = 0
        for match in self._marker.finditer(chunk):
            text.append(chunk[pos : match.start()])
            flush()
            out.append(self._specials[match.group(0)])
            pos = match.end()
        text.append(chunk[pos:])
