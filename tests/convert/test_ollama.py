"""`twin export NAME --ollama DIR`: Modelfiles that parse by Ollama's documented grammar and whose TEMPLATE renders
the same prompt text as the GGUF's own chat template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from convert.ollama import Modelfile, read_chat, sampling_parameters, translate
from tests.convert import gotemplate, modelfile
from tests.helpers.tiny_models import CHATML_TEMPLATE, PHI3_TEMPLATE, ZEPHYR_TEMPLATE
from twin import embedded, paths, registry
from twin.chatformat import PLAIN_TEMPLATE, render_chat
from twin.errors import UserError

CONVERSATION = [
    {"role": "user", "content": "Привет! Ты где? 😀"},
    {"role": "assistant", "content": "щас буду\nминут через 10"},
    {"role": "user", "content": "ok, see you at the café"},
]
SYSTEM = {"role": "system", "content": "You write short, casual messages.\nNo emoji."}
PERSONA = "You are Dima: you answer in two or three words."


def ollama_prompt(text: str, messages: list[dict[str, str]]) -> str:
    """What Ollama sends the model for a chat: the Modelfile's SYSTEM first when the chat has none, then TEMPLATE."""
    parsed = modelfile.parse(text)
    if parsed.system and (not messages or messages[0]["role"] != "system"):
        messages = [{"role": "system", "content": parsed.system}, *messages]
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    data = {"System": system, "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]}
    assert parsed.template is not None
    return gotemplate.render(parsed.template, data)


def _embedded():
    chat = read_chat(embedded.embedded_gguf())
    return chat.template, chat.bos, chat.eos


TEMPLATES = {
    "smollm2 (the embedded GGUF's own)": _embedded,
    "chatml": lambda: (CHATML_TEMPLATE, "<|endoftext|>", "<|im_end|>"),
    "zephyr": lambda: (ZEPHYR_TEMPLATE, "<s>", "</s>"),
    "phi3": lambda: (PHI3_TEMPLATE, "<s>", "<|endoftext|>"),
    "plain": lambda: (PLAIN_TEMPLATE, "", "<|endoftext|>"),
}


@pytest.mark.parametrize("which", list(TEMPLATES))
def test_the_modelfile_parses_and_renders_what_the_gguf_template_renders(which):
    template, bos, eos = TEMPLATES[which]()
    t = translate(template, bos=bos, eos=eos)
    params = sampling_parameters(8192) + [("stop", f'"""{s}"""') for s in t.stops]
    text = Modelfile("me.gguf", t.template, t.system, params).text()

    parsed = modelfile.parse(text)
    assert parsed.from_ == "./me.gguf"
    assert parsed.parameters["stop"] == t.stops and eos in t.stops
    assert parsed.parameters["temperature"] == [0.8] and parsed.parameters["num_ctx"] == [2048]
    for chat in (CONVERSATION, [SYSTEM, *CONVERSATION]):
        assert ollama_prompt(text, chat) == render_chat(template, chat, bos_token=bos, eos_token=eos)

    # The persona variant: its system prompt as SYSTEM, as the daemon puts it first.
    persona = Modelfile("base.gguf", t.template, PERSONA, params).text()
    expected = render_chat(
        template, [{"role": "system", "content": PERSONA}, *CONVERSATION], bos_token=bos, eos_token=eos
    )
    assert ollama_prompt(persona, CONVERSATION) == expected


def test_the_embedded_models_default_system_prompt_becomes_system():
    template, bos, eos = _embedded()
    t = translate(template, bos=bos, eos=eos)
    assert t.family == "chatml" and t.system and "SmolLM" in t.system


@pytest.mark.parametrize(
    "template",
    [
        # Llama-3 style headers and Gemma style turns: formats twin does not translate.
        "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>"
        "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
        "{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
        # ChatML that drops system messages: close, but not the same prompt.
        "{% for m in messages %}{% if m['role'] != 'system' %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
        "<|im_end|>\n{% endif %}{% endfor %}<|im_start|>assistant\n",
        "{{ raise_exception('no') }}",
    ],
    ids=["llama3", "gemma", "chatml-without-system", "raises"],
)
def test_an_unsupported_template_is_refused(template):
    with pytest.raises(UserError, match="chat template is not supported"):
        translate(template, bos="<s>", eos="</s>")


@pytest.fixture
def run_cli(capsys):
    from twin.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main(args)
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _twin(name: str, gguf: Path, persona: str | None = None) -> Path:
    folder = paths.private_dir(paths.twin_dir(name))
    shutil.copyfile(gguf, folder / "model-q4_1.gguf")
    registry.update(name, "model", {"gguf": "model-q4_1.gguf", "quant": "q4_1"})
    if persona:
        (folder / "persona.json").write_text(json.dumps({"system_prompt": persona}), encoding="utf-8")
        registry.update(name, "persona", {"file": "persona.json", "base": "default"})
    return folder


def test_export_writes_the_gguf_and_both_modelfiles(run_cli, twin_home, tmp_path):
    _twin("dima", embedded.embedded_gguf(), PERSONA)
    out_dir = tmp_path / "ollama"
    code, out, err = run_cli(["export", "dima", "--ollama", str(out_dir)])
    assert code == 0, err
    assert f"ollama create dima -f {out_dir / 'Modelfile'}" in out
    assert f"ollama create dima-prompt -f {out_dir / 'Modelfile.prompt'}" in out

    main = modelfile.parse((out_dir / "Modelfile").read_text(encoding="utf-8"))
    prompt = modelfile.parse((out_dir / "Modelfile.prompt").read_text(encoding="utf-8"))
    assert (out_dir / main.from_).read_bytes() == embedded.embedded_gguf().read_bytes()
    assert (out_dir / prompt.from_).is_file() and prompt.system == PERSONA
    assert main.system and "SmolLM" in main.system  # the template's own default
    assert main.parameters["stop"] == ["<|im_end|>"]
    for path in [out_dir, *out_dir.iterdir()]:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


def test_export_of_a_gguf_with_an_unsupported_template_is_one_line_and_writes_nothing(run_cli, twin_home, tmp_path):
    """A real GGUF whose chat template is Gemma's: the template's bytes replaced in place, at the same length."""
    data = embedded.embedded_gguf().read_bytes()
    template, _, _ = _embedded()
    old = template.encode()
    new = b"{% for m in messages %}<start_of_turn>{{ m['content'] }}<end_of_turn>{% endfor %}"
    new += b"{# " + b"x" * (len(old) - len(new) - 6) + b" #}"
    assert len(new) == len(old) and data.count(old) == 1
    gguf = tmp_path / "gemma-like.gguf"
    gguf.write_bytes(data.replace(old, new))
    _twin("gem", gguf)

    out_dir = tmp_path / "ollama"
    code, out, err = run_cli(["export", "gem", "--ollama", str(out_dir)])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "chat template is not supported" in err
    assert not out_dir.exists()


def test_export_without_a_format_or_a_model_is_one_line(run_cli, twin_home, tmp_path):
    code, _, err = run_cli(["export", "nobody"])
    assert code == 2 and "--ollama DIR" in err
    code, _, err = run_cli(["export", "nobody", "--ollama", str(tmp_path / "o")])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no twin named 'nobody'" in err
