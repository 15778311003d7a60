"""The variants of a twin that an evaluation measures, found from twin.toml, each with what it needs.

- `prompt`: no training — the base model with the persona's system prompt
  (`[persona]`: file, base), scored and run in transformers;
- `lora`: the merged LoRA model (`[train] merged`), in transformers;
- `gguf`: the quantized GGUF the daemon serves (`[model] gguf`), perplexity in
  llama.cpp, replies through the daemon as model id `<name>`;
- `onnx`: the ONNX export the daemon serves (`[onnx] dir`), perplexity in
  onnxruntime-genai, replies through the daemon as model id `<name>-onnx`.

A variant whose files are not there is `missing`, with the command that builds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from twin import embedded, paths, registry

ORDER = ("prompt", "lora", "gguf", "onnx")


@dataclass(frozen=True)
class Variant:
    key: str  # prompt, lora, gguf, onnx
    label: str  # what a person reads in the report
    missing: str = ""  # why it cannot be measured and the command that builds it; "" when it can
    hf_base: str = ""  # prompt: `default` or a GGUF path (transformers loads both)
    hf_dir: Path | None = None  # lora: the merged checkpoint
    system_prompt: str | None = None  # prompt: the persona
    gguf: Path | None = None  # gguf: the served file
    lora: Path | None = None  # gguf: the LoRA adapter GGUF applied to it (`twin convert --quant adapter`)
    onnx: Path | None = None  # onnx: the served folder
    served_id: str = ""  # gguf, onnx: the daemon's model id

    @property
    def available(self) -> bool:
        return not self.missing


def find_variants(name: str) -> list[Variant]:
    """The variants of twin `name` (ORDER), each available or missing with the command that builds it."""
    data = registry.read(name)
    folder = paths.twin_dir(name)
    return [
        _prompt(name, folder, data.get("persona", {})),
        _lora(name, folder, data.get("train", {})),
        _gguf(name, folder, data.get("model", {})),
        _onnx(name, folder, data.get("onnx", {})),
    ]


def _prompt(name: str, folder: Path, table: dict) -> Variant:
    label = "prompt-only (base + persona)"
    build = f"build it with `twin persona --name {name}`"
    if not table.get("file"):
        return Variant("prompt", label, missing=f"no persona yet: {build}")
    try:
        prompt = json.loads((folder / table["file"]).read_text(encoding="utf-8"))["system_prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("system_prompt is empty")
    except (OSError, ValueError, KeyError, TypeError) as e:
        return Variant(
            "prompt",
            label,
            missing=f"cannot read {folder / table['file']} ({e}): rebuild it with `twin persona --name {name}`",
        )
    base = str(table.get("base", "default"))
    if base not in embedded.ALIASES and not Path(base).expanduser().is_file():
        return Variant("prompt", label, missing=f"its base model {base} does not exist: {build} --base default")
    shown = "embedded SmolLM2-135M-Instruct" if base in embedded.ALIASES else Path(base).name
    return Variant("prompt", f"{label}: {shown}", hf_base=base, system_prompt=prompt)


def _lora(name: str, folder: Path, table: dict) -> Variant:
    label = "LoRA (merged)"
    merged = folder / str(table.get("merged", "merged"))
    if not (merged / "config.json").is_file():
        return Variant(
            "lora", label, missing=f"not trained yet ({merged} is missing): train it with `twin train --name {name}`"
        )
    base = table.get("base")
    return Variant("lora", f"{label}: {base}" if base else label, hf_dir=merged)


def _gguf(name: str, folder: Path, table: dict) -> Variant:
    label = "served GGUF"
    build = f"convert it with `twin convert --name {name}`"
    if not table.get("gguf"):
        return Variant("gguf", label, missing=f"no GGUF yet: {build}")
    path = folder / str(table["gguf"])
    try:
        with open(path, "rb") as f:
            ok = f.read(4) == b"GGUF"
    except OSError:
        return Variant("gguf", label, missing=f"{path} is missing: {build}")
    if not ok:
        return Variant("gguf", label, missing=f"{path} is not a GGUF file: {build}")
    lora = folder / str(table["lora"]) if table.get("lora") else None
    if lora is not None and not lora.is_file():
        return Variant("gguf", label, missing=f"its LoRA adapter {lora} is missing: {build}")
    quant = table.get("quant")
    shown = f"{label} ({quant})" if quant else f"{label} ({path.name})"
    return Variant("gguf", shown, gguf=path, lora=lora, served_id=name)


def _onnx(name: str, folder: Path, table: dict) -> Variant:
    from twin.errors import UserError
    from twin.onnxgenai import genai, is_onnx_dir

    label = "served ONNX"
    build = f"export it with `twin convert --name {name} --format onnx`"
    if not table.get("dir"):
        return Variant("onnx", label, missing=f"no ONNX model yet: {build}")
    path = folder / str(table["dir"])
    if not is_onnx_dir(path):
        return Variant("onnx", label, missing=f"{path} is not an exported ONNX model: {build}")
    try:
        genai()
    except UserError as e:
        return Variant("onnx", label, missing=str(e))
    quant = table.get("quant")
    return Variant("onnx", f"{label} ({quant})" if quant else label, onnx=path, served_id=f"{name}-onnx")
