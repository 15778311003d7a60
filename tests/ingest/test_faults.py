"""Ingest under hostile inputs (issue 16): huge context turns, invisible marks in names, UTF-16, empty accounts."""

from __future__ import annotations

import json

import pytest

from trainer.ingest.summary import summary_table
from twin.errors import UserError

HUGE = 1_000_000  # one message of a million characters (the issue saw 50 MB)


def test_a_huge_context_turn_is_cut_and_counted(tg, write, run) -> None:
    """Case 1: one enormous message of the other person sits in the contexts of many replies, cut each time."""
    messages = [tg.msg(1, 0, "Anna", "word " * (HUGE // 5))]
    messages += [tg.msg(2 + i, 10 + i * 400, "Me" if i % 2 == 0 else "Anna", f"line {i}") for i in range(16)]
    result = run(write("result.json", tg.chat(messages)), me=("Me",), context=8, max_context_chars=500)
    size = result.train.stat().st_size + result.val.stat().st_size
    assert size < 40_000, size  # without the cap: about 8 MB (the message in 8 contexts)
    assert result.stats["context_cut"] == 1  # counted once per turn, not once per sample it appears in
    for line in result.train.read_text(encoding="utf-8").splitlines():
        for m in json.loads(line)["messages"][:-1]:
            assert len(m["content"]) <= 500
    rows = {str(row) for row in summary_table("me", result.stats).columns[0]._cells}
    assert "context turns cut" in rows


def test_context_cap_is_validated(tg, write, run) -> None:
    with pytest.raises(UserError, match="--max-context-chars must be 1 or more"):
        run(write("result.json", tg.chat([tg.msg(1, 0, "Anna", "hi")])), me=("Me",), max_context_chars=0)


def test_direction_marks_in_whatsapp_names(write, run) -> None:
    """Case 8: WhatsApp wraps names in invisible marks; `--me` typed plainly matches, listings show them plainly."""
    rlm, lre, pdf = "\u200f", "\u202a", "\u202c"
    text = (
        f"01/02/2024, 10:00 - {rlm}أحمد علي: مرحبا\n"
        f"01/02/2024, 10:01 - {lre}+7 916 000-00-00{pdf}: привет\n"
        f"01/02/2024, 10:02 - {rlm}أحمد علي: كيف حالك\n"
        f"01/02/2024, 10:03 - {lre}+7 916 000-00-00{pdf}: норм\n"
    )
    path = write("WhatsApp Chat with Ahmed.txt", text)
    result = run(path, me=("أحمد علي",))
    assert result.train_samples == 1
    with pytest.raises(UserError) as e:
        run(path, me=("nobody",))
    assert "أحمد علي 2" in str(e.value) and rlm not in str(e.value) and lre not in str(e.value)


def test_utf16_whatsapp_is_read(write, run) -> None:
    """Case 8: Windows tools save the chat as UTF-16 (with or without BOM): read it like UTF-8."""
    text = (
        "31/12/2023, 23:51 - Anna: С наступающим!\n31/12/2023, 23:52 - Дима: спасибо\n"
        "31/12/2023, 23:53 - Anna: Что делаешь?\n31/12/2023, 23:54 - Дима: сплю\n"
    )
    for name, data in (("bom.txt", text.encode("utf-16")), ("le.txt", text.encode("utf-16-le"))):
        result = run(write(name, data), me=("Дима",), name=name.split(".")[0])
        assert result.train_samples == 2


def test_utf16_that_is_no_whatsapp_says_so(write, run) -> None:
    with pytest.raises(UserError, match="UTF-16 text that is not a WhatsApp export: save it as UTF-8"):
        run(write("x.json", '{"messages": []}'.encode("utf-16")), me=("Me",))


def test_account_without_dates_names_the_problem(tg, write, run) -> None:
    """Case 8: a whole-account export whose messages have no date says so, not 'senders: nobody'."""
    msgs = [tg.msg(1, 0, "Anna", "hi"), tg.msg(2, 5, "Me", "yo")]
    for m in msgs:
        del m["date"], m["date_unixtime"]
    with pytest.raises(UserError) as e:
        run(write("result.json", tg.account([tg.chat(msgs)])))
    message = str(e.value)
    assert "nobody" not in message
    assert "2 malformed" in message and "needs a date" in message


def test_account_with_chats_of_the_wrong_type_names_the_problem(tg, write, run) -> None:
    data = tg.account([])
    data["chats"] = [tg.chat([tg.msg(1, 0, "Anna", "hi")])]  # a list where Telegram writes {"list": [...]}
    with pytest.raises(UserError) as e:
        run(write("result.json", data))
    assert "nobody" not in str(e.value)
    assert '"chats" is not an object with a "list"' in str(e.value)
