"""A renderer of the Go text/template subset Ollama TEMPLATEs are written in, to render what `twin export` writes.

Supported (Go's documented semantics): text; `{{ pipeline }}` printing a field
(`.Content`, `$.System`, `.`) or a string literal; `{{ if }}` / `{{ else if }}` /
`{{ else }}` / `{{ end }}` on a field's truthiness or `eq A B`; `{{ range .List }}`
(dot becomes each element); `{{- ` and ` -}}` trimming the whitespace before and
after an action. Anything else raises, so a template outside the subset fails loudly.
"""

from __future__ import annotations

import re
from typing import Any

_ACTION = re.compile(r"\{\{(- )?(.*?)( -)?\}\}", re.DOTALL)
_WORD = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')
_SPACE = " \t\r\n"


def _lex(template: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if trim_next:
            text = text.lstrip(_SPACE)
        if m.group(1):
            text = text.rstrip(_SPACE)
        tokens.append(("text", text))
        tokens.append(("action", m.group(2).strip()))
        trim_next, pos = bool(m.group(3)), m.end()
    text = template[pos:]
    tokens.append(("text", text.lstrip(_SPACE) if trim_next else text))
    return tokens


def _parse(tokens: list[tuple[str, str]], i: int, stops: tuple[str, ...]) -> tuple[list[Any], int, str]:
    """Nodes until one of `stops` (`end`, `else`, `else if …`): (nodes, index after it, the stop found)."""
    nodes: list[Any] = []
    while i < len(tokens):
        kind, value = tokens[i]
        i += 1
        if kind == "text":
            nodes.append(("text", value))
            continue
        word = value.split(" ", 1)[0]
        if word == "end" or value == "else" or value.startswith("else if "):
            if value.split(" ", 1)[0] not in {s.split(" ", 1)[0] for s in stops}:
                raise ValueError(f"unexpected {{{{ {value} }}}}")
            return nodes, i, value
        if word == "range":
            body, i, stop = _parse(tokens, i, ("end",))
            nodes.append(("range", value[len("range ") :], body))
        elif word == "if":
            branches, other = [], []
            cond = value[len("if ") :]
            while True:
                body, i, stop = _parse(tokens, i, ("end", "else", "else if"))
                branches.append((cond, body))
                if stop == "end":
                    break
                if stop == "else":
                    other, i, _ = _parse(tokens, i, ("end",))
                    break
                cond = stop[len("else if ") :]
            nodes.append(("if", branches, other))
        else:
            nodes.append(("print", value))
    if stops:
        raise ValueError("missing {{ end }}")
    return nodes, i, ""


def _term(word: str, dot: Any, root: Any) -> Any:
    if word.startswith('"'):
        return word[1:-1].encode().decode("unicode_escape")
    if word in (".", "$"):
        return dot if word == "." else root
    if word.startswith(("$.", ".")):
        value = root if word.startswith("$") else dot
        for name in word.lstrip("$").strip(".").split("."):
            if not isinstance(value, dict) or name not in value:
                raise ValueError(f"can't evaluate field {name} in {word}")
            value = value[name]
        return value
    raise ValueError(f"unsupported term {word!r}")


def _eval(expr: str, dot: Any, root: Any) -> Any:
    words = _WORD.findall(expr)
    if words and words[0] == "eq":
        if len(words) != 3:
            raise ValueError(f"eq takes two arguments: {expr!r}")
        return _term(words[1], dot, root) == _term(words[2], dot, root)
    if len(words) != 1:
        raise ValueError(f"unsupported pipeline {expr!r}")
    return _term(words[0], dot, root)


def _truthy(value: Any) -> bool:
    return bool(value)  # Go: false, 0, nil and empty strings, lists and maps are false


def _run(nodes: list[Any], dot: Any, root: Any, out: list[str]) -> None:
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "print":
            out.append(str(_eval(node[1], dot, root)))
        elif node[0] == "range":
            for item in _eval(node[1], dot, root) or []:
                _run(node[2], item, root, out)
        else:
            for cond, body in node[1]:
                if _truthy(_eval(cond, dot, root)):
                    _run(body, dot, root, out)
                    break
            else:
                _run(node[2], dot, root, out)


def render(template: str, data: dict[str, Any]) -> str:
    nodes, _, _ = _parse(_lex(template), 0, ())
    out: list[str] = []
    _run(nodes, data, data, out)
    return "".join(out)
