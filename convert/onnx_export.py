"""`twin convert --format onnx`: merged HF model → verified fp32 ONNX → int8 / int4 ONNX, registered under `[onnx]`.

The exporter is onnxruntime-genai's model builder (run as its own process: it
prints freely and holds the whole model in memory while it writes). Its models
carry their KV cache and run in onnxruntime-genai, which the daemon serves
without torch. The recipe: export fp32, check its tokens and logits against
transformers, export the quantized weights (MatMulNBits: int8, int4), measure
each on my validation replies with the GGUF's perplexity rules, keep one (for
`auto`: int4 unless int8 is clearly better), and commit `twins/<name>/onnx/` and
its registry table as one unit: nothing is written on any failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convert.checkpoint import open_checkpoint
from convert.onnx_perplexity import onnx_reply_perplexity
from convert.perplexity import Messages, Perplexity, load_conversations
from convert.verify import CHAT, PROMPTS, TOKENIZE_ONLY, TOLERANCES, Verification, compare_logits, hf_logits
from convert.vocab import load_hf_tokenizer
from twin import dataset, paths, registry
from twin.errors import UserError
from twin.files import temp_dir, writing
from twin.lock import twin_lock
from twin.onnxgenai import INSTALL, OnnxModel, genai

# HF architectures the model builder exports that `twin train` also trains (convert/architectures.py).
ONNX_ARCHITECTURES = ("LlamaForCausalLM", "Phi3ForCausalLM", "Qwen2ForCausalLM")
QUANTS = ("int4", "int8")
CHOICES = ("auto", *QUANTS)
# `auto` keeps int4 (about a third of int8's size) unless its perplexity is more than this factor above int8's.
INT4_MARGIN = 1.05
FOLDER = "onnx"
# The builder's options per precision. int4: k-quant with llama.cpp's mixed strategy (LM head and the most
# sensitive layers in int8); on the embedded model, measured on chat replies: plain RTN int4 1.37x fp32's
# perplexity, k_quant_last 1.15x, k_quant_mixed 1.06x (112 MB against RTN's 86 MB and int8's 258 MB).
BUILDER_OPTIONS = {"fp32": [], "int8": [], "int4": ["algo_config=k_quant_mixed"]}


@dataclass
class OnnxConfig:
    """What to export: twin `name`'s merged/ model; `quant` auto (measure int8 and int4, keep one), int4 or int8."""

    name: str
    quant: str = "auto"
    val: Path | None = None
    max_conversations: int = 40

    def __post_init__(self) -> None:
        paths.check_name(self.name)
        self.quant = self.quant.lower()
        if self.quant not in CHOICES:
            raise UserError(f"unknown ONNX quant {self.quant!r}: pick one of {', '.join(CHOICES)}")
        if self.max_conversations < 1:
            raise UserError(f"max_conversations must be at least 1, got {self.max_conversations}")

    def source_dir(self) -> Path:
        merged = paths.twin_dir(self.name) / "merged"
        if not (merged / "config.json").is_file():
            raise UserError(
                f"twin {self.name!r} has no merged model ({merged}): train it first with `twin train --name {self.name}`"
            )
        return merged

    def val_file(self) -> Path:
        return Path(self.val).expanduser() if self.val is not None else dataset.val_path(self.name)


@dataclass(frozen=True)
class OnnxMeasure:
    quant: str  # fp32, int8, int4
    size_bytes: int
    perplexity: Perplexity


@dataclass
class OnnxResult:
    path: Path
    quant: str
    size_bytes: int
    verification: Verification
    measures: list[OnnxMeasure] = field(default_factory=list)


