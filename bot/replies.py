"""The bot's words: help, and failures of the daemon turned into one plain line that says what to do."""

from __future__ import annotations

from tui.client import DaemonError, DaemonUnreachable

COMMANDS: list[tuple[str, str]] = [
    ("help", "what this bot does"),
    ("generate", "one reply in the twin's style: /generate TEXT"),
    ("reset", "forget this conversation"),
    ("model", "pick which twin this chat talks to"),
    ("status", "the daemon, the model, a running job"),
    ("train", "owner: send an export with /train NAME as its caption"),
    ("cancel", "owner: stop the training job"),
    ("allow", "owner: /allow @username|id [chat|rate]"),
    ("deny", "owner: /deny @username|id"),
    ("survey", "friends: which reply did the owner write? (owner: /survey on|off)"),
]


def help_text() -> str:
    lines = ["I answer like my owner. Write to me, or:"]
    lines += [f"/{name} — {what}" for name, what in COMMANDS]
    return "\n".join(lines)


def explain(error: Exception, url: str) -> str:
    """One line for a chat about what went wrong with the daemon and what to do."""
    if isinstance(error, DaemonUnreachable):
        return (
            f"The twin daemon is not answering at {url} ({error}). "
            "Start it on the computer: `twin serve` (or `systemctl --user start twin`)."
        )
    if isinstance(error, DaemonError):
        if error.status == 404 and "model" in str(error):
            return f"{error}. Pick a model the daemon serves with /model."
        if error.status == 401:
            return "The daemon refused the bot's key: set [chat] api_key to the daemon's --api-key."
        if error.status == 429:
            return "The twin is busy with other messages: try again in a moment."
        return f"The daemon said: {error}"
    raise error
