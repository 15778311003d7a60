"""The streaming JSON reader: the same values whatever the chunk size, clear errors at the right line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from trainer.ingest.formats.jsonstream import JsonStream, JsonSyntaxError
from trainer.ingest.formats.telegram import TelegramExport
from trainer.ingest.messages import Tally
from trainer.ingest.progress import MIN_BYTES, ReadProgress

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "telegram_sample" / "result.json"


def messages(raw: bytes, chunk: int) -> list[tuple]:
    export = TelegramExport(JsonStream(io.BytesIO(raw), chunk=chunk), Tally(), lambda kind, text: f"<{kind}>")
    return [(m.chat.name, m.id, m.time, m.sender_id, m.text, m.reply_to, m.forwarded) for m in export.messages()]


def test_chunk_boundaries_do_not_change_anything():
    raw = SAMPLE.read_bytes()
    whole = messages(raw, 1 << 20)
    assert len(whole) > 400
    for chunk in (997, 4096):
        assert messages(raw, chunk) == whole


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 13])
def test_tiny_chunks_split_numbers_strings_and_utf8(chunk, tg):
    data = tg.account(
        [
            tg.chat(
                [
                    tg.msg(123456789, 0, "Anna", 'Привет 🔥 \\"quoted\\" \u00e9'),
                    tg.msg(
                        123456790,
                        17,
                        "Me",
                        ["ссылка ", {"type": "link", "text": "a.io"}],
                        reply_to_message_id=123456789,
                    ),
                    tg.msg(123456791, 35, "Me", "", media_type="sticker", sticker_emoji="👌"),
                ]
            )
        ]
    )
    raw = json.dumps(data, ensure_ascii=False, indent=1).encode()
    assert messages(raw, chunk) == messages(raw, 1 << 20)
    assert [m[4] for m in messages(raw, chunk)] == ['Привет 🔥 \\"quoted\\" é', "ссылка <url>", "👌"]


def test_values_walk_and_errors_name_the_line():
    s = JsonStream(io.BytesIO(b'{"a": [1, 2,\n 3], "b": {"c": true}}'), chunk=4)
    got = {}
    for key in s.members():
        got[key] = list(s.values()) if key == "a" else s.value()
    s.end()
    assert got == {"a": [1, 2, 3], "b": {"c": True}}
    bad = JsonStream(io.BytesIO(b"[1,\n2,\n3 4]"), chunk=2)
    with pytest.raises(JsonSyntaxError) as e:
        list(bad.values())
    assert e.value.line == 3 and not e.value.truncated
    cut = JsonStream(io.BytesIO(b'[1,\n{"a": "unfinished'), chunk=2)
    with pytest.raises(JsonSyntaxError) as e:
        list(cut.values())
    assert e.value.truncated


def test_progress_bar_only_for_large_inputs():
    out = io.StringIO()
    with ReadProgress(MIN_BYTES - 1, console=Console(file=out, force_terminal=True)) as small:
        small.advance(100)
    assert out.getvalue() == ""
    out = io.StringIO()
    with ReadProgress(MIN_BYTES, console=Console(file=out, force_terminal=True, width=100)) as big:
        big.describe("result.json")
        big.advance(MIN_BYTES // 2)
    assert "result.json" in out.getvalue()
