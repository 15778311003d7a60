"""Telegram Desktop exports: one chat and the whole account, every message shape Telegram writes."""

from __future__ import annotations

import json

import pytest

from trainer.ingest.formats import detect
from twin import registry
from twin.errors import UserError


def test_single_chat_export_needs_me_and_gives_pairs(tg, write, run, all_of):
    path = write(
        "result.json",
        tg.chat(
            [
                tg.msg(1, 0, "Anna", "Привет! Как дела?"),
                tg.msg(2, 30, "Me", "норм, ты как?"),
                tg.msg(3, 60, "Anna", "Тоже норм"),
                tg.msg(4, 90, "Me", "го в кино)))"),
            ]
        ),
    )
    assert detect(path) == "telegram-chat"
    result = run(path, me=("Me",))
    assert all_of(result) == [
        ["user: Привет! Как дела?", "assistant: норм, ты как?"],
        ["user: Привет! Как дела?", "assistant: норм, ты как?", "user: Тоже норм", "assistant: го в кино)))"],
    ]
    assert result.stats["inputs"][0]["format"] == "telegram-chat"


def test_me_by_telegram_id_with_or_without_the_user_prefix(tg, write, run, all_of):
    path = write("result.json", tg.chat([tg.msg(1, 0, "Anna", "hi"), tg.msg(2, 5, "Me", "hey")]))
    assert all_of(run(path, me=("user1",))) == [["user: hi", "assistant: hey"]]
    assert all_of(run(path, me=("1",))) == [["user: hi", "assistant: hey"]]
    assert all_of(run(path, me=("me",))) == [["user: hi", "assistant: hey"]]  # names match without case


def test_whole_account_knows_its_owner(tg, write, run, all_of):
    data = tg.account(
        [tg.chat([tg.msg(1, 0, "Anna", "Как ты?"), tg.msg(2, 10, "Me", "норм")])],
        left=[
            tg.chat(
                [tg.msg(5, 0, "Bob", "ты где"), tg.msg(6, 10, "Me", "щас")],
                name="Old group",
                kind="private_group",
                cid=9,
            )
        ],
    )
    path = write("result.json", data)
    assert detect(path) == "telegram-account"
    result = run(path)
    assert all_of(result) == [["user: Как ты?", "assistant: норм"], ["user: Bob: ты где", "assistant: щас"]]
    table = registry.read("me")["dataset"]
    assert table["me"] == ["user1"]
    assert table["formats"] == ["telegram-account"]
    assert table["train_samples"] == 2 and table["val_samples"] == 0


def test_me_overrides_the_owner(tg, write, run, all_of):
    path = write("result.json", tg.account([tg.chat([tg.msg(1, 0, "Me", "норм?"), tg.msg(2, 10, "Anna", "Да!")])]))
    assert all_of(run(path, me=("Anna",))) == [["user: норм?", "assistant: Да!"]]


def test_text_forms_entities_and_placeholders(tg, write, run, all_of):
    path = write(
        "result.json",
        tg.chat(
            [
                tg.msg(
                    1,
                    0,
                    "Anna",
                    ["глянь ", {"type": "link", "text": "example.org/x"}, " и ", {"type": "bold", "text": "срочно"}],
                ),
                tg.msg(
                    2,
                    10,
                    "Me",
                    [
                        "звони ",
                        {"type": "phone", "text": "+44 20 7946 0958"},
                        " или ",
                        {"type": "email", "text": "me@x.io"},
                    ],
                ),
                tg.msg(
                    3,
                    20,
                    "Anna",
                    [
                        "карта ",
                        {"type": "bank_card", "text": "1234"},
                        {"type": "text_link", "text": "тут", "href": "https://a.b"},
                    ],
                ),
                tg.msg(4, 30, "Me", "ок"),
            ]
        ),
    )
    assert all_of(run(path, me=("Me",))) == [
        ["user: глянь <URL> и срочно", "assistant: звони <PHONE> или <EMAIL>"],
        [
            "user: глянь <URL> и срочно",
            "assistant: звони <PHONE> или <EMAIL>",
            "user: карта <CARD>тут",
            "assistant: ок",
        ],
    ]


