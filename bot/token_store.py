"""The bot token: where it is kept (0600), where it comes from, and keeping it out of every log line.

Order: TWIN_BOT_TOKEN, then `[bot] token_file`, then `bot-token` beside
config.toml (what `twin bot setup` writes). Bot API URLs carry the token
(`…/bot<token>/getMe`), so logging gets a filter that blanks it wherever it
appears, whatever library wrote the line.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from twin import paths
from twin.config import BotSettings
from twin.errors import UserError
from twin.files import write_text

ENV = "TWIN_BOT_TOKEN"
FILE_NAME = "bot-token"
_SHAPE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{30,64}$")
HIDDEN = "<bot-token>"


def token_path(settings: BotSettings) -> Path:
    return Path(settings.token_file).expanduser() if settings.token_file else paths.config_dir() / FILE_NAME


def check_shape(token: str) -> str:
    """A token as @BotFather gives it (`123456:ABC…`), or a UserError that does not repeat it."""
    token = token.strip()
    if not _SHAPE.match(token):
        raise UserError(
            "that is not a bot token (it looks like 123456789:AAE…, from @BotFather's /newbot): paste it again"
        )
    return token


def load_token(settings: BotSettings) -> str:
    """The token to run with; a UserError saying how to set one up when there is none."""
    if os.environ.get(ENV):
        return check_shape(os.environ[ENV])
    path = token_path(settings)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"no bot token at {path}: run `twin bot setup` (or set {ENV})") from None
    except OSError as e:
        raise UserError(f"cannot read the bot token at {path} ({e.strerror}): check its permissions") from None
    if os.stat(path).st_mode & 0o077:
        raise UserError(f"{path} can be read by other users: `chmod 600 {path}` (it holds the bot's token)")
    return check_shape(text)


def store_token(settings: BotSettings, token: str) -> Path:
    """Write the token 0600 (atomically) where `load_token` finds it."""
    path = token_path(settings)
    write_text(path, check_shape(token) + "\n")
    return path


def redact(text: str, token: str) -> str:
    """`text` with the token, and its secret half on its own, replaced by a placeholder."""
    if not token:
        return text
    text = text.replace(token, HIDDEN)
    secret = token.partition(":")[2]
    return text.replace(secret, HIDDEN) if secret else text


class RedactToken(logging.Filter):
    """Blanks the token in a record's final text (message and arguments, exception text included)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        clean = redact(message, self.token)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.token)
        return True


def hide_in_logs(token: str) -> None:
    """Install the filter on every handler of the root logger (records of every library pass through them)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactToken(token))
