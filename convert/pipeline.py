"""`twin convert`: HF model → verified f16/f32 GGUF → quantized GGUF, registered for the daemon.

The recipe reads top to bottom: open the checkpoint, export the tokenizer, write
the float GGUF tensor by tensor, verify it against transformers, quantize (for
`auto`: every 4-bit candidate, each measured on my validation replies, the best
kept), rename into place, record it in the twin's registry.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert.architectures import architecture_for
from convert.checkpoint import open_checkpoint
from convert.hf_to_gguf import OUTPUT_ELSEWHERE, embedding_rows, plan_tensors, write_gguf
from convert.perplexity import Perplexity, load_conversations, reply_perplexity
from convert.quantize import FOUR_BIT, check_quant, quantize
from convert.verify import Verification, verify
from convert.vocab import load_hf_tokenizer, model_name, read_vocabulary
from twin import dataset, paths, registry
from twin.errors import UserError
from twin.files import atomic_path, scratch_file, writing
from twin.lock import twin_lock


@dataclass
class ConvertConfig:
    """What to convert and how.

    name: a twin whose `merged/` model is converted and whose registry `[model]` names the result.
    model_dir: any HF model directory instead (exactly one of name / model_dir).
    quant: `auto` (measure every 4-bit type on validation replies, keep the best) or one of QUANTS.
    output: the GGUF to write; default `twins/<name>/model-<quant>.gguf`, or `./<dir>-<quant>.gguf`.
    val: validation conversations for `auto`; default the twin's `dataset/val.jsonl`.
    threads: llama.cpp threads (0 = all cores).
    """

    name: str | None = None
    model_dir: Path | None = None
    quant: str = "auto"
    output: Path | None = None
    val: Path | None = None
    threads: int = 0
    max_conversations: int = 40

    def __post_init__(self) -> None:
        if (self.name is None) == (self.model_dir is None):
            raise UserError(
                "name what to convert: pass either --name NAME (a built twin) or --model-dir DIR (an HF model)"
            )
        if self.name is not None:
            paths.check_name(self.name)
        self.quant = check_quant(self.quant)
        if self.output is not None:
            self.output = Path(self.output).expanduser()
            if self.output.is_dir():
                raise UserError(f"-o {self.output} is a directory: pass the path of the .gguf file to write")
        if self.threads < 0:
            raise UserError(f"threads must be 0 (all cores) or more, got {self.threads}")
        if self.max_conversations < 1:
            raise UserError(f"max_conversations must be at least 1, got {self.max_conversations}")

    def source_dir(self) -> Path:
        if self.model_dir is not None:
            return Path(self.model_dir).expanduser()
        merged = paths.twin_dir(self.name or "") / "merged"
        if not merged.is_dir():
            raise UserError(
                f"twin {self.name!r} has no merged model ({merged}): train it first with `twin train --name {self.name}`"
            )
        return merged

    def val_file(self) -> Path:
        if self.val is not None:
            return Path(self.val).expanduser()
        if self.name is None:
            raise UserError(
                "`--quant auto` measures each quant on validation replies: pass --val FILE (a val.jsonl) or pick a --quant"
            )
        return dataset.val_path(self.name)


@dataclass(frozen=True)
class QuantMeasure:
    quant: str
    size_bytes: int
    perplexity: Perplexity | None


@dataclass
class ConvertResult:
    path: Path
    quant: str
    size_bytes: int
    verification: Verification
    measures: list[QuantMeasure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        """The measurements as a plain-text table (the chosen quant starred)."""
        if not self.measures:
            return ""
        base = self.measures[0].perplexity
        lines = [f"{'quant':<8} {'size':>9} {'perplexity':>11} {'vs ' + self.measures[0].quant:>8}"]
        for m in self.measures:
            ppl = m.perplexity.value if m.perplexity else float("nan")
            ratio = ppl / base.value if base and m.perplexity else float("nan")
            mark = " *" if m.quant == self.quant else ""
            lines.append(f"{m.quant:<8} {m.size_bytes / 2**20:>6.1f} MB {ppl:>11.3f} {ratio:>8.3f}{mark}")
        return "\n".join(lines)


def progress_bars() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    # Bars only on a terminal: redirected stderr stays free of redraw noise.
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def _output_path(cfg: ConvertConfig, source: Path, quant: str) -> Path:
    if cfg.output is not None:
        return cfg.output
    if cfg.name is not None:
        return paths.twin_dir(cfg.name) / f"model-{quant}.gguf"
    return Path.cwd() / f"{source.name}-{quant}.gguf"


def convert(cfg: ConvertConfig, progress: Any = None) -> ConvertResult:
    """Convert, verify, quantize and (with a twin name) register; no partial GGUF is left on any failure.

    `progress`: a started rich Progress to add this stage's tasks to (`twin build`
    shows one display for all stages); by default bars of its own on a terminal.
    """
    where = cfg.output.parent if cfg.output is not None else Path.cwd()
    with contextlib.ExitStack() as stack:
        if cfg.name is not None:
            stack.enter_context(twin_lock(cfg.name, "twin convert"))
            registry.finish_pending(cfg.name)
            registry.read(cfg.name)  # a broken twin.toml fails before the conversion, not after it
            where = paths.twin_dir(cfg.name)
        stack.enter_context(writing(where, "writing the GGUF", OUTPUT_ELSEWHERE))
        if progress is not None:
            return _convert(cfg, progress)
        with progress_bars() as bars:
            return _convert(cfg, bars)
    raise AssertionError("unreachable")


def _convert(cfg: ConvertConfig, bars: Any) -> ConvertResult:
    source = cfg.source_dir()
    conversations = load_conversations(cfg.val_file(), cfg.max_conversations) if cfg.quant == "auto" else None
    ckpt = open_checkpoint(source)
    arch = architecture_for(ckpt.architecture)
    tokenizer = load_hf_tokenizer(source)
    vocab = read_vocabulary(source, tokenizer, embedding_rows(ckpt, arch))
    float_type = "f32" if cfg.quant == "f32" else "f16"
    total = sum(t.nbytes for t in plan_tensors(ckpt, arch, float_type))
    folder = _output_path(cfg, source, "any").parent
    if not folder.is_dir():
        paths.private_dir(folder)
    title = model_name(cfg.name or source.name, tokenizer)

    task = bars.add_task(f"writing {float_type} GGUF", total=total)

    def write_and_verify(path: Path) -> Verification:
        write_gguf(ckpt, arch, vocab, path, float_type, title, lambda n: bars.advance(task, n))
        check = bars.add_task("verifying against transformers", total=None)
        result = verify(path, source, tokenizer, float_type, vocab.model == "llama", cfg.threads)
        bars.update(check, total=1, completed=1)
        return result

    if cfg.quant in ("f16", "f32"):
        final = _output_path(cfg, source, cfg.quant)
        with atomic_path(final) as tmp:
            verification = write_and_verify(tmp)
        result = ConvertResult(final, cfg.quant, final.stat().st_size, verification)
    else:
        with scratch_file(folder / f"model-{float_type}.gguf") as base:
            verification = write_and_verify(base)
            if conversations is None:
                final = _output_path(cfg, source, cfg.quant)
                step = bars.add_task(f"quantizing {cfg.quant}", total=None)
                with atomic_path(final) as tmp:
                    quantize(base, tmp, cfg.quant, cfg.threads)
                bars.update(step, total=1, completed=1)
                result = ConvertResult(final, cfg.quant, final.stat().st_size, verification)
            else:
                result = _choose_quant(cfg, source, base, folder, conversations, verification, float_type, bars)
    result.notes.extend(vocab.notes)
    if cfg.name is not None:
        _register(cfg.name, result)
    return result


def _choose_quant(cfg, source, base, folder, conversations, verification, float_type, bars) -> ConvertResult:
    """Quantize to each 4-bit candidate, measure my replies' perplexity with each, keep the lowest."""

    def measure(path: Path, label: str) -> Perplexity:
        task = bars.add_task(f"perplexity {label}", total=len(conversations))
        result = reply_perplexity(path, conversations, threads=cfg.threads, advance=lambda: bars.advance(task))
        if result.tokens == 0:
            raise UserError(
                "no validation reply could be scored with this model's chat template: pick a --quant instead of auto"
            )
        return result

    measures = [QuantMeasure(float_type, base.stat().st_size, measure(base, float_type))]
    best: QuantMeasure | None = None
    best_path: Path | None = None
    with contextlib.ExitStack() as stack:  # every candidate file is removed on exit unless renamed into place
        for quant in FOUR_BIT:
            candidate = stack.enter_context(scratch_file(folder / f"model-{quant}.gguf"))
            step = bars.add_task(f"quantizing {quant}", total=None)
            quantize(base, candidate, quant, cfg.threads)
            bars.update(step, total=1, completed=1)
            m = QuantMeasure(quant, candidate.stat().st_size, measure(candidate, quant))
            measures.append(m)
            if best is None or m.perplexity.value < best.perplexity.value:  # type: ignore[union-attr]
                if best_path is not None:
                    best_path.unlink()  # free the disk as we go
                best, best_path = m, candidate
            else:
                candidate.unlink()
        assert best is not None and best_path is not None
        final = _output_path(cfg, source, best.quant)
        with atomic_path(final) as tmp:
            os.replace(best_path, tmp)
    return ConvertResult(final, best.quant, best.size_bytes, verification, measures)