def test_text_entities_win_over_a_list_text(tg, write, run, all_of):
    m = tg.msg(1, 0, "Anna", ["старый ", {"type": "bold", "text": "текст"}])
    m["text_entities"] = [{"type": "plain", "text": "из entities"}]
    path = write("result.json", tg.chat([m, tg.msg(2, 5, "Me", "ага")]))
    assert all_of(run(path, me=("Me",))) == [["user: из entities", "assistant: ага"]]


def test_skips_service_media_empty_unsupported_and_counts_them(tg, write, run, all_of):
    path = write(
        "result.json",
        tg.chat(
            [
                tg.service(1, 0),
                tg.msg(2, 10, "Anna", "", photo="photos/1.jpg", width=1, height=1),
                tg.msg(3, 20, "Anna", "", media_type="voice_message", file="voice.ogg"),
                tg.msg(4, 30, "Anna", "   "),
                {"id": 5, "type": "unsupported", "date": "2023-11-14T22:14:00", "date_unixtime": str(1_700_000_040)},
                {"id": 6, "type": "reaction_storm", "date": "2023-11-14T22:14:00"},
                "not an object",
                tg.msg(8, 50, "Anna", "Смотри", photo="photos/2.jpg", future_field=1, another_new=[1]),
                tg.msg(9, 60, "Me", "норм фото"),
            ]
        ),
    )
    result = run(path, me=("Me",))
    assert all_of(result) == [["user: Смотри", "assistant: норм фото"]]
    assert result.stats["skipped"] == {
        "service": 1,
        "media without text": 2,
        "empty": 1,
        "unsupported": 1,
        "unknown type": 1,
        "malformed": 1,
    }
    assert result.stats["unknown_fields"] == {"future_field": 1, "another_new": 1}
    assert result.stats["messages_read"] == 9


def test_sticker_becomes_its_emoji(tg, write, run, all_of):
    path = write(
        "result.json",
        tg.chat(
            [
                tg.msg(1, 0, "Anna", "", media_type="sticker", sticker_emoji="😘", file="s.webp"),
                tg.msg(2, 10, "Me", "", media_type="sticker", sticker_emoji="🔥", file="s.webp"),
                tg.msg(3, 20, "Anna", "", media_type="sticker", file="s.webp"),
            ]
        ),
    )
    result = run(path, me=("Me",))
    assert all_of(result) == [["user: 😘", "assistant: 🔥"]]
    assert result.stats["skipped"] == {"sticker without emoji": 1}


def test_my_forwards_are_not_my_words_but_others_forwards_are_context(tg, write, run, all_of):
    path = write(
        "result.json",
        tg.chat(
            [
                tg.msg(1, 0, "Anna", "Новость дня", forwarded_from="Channel"),
                tg.msg(2, 10, "Me", "мем про котов", forwarded_from="Котики"),
                tg.msg(3, 20, "Me", "это я)))"),
            ]
        ),
    )
    result = run(path, me=("Me",))
    assert all_of(result) == [["user: Новость дня", "assistant: это я)))"]]
    assert result.stats["skipped"] == {"forwarded by me": 1}


def test_groups_name_each_other_sender(tg, write, run, all_of):
    path = write(
        "result.json",
        tg.chat(
            [
                tg.msg(1, 0, "Anna", "Обед?"),
                tg.msg(2, 10, "Bob", "Я за"),
                tg.msg(3, 20, "Me", "го"),
            ],
            name="Team",
            kind="private_supergroup",
        ),
    )
    assert all_of(run(path, me=("Me",))) == [["user: Anna: Обед?", "user: Bob: Я за", "assistant: го"]]


def test_channels_and_bots_only_on_request(tg, write, run, all_of):
    chats = [
        tg.chat([tg.msg(1, 0, "Anna", "hi"), tg.msg(2, 5, "Me", "hey")]),
        tg.chat([tg.msg(3, 0, "Bot", "Choose"), tg.msg(4, 5, "Me", "/start")], name="Bot", kind="bot_chat", cid=5),
        tg.chat(
            [tg.msg(5, 0, "News", "Post"), tg.msg(6, 5, "Me", "my post")], name="News", kind="public_channel", cid=6
        ),
        tg.chat([tg.msg(7, 0, "X", "?"), tg.msg(8, 5, "Me", "!")], name="New", kind="some_future_kind", cid=7),
    ]
    path = write("result.json", tg.account(chats))
    result = run(path)
    assert all_of(result) == [["user: hi", "assistant: hey"]]
    assert result.stats["chats_skipped"] == {"bot_chat": 1, "public_channel": 1, "some_future_kind": 1}
    result = run(path, include_bots=True, include_channels=True)
    assert all_of(result) == [
        ["user: hi", "assistant: hey"],
        ["user: Choose", "assistant: /start"],
        ["user: News: Post", "assistant: my post"],
    ]


