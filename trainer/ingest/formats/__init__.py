"""Chat export formats, each told apart by what the file holds (never by its name).

| format            | module      | what the file is                                             |
| ----------------- | ----------- | ------------------------------------------------------------ |
| telegram-account  | telegram.py | Telegram Desktop, whole account: personal_information, chats |
| telegram-chat     | telegram.py | Telegram Desktop, one chat: name, type, id, messages         |
| plain             | plain.py    | {"messages": [{"user": …, "bot": …}]}                        |
| jsonl             | jsonl.py    | one {"messages": [{"role", "content"}]} sample a line        |
| whatsapp          | whatsapp.py | WhatsApp "Export chat" text, Android or iOS                  |

Each format module registers itself with a module-level `FORMAT` (see
`base.Format`): a new format is a new module here, nothing else to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
import zipfile
from functools import cache
from pathlib import Path

from trainer.ingest.formats.base import PEEK_BYTES, TELEGRAM_FIX, Format, Peek, text_encoding, where, zip_chat
from twin.errors import UserError


@cache
def registered() -> tuple[Format, ...]:
    """Every format module's FORMAT, in detection order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        fmt = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FORMAT", None)
        if isinstance(fmt, Format):
            found.append(fmt)
    return tuple(sorted(found, key=lambda f: f.order))


def kinds() -> tuple[str, ...]:
    return tuple(k for f in registered() for k in f.kinds)


def of_kind(kind: str) -> Format:
    """The format that detected `kind`."""
    return next(f for f in registered() if kind in f.kinds)


def resolve(path: Path) -> Path:
    """The file to read: a Telegram export folder means its result.json."""
    if path.is_dir():
        candidate = path / "result.json"
        if candidate.is_file():
            return candidate
        raise UserError(f"{path}: is a folder without result.json: pass the export file itself")
    if not path.exists():
        raise UserError(f"{path}: no such file: check the path")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file: pass the export file itself")
    return path


def detect(path: Path) -> str:
    """Which of the registered kinds the file holds, from its content; a UserError if none."""
    peek = _peek(path)
    for fmt in registered():
        kind = fmt.detect(peek)
        if kind is not None:
            return kind
    raise _unknown(peek)


def _peek(path: Path) -> Peek:
    stop = frozenset(k for f in registered() for k in f.json_keys)
    try:
        with open(path, "rb") as f:
            head = f.read(PEEK_BYTES)
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e}): check the path and its permissions") from None
    if head.startswith(b"PK\x03\x04"):
        return Peek(path, _zip_first_line(path), zipped=True, json_keys=stop)
    encoding = text_encoding(head)
    stripped = head.decode(encoding, "ignore").lstrip("\ufeff").lstrip()
    if not stripped:
        raise UserError(f"{path}: the file is empty: pass a chat export (Telegram result.json, WhatsApp .txt)")
    first_line = stripped.split("\n", 1)[0].rstrip("\r")
    return Peek(path, first_line, utf8=encoding == "utf-8", starts_json=stripped[0] == "{", json_keys=stop)


def _zip_first_line(path: Path) -> str:
    """iPhones export a WhatsApp chat as a zip of _chat.txt and the media: the detectors see the chat inside."""
    try:
        with zipfile.ZipFile(path) as zf:
            name = zip_chat(zf, path)
            with zf.open(name) as f:
                return f.readline(1 << 16).decode("utf-8", "ignore").lstrip("\ufeff").rstrip("\r\n")
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as e:
        raise UserError(f"{path}: a broken or encrypted zip ({e}): unzip it and pass the chat's .txt file") from None


def _unknown(peek: Peek) -> UserError:
    """Why no format took the file, as close to its actual content as the start tells."""
    path = peek.path
    if peek.zipped:
        return UserError(
            f"{where(path, 'line 1')}: the zip's chat file is not a WhatsApp export: unzip it and check the file"
        )
    if not peek.utf8:
        return UserError(
            f"{path}: UTF-16 text that is not a WhatsApp export: save it as UTF-8 (or pass the export itself)"
        )
    shape = peek.json()
    if shape is not None:
        if shape.key is None:
            return UserError(
                f'{path}: JSON without "messages" or "chats": not a chat export twin knows: {TELEGRAM_FIX}'
            )
        first = shape.first
        if isinstance(first, dict) and "role" in first and "content" in first:
            return UserError(
                f'{path}: role/content messages in one JSON document: write one {{"messages": [...]}} '
                "sample per line (JSONL) to pass a dataset through"
            )
        return UserError(
            f'{where(path, "message #1")}: neither a Telegram message nor a {{"user", "bot"}} pair: {TELEGRAM_FIX}'
        )
    if peek.first_line.startswith("["):
        return UserError(
            f"{where(path, 'line 1')}: a JSON list is not a chat export: pass Telegram's result.json, "
            'a plain {"messages": [...]} file, or JSONL with one sample a line'
        )
    return UserError(
        f"{where(path, 'line 1')}: not a chat export twin knows (Telegram JSON, WhatsApp text, plain JSON, JSONL): "
        "export the chat again, or check that a WhatsApp file starts with its first message line"
    )