def _register(name: str, result: ConvertResult) -> None:
    """Point the twin's `[model]` at the new GGUF; a GGUF it named before, in its folder, is removed."""
    folder = paths.twin_dir(name)
    previous = registry.read(name).get("model", {}).get("gguf")
    inside = result.path.resolve().parent == folder.resolve()
    gguf_name = result.path.name if inside else str(result.path.resolve())
    values: dict[str, object] = {
        "gguf": gguf_name,
        "quant": result.quant,
        "size_bytes": result.size_bytes,
        "top1_agreement": round(result.verification.top1_agreement, 4),
        "max_abs_logit_diff": round(result.verification.max_abs_diff, 5),
    }
    for m in result.measures:
        if m.perplexity is not None:
            values[f"ppl_{m.quant}"] = round(m.perplexity.value, 4)
    registry.update(name, "model", values)
    registry.drop(name, "decoding")  # calibrated on the GGUF this one replaces: `twin calibrate` again
    if previous and previous != gguf_name and "/" not in previous:
        with contextlib.suppress(FileNotFoundError):
            (folder / previous).unlink()


def report(result: ConvertResult) -> str:
    """What `twin convert` prints on stdout."""
    lines = [result.verification.summary(), *(f"note: {n}" for n in result.verification.notes + result.notes)]
    if result.measures:
        lines.append(result.table())
    lines.append(f"wrote {result.path} ({result.quant}, {result.size_bytes / 2**20:.1f} MB)")
    return "\n".join(lines)
