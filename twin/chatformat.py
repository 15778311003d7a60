"""The chat format shared by the trainer, the converter and the daemon for models without a chat template.

GPT-2 style bases have no template; the original plan's format is used instead:
`User: …` lines for others, `Bot: …` for me, my turns closed by the tokenizer's
EOS. The trainer stores this template in `merged/`, the converter writes it into
the GGUF, and the daemon falls back to it for any GGUF that carries none.
"""

PLAIN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% else %}Bot: {{ message['content'] }}{{ eos_token }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Bot:{% endif %}"
)
