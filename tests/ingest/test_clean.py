"""Cleaning: placeholders for links and personal data, emoji, the length cap, duplicates."""

from __future__ import annotations

import pytest

from trainer.ingest.clean import Cleaner
from trainer.style import emoji


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("глянь https://youtu.be/abc?t=1).", "глянь <URL>)."),
        ("сайт www.example.com, заходи", "сайт <URL>, заходи"),
        ("vk.com/durov и t.me/channel", "<URL> и <URL>"),
        ("see vk.com.", "see <URL>."),
        ("http://en.wikipedia.org/wiki/Foo_(bar) ok", "<URL> ok"),
        ("пиши ivan.petrov+chat@mail.ru!", "пиши <EMAIL>!"),
        ("звони +7 916 123-45-67 вечером", "звони <PHONE> вечером"),
        ("8 (916) 123-45-67", "<PHONE>"),
        ("89161234567", "<PHONE>"),
        ("(555) 123-4567", "<PHONE>"),
        ("домашний 123-45-67", "домашний <PHONE>"),
        ("+44 20 7946 0958", "<PHONE>"),
        ("карта 4111 1111 1111 1111", "карта <CARD>"),
        ("4111-1111-1111-1111", "<CARD>"),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN <IBAN>"),
        ("GB82WEST12345698765432", "<IBAN>"),
        ("сервер 192.168.1.10:8080", "сервер <IP>:8080"),
        ("ip fe80::1ff:fe23:4567:890a ok", "ip <IP> ok"),
        ("2001:db8:85a3:0:0:8a2e:370:7334", "<IP>"),
    ],
)
def test_placeholders(text, cleaned):
    assert Cleaner()(text) == cleaned


@pytest.mark.parametrize(
    "text",
    [
        "встреча 12.05.2023 в 10:30",  # a date and a time
        "в 2021 2022 2023 годах",  # years
        "1 000 000 рублей",  # a sum
        "заказ 4111111111111112",  # one block failing Luhn (a grouped 4-4-4-4 one is a mistyped card: replaced)
        "DE89 3704 0044 0532 0130 01",  # fails the IBAN check digits
        "версия 3.11.7",
        "счёт 2:1, время 12:30:45",
        "т.е. node.js норм",
        "code 1234567",  # seven digits without the dashes of a local number
        "999.999.999.999",  # not an address
    ],
)
def test_ordinary_text_stays(text):
    assert Cleaner()(text) == text


def test_each_kind_can_be_kept():
    text = "https://a.io x@y.com +7 916 123-45-67 4111 1111 1111 1111 GB82WEST12345698765432 10.0.0.1"
    assert Cleaner()(text) == "<URL> <EMAIL> <PHONE> <CARD> <IBAN> <IP>"
    assert (
        Cleaner(frozenset({"email", "phone", "card", "iban", "ip"}))(text)
        == "https://a.io <EMAIL> <PHONE> <CARD> <IBAN> <IP>"
    )
    assert (
        Cleaner(frozenset({"url", "phone", "card", "iban", "ip"}))(text) == "<URL> x@y.com <PHONE> <CARD> <IBAN> <IP>"
    )
    assert (
        Cleaner(frozenset({"url", "email", "card", "iban", "ip"}))(text)
        == "<URL> <EMAIL> +7 916 123-45-67 <CARD> <IBAN> <IP>"
    )
    assert (
        Cleaner(frozenset({"url", "email", "phone", "iban", "ip"}))(text)
        == "<URL> <EMAIL> <PHONE> 4111 1111 1111 1111 <IBAN> <IP>"
    )
    assert (
        Cleaner(frozenset({"url", "email", "phone", "card", "ip"}))(text)
        == "<URL> <EMAIL> <PHONE> <CARD> GB82WEST12345698765432 <IP>"
    )
    assert (
        Cleaner(frozenset({"url", "email", "phone", "card", "iban"}))(text)
        == "<URL> <EMAIL> <PHONE> <CARD> <IBAN> 10.0.0.1"
    )
    assert Cleaner(frozenset())(text) == text


