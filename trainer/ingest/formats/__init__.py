"""Chat export formats, each told apart by what the file holds (never by its name).

| format            | what the file is                                           |
| ----------------- | ---------------------------------------------------------- |
| telegram-account  | Telegram Desktop, whole account: personal_information, chats |
| telegram-chat     | Telegram Desktop, one chat: name, type, id, messages        |
| plain             | {"messages": [{"user": …, "bot": …}]}                       |
| jsonl             | one {"messages": [{"role", "content"}]} sample a line       |
| whatsapp          | WhatsApp "Export chat" text, Android or iOS                 |
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from trainer.ingest.formats import whatsapp
from trainer.ingest.formats.jsonl import is_sample
from trainer.ingest.formats.jsonstream import JsonStream, JsonSyntaxError
from twin.errors import UserError

FORMATS = ("telegram-account", "telegram-chat", "plain", "jsonl", "whatsapp")
_PEEK = 1 << 16
TELEGRAM_FIX = "export it again from Telegram Desktop (Settings → Advanced → Export Telegram data, format: JSON)"


def where(path: Path, place: str) -> str:
    """'result.json, line 12' — the start of every error about an input file."""
    return f"{path}, {place}" if place else str(path)


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
    """Which of FORMATS the file holds, from its content; a UserError if none."""
    try:
        with open(path, "rb") as f:
            head = f.read(_PEEK)
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e}): check the path and its permissions") from None
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    encoding = text_encoding(head)
    text = head.decode(encoding, "ignore").lstrip("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        raise UserError(f"{path}: the file is empty: pass a chat export (Telegram result.json, WhatsApp .txt)")
    first_line = stripped.split("\n", 1)[0].rstrip("\r")
    if whatsapp.is_header(first_line):
        return "whatsapp"
    if encoding != "utf-8":
        raise UserError(
            f"{path}: UTF-16 text that is not a WhatsApp export: save it as UTF-8 (or pass the export itself)"
        )
    if stripped[0] == "{":
        if _jsonl_line(first_line):
            return "jsonl"
        return _json_kind(path)
    if stripped[0] == "[":
        raise UserError(
            f"{where(path, 'line 1')}: a JSON list is not a chat export: pass Telegram's result.json, "
            'a plain {"messages": [...]} file, or JSONL with one sample a line'
        )
    raise UserError(
        f"{where(path, 'line 1')}: not a chat export twin knows (Telegram JSON, WhatsApp text, plain JSON, JSONL): "
        "export the chat again, or check that a WhatsApp file starts with its first message line"
    )


def _zip_kind(path: Path) -> str:
    """iPhones export a WhatsApp chat as a zip of _chat.txt and the media: read the chat inside."""
    try:
        with zipfile.ZipFile(path) as zf:
            name = _zip_chat(zf, path)
            with zf.open(name) as f:
                first = f.readline(1 << 16).decode("utf-8", "ignore").lstrip("\ufeff").rstrip("\r\n")
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as e:
        raise UserError(f"{path}: a broken or encrypted zip ({e}): unzip it and pass the chat's .txt file") from None
    if not whatsapp.is_header(first):
        raise UserError(
            f"{where(path, 'line 1')}: the zip's chat file is not a WhatsApp export: unzip it and check the file"
        )
    return "whatsapp"


def _zip_chat(zf: zipfile.ZipFile, path: Path) -> str:
    texts = [i.filename for i in zf.infolist() if i.filename.lower().endswith(".txt") and not i.is_dir()]
    if len(texts) != 1:
        raise UserError(
            f"{path}: a zip with {len(texts)} text files: pass a WhatsApp export zip (one chat .txt inside) or the .txt itself"
        )
    return texts[0]


def _jsonl_line(line: str) -> bool:
    try:
        return is_sample(json.loads(line))
    except (ValueError, RecursionError):
        return False


def _json_kind(path: Path) -> str:
    """Walk the top-level keys until they tell the format; values are skipped, not loaded."""
    header: dict = {}
    try:
        with open(path, "rb") as f:
            s = JsonStream(f)
            for key in s.members():
                if key in ("personal_information", "chats", "left_chats"):
                    return "telegram-account"
                if key == "messages":
                    return _messages_kind(s, header, path)
                if key in ("name", "type", "id"):
                    header[key] = s.value()
                else:
                    s.skip()
    except JsonSyntaxError as e:
        raise syntax_error(path, e, "") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e}): check the path and its permissions") from None
    raise UserError(f'{path}: JSON without "messages" or "chats": not a chat export twin knows: {TELEGRAM_FIX}')


def _messages_kind(s: JsonStream, header: dict, path: Path) -> str:
    if s.peek() != "[":
        raise UserError(f'{where(path, f"line {s.line()}")}: "messages" is not a list: {TELEGRAM_FIX}')
    for _ in s.elements():
        try:
            first = s.value()
        except JsonSyntaxError as e:
            name = header.get("name")
            raise syntax_error(
                path, e, f"chat {name!r}, message #1" if isinstance(name, str) else "message #1"
            ) from None
        if isinstance(first, dict):
            if "bot" in first or "user" in first:
                return "plain"
            if "role" in first and "content" in first:
                raise UserError(
                    f'{path}: role/content messages in one JSON document: write one {{"messages": [...]}} '
                    "sample per line (JSONL) to pass a dataset through"
                )
            if "type" in first or "date" in first or "from" in first:
                return "telegram-chat"
        raise UserError(
            f'{where(path, "message #1")}: neither a Telegram message nor a {{"user", "bot"}} pair: {TELEGRAM_FIX}'
        )
    return "telegram-chat" if {"type", "id"} & header.keys() else "plain"


def syntax_error(path: Path, e: JsonSyntaxError, position: str) -> UserError:
    place = f"line {e.line}" + (f" ({position})" if position else "")
    if e.truncated:
        return UserError(f"{where(path, place)}: the file ends too early (cut off while copying?): {TELEGRAM_FIX}")
    return UserError(f"{where(path, place)}: not valid JSON ({e.problem}): {TELEGRAM_FIX}")


def text_encoding(head: bytes) -> str:
    """'utf-16' for text saved as UTF-16 (Windows tools save WhatsApp chats so), else 'utf-8'.

    Told by the byte-order mark, or without one by the zero bytes every
    ASCII character of UTF-16 carries (and UTF-8 text never does).
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    sample = head[:256]
    if b"\x00" not in sample:  # UTF-8 text never holds a zero byte
        return "utf-8"
    guess = "utf-16-le" if sample[1::2].count(0) >= sample[0::2].count(0) else "utf-16-be"
    text = sample[: len(sample) // 2 * 2].decode(guess, "replace")
    # Binary files hold zero bytes too: UTF-16 text decodes to printable characters.
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return guess if printable >= 0.9 * len(text) else "utf-8"


def text_lines(path: Path) -> io.TextIOWrapper:
    """A text export (or the chat inside a WhatsApp zip) opened for reading lines: UTF-8 or UTF-16, BOM dropped."""
    if zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
        return io.TextIOWrapper(zf.open(_zip_chat(zf, path)), encoding="utf-8-sig", newline=None)
    with open(path, "rb") as f:
        encoding = text_encoding(f.read(_PEEK))
    return open(path, encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline=None)
