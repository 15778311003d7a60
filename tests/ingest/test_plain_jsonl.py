"""The plain {"user", "bot"} format, JSONL pass-through, and telling formats apart by content."""

from __future__ import annotations

import json

import pytest

from trainer.ingest.formats import detect
from twin.errors import UserError


def test_plain_pairs_become_samples(write, run, all_of):
    path = write(
        "dialogs.json",
        {
            "messages": [
                {"user": "Привет!", "bot": "Здравствуй!"},
                {"user": "Как дела?", "bot": "норм, звони +7 916 123-45-67"},
                {"user": "", "bot": "сам с собой"},
                {"user": "Пусто", "bot": ""},
                {"user": "x", "bot": "y", "mood": "happy"},
                ["not", "a", "pair"],
            ]
        },
    )
    assert detect(path) == "plain"
    result = run(path)
    assert all_of(result) == [
        ["user: Привет!", "assistant: Здравствуй!"],
        ["user: Как дела?", "assistant: норм, звони <PHONE>"],
        ["user: x", "assistant: y"],
    ]
    assert result.stats["skipped"] == {"no context": 1, "empty": 1, "malformed": 1}
    assert result.stats["unknown_fields"] == {"mood": 1}


def test_plain_without_any_reply_is_an_error(write, run):
    path = write("d.json", {"messages": [{"user": "a", "bot": ""}]})
    with pytest.raises(UserError) as e:
        run(path)
    assert str(e.value).startswith(f'{path}: no replies of mine: every "bot" is empty or missing')


def test_empty_plain_list_is_plain(write):
    assert detect(write("d.json", {"messages": []})) == "plain"


def test_jsonl_passes_through(write, run, all_of):
    lines = [
        {
            "messages": [
                {"role": "system", "content": "Ты Дима"},
                {"role": "user", "content": "Привет"},
                {"role": "assistant", "content": "ку"},
            ]
        },
        {"messages": [{"role": "user", "content": "мой ip 10.1.2.3"}, {"role": "assistant", "content": "ок"}]},
        {"messages": [{"role": "user", "content": "Привет"}, {"role": "assistant", "content": "ку"}], "meta": 1},
    ]
    path = write("data.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n")
    assert detect(path) == "jsonl"
    result = run(path)
    assert all_of(result) == [
        ["system: Ты Дима", "user: Привет", "assistant: ку"],
        ["user: мой ip <IP>", "assistant: ок"],
        ["user: Привет", "assistant: ку"],
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not JSON"),
        ('{"text": "hi"}', 'not a {"messages": [...]} sample'),
        ('{"messages": [{"role": "robot", "content": "x"}]}', 'each message needs "role"'),
        (
            '{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}',
            "the last message must be",
        ),
    ],
)
def test_bad_jsonl_line_names_the_line(write, run, line, problem):
    good = '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}'
    path = write("data.jsonl", f"{good}\n{good}\n{line}\n")
    with pytest.raises(UserError) as e:
        run(path)
    assert str(e.value).startswith(f"{path}, line 3: {problem}")


def test_role_content_in_one_document_is_explained(write):
    path = write("d.json", {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    path.write_text(json.dumps(json.loads(path.read_text()), indent=2))
    with pytest.raises(UserError) as e:
        detect(path)
    assert "write one" in str(e.value) and "(JSONL)" in str(e.value)


@pytest.mark.parametrize(
    ("content", "start"),
    [
        ("", "the file is empty"),
        ("   \n\n", "the file is empty"),
        ("[1, 2, 3]", "line 1: a JSON list is not a chat export"),
        ("hello there", "line 1: not a chat export twin knows"),
        ('{"foo": 1, "bar": [1, 2]}', 'JSON without "messages" or "chats"'),
        ('{"messages": [42]}', "message #1: neither a Telegram message nor"),
        ('{"messages": 42}', 'line 1: "messages" is not a list'),
    ],
)
def test_unknown_content_is_a_clear_error(write, content, start):
    path = write("x.json", content)
    with pytest.raises(UserError) as e:
        detect(path)
    assert str(e.value).startswith(f"{path}") and start in str(e.value)


def test_mixed_formats_in_one_run(tg, write, run, all_of):
    tele = write("result.json", tg.chat([tg.msg(1, 0, "Anna", "hi"), tg.msg(2, 5, "Me", "hey")]))
    wa = write("wa.txt", "01/02/2024, 10:00 - Anna: Обед?\n01/02/2024, 10:01 - Me: го\n")
    plain = write("p.json", {"messages": [{"user": "q", "bot": "a"}]})
    result = run([tele, wa, plain], me=("Me",))
    assert all_of(result) == [
        ["user: hi", "assistant: hey"],
        ["user: Обед?", "assistant: го"],
        ["user: q", "assistant: a"],
    ]
    assert [i["format"] for i in result.stats["inputs"]] == ["telegram-chat", "whatsapp", "plain"]
