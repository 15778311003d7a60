"""The chat format shared by the trainer, the converter and the daemon for models without a chat template.

GPT-2 style bases have no template; the original plan's format is used instead:
`User: …` lines for others, `Bot: …` for me, my turns closed by the tokenizer's
EOS. The trainer stores this template in `merged/`, the converter writes it into
the GGUF, and the daemon falls back to it for any GGUF that carries none.
"""

from __future__ import annotations

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


def gguf_chat_formatter(llm: Any, add_generation_prompt: bool = True) -> Any:
    """A llama-cpp-python `Llama`'s own chat template (or the plain one) as a formatter, the way the daemon renders chats."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from twin.llamacpp import token_text

    return Jinja2ChatFormatter(
        llm.metadata.get("tokenizer.chat_template") or PLAIN_TEMPLATE,
        eos_token=token_text(llm, llm.token_eos()),
        bos_token=token_text(llm, llm.token_bos()),
        add_generation_prompt=add_generation_prompt,
    )
