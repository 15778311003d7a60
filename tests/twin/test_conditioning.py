"""Who I talk to, from ingest to the daemon: the chat and addressee kept per sample, one system line everywhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import openai
import pytest

from daemon.process import DaemonProcess
from trainer.evaluation.evalset import load_samples
from trainer.ingest.run import IngestConfig, ingest
from trainer.train.conditioning import lines
from twin.conditioning import system_line, with_line
from twin.embedded import MODEL_ID

T0 = 1_700_000_000


def _msg(mid: int, t: int, who: str, text: str) -> dict:
    uid = {"Me": "user1", "Mum": "user2", "Bob": "user3", "Cat": "user4"}[who]
    return {
        "id": mid,
        "type": "message",
        "date_unixtime": str(T0 + t),
        "date": "2023-11-14T22:13:20",
        "from": who,
        "from_id": uid,
        "text": text,
        "text_entities": [{"type": "plain", "text": text}],
    }


def _export(path: Path) -> Path:
    family = [_msg(1, 0, "Mum", "did you eat?"), _msg(2, 30, "Me", "yes mum, pasta")]
    work = [
        _msg(10, 0, "Bob", "standup moved to 10"),
        _msg(11, 20, "Cat", "can someone review my change"),
        _msg(12, 40, "Me", "on it"),
    ]
    chats = [
        {"name": "Mum", "type": "personal_chat", "id": 2, "messages": family},
        {"name": "Work", "type": "private_group", "id": 9, "messages": work},
    ]
    data = {
        "personal_information": {"user_id": 1, "first_name": "Me", "last_name": "", "phone_number": "", "bio": ""},
        "chats": {"about": "", "list": chats},
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_system_line_reads_plainly() -> None:
    assert system_line("Mum", "Mum", "personal_chat") == "Chat: Mum (private chat). Talking to: Mum."
    assert system_line(chat="Work", chat_kind="private_group") == "Chat: Work (group)."
    assert system_line() == ""
    assert (
        with_line([{"role": "system", "content": "Persona."}], "Chat: Work.")[0]["content"] == "Persona.\nChat: Work."
    )


def test_ingest_keeps_chat_and_addressee_and_evaluation_puts_them_first(tmp_path: Path, twin_home: Path) -> None:
    result = ingest(IngestConfig(exports=[_export(tmp_path / "result.json")], progress=False, val_fraction=0.0))
    rows = [json.loads(line) for line in result.train.read_text(encoding="utf-8").splitlines()]
    assert {(r["chat"], r["chat_kind"], r["talking_to"]) for r in rows} == {
        ("Mum", "personal_chat", "Mum"),
        ("Work", "private_group", "Cat"),  # the last one who spoke before my reply
    }
    assert sorted(lines(result.train)) == [
        "Chat: Mum (private chat). Talking to: Mum.",
        "Chat: Work (group). Talking to: Cat.",
    ]
    # the evaluation reads val.jsonl: make the training file its validation split to read it back
    result.val.write_text(result.train.read_text(encoding="utf-8"), encoding="utf-8")
    contexts = [s.context for s in load_samples("me", 10, 2000)]
    assert sorted(c[0]["content"] for c in contexts) == sorted(lines(result.train))
    assert all(c[0]["role"] == "system" for c in contexts)
    assert all(s.context[0]["role"] != "system" for s in load_samples("me", 10, 2000, condition=False))


@pytest.fixture(scope="module")
def logging_daemon(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("conditioning-daemon")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env["TWIN_HOME"] = str(home)
    args = ["--model", "default", "--n-ctx", "512", "--threads", "1", "--log-content"]
    with DaemonProcess(args, env=env, log_path=home / "serve.log") as proc:
        yield proc, home / "serve.log"


def test_the_daemon_takes_the_twin_field_as_the_system_line(logging_daemon) -> None:
    proc, log = logging_daemon
    client = openai.OpenAI(base_url=proc.url, api_key="x", max_retries=0)
    client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "did you eat?"}],
        max_tokens=2,
        extra_body={"twin": {"talking_to": "Mum", "chat": "Mum", "chat_kind": "personal_chat"}},
    )
    logged = [line for line in log.read_text(encoding="utf-8").splitlines() if "messages:" in line]
    assert '{"role":"system","content":"Chat: Mum (private chat). Talking to: Mum."}' in logged[-1]


def test_a_bad_twin_field_is_one_clear_400(logging_daemon) -> None:
    proc, _ = logging_daemon
    client = openai.OpenAI(base_url=proc.url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=2,
            extra_body={"twin": {"talking": "Mum"}},
        )
    assert e.value.body["param"] == "twin"
    assert "unknown field 'talking'" in e.value.body["message"]
