"""WhatsApp's "Export chat" text files, from Android and iOS phones in any locale we could find.

    Android  31/12/2020, 23:59 - Anna: text        12/31/20, 11:59 PM - Anna: text
    iOS      [31.12.20, 23:59:59] Anna: text     [12/31/20, 11:59:59 PM] Anna: text

Lines without a header continue the message above. Day and month order is
decided from the whole file (a first field over 12 means day first).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from trainer.ingest.formats.base import Format, Peek, text_lines, where
from trainer.ingest.messages import Chat, Message, Tally
from trainer.ingest.who import normalize_name
from twin.errors import UserError

if TYPE_CHECKING:
    from trainer.ingest.reading import Reading

_DATE = r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}"
_TIME = r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?"
_AMPM = r"[AaPp]\.?\s?[Mm]\.?"
HEADER = re.compile(
    r"^[\u200e\u200f\ufeff]*(?:"
    rf"\[(?P<d1>{_DATE}),?\s(?P<t1>{_TIME})(?:\s?(?P<ap1>{_AMPM}))?\]\s"
    rf"|(?P<d2>{_DATE}),?\s(?P<t2>{_TIME})(?:\s?(?P<ap2>{_AMPM}))?\s[-–]\s"
    r")(?P<rest>.*)$"
)
# A sender never holds a quote: `Anna changed the subject to "a: b"` is a system line.
_SENDER = re.compile(r'^(?P<sender>[^:"\u200e\n]{1,80}?): (?P<text>.*)$', re.S)
_NUMS = re.compile(r"\d+")
_MEDIA = re.compile(
    r"^(?:<Media omitted>|<Без медиафайлов>|<Медиафайлы отсутствуют>|<attached: .*>|null"
    r"|(?:image|video|audio|sticker|GIF|document|Contact card|video note) omitted"
    r"|(?:изображение|видео|аудио|стикер|GIF|документ|карточка контакта) отсутствует"
    r"|.+ \(file attached\))$",
    re.S | re.I,
)
_DELETED = re.compile(
    r"^(?:This message was deleted|You deleted this message|Данное сообщение удалено|Вы удалили данное сообщение"
    r"|Это сообщение удалено|Waiting for this message\. This may take a while)\.?$",
    re.I,
)
_EDITED = re.compile(r"\s*<(?:This message was edited|Сообщение изменено|Сообщение было изменено)>$", re.I)


def is_header(line: str) -> bool:
    """Whether a line starts a WhatsApp message (used to detect the format)."""
    return HEADER.match(line) is not None


@dataclass
class Layout:
    """What a first pass over the file tells: the date order and who wrote how much."""

    order: str = "dmy"  # dmy, mdy or ymd
    senders: Counter = field(default_factory=Counter)


class WhatsAppError(Exception):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


def survey(lines: TextIO) -> Layout:
    """First pass: day/month order and the senders with their message counts."""
    layout = Layout()
    first_over_12 = second_over_12 = year_first = twelve_hour = slashes = False
    for raw in lines:
        m = HEADER.match(raw.rstrip("\r\n"))
        if m is None:
            continue
        date = m["d1"] or m["d2"]
        a, b, *_ = (int(x) for x in _NUMS.findall(date))
        year_first |= len(_NUMS.findall(date)[0]) == 4
        first_over_12 |= a > 12
        second_over_12 |= b > 12
        twelve_hour |= bool(m["ap1"] or m["ap2"])
        slashes |= "/" in date
        sm = _SENDER.match(m["rest"])
        if sm is not None and not sm["text"].startswith("\u200e"):
            layout.senders[normalize_name(sm["sender"])] += 1
    if year_first:
        layout.order = "ymd"
    elif first_over_12:
        layout.order = "dmy"
    elif second_over_12 or (slashes and twelve_hour):
        layout.order = "mdy"
    return layout


def chat_name(path: Path) -> str:
    """'WhatsApp Chat with Anna.txt' → 'Anna' (the file is all WhatsApp tells of the chat)."""
    stem = path.stem
    for prefix in ("WhatsApp Chat with ", "WhatsApp Chat - ", "Чат WhatsApp с ", "WhatsApp-Chat mit "):
        if stem.startswith(prefix):
            return stem[len(prefix) :] or stem
    return stem


def read_whatsapp(lines: Iterable[str], layout: Layout, name: str, tally: Tally) -> Iterator[Message]:
    """Second pass: the messages, multi-line ones joined, media and system lines counted and skipped."""
    chat = Chat(name=name, group=len(layout.senders) > 2, kind="whatsapp")
    current: list | None = None  # [line number, time, sender, text lines]
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        m = HEADER.match(line)
        if m is None:
            if current is not None:
                current[3].append(line)
            continue
        if current is not None:
            msg = _finish(current, chat, tally)
            if msg is not None:
                yield msg
        tally.read += 1
        time = _time(m, layout.order, number)
        sm = _SENDER.match(m["rest"])
        if sm is None:
            tally.skipped["service"] += 1
            current = None
            continue
        current = [number, time, normalize_name(sm["sender"]), [sm["text"]]]
    if current is not None:
        msg = _finish(current, chat, tally)
        if msg is not None:
            yield msg


def _finish(current: list, chat: Chat, tally: Tally) -> Message | None:
    _, time, sender, parts = current
    text = "\n".join(parts)
    if text.startswith("\u200e"):  # iOS marks what WhatsApp wrote itself (attachments, system notes)
        bare = text.strip("\u200e \n")
        tally.skipped[
            "media without text" if _MEDIA.match(bare) else "deleted" if _DELETED.match(bare) else "service"
        ] += 1
        return None
    text = _EDITED.sub("", text.replace("\u200e", ""))
    bare = text.strip()
    if not bare:
        tally.skipped["empty"] += 1
        return None
    if _MEDIA.match(bare):
        tally.skipped["media without text"] += 1
        return None
    if _DELETED.match(bare):
        tally.skipped["deleted"] += 1
        return None
    return Message(chat=chat, id=None, time=time, sender_id=sender, sender=sender, text=text)


def _time(m: re.Match, order: str, number: int) -> float:
    date, clock, ampm = (m["d1"], m["t1"], m["ap1"]) if m["d1"] else (m["d2"], m["t2"], m["ap2"])
    a, b, c = (int(x) for x in _NUMS.findall(date))
    if order == "ymd":
        year, month, day = a, b, c
    elif order == "mdy":
        month, day, year = a, b, c
    else:
        day, month, year = a, b, c
    if year < 100:
        year += 2000
    hms = [int(x) for x in _NUMS.findall(clock)]
    hour, minute = hms[0], hms[1]
    second = hms[2] if len(hms) > 2 else 0
    if ampm:
        if not 1 <= hour <= 12:
            raise WhatsAppError(number, f"hour {hour} with AM/PM")
        hour = hour % 12 + (12 if ampm[0] in "Pp" else 0)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()
    except ValueError as e:
        raise WhatsAppError(number, f"the date {date} {clock} is not valid ({e})") from None


def detect(peek: Peek) -> str | None:
    """A first line that is a message header (of the .txt, or of the chat inside an iPhone's zip)."""
    return "whatsapp" if is_header(peek.first_line) else None


def read(path: Path, kind: str, r: Reading) -> int:
    with text_lines(path) as f:
        layout = survey(f)
    with text_lines(path) as f:
        try:
            r.feed(read_whatsapp(r.lines(f), layout, chat_name(path), r.tally))
        except WhatsAppError as e:
            raise UserError(
                f"{where(path, f'line {e.line}')}: {e.problem}: fix that line or export the chat again"
            ) from None
    return r.my_messages("export the chat again from WhatsApp")


# First: a header line is cheap to test, and UTF-16 text is only ever a WhatsApp chat.
FORMAT = Format(("whatsapp",), detect, read, order=10, by_sender=True)
