"""What every chat export format shares: how a format registers, what its detector sees, and the file helpers.

A format is a module in this package with a module-level `FORMAT` (a `Format`):
its detector looks at the start of a file (a `Peek`) and names the kind it
holds, or None; its reader feeds the file into a `Reading`. The package finds
the modules itself, so adding a format is adding a module.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.ingest.formats.jsonstream import JsonStream, JsonSyntaxError
from twin.errors import UserError

if TYPE_CHECKING:
    from trainer.ingest.reading import Reading

PEEK_BYTES = 1 << 16
TELEGRAM_FIX = "export it again from Telegram Desktop (Settings → Advanced → Export Telegram data, format: JSON)"
_ABSENT = object()


@dataclass(frozen=True)
class Format:
    """One chat export format: how to tell it from a file's start, and how to read it."""

    kinds: tuple[str, ...]  # what `detect` may answer (stats.json's "format" of an input)
    detect: Callable[[Peek], str | None]
    read: Callable[[Path, str, Reading], int]  # feeds the file in; returns how many of its messages are mine
    order: int  # detectors run in this order, lowest first: the one a file is cheapest to rule out by goes first
    by_sender: bool = False  # tells me apart by sender (then stats.json lists whom --me matched)
    json_keys: frozenset[str] = frozenset()  # top-level JSON keys that tell this format on sight


@dataclass
class JsonShape:
    """The start of a JSON document: the first top-level key some format claims, and what came before it."""

    key: str | None  # None: no claimed key in the whole document
    header: dict = field(default_factory=dict)  # the "name", "type" and "id" values seen before it
    first: object = _ABSENT  # the first element of "messages", when key is "messages" and the list is not empty

    @property
    def has_first(self) -> bool:
        return self.first is not _ABSENT


@dataclass
class Peek:
    """What a detector sees of a file: its first line, and (on demand, once) the start of its JSON."""

    path: Path
    first_line: str  # the first non-blank line, BOM and line end dropped
    zipped: bool = False  # the line comes from the chat file inside a zip
    utf8: bool = True
    starts_json: bool = False  # the text's first character is "{"
    json_keys: frozenset[str] = frozenset()  # every registered format's json_keys: where the JSON walk stops
    _shape: JsonShape | None = field(default=None, repr=False)

    def json(self) -> JsonShape | None:
        """The JSON document's shape; None unless the file is UTF-8 text starting with '{'."""
        if self.zipped or not self.utf8 or not self.starts_json:
            return None
        if self._shape is None:
            self._shape = _json_shape(self.path, self.json_keys)
        return self._shape


def _json_shape(path: Path, stop: frozenset[str]) -> JsonShape:
    """Walk the top-level keys until one a format claims; values are skipped, not loaded."""
    header: dict = {}
    try:
        with open(path, "rb") as f:
            s = JsonStream(f)
            for key in s.members():
                if key == "messages":
                    return _messages_shape(s, header, path)
                if key in stop:
                    return JsonShape(key, header)
                if key in ("name", "type", "id"):
                    header[key] = s.value()
                else:
                    s.skip()
    except JsonSyntaxError as e:
        raise syntax_error(path, e, "") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e}): check the path and its permissions") from None
    return JsonShape(None, header)


def _messages_shape(s: JsonStream, header: dict, path: Path) -> JsonShape:
    if s.peek() != "[":
        raise UserError(f'{where(path, f"line {s.line()}")}: "messages" is not a list: {TELEGRAM_FIX}')
    for _ in s.elements():
        try:
            return JsonShape("messages", header, s.value())
        except JsonSyntaxError as e:
            name = header.get("name")
            raise syntax_error(
                path, e, f"chat {name!r}, message #1" if isinstance(name, str) else "message #1"
            ) from None
    return JsonShape("messages", header)


def where(path: Path, place: str) -> str:
    """'result.json, line 12' — the start of every error about an input file."""
    return f"{path}, {place}" if place else str(path)


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


def zip_chat(zf: zipfile.ZipFile, path: Path) -> str:
    """The one chat text file inside a zip export."""
    texts = [i.filename for i in zf.infolist() if i.filename.lower().endswith(".txt") and not i.is_dir()]
    if len(texts) != 1:
        raise UserError(
            f"{path}: a zip with {len(texts)} text files: pass a WhatsApp export zip (one chat .txt inside) or the .txt itself"
        )
    return texts[0]


def text_lines(path: Path) -> io.TextIOWrapper:
    """A text export (or the chat inside a WhatsApp zip) opened for reading lines: UTF-8 or UTF-16, BOM dropped."""
    if zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
        return io.TextIOWrapper(zf.open(zip_chat(zf, path)), encoding="utf-8-sig", newline=None)
    with open(path, "rb") as f:
        encoding = text_encoding(f.read(PEEK_BYTES))
    return open(path, encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline=None)
