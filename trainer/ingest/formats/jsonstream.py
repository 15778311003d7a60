"""A pull parser over a JSON file of any size: structure by hand, every value by the stdlib's C scanner.

Telegram's whole-account export is one JSON document that can be larger than RAM.
Only `{ [ , : ] }` and keys are read here; each value (a message, a chat's name)
is decoded by `json.JSONDecoder.raw_decode`, so memory holds one value at a time.
ijson was measured for this and not used: its item builder cannot report the
chat a message belongs to without a second full parse (half the speed), and its
event stream runs one Python step per token (about 18 MB/s before any work).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

_WS = re.compile(r"[ \t\n\r]*")
_PARTIAL = re.compile(r'-?[0-9.eE+-]*|"(?:[^"\\]|\\.)*\\(?:u[0-9a-fA-F]{0,3})?')
_SEP = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
_CHUNK = 1 << 20
# raw_decode reports an incomplete value at (or just before) the end of the buffer,
# except an unterminated string, which it reports where the string starts.
_NEAR_END = 8


def _cut_short(tail: str) -> bool:
    """Whether the text left where decoding failed is the start of a value the file never finished."""
    if not tail:
        return True
    if len(tail) <= 5 and any(word.startswith(tail) for word in ("true", "false", "null")):
        return True
    return _PARTIAL.fullmatch(tail) is not None


class JsonSyntaxError(Exception):
    """The file is not valid JSON at `line`; `truncated` when it simply ends too early."""

    def __init__(self, problem: str, line: int, truncated: bool) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.truncated = truncated


class JsonStream:
    """Reads one JSON document from a binary file, front to back, never holding more than one value."""

    def __init__(self, f: BinaryIO, on_read: Callable[[int], None] | None = None, chunk: int = _CHUNK) -> None:
        self._f = f
        self._on_read = on_read
        self._chunk = chunk
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._raw_decode = json.JSONDecoder().raw_decode
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._lines_dropped = 0  # newlines in text already discarded from the buffer
        self._first = True

    # -- reading -----------------------------------------------------------------------
    def _fill(self, want: int = 0) -> None:
        """Append at least one more chunk (or `want` characters' worth) to the buffer."""
        if self.eof:
            return
        if self.pos > self._chunk:
            self._lines_dropped += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos :]
            self.pos = 0
        data = self._f.read(max(self._chunk, want))
        if self._on_read is not None:
            self._on_read(len(data))
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as e:
            raise self.error(f"not UTF-8 text ({e.reason})") from None
        if self._first and text:
            self._first = False
            text = text.removeprefix("\ufeff")
        if not data:
            self.eof = True
        self.buf += text

    def line(self) -> int:
        """1-based line of the current position (for error messages)."""
        return self._lines_dropped + self.buf.count("\n", 0, self.pos) + 1

    def error(self, problem: str, truncated: bool = False) -> JsonSyntaxError:
        return JsonSyntaxError(problem, self.line(), truncated)

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the file), not consumed."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]  # `[ \t\n\r]*` matches anywhere
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self._fill()

    def expect(self, ch: str) -> None:
        got = self.peek()
        if got != ch:
            if not got:
                raise self.error(f"the file ends where {ch!r} was expected", truncated=True)
            raise self.error(f"expected {ch!r} but found {got!r}")
        self.pos += 1

    def value(self) -> Any:
        """Decode the next value whole (an object, a list, a string, a number, true/false/null)."""
        self.peek()
        while True:
            try:
                obj, end = self._raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                unterminated = e.msg.startswith("Unterminated string")
                if not self.eof and (unterminated or e.pos >= len(self.buf) - _NEAR_END):
                    self._fill(len(self.buf) - self.pos)
                    continue
                if unterminated or _cut_short(self.buf[e.pos :].rstrip()):
                    self.pos = len(self.buf)
                    raise self.error("the file ends in the middle of a value", truncated=True) from None
                self.pos = e.pos
                raise self.error(e.msg) from None
            except RecursionError:
                raise self.error("values nested too deeply") from None
            # A number or literal that touches the end of the buffer may continue in the next chunk.
            if end >= len(self.buf) and not self.eof:
                self._fill(len(self.buf) - self.pos)
                continue
            self.pos = end
            return obj

    def skip(self) -> None:
        """Consume the next value without keeping it whole: a container's members are decoded one by one."""
        ch = self.peek()
        if ch == "{":
            for _ in self.members():
                self.value()
        elif ch == "[":
            for _ in self.elements():
                self.value()
        else:
            self.value()

    # -- structure -----------------------------------------------------------------------
    def members(self) -> Iterator[str]:
        """Walk an object: yields each key; the caller must consume its value before the next step."""
        self.expect("{")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                if not self.peek():
                    raise self.error("the file ends inside an object", truncated=True)
                raise self.error(f"expected a key in quotes but found {self.peek()!r}")
            key = self.value()
            self.expect(":")
            yield key
            if self._closed_after_item("}", "an object"):
                return

    def elements(self) -> Iterator[int]:
        """Walk an array: yields each index; the caller must consume the element before the next step."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        index = 0
        while True:
            yield index
            index += 1
            if self._closed_after_item("]", "a list"):
                return

    def values(self) -> Iterator[Any]:
        """Walk an array, yielding each element decoded: the hot loop over a chat's messages."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        decode = self._raw_decode
        sep = _SEP.match
        while True:
            buf, pos = self.buf, self.pos
            try:
                obj, end = decode(buf, pos)
            except (json.JSONDecodeError, RecursionError):
                end = len(buf)
            if end >= len(buf):
                # Incomplete here (or invalid): the careful path refills, retries and reports.
                obj = self.value()
                buf, end = self.buf, self.pos
            m = sep(buf, end)
            if m is not None and m.end() < len(buf):
                self.pos = m.end()
                yield obj
                if m.group(1) == "]":
                    return
                continue
            self.pos = end
            yield obj
            if self._closed_after_item("]", "a list"):
                return

    def _closed_after_item(self, close: str, inside: str) -> bool:
        """Step over the ',' after an item (False) or the closing bracket (True); anything else is an error."""
        ch = self.peek()
        if ch == ",":
            self.pos += 1
            return False
        if ch == close:
            self.pos += 1
            return True
        if not ch:
            raise self.error(f"the file ends inside {inside}", truncated=True)
        raise self.error(f"expected ',' or '{close}' but found {ch!r}")

    def end(self) -> None:
        """Require that nothing but blanks follows the document."""
        ch = self.peek()
        if ch:
            raise self.error(f"unexpected {ch!r} after the end of the JSON document")
