"""Sessions, merging, context and reply threads, each checked on the exact samples they make."""

from __future__ import annotations


def chat(tg, write, rows, kind="personal_chat"):
    """rows: (id, seconds, who, text[, reply_to])."""
    messages = []
    for row in rows:
        mid, t, who, text, *reply = row
        extra = {"reply_to_message_id": reply[0]} if reply else {}
        messages.append(tg.msg(mid, t, who, text, **extra))
    return write("result.json", tg.chat(messages, kind=kind))


def test_a_gap_ends_the_session(tg, write, run, all_of):
    path = chat(
        tg,
        write,
        [
            (1, 0, "Anna", "Привет"),
            (2, 60, "Me", "привет"),
            (3, 60 + 3601, "Anna", "Ты тут?"),  # over an hour later: a new session, no old context
            (4, 60 + 3700, "Me", "да"),
        ],
    )
    assert all_of(run(path, me=("Me",))) == [["user: Привет", "assistant: привет"], ["user: Ты тут?", "assistant: да"]]
    assert all_of(run(path, me=("Me",), gap=7200)) == [
        ["user: Привет", "assistant: привет"],
        ["user: Привет", "assistant: привет", "user: Ты тут?", "assistant: да"],
    ]


def test_one_senders_burst_merges_into_a_turn(tg, write, run, all_of):
    path = chat(
        tg,
        write,
        [
            (1, 0, "Anna", "Слушай"),
            (2, 20, "Anna", "А ты завтра свободен?"),
            (3, 50, "Me", "щас"),
            (4, 80, "Me", "гляну"),
            (5, 80 + 301, "Me", "да, свободен"),  # over five minutes after the last one: a turn of its own
        ],
    )
    result = run(path, me=("Me",))
    assert all_of(result) == [
        ["user: Слушай\nА ты завтра свободен?", "assistant: щас\nгляну"],
        ["user: Слушай\nА ты завтра свободен?", "assistant: щас\nгляну", "assistant: да, свободен"],
    ]
    assert result.stats["my_turns"] == 2


def test_merge_window_is_a_setting(tg, write, run, all_of):
    path = chat(tg, write, [(1, 0, "Anna", "a"), (2, 100, "Me", "b"), (3, 200, "Me", "c")])
    assert all_of(run(path, me=("Me",), merge=60)) == [
        ["user: a", "assistant: b"],
        ["user: a", "assistant: b", "assistant: c"],
    ]
    assert all_of(run(path, me=("Me",), merge=0)) == [
        ["user: a", "assistant: b"],
        ["user: a", "assistant: b", "assistant: c"],
    ]
    assert all_of(run(path, me=("Me",), merge=100)) == [["user: a", "assistant: b\nc"]]


def test_context_keeps_the_last_n_turns_and_starts_with_someone_else(tg, write, run, all_of):
    rows = []
    for i in range(6):
        rows.append((2 * i + 1, 20 * i, "Anna", f"q{i}"))
        rows.append((2 * i + 2, 20 * i + 10, "Me", f"a{i}"))
    path = chat(tg, write, rows)
    got = all_of(run(path, me=("Me",), context=3))
    assert got[0] == ["user: q0", "assistant: a0"]
    assert got[1] == ["user: q0", "assistant: a0", "user: q1", "assistant: a1"]
    assert got[2] == ["user: q1", "assistant: a1", "user: q2", "assistant: a2"]
    assert got[5] == ["user: q4", "assistant: a4", "user: q5", "assistant: a5"]
    assert len(got) == 6
    # two turns back from a_i are a_(i-1) and q_i: the leading reply of mine is dropped
    assert all_of(run(path, me=("Me",), context=2)) == [[f"user: q{i}", f"assistant: a{i}"] for i in range(6)]


def test_my_opening_message_is_not_a_sample(tg, write, run, all_of):
    path = chat(tg, write, [(1, 0, "Me", "привет, как ты?"), (2, 30, "Anna", "Норм"), (3, 60, "Me", "ок")])
    result = run(path, me=("Me",))
    assert all_of(result) == [["user: Норм", "assistant: ок"]]
    assert result.stats["dropped"] == {"no context": 1}


def test_reply_to_an_old_message_brings_it_into_context(tg, write, run, all_of):
    rows = [(1, 0, "Anna", "Ты придёшь в субботу?")]
    rows += [(2 + i, 10 + 10 * i, "Anna" if i % 2 else "Me", f"m{i}") for i in range(4)]
    rows.append((6, 100, "Me", "да, приду", 1))  # replies to message 1, beyond a 2-turn context
    path = chat(tg, write, rows)
    got = all_of(run(path, me=("Me",), context=2))
    assert got[-1] == ["user: Ты придёшь в субботу?", "user: m3", "assistant: да, приду"]


def test_reply_inside_the_context_is_not_repeated(tg, write, run, all_of):
    path = chat(tg, write, [(1, 0, "Anna", "Кино?"), (2, 10, "Anna", "Или театр?"), (3, 20, "Me", "кино", 1)])
    assert all_of(run(path, me=("Me",))) == [["user: Кино?\nИли театр?", "assistant: кино"]]


def test_reply_reaches_across_sessions(tg, write, run, all_of):
    path = chat(
        tg,
        write,
        [
            (1, 0, "Anna", "Скинь фото с дачи"),
            (2, 30, "Me", "ок"),
            (3, 90_000, "Anna", "Ну что?"),
            (4, 90_030, "Me", "вот, держи", 1),
        ],
    )
    assert all_of(run(path, me=("Me",))) == [
        ["user: Скинь фото с дачи", "assistant: ок"],
        ["user: Скинь фото с дачи", "user: Ну что?", "assistant: вот, держи"],
    ]


def test_reply_in_a_group_keeps_the_senders_name(tg, write, run, all_of):
    path = chat(
        tg,
        write,
        [
            (1, 0, "Anna", "Кто дежурит?"),
            (2, 10, "Bob", "Не я"),
            (3, 20, "Cat", "И не я"),
            (4, 30, "Me", "я", 1),
        ],
        kind="private_group",
    )
    assert all_of(run(path, me=("Me",), context=1)) == [["user: Anna: Кто дежурит?", "assistant: я"]]


def test_samples_come_in_chat_order_across_chats(tg, write, run, all_of):
    data = tg.account(
        [
            tg.chat([tg.msg(1, 0, "Anna", "a1"), tg.msg(2, 5, "Me", "r1")]),
            tg.chat([tg.msg(1, 0, "Bob", "b1"), tg.msg(2, 5, "Me", "r2")], name="Bob", cid=3),
        ]
    )
    result = run(write("result.json", data))
    assert all_of(result) == [["user: a1", "assistant: r1"], ["user: b1", "assistant: r2"]]
    assert result.stats["sessions"] == {"conversations": 2, "train": 2, "val": 0}
