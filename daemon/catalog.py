"""Which models the daemon serves, by id: the `--model` it was started with (the embedded default or a GGUF path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twin import embedded
from twin.errors import UserError


@dataclass(frozen=True)
class ModelSpec:
    """A model id the API answers to: a GGUF file, and for prompt-only variants a system prompt put first."""

    id: str
    gguf: Path
    system_prompt: str | None = None
    owned_by: str = "twin"


def check_gguf(path: Path) -> Path:
    """A readable GGUF file, or a UserError naming the path and the fix."""
    if not path.exists():
        raise UserError(f"model file {path} does not exist: pass `--model default` or the path of a .gguf file")
    if not path.is_file():
        raise UserError(f"model {path} is not a file: pass the path of a .gguf file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise UserError(f"cannot read model file {path} ({e.strerror}): check its permissions") from None
    if magic != b"GGUF":
        raise UserError(f"{path} is not a GGUF file: convert the model first (`twin convert`) or pick a .gguf file")
    return path


def primary_spec(model: str) -> ModelSpec:
    """The spec for `--model`: `default` (the embedded SmolLM2) or a GGUF path, whose id is the file stem."""
    if model in embedded.ALIASES:
        return ModelSpec(embedded.MODEL_ID, embedded.embedded_gguf(), owned_by="twin (embedded)")
    path = check_gguf(Path(model).expanduser())
    return ModelSpec(path.stem, path.resolve())


def build_catalog(model: str) -> tuple[dict[str, ModelSpec], str]:
    """All models this daemon serves and the id of the one loaded at start."""
    primary = primary_spec(model)
    return {primary.id: primary}, primary.id
