"""A conversation as Markdown: written to a file (F5) or copied whole (F6)."""

from __future__ import annotations

import re
from pathlib import Path

from tui.history import Conversation, History, Message
from twin import files, paths

CUT_SHORT = {"stopped": "cut short: stopped", "error": "cut short: the daemon went away"}


def conversation_markdown(conversation: Conversation, messages: list[Message]) -> str:
    """The conversation as a Markdown document: a heading, what it was set up with, then one section a message."""
    lines = [f"# {conversation.title}", ""]
    facts = [("Model", conversation.model)]
    if conversation.talking_to or conversation.chat:
        who = conversation.talking_to or "someone"
        facts.append(("Talking to", who + (f" ({conversation.chat} chat)" if conversation.chat else "")))
    facts += [("System prompt", conversation.system_prompt), ("Started", conversation.created)]
    lines += [f"- {name}: {value}" for name, value in facts if value]
    for m in messages:
        who = "You" if m.role == "user" else m.model or "assistant"
        note = f" ({CUT_SHORT[m.status]})" if m.status in CUT_SHORT else ""
        lines += ["", f"## {who}{note}", "", m.content.strip() or "*(empty)*"]
    return "\n".join(lines) + "\n"


def exports_dir() -> Path:
    return paths.data_dir() / "exports"


def export_path(conversation: Conversation) -> Path:
    slug = re.sub(r"[^\w-]+", "-", conversation.title.lower()).strip("-")[:40] or "conversation"
    return exports_dir() / f"{conversation.id}-{slug}.md"


def export_conversation(history: History, conversation_id: int) -> Path:
    """Write the conversation to exports/<id>-<title>.md in twin's data folder (0600, renamed into place)."""
    conversation = history.get(conversation_id)
    if conversation is None:
        raise KeyError(conversation_id)
    path = export_path(conversation)
    paths.private_dir(path.parent)
    files.write_text(path, conversation_markdown(conversation, history.messages(conversation_id)))
    return path
