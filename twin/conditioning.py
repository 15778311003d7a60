"""Who the twin talks to: one short system line, the same wherever a conversation is rendered.

Ingest keeps, per sample, the chat (name, kind) and who my reply answers;
training puts this line first in each conversation; the daemon builds it from a
request's `twin` field (`{"talking_to": "…", "chat": "…"}`) and the persona
variant adds it under its prompt. One function, so all of them say it alike.
"""

from __future__ import annotations

from typing import Any

FIELDS = ("talking_to", "chat", "chat_kind")
_KINDS = {  # the exports' words for a chat, in a few plain ones
    "personal_chat": "private chat",
    "private": "private chat",
    "private_group": "group",
    "private_supergroup": "group",
    "public_supergroup": "group",
    "whatsapp": "chat",
}
MAX_CHARS = 80  # per field: a name, not a paragraph


def system_line(talking_to: str = "", chat: str = "", chat_kind: str = "") -> str:
    """'Chat: Family (group). Talking to: Mum.' — '' when nothing is known."""
    parts = []
    chat, talking_to = _short(chat), _short(talking_to)
    kind = _KINDS.get(chat_kind.strip(), chat_kind.strip().replace("_", " "))
    if chat:
        parts.append(f"Chat: {chat} ({kind})." if kind else f"Chat: {chat}.")
    if talking_to:
        parts.append(f"Talking to: {talking_to}.")
    return " ".join(parts)


def record_line(record: dict[str, Any]) -> str:
    """The system line of one dataset record (a `twin.dataset.Line.record`); '' without chat fields."""
    return system_line(**{k: str(record.get(k) or "") for k in FIELDS})


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def check_fields(value: Any) -> dict[str, str]:
    """A request's `twin` field as {field: text}; ValueError naming what is wrong."""
    if not isinstance(value, dict):
        raise ValueError('expected an object such as {"talking_to": "Anna", "chat": "Family"}')
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; known: {', '.join(FIELDS)}")
    for key, text in value.items():
        if not isinstance(text, str):
            raise ValueError(f"{key} must be a string")
    return {k: value[k] for k in FIELDS if k in value}


def with_line(messages: list[dict[str, str]], line: str) -> list[dict[str, str]]:
    """The messages with `line` as the system message (added to an existing first system message, after it)."""
    if not line:
        return messages
    if messages and messages[0]["role"] == "system":
        first = messages[0]["content"].rstrip()
        return [{"role": "system", "content": f"{first}\n{line}" if first else line}, *messages[1:]]
    return [{"role": "system", "content": line}, *messages]
