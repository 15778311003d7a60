"""WhatsApp "Export chat" text files, as Android and iOS phones write them."""

from __future__ import annotations

import pytest

from trainer.ingest.formats import detect
from twin.errors import UserError

ANDROID_24H = """\
31/12/2023, 23:50 - Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.
31/12/2023, 23:51 - Anna: С наступающим!
31/12/2023, 23:51 - Anna: <Media omitted>
31/12/2023, 23:52 - Дима: спасибо)))
и тебя
31/12/2023, 23:53 - Anna: This message was deleted
31/12/2023, 23:54 - Anna: Что делаешь завтра? <This message was edited>
31/12/2023, 23:55 - Дима: сплю
01/01/2024, 12:00 - Anna: Проснулся?
01/01/2024, 12:01 - Дима: нет
"""

ANDROID_12H_US = (
    "12/31/23, 11:50\u202fPM - Anna: Happy new year!\n"
    "12/31/23, 11:51\u202fPM - Dima: u2 lol\n"
    "1/1/24, 9:05\u202fAM - Anna: Coffee?\n"
    "1/1/24, 9:06\u202fAM - Dima: sure\n"
)

IOS_24H = (
    "[31.12.23, 23:50:01] Anna: \u200eMessages and calls are end-to-end encrypted.\n"
    "[31.12.23, 23:51:10] Anna: Привет\n"
    "\u200e[31.12.23, 23:51:20] Anna: \u200eimage omitted\n"
    "[31.12.23, 23:52:00] Дима: привет)\n"
    "[31.12.23, 23:52:30] Anna: \u200eThis message was deleted.\n"
    "[31.12.23, 23:53:00] Anna: Как дела?\n"
    "это важно\n"
    "\n"
    "очень\n"
    "[31.12.23, 23:54:00] Дима: норм\n"
)

IOS_12H = (
    "[12/31/23, 11:50:01\u202fPM] Anna: Hi\n"
    "[12/31/23, 11:51:10\u202fPM] Dima: \u200e<attached: 00000012-PHOTO-2023-12-31-23-51-10.jpg>\n"
    "[12/31/23, 11:51:40\u202fPM] Dima: hey\n"
)


def test_android_24_hour(write, run, all_of):
    path = write("WhatsApp Chat with Anna.txt", ANDROID_24H)
    assert detect(path) == "whatsapp"
    result = run(path, me=("Дима",))
    assert all_of(result) == [
        ["user: С наступающим!", "assistant: спасибо)))\nи тебя"],
        ["user: С наступающим!", "assistant: спасибо)))\nи тебя", "user: Что делаешь завтра?", "assistant: сплю"],
        ["user: Проснулся?", "assistant: нет"],  # twelve hours later: a new session
    ]
    assert result.stats["skipped"] == {"service": 1, "media without text": 1, "deleted": 1}
    assert result.stats["top_chats"] == [["Anna", 3]]


def test_android_12_hour_us_dates(write, run, all_of):
    path = write("chat.txt", ANDROID_12H_US)
    result = run(path, me=("Dima",))
    assert all_of(result) == [["user: Happy new year!", "assistant: u2 lol"], ["user: Coffee?", "assistant: sure"]]


def test_ios_24_hour_multiline_and_marks(write, run, all_of):
    path = write("_chat.txt", IOS_24H)
    assert detect(path) == "whatsapp"
    result = run(path, me=("Дима",))
    assert all_of(result) == [
        ["user: Привет", "assistant: привет)"],
        ["user: Привет", "assistant: привет)", "user: Как дела?\nэто важно\n\nочень", "assistant: норм"],
    ]
    assert result.stats["skipped"] == {"service": 1, "media without text": 1, "deleted": 1}


def test_ios_12_hour(write, run, all_of):
    path = write("_chat.txt", IOS_12H)
    assert all_of(run(path, me=("Dima",))) == [["user: Hi", "assistant: hey"]]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("03/04/2024, 10:00", "03/04/2024, 10:01"),  # ambiguous alone …
        ("13/04/2024, 10:00", "13/04/2024, 10:01"),  # … a day over 12 settles it
    ],
)
def test_day_first_when_a_day_is_over_12(write, run, first, second):
    text = f"{first} - Anna: a\n{second} - Me: b\n25/12/2024, 10:00 - Anna: c\n25/12/2024, 10:01 - Me: d\n"
    result = run(write("c.txt", text), me=("Me",))
    assert result.stats["samples"]["total"] == 2


def test_month_first_when_the_second_field_is_over_12(write, run, all_of):
    text = "12/25/24, 10:00 - Anna: a\n12/25/24, 10:01 - Me: b\n"
    assert all_of(run(write("c.txt", text), me=("Me",))) == [["user: a", "assistant: b"]]


def test_group_chat_names_the_others(write, run, all_of):
    text = (
        "01/02/2024, 10:00 - Anna: Обед?\n"
        "01/02/2024, 10:01 - Bob: Я за\n"
        "01/02/2024, 10:02 - Me: го\n"
        '01/02/2024, 10:03 - Anna changed the subject from "Work" to "Lunch: today"\n'
    )
    result = run(write("c.txt", text), me=("Me",))
    assert all_of(result) == [["user: Anna: Обед?", "user: Bob: Я за", "assistant: го"]]
    assert result.stats["skipped"] == {"service": 1}


def test_unknown_first_line_is_a_clear_error(write, run):
    path = write("notes.txt", "Dear diary,\n31/12/2023, 23:51 - Anna: hi\n")
    with pytest.raises(UserError) as e:
        run(path, me=("Me",))
    assert str(e.value).startswith(f"{path}, line 1: not a chat export twin knows")


def test_impossible_date_names_the_line(write, run):
    path = write("c.txt", "31/12/2023, 23:51 - Anna: hi\n31/02/2024, 10:00 - Me: b\n")
    with pytest.raises(UserError) as e:
        run(path, me=("Me",))
    assert str(e.value).startswith(f"{path}, line 2: the date 31/02/2024 10:00 is not valid")


def test_no_me_lists_whatsapp_senders(write, run):
    path = write("c.txt", ANDROID_24H)
    with pytest.raises(UserError) as e:
        run(path, me=("Dima",))
    assert str(e.value) == f"{path}: no messages from Dima: pass --me with one of the senders: Anna 3, Дима 3"


def test_an_iphone_zip_is_read_as_its_chat(write, run, all_of, tmp_path):
    import zipfile

    path = tmp_path / "WhatsApp Chat - Anna.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("_chat.txt", IOS_24H)
        zf.writestr("00000012-PHOTO-2023-12-31-23-51-20.jpg", b"\xff\xd8\xff")
    assert detect(path) == "whatsapp"
    assert all_of(run(path, me=("Дима",)))[0] == ["user: Привет", "assistant: привет)"]


@pytest.mark.parametrize("case", ["two chats", "cut"])
def test_a_zip_that_is_not_one_chat_is_a_clear_error(tmp_path, run, case):
    import zipfile

    path = tmp_path / "chats.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("_chat.txt", IOS_24H * 50)
        if case == "two chats":
            zf.writestr("other.txt", IOS_24H)
    if case == "cut":
        path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(UserError) as e:
        run(path, me=("Дима",))
    expected = {"two chats": "a zip with 2 text files", "cut": "a broken or encrypted zip"}[case]
    assert str(e.value).startswith(f"{path}: {expected}")
