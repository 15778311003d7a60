"""`twin convert`: HF model → verified f16/f32 GGUF → quantized GGUF, registered for the daemon.

The recipe reads top to bottom: open the checkpoint, export the tokenizer, write
the float GGUF tensor by tensor, verify it against transformers, quantize (for
`auto`: every 4-bit candidate, each measured on my validation replies, the best
kept), rename into place, record it in the twin's registry. One candidate is no
quantization of the merged model: `adapter`, the base's own 4-bit GGUF with the
LoRA beside it as llama.cpp's adapter file (convert.lora_gguf), where the base is one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert.architectures import architecture_for
from convert.checkpoint import open_checkpoint
from convert.hf_to_gguf import OUTPUT_ELSEWHERE, embedding_rows, plan_tensors, write_gguf
from convert.lora_gguf import base_gguf, lora_path, unsupported, write_lora_gguf
from convert.perplexity import Perplexity, load_conversations, reply_perplexity
from convert.quantize import ADAPTER, FOUR_BIT, QUANTS, check_quant, quantize
from convert.verify import Verification, verify
from convert.vocab import load_hf_tokenizer, model_name, read_vocabulary
from twin import dataset, llamacpp, paths, registry
from twin.errors import UserError
from twin.files import atomic_path, scratch_file, writing
from twin.lock import twin_lock


@dataclass
class ConvertConfig:
    """What to convert and how.

    name: a twin whose `merged/` model is converted and whose registry `[model]` names the result.
    model_dir: any HF model directory instead (exactly one of name / model_dir).
    quant: `auto` (measure every 4-bit candidate on validation replies, keep the best), one of QUANTS, or
        `adapter` (a twin trained on a GGUF base: that GGUF as it is, with the LoRA as an adapter GGUF).
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
        if self.quant == ADAPTER and self.name is None:
            raise UserError(
                "--quant adapter serves a twin's base GGUF with its LoRA: pass --name NAME, or pick another --quant"
            )
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
    size_bytes: int  # with the adapter file, for `adapter`
    verification: Verification
    measures: list[QuantMeasure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lora: Path | None = None  # `adapter`: the LoRA adapter GGUF applied to `path`

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
            adapter = _adapter_source(cfg, ckpt, arch, base)
            if cfg.quant == ADAPTER:
                if isinstance(adapter, str):
                    raise UserError(f"--quant adapter is not possible for twin {cfg.name!r}: {adapter}")
                with contextlib.ExitStack() as stack:
                    candidate = _adapter_candidate(cfg, folder, adapter, ckpt, arch, verification, stack, bars)
                    result = _place(candidate, _output_path(cfg, source, ADAPTER))
            elif conversations is None:
                final = _output_path(cfg, source, cfg.quant)
                step = bars.add_task(f"quantizing {cfg.quant}", total=None)
                with atomic_path(final) as tmp:
                    quantize(base, tmp, cfg.quant, cfg.threads)
                bars.update(step, total=1, completed=1)
                result = ConvertResult(final, cfg.quant, final.stat().st_size, verification)
            else:
                result = _choose_quant(
                    cfg, source, base, folder, conversations, verification, float_type, bars, adapter, ckpt, arch
                )
    result.notes.extend(vocab.notes)
    if cfg.name is not None:
        _register(cfg.name, result)
    return result


@dataclass(frozen=True)
class AdapterSource:
    base: Path  # the 4-bit GGUF the twin's base was dequantized from
    adapter_dir: Path  # the PEFT adapter
    base_quant: str  # the base file's type (q4_1 for the embedded model)


def _adapter_source(cfg: ConvertConfig, ckpt: Any, arch: Any, converted: Path) -> AdapterSource | str:
    """What the `adapter` candidate is made of, or why there is none."""
    if cfg.name is None:
        return "it needs a twin (--name), not a model folder"
    train = registry.read(cfg.name).get("train", {})
    base = base_gguf(train)
    if base is None:
        return f"its base {train.get('base', '?')!r} is not a GGUF (only the embedded default is)"
    adapter_dir = paths.twin_dir(cfg.name) / str(train.get("adapter", "adapter"))
    if not adapter_dir.is_dir():
        return f"it has no LoRA adapter ({adapter_dir}): train it again with `twin train --name {cfg.name}`"
    why = unsupported(adapter_dir, arch)
    if why:
        return why
    # The base file's tokenizer and chat template are what the daemon will use: they must be the merged model's.
    mine, theirs = llamacpp.file_metadata(converted), llamacpp.file_metadata(base)
    for key in ("general.architecture", "tokenizer.chat_template", "tokenizer.ggml.model"):
        if mine.get(key) != theirs.get(key):
            return f"the trained model's {key} differs from its base GGUF's"
    types = {str(ftype): name for name, ftype in QUANTS.items()}
    return AdapterSource(base, adapter_dir, types.get(theirs.get("general.file_type", ""), "?"))


def _adapter_candidate(cfg, folder, source, ckpt, arch, verification, stack, bars) -> ConvertResult:
    """The base GGUF copied and the LoRA written, as scratch files of `stack` (ConvertResult.path and .lora)."""
    base, adapter_dir = source.base, source.adapter_dir
    step = bars.add_task("writing the LoRA adapter GGUF", total=None)
    gguf = stack.enter_context(scratch_file(folder / f"model-{ADAPTER}.gguf"))
    lora = stack.enter_context(scratch_file(lora_path(folder / f"model-{ADAPTER}.gguf")))
    shutil.copyfile(base, gguf)
    write_lora_gguf(adapter_dir, ckpt.config, arch, lora)
    bars.update(step, total=1, completed=1)
    return ConvertResult(gguf, ADAPTER, gguf.stat().st_size + lora.stat().st_size, verification, lora=lora)


def _place(result: ConvertResult, final: Path) -> ConvertResult:
    """The `adapter` candidate's scratch files renamed to `final` and its adapter beside it (the adapter first:
    a daemon reloads when `final` changes)."""
    assert result.lora is not None
    os.replace(result.lora, lora_path(final))
    os.replace(result.path, final)
    result.path, result.lora = final, lora_path(final)
    return result


def _choose_quant(
    cfg, source, base, folder, conversations, verification, float_type, bars, adapter, ckpt, arch
) -> ConvertResult:
    """Quantize to each 4-bit candidate (and make the adapter one), measure my replies' perplexity, keep the lowest.

    With an `adapter` candidate the merged model is not quantized to the base's own type: both keep the base's
    grid, and the adapter keeps the LoRA's change exactly where requantizing rounds it (mostly) away (measured on
    the development corpus's twin: q4_1 x1.43 of f16, the adapter x0.999).
    """

    def measure(path: Path, label: str, lora: Path | None = None) -> Perplexity:
        task = bars.add_task(f"perplexity {label}", total=len(conversations))
        result = reply_perplexity(
            path, conversations, threads=cfg.threads, advance=lambda: bars.advance(task), lora=lora
        )
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
            if not isinstance(adapter, str) and quant == adapter.base_quant:
                continue
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
        with_adapter = None
        if not isinstance(adapter, str):
            with_adapter = _adapter_candidate(cfg, folder, adapter, ckpt, arch, verification, stack, bars)
            m = QuantMeasure(ADAPTER, with_adapter.size_bytes, measure(with_adapter.path, ADAPTER, with_adapter.lora))
            measures.append(m)
            if m.perplexity.value < best.perplexity.value:  # type: ignore[union-attr]
                best_path.unlink()
                with_adapter.measures = measures
                return _place(with_adapter, _output_path(cfg, source, ADAPTER))
        final = _output_path(cfg, source, best.quant)
        with atomic_path(final) as tmp:
            os.replace(best_path, tmp)
    result = ConvertResult(final, best.quant, best.size_bytes, verification, measures)
    if isinstance(adapter, str):
        result.notes.append(f"no `adapter` candidate: {adapter}")
    return result


def _register(name: str, result: ConvertResult) -> None:
    """Point the twin's `[model]` at the new GGUF; a GGUF it named before, in its folder, is removed."""
    folder = paths.twin_dir(name)
    previous = registry.read(name).get("model", {}).get("gguf")
    inside = result.path.resolve().parent == folder.resolve()
    gguf_name = result.path.name if inside else str(result.path.resolve())
    previous_lora = registry.read(name).get("model", {}).get("lora")
    values: dict[str, object] = {
        "gguf": gguf_name,
        **({"lora": result.lora.name if inside else str(result.lora.resolve())} if result.lora else {}),
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
    for old, new in ((previous, gguf_name), (previous_lora, values.get("lora"))):
        if old and old != new and "/" not in old:
            with contextlib.suppress(FileNotFoundError):
                (folder / old).unlink()


def report(result: ConvertResult) -> str:
    """What `twin convert` prints on stdout."""
    lines = [result.verification.summary(), *(f"note: {n}" for n in result.verification.notes + result.notes)]
    if result.measures:
        lines.append(result.table())
    lines.append(f"wrote {result.path} ({result.quant}, {result.size_bytes / 2**20:.1f} MB)")
    return "\n".join(lines)