def test_date_without_unixtime_and_null_sender(tg, write, run, all_of):
    a = tg.msg(1, 0, "Anna", "утро")
    del a["date_unixtime"]
    ghost = tg.msg(2, 5, "Anna", "я удалён")
    ghost["from"] = None
    ghost["from_id"] = "user77"
    b = tg.msg(3, 10, "Me", "привет")
    del b["date_unixtime"]
    path = write("result.json", tg.chat([a, ghost, b]))
    assert all_of(run(path, me=("Me",))) == [["user: утро", "user: я удалён", "assistant: привет"]]


def test_no_messages_from_me_lists_senders_with_counts(tg, write, run):
    path = write(
        "result.json", tg.chat([tg.msg(1, 0, "Anna", "a"), tg.msg(2, 5, "Anna", "b"), tg.msg(3, 9, "Bob", "c")])
    )
    with pytest.raises(UserError) as e:
        run(path, me=("Zed",))
    assert (
        str(e.value)
        == f"{path}: no messages from Zed: pass --me with one of the senders: Anna (user2) 2, Bob (user3) 1"
    )


def test_single_chat_without_me_asks_who_you_are(tg, write, run):
    path = write("result.json", tg.chat([tg.msg(1, 0, "Anna", "a"), tg.msg(2, 5, "Me", "b")]))
    with pytest.raises(UserError) as e:
        run(path)
    assert str(e.value) == (
        f"{path}: which sender are you? pass --me with your name or Telegram id; senders: Anna (user2) 1, Me (user1) 1"
    )


def test_ambiguous_name_lists_both_senders(tg, write, run):
    a = tg.msg(1, 0, "Anna", "hi")
    b = tg.msg(2, 5, "Alex", "hey", from_id="user10")
    c = tg.msg(3, 9, "Alex", "yo", from_id="user11")
    d = tg.msg(4, 12, "Alex", "yo2", from_id="user11")
    path = write("result.json", tg.chat([a, b, c, d], kind="private_group"))
    with pytest.raises(UserError) as e:
        run(path, me=("alex",))
    assert str(e.value) == (
        f"{path}: --me 'alex' matches 2 different senders (Alex (user11) 2, Alex (user10) 1): "
        "pass the id of the right one, e.g. --me user11"
    )


def test_a_folder_means_its_result_json(tg, write, run, all_of, tmp_path):
    folder = tmp_path / "ChatExport_2024-01-01"
    folder.mkdir()
    (folder / "result.json").write_text(
        json.dumps(tg.chat([tg.msg(1, 0, "Anna", "a"), tg.msg(2, 5, "Me", "b")])), encoding="utf-8"
    )
    assert all_of(run(folder, me=("Me",))) == [["user: a", "assistant: b"]]


def test_minified_export_with_bom_reads_the_same(tg, write, run, all_of):
    data = tg.chat([tg.msg(1, 0, "Anna", "a"), tg.msg(2, 5, "Me", "b")])
    path = write("result.json", "\ufeff" + json.dumps(data, ensure_ascii=True, separators=(",", ":")))
    assert all_of(run(path, me=("Me",))) == [["user: a", "assistant: b"]]


def test_absurd_timestamps_are_malformed_not_fatal(tg, write, run, all_of):
    huge = tg.msg(1, 0, "Anna", "из будущего")
    huge["date_unixtime"] = "9" * 400
    path = write("result.json", tg.chat([huge, tg.msg(2, 5, "Anna", "hi"), tg.msg(3, 9, "Me", "hey")]))
    result = run(path, me=("Me",))
    assert all_of(result) == [["user: hi", "assistant: hey"]]
    assert result.stats["skipped"] == {"malformed": 1}
