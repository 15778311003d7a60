"""A parser of Ollama's Modelfile, written from its documentation (docs/modelfile.mdx), to check what twin writes.

The grammar as documented: `# comment` lines and `INSTRUCTION arguments` lines;
instructions are case-insensitive and in any order; FROM is required; an
argument is the rest of the line, or a string in double quotes, or one in triple
double quotes that may span lines. `PARAMETER <name> <value>` takes only the documented names, each
with its value type; `MESSAGE <role> <message>` takes system, user or assistant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INSTRUCTIONS = {"from", "parameter", "template", "system", "adapter", "license", "message", "requires"}
# The documented parameters and their value types ("Valid Parameters and Values").
PARAMETERS = {
    "num_ctx": int,
    "repeat_last_n": int,
    "repeat_penalty": float,
    "temperature": float,
    "seed": int,
    "stop": str,
    "num_predict": int,
    "draft_num_predict": int,
    "top_k": int,
    "top_p": float,
    "min_p": float,
}
ROLES = {"system", "user", "assistant"}


class ModelfileError(ValueError):
    pass


@dataclass
class Modelfile:
    from_: str = ""
    template: str | None = None
    system: str | None = None
    parameters: dict[str, list[object]] = field(default_factory=dict)
    messages: list[tuple[str, str]] = field(default_factory=list)


def _argument(text: str, pos: int) -> tuple[str, int]:
    """The argument starting at `pos` (after the instruction's space) and where the next line starts."""
    if text.startswith('"""', pos):
        end = text.find('"""', pos + 3)
        if end < 0:
            raise ModelfileError('unterminated """ string')
        value, pos = text[pos + 3 : end], end + 3
    elif text.startswith('"', pos):
        end = text.find('"', pos + 1)
        newline = text.find("\n", pos)
        if end < 0 or (0 <= newline < end):
            raise ModelfileError('unterminated " string (use """ for text over several lines)')
        value, pos = text[pos + 1 : end], end + 1
    else:
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        return text[pos:end].strip(), end
    rest_end = text.find("\n", pos)
    rest_end = len(text) if rest_end < 0 else rest_end
    if text[pos:rest_end].strip():
        raise ModelfileError(f"text after a quoted argument: {text[pos:rest_end]!r}")
    return value, rest_end


def parse(text: str) -> Modelfile:
    out = Modelfile()
    pos = 0
    while pos < len(text):
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        line = text[pos:line_end]
        if not line.strip() or line.lstrip().startswith("#"):
            pos = line_end + 1
            continue
        head, _, _ = line.strip().partition(" ")
        instruction = head.lower()
        if instruction not in INSTRUCTIONS:
            raise ModelfileError(f"unknown instruction {head!r}")
        start = pos + line.index(head) + len(head) + 1
        if instruction in ("parameter", "message"):
            key, _, _ = text[start:line_end].partition(" ")
            start += len(key) + 1
        value, pos = _argument(text, start)
        pos += 1
        if instruction == "from":
            out.from_ = value
        elif instruction == "template":
            out.template = value
        elif instruction == "system":
            out.system = value
        elif instruction == "parameter":
            if key not in PARAMETERS:
                raise ModelfileError(f"unknown parameter {key!r}")
            try:
                typed = PARAMETERS[key](value)
            except ValueError:
                raise ModelfileError(f"parameter {key} takes {PARAMETERS[key].__name__}, got {value!r}") from None
            out.parameters.setdefault(key, []).append(typed)
        elif instruction == "message":
            if key not in ROLES:
                raise ModelfileError(f"invalid message role {key!r}")
            out.messages.append((key, value))
    if not out.from_:
        raise ModelfileError("no FROM instruction")
    return out
