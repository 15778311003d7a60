"""`twin train`'s settings: one validated dataclass, and the settings of a checkpoint to resume."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.bases import BASE_HELP  # light: no torch
from twin import paths
from twin.dataset import DATASET_DIR
from twin.errors import UserError

# Settings a resumed run may change: they do not alter what is computed. A time budget may: a build hands
# training what its other stages left (a different figure each run), and a resumed run keeps the step count
# its budget had chosen.
_RESUME_FREE = ("resume", "device", "dataset_dir", "log_every", "time_budget_s", "time_reserved_s")


def _field(default: Any, help: str, flag: str = "", default_in_help: bool = False) -> Any:
    """A setting with its default and its flag's help (and the flag, where it is not --the-field-name)."""
    return field(default=default, metadata={"help": help, "flag": flag, "default_in_help": default_in_help})


@dataclass
class TrainConfig:
    """`twin train`: what to train on, the LoRA shape, the optimizer and the schedule."""

    name: str  # the twin: reads twins/<name>/dataset/, writes adapter/, merged/, train_log.jsonl
    # Each field's `help` is its flag's help in `twin train` and `twin build` (twin.commands.options).
    base: str = _field(
        "default", BASE_HELP, default_in_help=True
    )  # default (embedded SmolLM2), a short name, a hub id or a local directory
    epochs: int = _field(3, "Passes over the training split.")
    max_steps: int = _field(0, "Optimizer steps to run instead (0 = epochs decide).")
    # samples (whole-conversation pieces, or replies with --per-reply) per micro-batch
    batch_size: int = _field(2, "Samples (conversation pieces) per micro-batch.")
    grad_accum: int = _field(1, "Micro-batches per optimizer step.")
    lr: float = _field(3e-4, "Peak learning rate.")
    # share of the steps with a linearly rising learning rate, then cosine decay
    warmup_ratio: float = _field(0.05, "Share of steps warming up before the cosine decay.")
    weight_decay: float = _field(0.0, "AdamW weight decay.")
    # tokens per sample: a conversation is cut into pieces this long; a reply's older context is cut first
    # (memory grows with it: ~2 MB a token on the embedded model)
    max_length: int = _field(512, "Tokens per conversation piece (or sample); older context is cut first.")
    # every one of my turns labelled in one sequence; False (--per-reply): one sample per reply
    whole_conversations: bool = _field(
        True,
        "One sample per reply with its context, instead of whole conversations (all my turns).",
        flag="--per-reply",
    )
    # a system line naming the chat and who I talk to (twin.conditioning)
    condition: bool = _field(
        True, "Leave out the system line naming the chat and who I talk to.", flag="--no-condition"
    )
    # fit the step count to this many seconds of wall clock (0: epochs/max_steps decide)
    time_budget_s: float = _field(
        0.0, "Fit the step count to this wall clock (15m, 1h), from the speed of the first steps.", flag="--time-budget"
    )
    # of time_budget_s, what a caller's later stages take at budget.RESERVE_TOKENS_PER_S (twin build sets it)
    time_reserved_s: float = _field(0.0, "Seconds of the time budget kept for the stages after training.")
    lora_r: int = _field(16, "LoRA rank.")
    lora_alpha: int = _field(32, "LoRA alpha.")
    lora_dropout: float = _field(0.05, "LoRA dropout.")
    # module names; empty = the architecture's map
    lora_targets: list[str] = field(
        default_factory=list,
        metadata={"help": "Module to adapt (repeatable; default: every linear projection).", "flag": "--lora-target"},
    )
    # 0 = after each epoch only
    eval_every: int = _field(100, "Validate every N steps, and after each epoch.")
    max_val_samples: int = _field(256, "Validation samples used.")  # the first N of val.jsonl
    patience: int = _field(3, "Stop after N validations without improvement (0 = never).")
    min_delta: float = _field(0.0, "Smallest validation-loss fall that counts as improvement.")
    log_every: int = _field(10, "Steps between lines in train_log.jsonl.")
    # the cost as measured on the embedded model (README, "Memory on a CPU")
    gradient_checkpointing: bool = _field(False, "Recompute activations: less memory, about 30% slower.")
    device: str = _field("auto", "auto (CUDA when present), cpu, cuda, cuda:N, mps.")
    seed: int = _field(0, "Random seed.")
    resume: bool = _field(False, "Continue an interrupted run from its checkpoint.")  # from twins/<name>/checkpoint/
    dataset_dir: str = _field("", "Dataset folder (default: the twin's dataset/).", flag="--dataset")

    def __post_init__(self) -> None:
        paths.check_name(self.name)
        _check(bool(self.base.strip()), "base", "must name a model", self.base)
        _check(1 <= self.epochs <= 1000, "epochs", "must be between 1 and 1000", self.epochs)
        _check(self.max_steps >= 0, "max_steps", "must be 0 (use epochs) or more", self.max_steps)
        _check(1 <= self.batch_size <= 4096, "batch_size", "must be between 1 and 4096", self.batch_size)
        _check(1 <= self.grad_accum <= 4096, "grad_accum", "must be between 1 and 4096", self.grad_accum)
        _check(0 < self.lr <= 1, "lr", "must be above 0 and at most 1", self.lr)
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", "must be at least 0 and below 1", self.warmup_ratio)
        _check(self.weight_decay >= 0, "weight_decay", "must not be negative", self.weight_decay)
        _check(16 <= self.max_length <= 131072, "max_length", "must be between 16 and 131072", self.max_length)
        _check(self.time_budget_s >= 0, "time_budget", "must be 0 (off) or more seconds", self.time_budget_s)
        _check(self.time_reserved_s >= 0, "time_reserved_s", "must not be negative", self.time_reserved_s)
        _check(1 <= self.lora_r <= 1024, "lora_r", "must be between 1 and 1024", self.lora_r)
        _check(self.lora_alpha >= 1, "lora_alpha", "must be at least 1", self.lora_alpha)
        _check(0 <= self.lora_dropout < 1, "lora_dropout", "must be at least 0 and below 1", self.lora_dropout)
        _check(self.eval_every >= 0, "eval_every", "must be 0 (each epoch) or more", self.eval_every)
        _check(self.max_val_samples >= 1, "max_val_samples", "must be at least 1", self.max_val_samples)
        _check(self.patience >= 0, "patience", "must be 0 (never stop early) or more", self.patience)
        _check(self.min_delta >= 0, "min_delta", "must not be negative", self.min_delta)
        _check(self.log_every >= 1, "log_every", "must be at least 1", self.log_every)
        dev = self.device
        _check(
            dev in ("auto", "cpu", "mps") or dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit()),
            "device",
            "must be auto, cpu, cuda, cuda:N or mps",
            dev,
        )

    @property
    def twin_dir(self) -> Path:
        return paths.twin_dir(self.name)

    @property
    def data_dir(self) -> Path:
        return Path(self.dataset_dir).expanduser() if self.dataset_dir else self.twin_dir / DATASET_DIR


