"""`twin export NAME --ollama DIR`: a twin's GGUF and Ollama Modelfiles that prompt it as the daemon does.

Ollama's TEMPLATE is a Go text/template, the GGUF's chat template Jinja: there
is no general translation, so twin knows the chat formats of the bases it
supports (`FAMILIES`: ChatML, Zephyr, Phi-3 and twin's plain `User:/Bot:`
format), each written once as a Go template and once as the text it renders.
A GGUF's template is recognised only by rendering probe conversations with it
(the way the daemon does) and finding the family that renders the same text:
a default system prompt the template adds (SmolLM2's, Qwen's) becomes the
Modelfile's SYSTEM, a BOS it writes first stays in the TEMPLATE. Anything else
is refused with one line, never guessed.

The persona variant (`<name>-prompt`) runs on its base GGUF with the persona
as SYSTEM: a second Modelfile beside the first. Sampling parameters are the
daemon's defaults.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from twin import paths, registry
from twin.chatformat import PLAIN_TEMPLATE, render_chat
from twin.errors import UserError
from twin.files import atomic_path, write_text, writing

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Family:
    """One chat format: its Go template (`{eos}` where the model's EOS text goes), what that renders, its turn end."""

    name: str
    go: str
    render: Callable[[Messages, str], str]  # (messages, eos) -> the prompt, the generation prompt included
    end: str  # the end-of-turn marker, a stop sequence (`{eos}`: the model's EOS)


def _chatml(messages: Messages, eos: str) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


def _zephyr(messages: Messages, eos: str) -> str:
    return "".join(f"<|{m['role']}|>\n{m['content']}{eos}\n" for m in messages) + "<|assistant|>\n"


def _phi3(messages: Messages, eos: str) -> str:
    return "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages) + "<|assistant|>\n"


def _plain(messages: Messages, eos: str) -> str:
    turns = {"system": "{}\n", "user": "User: {}\n", "assistant": "Bot: {}" + eos + "\n"}
    return "".join(turns[m["role"]].format(m["content"]) for m in messages) + "Bot:"


FAMILIES = (
    Family(
        "chatml",
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
        _chatml,
        "<|im_end|>",
    ),
    Family(
        "zephyr",
        "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}{eos}\n{{ end }}<|assistant|>\n",
        _zephyr,
        "{eos}",
    ),
    Family(
        "phi3",
        "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n",
        _phi3,
        "<|end|>",
    ),
    Family(
        "plain",
        '{{- range .Messages }}{{ if eq .Role "system" }}{{ .Content }}\n'
        '{{ else if eq .Role "user" }}User: {{ .Content }}\n'
        "{{ else }}Bot: {{ .Content }}{eos}\n{{ end }}{{ end }}Bot:",
        _plain,
        "{eos}",
    ),
)

# Conversations the GGUF's template and a family must render alike (text with spaces, newlines, Cyrillic).
_WITH_SYSTEM: Messages = [
    {"role": "system", "content": "Be brief.\nReally brief."},
    {"role": "user", "content": "Привет! How are you?"},
    {"role": "assistant", "content": "fine, and you?"},
    {"role": "user", "content": "good"},
]
_NO_SYSTEM = _WITH_SYSTEM[1:]
_MARK = "\ue000system\ue001"


@dataclass(frozen=True)
class Translation:
    """A GGUF chat template as Ollama's: the TEMPLATE, the SYSTEM it implies (a default), the stop sequences."""

    family: str
    template: str
    system: str | None
    stops: list[str]


def translate(template: str, *, bos: str, eos: str) -> Translation:
    """The Ollama form of a chat template, or a UserError when no known family renders what it renders."""
    try:
        with_system = render_chat(template, _WITH_SYSTEM, bos_token=bos, eos_token=eos)
        no_system = render_chat(template, _NO_SYSTEM, bos_token=bos, eos_token=eos)
    except Exception as e:  # a template that cannot render an ordinary chat cannot be translated either
        raise _unsupported(f"it fails on a plain conversation ({type(e).__name__}: {e})") from None
    for family in FAMILIES:
        for prefix in ("", bos):
            if prefix + family.render(_WITH_SYSTEM, eos) != with_system:
                continue
            matched, system = _default_system(family, prefix, eos, no_system)
            if not matched:
                continue
            stops = list(dict.fromkeys(s for s in (family.end.replace("{eos}", eos), eos) if s))
            go = prefix + family.go.replace("{eos}", eos)
            if '"""' in go:
                raise _unsupported('its markers hold """, which a Modelfile cannot quote')
            return Translation(family.name, go, system or None, stops)
    raise _unsupported("it is none of the chat formats twin translates (ChatML, Zephyr, Phi-3, twin's plain format)")


def _default_system(family: Family, prefix: str, eos: str, no_system: str) -> tuple[bool, str | None]:
    """Whether `family` renders a chat without system prompt as the template does, and the system prompt the
    template puts in then (None: none)."""
    if prefix + family.render(_NO_SYSTEM, eos) == no_system:
        return True, None
    before, _, after = (prefix + family.render([{"role": "system", "content": _MARK}, *_NO_SYSTEM], eos)).partition(
        _MARK
    )
    if not (no_system.startswith(before) and no_system.endswith(after)) or len(no_system) < len(before) + len(after):
        return False, None
    text = no_system[len(before) : len(no_system) - len(after)]
    if prefix + family.render([{"role": "system", "content": text}, *_NO_SYSTEM], eos) != no_system:
        return False, None
    return True, text


def _unsupported(why: str) -> UserError:
    return UserError(
        f"cannot export to Ollama: the model's chat template is not supported: {why}; "
        "twin exports bases with ChatML, Zephyr, Phi-3 or its plain format (see `twin build --help` for --base)"
    )


# --- the Modelfile -------------------------------------------------------------------------------


def quote(text: str, what: str) -> str:
    """A Modelfile argument in triple quotes (the one form that keeps newlines and quotes as they are)."""
    if '"""' in text:
        raise UserError(f'cannot write the Modelfile: the {what} holds """, which a Modelfile cannot quote; remove it')
    if text.endswith('"'):  # `""""` would close early: Ollama takes the first `"""` that ends the argument
        raise UserError(f"cannot write the Modelfile: the {what} ends with a double quote; remove it")
    return f'"""{text}"""'


@dataclass
class Modelfile:
    """One Modelfile's instructions; `text()` writes them in Ollama's syntax."""

    gguf: str  # FROM, relative to the Modelfile
    template: str
    system: str | None = None
    parameters: list[tuple[str, str]] = field(default_factory=list)
    adapter: str | None = None  # ADAPTER: a LoRA adapter GGUF applied to FROM (`twin convert --quant adapter`)

    def text(self) -> str:
        lines = ["# written by `twin export` for `ollama create`", f"FROM ./{self.gguf}"]
        if self.adapter:
            lines.append(f"ADAPTER ./{self.adapter}")
        lines.append(f"TEMPLATE {quote(self.template, 'chat template')}")
        if self.system:
            lines.append(f"SYSTEM {quote(self.system.replace(chr(13), ''), 'system prompt')}")
        for name, value in self.parameters:
            lines.append(f"PARAMETER {name} {value}")
        return "\n".join(lines) + "\n"


def sampling_parameters(n_ctx_train: int) -> list[tuple[str, str]]:
    """The daemon's default sampling and context, in Ollama's PARAMETER names."""
    from daemon.sampling import PENALTY_LAST_N
    from daemon.schema import SamplingParams
    from twin.config import ServeSettings

    d = SamplingParams()
    n_ctx = min(ServeSettings.n_ctx, n_ctx_train) if n_ctx_train > 0 else ServeSettings.n_ctx
    return [
        ("temperature", f"{d.temperature:g}"),
        ("top_p", f"{d.top_p:g}"),
        ("top_k", str(d.top_k)),
        ("min_p", f"{d.min_p:g}"),
        ("repeat_penalty", f"{d.repetition_penalty:g}"),
        ("repeat_last_n", str(PENALTY_LAST_N)),
        ("num_ctx", str(n_ctx)),
    ]


# --- the export ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GGUFChat:
    """What a GGUF says about prompting it."""

    template: str
    bos: str
    eos: str
    n_ctx_train: int


def read_chat(gguf: Path) -> GGUFChat:
    """The GGUF's chat template (twin's plain one when it has none, as the daemon does) and its BOS/EOS text."""
    import logging

    from twin import llamacpp

    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    try:
        model = llamacpp.load_vocabulary(gguf)
    except ValueError as e:
        raise UserError(
            f"cannot read {gguf} ({e}): is it a complete GGUF file? rebuild it with `twin convert`"
        ) from None
    try:

        def text(token: int) -> str:
            return model.token_get_text(token) if token >= 0 else ""

        return GGUFChat(
            model.metadata().get("tokenizer.chat_template") or PLAIN_TEMPLATE,
            text(model.token_bos()),
            text(model.token_eos()),
            model.n_ctx_train(),
        )
    finally:
        model.close()


@dataclass(frozen=True)
class Written:
    model: str  # the name to `ollama create`
    path: Path


@dataclass
class OllamaExport:
    folder: Path
    gguf: Path
    family: str
    stops: list[str]
    modelfiles: list[Written]

    def commands(self) -> list[str]:
        return [f"ollama create {m.model} -f {m.path}" for m in self.modelfiles]


def _modelfile(gguf_name: str, chat: GGUFChat, system: str | None) -> tuple[Modelfile, Translation]:
    t = translate(chat.template, bos=chat.bos, eos=chat.eos)
    params = sampling_parameters(chat.n_ctx_train) + [("stop", quote(s, "stop sequence")) for s in t.stops]
    return Modelfile(gguf_name, t.template, system or t.system, params), t


def export_ollama(name: str, folder: Path) -> OllamaExport:
    """Write twin `name`'s GGUF, `Modelfile` and (with a persona) its base GGUF and `Modelfile.prompt` into `folder`.

    Every template is translated before anything is written: an unsupported one leaves `folder` untouched.
    """
    from daemon.catalog import twin_specs

    paths.check_name(name)
    if not registry.toml_path(name).is_file():
        raise UserError(
            f"no twin named {name!r} in {paths.twins_dir()}: build one with `twin build EXPORT --name {name}`"
        )
    # What the daemon serves for this twin (the same files, the same persona); GGUF files only.
    specs = [s for s in twin_specs(name) if s.gguf.is_file()]
    if not specs:
        raise UserError(f"twin {name!r} has no model yet: build it with `twin build` or `twin convert --name {name}`")
    folder = folder.expanduser().resolve()
    plan: list[tuple[str, Path, str, Modelfile]] = []  # (ollama name, source GGUF, file name, Modelfile)
    family, stops = "", []
    extras: list[tuple[Path, str]] = []  # (LoRA adapter GGUF, file name) copied beside the GGUFs
    for spec in specs:
        gguf_name = f"{spec.id}.gguf" if spec.system_prompt is None else f"{spec.id}-base.gguf"
        mf, t = _modelfile(gguf_name, read_chat(spec.gguf), spec.system_prompt)
        if spec.lora is not None:
            mf.adapter = f"{spec.id}.lora.gguf"
            extras.append((spec.lora, mf.adapter))
        plan.append((spec.id, spec.gguf, "Modelfile" if spec.system_prompt is None else "Modelfile.prompt", mf))
        if not family or spec.system_prompt is None:
            family, stops = t.family, t.stops
    written = []
    with writing(folder, "exporting to Ollama"):
        paths.private_dir(folder)  # the weights learned from someone's messages; the persona quotes them
        for source, copied in extras:
            with atomic_path(folder / copied) as tmp:
                shutil.copyfile(source, tmp)
        for model_name, source, file_name, mf in plan:
            with atomic_path(folder / mf.gguf) as tmp:
                shutil.copyfile(source, tmp)
            write_text(folder / file_name, mf.text())
            written.append(Written(model_name, folder / file_name))
    main = folder / plan[0][3].gguf
    return OllamaExport(folder, main, family, stops, written)
