"""The prompt-only twin: style figures from my replies, a compact prompt, served by the real daemon as <name>-prompt."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers.twins import env_with_home
from trainer.persona import style
from trainer.persona.run import build_persona
from twin.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_style_figures() -> None:
    replies = [
        "ага, щас буду)",
        "норм 👍",
        "давай через час 😊😊",
        "скоро буду 👍",
        "Ок.",
        "неа)))",
        "щас буду",
        "ну давай 👍",
    ]
    s = style.describe(replies)
    assert s["language"] == "ru" and s["replies"] == 8
    assert s["words_median"] == 2
    assert s["emoji_share"] == pytest.approx(4 / 8, abs=1e-3)
    assert s["top_emoji"][0] == "👍"
    assert s["paren_smile_share"] == pytest.approx(2 / 8, abs=1e-3)
    assert s["capital_start_share"] == pytest.approx(1 / 8, abs=1e-3)
    assert s["ends_with"]["."] == pytest.approx(1 / 8, abs=1e-3)
    assert s["ends_with"]["emoji"] == pytest.approx(4 / 8, abs=1e-3)
    assert "буду" in s["frequent_words"] and "щас буду" in s["frequent_phrases"]
    for words in ("короткие фразы", "👍", "скобочки", "с маленькой буквы", "щас буду", "русский"):
        assert words in s["description"]
    english = style.describe(["Sure thing! See you at 8.", "Absolutely, I will be there on time.", "Thanks a lot!"])
    assert (
        english["language"] == "en" and "capitalised" in english["description"] and "no emoji" in english["description"]
    )


def test_persona_file_and_registry(make_dataset, twin_home: Path) -> None:
    make_dataset("me", n_train=20)
    persona = build_persona("me", examples=3)
    folder = twin_home / "twins" / "me"
    assert json.loads((folder / "persona.json").read_text()) == persona
    assert set(persona) == {"system_prompt", "style", "examples", "base"}
    assert persona["base"] == "default" and len(persona["examples"]) == 3
    replies = {
        json.loads(line)["messages"][-1]["content"]
        for line in (folder / "dataset" / "train.jsonl").read_text().splitlines()
    }
    for example in persona["examples"]:  # quoted from the training split, never invented
        assert example["assistant"] in replies
        assert f"{example['user']} → {example['assistant']}" in persona["system_prompt"]
    assert persona["style"]["description"] in persona["system_prompt"]
    assert len(persona["system_prompt"]) < 700  # compact: the small base loops on long persona prompts
    assert tomllib.loads((folder / "twin.toml").read_text())["persona"]["file"] == "persona.json"
    assert oct((folder / "persona.json").stat().st_mode & 0o777) == "0o600"


def test_daemon_serves_the_persona(make_dataset, twin_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`twin persona` then the real daemon (same TWIN_HOME) through the openai SDK: <name>-prompt answers, prompt first."""
    import openai

    from daemon.process import DaemonProcess

    make_dataset("anna", n_train=20)
    with pytest.raises(SystemExit) as done:
        main(["persona", "--name", "anna", "--show-examples"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    persona = json.loads((twin_home / "twins" / "anna" / "persona.json").read_text())
    assert printed.strip() == persona["system_prompt"]

    env = env_with_home(twin_home)
    with DaemonProcess(["--model", "default", "--n-ctx", "1024"], env=env, log_path=twin_home / "serve.log") as daemon:
        client = openai.OpenAI(base_url=daemon.url, api_key="-")
        assert "anna-prompt" in {m.id for m in client.models.list().data}
        question = [{"role": "user", "content": "Ты где?"}]
        reply = client.chat.completions.create(
            model="anna-prompt", messages=question, max_tokens=12, temperature=0.7, seed=1
        )
        plain = client.chat.completions.create(
            model="smollm2-135m-instruct", messages=question, max_tokens=1, temperature=0.0
        )
    assert reply.model == "anna-prompt" and reply.choices[0].message.content is not None
    # The persona's system prompt is put before the conversation.
    assert reply.usage.prompt_tokens > plain.usage.prompt_tokens + 40


def test_persona_keeps_real_exchanges_off_stdout(make_dataset, twin_home: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue 16, case 9: stdout often lands in logs; the real exchanges are printed only with --show-examples."""
    make_dataset("anna", n_train=20)
    with pytest.raises(SystemExit) as done:
        main(["persona", "--name", "anna"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    persona = json.loads((twin_home / "twins" / "anna" / "persona.json").read_text())
    assert persona["examples"]
    assert persona["style"]["description"] in printed and "--show-examples" in printed
    for example in persona["examples"]:
        assert example["user"] not in printed and example["assistant"] not in printed