def resume_config(name: str, overrides: dict[str, Any]) -> TrainConfig:
    """The settings of the twin's checkpoint with `overrides` on top, marked to resume.

    train() then refuses overrides that would change what is computed.
    """
    from trainer.train import checkpoint

    folder = paths.twin_dir(name) / checkpoint.CHECKPOINT_DIR
    state, _, _ = checkpoint.load(folder)
    stored = {f.name: state["config"][f.name] for f in dataclasses.fields(TrainConfig) if f.name in state["config"]}
    return TrainConfig(**{**stored, **overrides, "name": name, "resume": True})


def _check(ok: bool, name: str, why: str, value: object) -> None:
    if not ok:
        raise UserError(f"--{name.replace('_', '-')} {why}, got {value!r}")


def check_resumable(config: TrainConfig, state: dict[str, Any], data_hash: str) -> None:
    stored = state["config"]
    for f in dataclasses.fields(TrainConfig):
        if f.name in _RESUME_FREE:
            continue
        if stored.get(f.name) != getattr(config, f.name):
            raise UserError(
                f"the checkpoint was made with --{f.name.replace('_', '-')} {stored.get(f.name)!r}, not "
                f"{getattr(config, f.name)!r}: resume with the same options, or train without --resume"
            )
    if state["data_hash"] != data_hash:
        raise UserError("the dataset changed since the checkpoint was saved: train without --resume to start over")
