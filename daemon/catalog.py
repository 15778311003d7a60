"""Which models the daemon serves, by id.

- the `--model` it was started with: the embedded default (`smollm2-135m-instruct`),
  a GGUF path (id = file stem), or a built twin's name;
- every built twin in the registry: `<name>` for its GGUF (twin.toml `[model] gguf`,
  a file name inside the twin's directory, with `[model] lora` the LoRA adapter GGUF
  llama.cpp applies to it, for `twin convert --quant adapter`), `<name>-onnx` for its ONNX export
  (`[onnx] dir`, served by onnxruntime-genai) and `<name>-prompt` for its prompt-only
  persona variant (`[persona] file`, JSON with `system_prompt`, served on the GGUF
  of `[persona] base`: `default` for the embedded model, or a GGUF path).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from twin import embedded, paths, registry
from twin.errors import UserError

log = logging.getLogger("twin.daemon")


@dataclass(frozen=True)
class ModelSpec:
    """A model id the API answers to: a GGUF file (or an exported ONNX folder), for prompt-only variants a system prompt."""

    id: str
    gguf: Path  # the GGUF file; for `<name>-onnx` the ONNX folder (daemon.engine.open_runner tells them apart)
    system_prompt: str | None = None
    owned_by: str = "twin"
    end_bias: float = 0.0  # the default bias on its end-of-reply tokens (a twin's calibrated one, twin.toml [decoding])
    lora: Path | None = None  # a LoRA adapter GGUF applied to `gguf` (twin.toml [model] lora)
    candidates: int = 1  # sampled replies per choice when a request does not say (a twin's [serve] candidates)


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


def check_onnx(folder: Path) -> Path:
    """An exported ONNX folder whose runtime is installed, or a UserError naming what is missing and the fix."""
    from twin.onnxgenai import genai, is_onnx_dir

    if not is_onnx_dir(folder):
        raise UserError(f"{folder} is not an exported ONNX model: export it again with `twin convert --format onnx`")
    genai()  # onnxruntime-genai is installed, or one line saying how
    return folder


def base_spec() -> ModelSpec:
    return ModelSpec(embedded.MODEL_ID, embedded.embedded_gguf(), owned_by="twin (embedded)")


def _base_gguf(base: str) -> Path:
    if base in embedded.ALIASES:
        return embedded.embedded_gguf()
    return check_gguf(Path(base).expanduser())


def twin_specs(name: str) -> list[ModelSpec]:
    """The model ids one built twin contributes: `<name>` (its GGUF) and `<name>-prompt` (its persona)."""
    folder = paths.twin_dir(name)
    for place in (folder, folder.parent, folder.parent.parent):
        reason = paths.others_can_write(place)
        if reason:
            raise UserError(
                f"twin {name!r} is not loaded: {reason}, so its model could be replaced: "
                f"run `chmod 700 {place}` (and check what is in it)"
            )
    data = registry.read(name)
    specs = []
    gguf = data.get("model", {}).get("gguf")
    lora = data.get("model", {}).get("lora")
    bias = registry.end_bias(name, data)
    candidates = registry.candidates(name, data)
    if gguf:
        adapter = None
        if lora:
            if not (folder / lora).exists():
                raise UserError(
                    f"twin {name!r}: its LoRA adapter {folder / lora} does not exist: "
                    f"convert it again with `twin convert --name {name}`"
                )
            adapter = check_gguf(folder / lora)
        specs.append(
            ModelSpec(
                name, check_gguf(folder / gguf), owned_by="twin", end_bias=bias, lora=adapter, candidates=candidates
            )
        )
    onnx = data.get("onnx", {}).get("dir")
    if onnx:
        specs.append(ModelSpec(f"{name}-onnx", check_onnx(folder / onnx), owned_by="twin (onnx)", end_bias=bias))
    persona = data.get("persona", {})
    if persona.get("file"):
        try:
            prompt = json.loads((folder / persona["file"]).read_text(encoding="utf-8"))["system_prompt"]
        except (OSError, ValueError, KeyError) as e:
            raise UserError(
                f"twin {name!r}: cannot read its persona ({e}): rebuild it with `twin persona --name {name}`"
            ) from None
        specs.append(
            ModelSpec(f"{name}-prompt", _base_gguf(persona.get("base", "default")), prompt, owned_by="twin (persona)")
        )
    return specs


def registry_specs() -> dict[str, ModelSpec]:
    """Every built twin's models; a twin that is broken is logged and left out, never fatal for the others."""
    out: dict[str, ModelSpec] = {}
    for name in registry.names():
        try:
            for spec in twin_specs(name):
                out[spec.id] = spec
        except UserError as e:
            log.warning("not serving twin %s: %s", name, e)
    return out


def primary_spec(model: str, backend: str = "llama.cpp") -> ModelSpec:
    """The spec for `--model`: `default` (the embedded SmolLM2), a built twin's name, or a GGUF path (id = stem).

    `backend` onnx: the twin's ONNX export (`<name>-onnx`) instead of its GGUF.
    """
    if backend == "onnx" or (model.endswith("-onnx") and model.removesuffix("-onnx") in registry.names()):
        return _onnx_primary(model)
    if model in embedded.ALIASES:
        return base_spec()
    if model in registry.names():
        specs = [s for s in twin_specs(model) if not s.id.endswith("-onnx")]
        if not specs:
            raise UserError(
                f"twin {model!r} has no model yet: build it with `twin build` or `twin convert --name {model}`"
            )
        return specs[0]
    path = Path(model).expanduser()
    if path.suffix != ".gguf" and not path.exists():
        raise UserError(f"no twin named {model!r} and no such file: pass `default`, a twin's name or a .gguf path")
    path = check_gguf(path)
    return ModelSpec(path.stem, path.resolve())


def _onnx_primary(model: str) -> ModelSpec:
    name = model.removesuffix("-onnx")
    if name not in registry.names():
        raise UserError(f"`--backend onnx` serves a built twin's ONNX export: no twin named {name!r}")
    if not registry.read(name).get("onnx", {}).get("dir"):
        raise UserError(
            f"twin {name!r} has no ONNX model yet: export it with `twin convert --name {name} --format onnx`"
        )
    return next(s for s in twin_specs(name) if s.id == f"{name}-onnx")


def build_catalog(model: str, backend: str = "llama.cpp") -> tuple[dict[str, ModelSpec], str]:
    """All models this daemon serves (the primary, the embedded base, every built twin) and the primary's id."""
    primary = primary_spec(model, backend)
    catalog = {primary.id: primary}
    base = base_spec()
    catalog.setdefault(base.id, base)
    for spec in registry_specs().values():
        catalog.setdefault(spec.id, spec)
    return catalog, primary.id