def check_architecture(source: Path) -> str:
    """The checkpoint's architecture if the ONNX exporter takes it; a UserError naming it and the fix otherwise."""
    arch = open_checkpoint(source).architecture
    if arch not in ONNX_ARCHITECTURES:
        raise UserError(
            f"architecture {arch!r} has no ONNX export (onnxruntime-genai's builder exports "
            f"{', '.join(ONNX_ARCHITECTURES)}): serve this twin as a GGUF with `twin convert --name NAME`"
        )
    return arch


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build(source: Path, out: Path, precision: str) -> None:
    """Run the model builder for `precision` (fp32, int8, int4) into `out`; its chatter is kept out of our output."""
    genai()  # the one-line install hint before a subprocess traceback
    cache = out.with_name(out.name + ".cache")
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(out)]
    cmd += ["-p", precision, "-e", "cpu", "-c", str(cache)]
    if BUILDER_OPTIONS[precision]:
        cmd += ["--extra_options", *BUILDER_OPTIONS[precision]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        if "No space left on device" in done.stderr:
            raise OSError(28, "No space left on device", str(out))
        if any(line.startswith("ModuleNotFoundError") for line in lines):
            raise UserError(f"the ONNX exporter misses a module ({lines[-1]}): {INSTALL}")
        raise UserError(
            f"the ONNX exporter failed on {source} ({lines[-1] if lines else 'no output'}): please report it"
        )


def verify_onnx(folder: Path, source: Path, tokenizer: Any) -> Verification:
    """The fp32 export against transformers: tokenization sample by sample, then logits at every prompt position."""
    model = OnnxModel(folder)
    try:
        texts = [(t, True) for t in (*PROMPTS, *TOKENIZE_ONLY)]
        if tokenizer.chat_template:
            rendered = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
            texts.append((rendered, False))
        for text, add_special in texts:
            hf = list(tokenizer.encode(text, add_special_tokens=add_special))
            ours = model.tokenize(text, special=True, add_special=add_special)
            if hf != ours:
                raise UserError(
                    f"conversion check failed: the exported tokenizer tokenizes {text[:40]!r}… differently from "
                    "transformers: please report it"
                )
        token_lists = [list(tokenizer.encode(p)) for p in PROMPTS]
        reference = hf_logits(source, token_lists)
        ours_logits = []
        for ids in token_lists:
            seq = model.sequence(len(ids) + 1)
            rows = [seq.feed([t]) for t in ids]  # genai hands back the last position's logits: one token a step
            seq.close()
            ours_logits.append(np.stack(rows)[:, : reference[0].shape[1]])
    finally:
        model.close()
    return compare_logits(reference, ours_logits, TOLERANCES["f32"], len(texts), [], "onnxruntime-genai")


def export_onnx(cfg: OnnxConfig, progress: Any = None) -> OnnxResult:
    """Export, verify, quantize, measure and register twin `cfg.name`'s ONNX model; nothing is left on failure."""
    from convert.pipeline import progress_bars

    with twin_lock(cfg.name, "twin convert"):
        registry.finish_pending(cfg.name)
        registry.read(cfg.name)
        folder = paths.twin_dir(cfg.name)
        with writing(folder, "writing the ONNX model"):
            if progress is not None:
                return _export(cfg, folder, progress)
            with progress_bars() as bars:
                return _export(cfg, folder, bars)


def _export(cfg: OnnxConfig, folder: Path, bars: Any) -> OnnxResult:
    source = cfg.source_dir()
    check_architecture(source)
    genai()
    val = cfg.val_file()
    if not val.is_file():
        raise UserError(
            f"{val} does not exist: the ONNX model's perplexity is measured on validation replies; "
            f"pass --val FILE (a val.jsonl) or rebuild the dataset with `twin ingest --name {cfg.name}`"
        )
    conversations = load_conversations(val, cfg.max_conversations)
    tokenizer = load_hf_tokenizer(source)
    work = temp_dir(folder / "onnx-build")
    try:
        fp32 = work / "fp32"
        step = bars.add_task("exporting fp32 ONNX", total=None)
        build(source, fp32, "fp32")
        bars.update(step, total=1, completed=1)
        check = bars.add_task("verifying against transformers", total=None)
        verification = verify_onnx(fp32, source, tokenizer)
        bars.update(check, total=1, completed=1)
        measures = [_measure(fp32, "fp32", conversations, bars)]
        shutil.rmtree(fp32)
        for quant in QUANTS if cfg.quant == "auto" else (cfg.quant,):
            step = bars.add_task(f"exporting {quant} ONNX", total=None)
            build(source, work / quant, quant)
            bars.update(step, total=1, completed=1)
            measures.append(_measure(work / quant, quant, conversations, bars))
        chosen = _choose(measures[1:])
        with registry.replacing(cfg.name) as unit:
            os.replace(work / chosen.quant, unit.dir / FOLDER)
            _private(unit.dir / FOLDER)
            unit.set(FOLDER, _table(chosen, verification, measures))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return OnnxResult(folder / FOLDER, chosen.quant, chosen.size_bytes, verification, measures)


def _measure(path: Path, quant: str, conversations: list[Messages], bars: Any) -> OnnxMeasure:
    task = bars.add_task(f"perplexity {quant}", total=len(conversations))
    ppl = onnx_reply_perplexity(path, conversations, advance=lambda: bars.advance(task))
    if ppl.tokens == 0:
        raise UserError("no validation reply could be scored with this model's chat template: check dataset/val.jsonl")
    return OnnxMeasure(quant, folder_bytes(path), ppl)


def _choose(quantized: list[OnnxMeasure]) -> OnnxMeasure:
    by_quant = {m.quant: m for m in quantized}
    if len(by_quant) == 1:
        return quantized[0]
    int4, int8 = by_quant["int4"], by_quant["int8"]
    return int4 if int4.perplexity.value <= INT4_MARGIN * int8.perplexity.value else int8


def _private(folder: Path) -> None:
    """The builder writes with the umask's modes: the twin's files are 0600, its folders 0700."""
    for p in [folder, *folder.rglob("*")]:
        os.chmod(p, 0o700 if p.is_dir() else 0o600)


def _table(chosen: OnnxMeasure, verification: Verification, measures: list[OnnxMeasure]) -> dict[str, object]:
    values: dict[str, object] = {
        "dir": FOLDER,
        "quant": chosen.quant,
        "size_bytes": chosen.size_bytes,
        "runtime": "onnxruntime-genai",
        "top1_agreement": round(verification.top1_agreement, 4),
        "max_abs_logit_diff": round(verification.max_abs_diff, 5),
    }
    for m in measures:
        values[f"ppl_{m.quant}"] = round(m.perplexity.value, 4)
        values[f"size_{m.quant}"] = m.size_bytes
    return values


def report(result: OnnxResult) -> str:
    """What `twin convert --format onnx` prints on stdout."""
    lines = [result.verification.summary()]
    base = result.measures[0].perplexity.value
    lines.append(f"{'quant':<8} {'size':>9} {'perplexity':>11} {'vs fp32':>8}")
    for m in result.measures:
        mark = " *" if m.quant == result.quant else ""
        ppl = m.perplexity.value
        lines.append(f"{m.quant:<8} {m.size_bytes / 2**20:>6.1f} MB {ppl:>11.3f} {ppl / base:>8.3f}{mark}")
    lines.append(f"wrote {result.path} ({result.quant}, {result.size_bytes / 2**20:.1f} MB)")
    return "\n".join(lines)


def read_table(name: str) -> dict[str, Any]:
    """The twin's `[onnx]` table ({} when it has no ONNX model)."""
    table = registry.read(name).get(FOLDER, {})
    return table if isinstance(table, dict) else {}
