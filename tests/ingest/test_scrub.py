"""What the scrubber replaces beyond links and numbers (issue 16, case 9), and what it must leave alone."""

from __future__ import annotations

import pytest

from trainer.ingest.clean import KINDS, Cleaner


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("мой ник @ivan_petrov88, пиши", "мой ник <USERNAME>, пиши"),
        ("ask @JohnSmith_", "ask <USERNAME>"),
        ("ivan.petrov at mail dot ru", "<EMAIL>"),
        ("john.smith [at] gmail [dot] com!", "<EMAIL>!"),
        ("пиши ivan (собака) mail (точка) ru", "пиши <EMAIL>"),
        ("john (at) example.org", "<EMAIL>"),
        ("счёт 40817810099910004312", "счёт <ACCOUNT>"),
        ("р/с 40702 810 3 8000 0012345", "р/с <ACCOUNT>"),
        ("карта 4111 1111 1111 1112 (опечатка)", "карта <CARD> (опечатка)"),
        ("паспорт 45 08 123456", "паспорт <PASSPORT>"),
        ("серия и номер 4508 123456", "серия и номер <PASSPORT>"),
        ("passport no. 123456789", "passport no. <PASSPORT>"),
        ("Passport: AB1234567", "Passport: <PASSPORT>"),
        ("СНИЛС 112-233-445 95", "СНИЛС <ID>"),
        ("ИНН 500100732259", "ИНН <ID>"),
        ("ИНН: 7707083893", "ИНН: <ID>"),
        ("SSN 078-05-1120", "SSN <ID>"),
        ("я живу ул. Ленина, д. 5, кв. 12 заходи", "я живу <ADDRESS> заходи"),
        ("проспект Мира дом 10 корп. 2", "<ADDRESS>"),
        ("at 221B Baker Street, Apt 3 tonight", "at <ADDRESS> tonight"),
        ("I live at 1600 Pennsylvania Avenue now", "I live at <ADDRESS> now"),
        ("д.р. 12.05.1990", "д.р. <BIRTHDATE>"),
        ("родилась 3 мая 1990 года", "родилась <BIRTHDATE> года"),
        ("date of birth: 05/12/1990", "date of birth: <BIRTHDATE>"),
        ("I was born on 12/05/1990", "I was born on <BIRTHDATE>"),
    ],
)
def test_new_kinds_are_replaced(text: str, cleaned: str) -> None:
    assert Cleaner()(text) == cleaned


@pytest.mark.parametrize(
    "text",
    [
        "стоит 1 500 руб, скидка 15%",  # prices
        "I paid $1,299.99, order 98765432",
        "встречаемся в 12:30 или в 18.45",  # times
        "12.05.2023 и 2023-05-12, 5 мая 2023",  # dates that are no birthday
        "в 2021 2022 2023 2024 годах",  # years that look like card groups
        "заказ 4111111111111112",  # one block failing Luhn stays a number
        "код 123456, трек 1234567890123",
        "look at me, meet at 5 pm at home",  # "at" without a domain after it
        "дом 5 на улице, ул. Ленина красивая",  # street words without a house number
        "ping @me",  # three letters: too short for a Telegram username
        "перевёл 2 000 000 000 рублей",
        "version 3.11.7, port 8080",
    ],
)
def test_ordinary_text_stays(text: str) -> None:
    assert Cleaner()(text) == text


def test_new_kinds_can_be_kept() -> None:
    text = "@ivan_petrov88 40817810099910004312 ИНН 500100732259"
    assert Cleaner()(text) == "<USERNAME> <ACCOUNT> ИНН <ID>"
    keep = frozenset(KINDS) - {"username", "account", "id"}
    assert Cleaner(keep)(text) == text


def test_passport_snils_inn_are_not_phones() -> None:
    """The issue found them replaced but labelled <PHONE>: the label says what was there."""
    c = Cleaner()
    assert c("паспорт 45 08 123456, СНИЛС 112-233-445 95, ИНН 500100732259") == (
        "паспорт <PASSPORT>, СНИЛС <ID>, ИНН <ID>"
    )
    assert c.counts["phone"] == 0 and c.counts["passport"] == 1 and c.counts["id"] == 2


def test_telegram_mentions_are_usernames(tg, write, run) -> None:
    """Telegram marks @mentions as entities: they become <USERNAME> like typed ones."""
    msgs = [
        tg.msg(1, 0, "Anna", ["ask ", {"type": "mention", "text": "@ivan_petrov88"}]),
        tg.msg(2, 5, "Me", "ok"),
    ]
    result = run(write("result.json", tg.chat(msgs)), me=("Me",))
    assert "<USERNAME>" in result.train.read_text(encoding="utf-8")
    assert "ivan_petrov88" not in result.train.read_text(encoding="utf-8")