def test_digits_inside_a_kept_url_are_not_a_phone():
    assert Cleaner(frozenset({"phone"}))("https://site.ru/order/89161234567") == "https://site.ru/order/89161234567"


def test_strip_emoji_keeps_the_words():
    strip = Cleaner(frozenset(), strip_emoji=True)
    assert strip("норм 🔥🔥\nго 👍🏽 ок 🇷🇺 👨‍👩‍👧 ❤️") == "норм\nго ок"
    assert strip("🔥") == ""
    assert strip("скобки остаются)))") == "скобки остаются)))"


def test_emoji_are_counted_as_people_see_them():
    assert emoji("ok 👍🏽🔥 🇷🇺 👨‍👩‍👧 ❤️ )))") == ["👍🏽", "🔥", "🇷🇺", "👨\u200d👩\u200d👧", "❤️"]
    assert emoji("просто текст") == []


def chat(tg, write, rows):
    return write("result.json", tg.chat([tg.msg(i + 1, 10 * i, who, text) for i, (who, text) in enumerate(rows)]))


def test_cleaning_reaches_context_and_reply(tg, write, run, all_of):
    path = chat(tg, write, [("Anna", "мой номер +7 916 123-45-67"), ("Me", "ок, а мой ivan@mail.ru")])
    assert all_of(run(path, me=("Me",))) == [["user: мой номер <PHONE>", "assistant: ок, а мой <EMAIL>"]]
    assert all_of(run(path, me=("Me",), keep=frozenset({"phone", "email"}))) == [
        ["user: мой номер +7 916 123-45-67", "assistant: ок, а мой ivan@mail.ru"]
    ]


def test_strip_emoji_drops_replies_that_were_only_emoji(tg, write, run, all_of):
    path = chat(tg, write, [("Anna", "Пицца? 🍕"), ("Me", "🔥🔥"), ("Anna", "Ок"), ("Me", "го 👌")])
    assert all_of(run(path, me=("Me",))) == [
        ["user: Пицца? 🍕", "assistant: 🔥🔥"],
        ["user: Пицца? 🍕", "assistant: 🔥🔥", "user: Ок", "assistant: го 👌"],
    ]
    result = run(path, me=("Me",), strip_emoji=True)
    assert all_of(result) == [["user: Пицца?", "user: Ок", "assistant: го"]]
    assert result.stats["dropped"] == {"empty after cleaning": 1}


def test_long_replies_are_dropped(tg, write, run, all_of):
    path = chat(tg, write, [("Anna", "Расскажи"), ("Me", "x" * 30), ("Anna", "Коротко?"), ("Me", "ок")])
    result = run(path, me=("Me",), max_reply_chars=20)
    assert all_of(result) == [["user: Расскажи", "assistant: " + "x" * 30, "user: Коротко?", "assistant: ок"]]
    assert result.stats["dropped"] == {"reply too long": 1}
    assert len(all_of(run(path, me=("Me",), max_reply_chars=0))) == 2


def test_exact_duplicates_are_dropped(tg, write, run, all_of):
    rows = []
    for day in range(3):
        t = day * 86_400
        rows += [tg.msg(3 * day + 1, t, "Anna", "Как дела?"), tg.msg(3 * day + 2, t + 10, "Me", "норм")]
    rows.append(tg.msg(10, 4 * 86_400, "Anna", "Как дела?"))
    rows.append(tg.msg(11, 4 * 86_400 + 10, "Me", "отлично"))
    path = write("result.json", tg.chat(rows))
    result = run(path, me=("Me",))
    assert all_of(result) == [["user: Как дела?", "assistant: норм"], ["user: Как дела?", "assistant: отлично"]]
    assert result.stats["dropped"] == {"duplicate": 2}
    assert len(all_of(run(path, me=("Me",), dedupe=False))) == 4
