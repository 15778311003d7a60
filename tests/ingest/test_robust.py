"""Whatever the file holds — generated, cut short, garbled — ingest ends in a dataset or in a UserError."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer.ingest.run import IngestConfig, ingest
from twin.errors import UserError

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "telegram_sample" / "result.json"
CHECKS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
entity = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["plain", "link", "phone", "email", "bank_card", "bold", "text_link", "custom_emoji"])
        | values
    },
    optional={"text": st.text(max_size=20) | values, "href": st.text(max_size=10)},
)
text = st.text(max_size=30) | st.lists(st.text(max_size=10) | entity | values, max_size=4) | values
message = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(0, 50) | values,
        "type": st.sampled_from(["message", "service", "unsupported", "poll_thing"]) | values,
        "date": st.sampled_from(["2024-01-01T10:00:00", "2024-13-40T99:00:00", ""]) | values,
        "date_unixtime": st.integers(0, 2**40).map(str)
        | st.sampled_from(["²", "٣", "-5", "1e9", "9" * 400, "1_700_000_000"])
        | values,
        "from": st.sampled_from(["Me", "Anna", "Bob"]) | st.text(max_size=8) | values,
        "from_id": st.sampled_from(["user1", "user2", "channel9"]) | values,
        "text": text,
        "text_entities": st.lists(entity, max_size=3) | values,
        "reply_to_message_id": st.integers(0, 50) | values,
        "forwarded_from": st.text(max_size=5) | st.none(),
        "media_type": st.sampled_from(["sticker", "voice_message", "animation"]) | values,
        "sticker_emoji": st.sampled_from(["🔥", ""]) | values,
        "photo": st.text(max_size=5),
    },
)
chat = st.fixed_dictionaries(
    {"messages": st.lists(message | values, max_size=12)},
    optional={
        "name": st.text(max_size=8) | values,
        "type": st.sampled_from(["personal_chat", "private_group", "bot_chat"]) | values,
        "id": values,
    },
)
export = st.one_of(
    chat,
    st.fixed_dictionaries(
        {
            "chats": st.fixed_dictionaries({}, optional={"list": st.lists(chat | values, max_size=3), "about": values})
            | values
        },
        optional={
            "personal_information": st.fixed_dictionaries({}, optional={"user_id": st.integers(0, 3) | values}) | values
        },
    ),
    st.fixed_dictionaries(
        {
            "messages": st.lists(
                st.fixed_dictionaries(
                    {}, optional={"user": st.text(max_size=9) | values, "bot": st.text(max_size=9) | values}
                )
                | values,
                max_size=6,
            )
        }
    ),
)


def outcome(path: Path, **kw: object) -> str:
    """'ok' or 'user error'; anything else escapes and fails the test."""
    try:
        ingest(IngestConfig(exports=[path], progress=False, **kw))
    except UserError as e:
        message = str(e)
        assert message and "\n" not in message and "Traceback" not in message
        return "user error"
    return "ok"


@CHECKS
@given(data=export, me=st.sampled_from([(), ("Me",), ("user2",), ("anna",)]))
def test_generated_json_exports(tmp_path, data, me):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    outcome(path, me=me)


@CHECKS
@given(cut=st.integers(0, SAMPLE.stat().st_size))
def test_truncated_sample(tmp_path, cut):
    path = tmp_path / "result.json"
    whole = SAMPLE.read_bytes()
    path.write_bytes(whole[:cut])
    assert outcome(path) == ("ok" if cut >= len(whole.rstrip()) else "user error")


def test_every_cut_of_a_small_export(tmp_path, tg):
    whole = json.dumps(
        tg.account(
            [tg.chat([tg.msg(1, 0, "Anna", ["hi ", {"type": "link", "text": "a.io"}]), tg.msg(2, 9, "Me", "yo")])]
        ),
        indent=1,
    ).encode()
    path = tmp_path / "result.json"
    results = set()
    for cut in range(0, len(whole), 5):
        path.write_bytes(whole[:cut])
        results.add(outcome(path))
    assert results == {"user error"}


whatsapp_line = st.one_of(
    st.builds(
        lambda d, m, y, h, mi, who, t: f"{d}/{m}/{y}, {h}:{mi:02d} - {who}: {t}",
        st.integers(0, 40),
        st.integers(0, 14),
        st.sampled_from([23, 2024, 99]),
        st.integers(0, 25),
        st.integers(0, 59),
        st.sampled_from(["Me", "Anna", "Bob"]),
        st.text(max_size=20),
    ),
    st.builds(
        lambda d, m, h, ap, t: f"[{d}.{m}.24, {h}:00:00\u202f{ap}] Me: {t}",
        st.integers(1, 31),
        st.integers(1, 12),
        st.integers(0, 13),
        st.sampled_from(["AM", "PM"]),
        st.text(max_size=10),
    ),
    st.text(max_size=30),
)


@CHECKS
@given(lines=st.lists(whatsapp_line, min_size=1, max_size=10))
def test_generated_whatsapp_text(tmp_path, lines):
    path = tmp_path / "chat.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    outcome(path, me=("Me",))


@CHECKS
@given(blob=st.binary(max_size=200))
def test_random_bytes(tmp_path, blob):
    path = tmp_path / "x.json"
    path.write_bytes(blob)
    outcome(path, me=("Me",))


@CHECKS
@given(lines=st.lists(values.map(json.dumps) | st.text(max_size=20), min_size=1, max_size=5))
def test_generated_jsonl(tmp_path, lines):
    first = '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}'
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join([first, *lines]), encoding="utf-8")
    outcome(path)


def test_lone_surrogates_do_not_break_the_writers(tmp_path, tg, run, all_of):
    raw = json.dumps(
        tg.chat([tg.msg(1, 0, "Anna", "broken \ud83d emoji"), tg.msg(2, 5, "Me", "ok \udc00")], name="Chat \ud800")
    )
    path = tmp_path / "result.json"
    path.write_text(raw, encoding="ascii")
    assert all_of(run(path, me=("Me",))) == [["user: broken ? emoji", "assistant: ok ?"]]
