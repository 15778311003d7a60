"""LoRA fine-tuning of a base model on a twin's dataset: `train(TrainConfig(name=...))`.

The recipe reads top to bottom in `_train`: read the dataset, open the
checkpoint, prepare (tokenize, load the base, add LoRA, the optimizer), restore
a resumed run, plan a time budget, fit (steps, validations, checkpoints,
stopping early or on a signal), then finish: save the best adapter and the base
with it merged in. The steps share one `_Run`. A plain PyTorch loop: batches
grouped by length and padded to their longest sample, logits only where there
are labels, autocast on CUDA.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.train.budget import Replanner
from trainer.train.config import TrainConfig, check_resumable, resume_config
from trainer.train.interrupt import SetupInterrupted, StopFlag
from twin import registry
from twin.errors import UserError
from twin.files import write_text, writing
from twin.lock import twin_lock

__all__ = ["LOG_FILE", "TrainConfig", "TrainResult", "resume_config", "train"]

log = logging.getLogger("twin.trainer")

LOG_FILE = "train_log.jsonl"
VAL_MAX_LENGTH = 256  # tokens of a validation sample (its reply and the newest context)


@dataclass
class TrainResult:
    name: str
    merged_dir: Path | None  # None when interrupted
    adapter_dir: Path | None
    log_path: Path
    steps: int  # optimizer steps done
    total_steps: int
    best_step: int
    first_val_loss: float | None  # before training (None without a validation split)
    best_val_loss: float | None
    tokens: int  # real tokens trained on (no padding)
    tokens_per_s: float
    interrupted: bool = False
    signal: int = 0  # the signal that interrupted training (SIGINT or SIGTERM)
    stopped_early: bool = False
    checkpointed: bool = False  # an interrupted run saved a checkpoint (False: it stopped before training began)


def train(
    config: TrainConfig,
    on_step: Callable[[int], None] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Fine-tune `config.base` with LoRA on the twin's dataset; write adapter/, merged/, train_log.jsonl, [train].

    `on_step(step)` is called once before the first step (with the step training
    starts from) and after every optimizer step. `on_event(event)` gets every
    train_log.jsonl line, a `step` event after each optimizer step (loss, tokens/s,
    eta_seconds) and a `checkpoint` event after each save. SIGINT/SIGTERM during
    training save a checkpoint and return with `interrupted=True`;
    `TrainConfig(resume=True)` continues from it and ends as an uninterrupted run would.
    A signal before training begins stops at once and changes nothing.
    The twin is locked for the whole run; adapter/, merged/ and `[train]` are
    replaced as one unit at the end.
    """
    stop = StopFlag()
    with stop.installed():  # from the first second: a signal during setup is never lost
        try:
            with writing(config.twin_dir, "training"), twin_lock(config.name, "twin train"):
                return _train(config, on_step, on_event, stop)
        except SetupInterrupted:
            return _setup_interrupted(config, stop)


def _setup_interrupted(config: TrainConfig, stop: StopFlag) -> TrainResult:
    return TrainResult(
        name=config.name,
        merged_dir=None,
        adapter_dir=None,
        log_path=config.twin_dir / LOG_FILE,
        steps=0,
        total_steps=0,
        best_step=0,
        first_val_loss=None,
        best_val_loss=None,
        tokens=0,
        tokens_per_s=0.0,
        interrupted=True,
        signal=stop.signum,
    )


@dataclass
class _Data:
    """The dataset as read before the heavy imports: its mistakes are reported at once."""

    train_file: Path
    val_file: Path
    train_convs: list[Any]
    val_convs: list[Any]
    base_dir: Path


@dataclass
class _Run:
    """What the recipe's steps share: the settings, the model and its optimizer, and where training stands."""

    config: TrainConfig
    stop: StopFlag
    on_step: Callable[[int], None] | None
    on_event: Callable[[dict[str, Any]], None] | None
    started_at: float  # time.perf_counter() at the start, before the data is read
    data: _Data
    data_hash: str = ""
    resumed: tuple[Any, Any, Any] | None = None  # the checkpoint's state, adapter and best adapter
    device: Any = None
    amp_dtype: Any = None  # CUDA's mixed precision (bf16, or fp16 with a grad scaler); None: fp32
    tokenizer: Any = None
    plain_format: bool = False
    pad_id: int = 0
    train_samples: list[Any] = field(default_factory=list)
    val_samples: list[Any] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    n_train: int = 0  # samples (replies); train_samples may be whole-conversation pieces
    model: Any = None
    saved_dtype: Any = None
    backbone: Any = None
    head: Any = None
    params: list[Any] = field(default_factory=list)
    optimizer: Any = None
    schedule: Any = None
    scheduler: Any = None
    scaler: Any = None
    groups_per_epoch: int = 0
    total_steps: int = 0
    progress: Any = None  # checkpoint.Progress
    best: dict[str, Any] | None = None  # the adapter weights of the best validation so far
    budget: Replanner | None = None  # the step count's planner on a time budget, while it still plans
    display: Any = None  # the TrainDisplay while the loop runs
    fresh_log: bool = True  # the first line written replaces an earlier run's log
    last_loss: float | None = None
    stopped_early: bool = False
    run_steps: int = 0  # this run's own pace (a resumed run's first steps are no guide)
    run_seconds: float = 0.0
    window_loss: float = 0.0  # since the last train line of the log
    window_tokens: int = 0
    window_labels: int = 0

    @property
    def budgeted(self) -> bool:
        return self.config.time_budget_s > 0

    @property
    def ckpt_dir(self) -> Path:
        from trainer.train import checkpoint

        return self.config.twin_dir / checkpoint.CHECKPOINT_DIR

    @property
    def log_path(self) -> Path:
        return self.config.twin_dir / LOG_FILE


def _train(
    config: TrainConfig,
    on_step: Callable[[int], None] | None,
    on_event: Callable[[dict[str, Any]], None] | None,
    stop: StopFlag,
) -> TrainResult:
    """The recipe: read, open the checkpoint, prepare, restore, fit, then save what stays."""
    started_at = time.perf_counter()  # a time budget counts from here: loading the model is part of it
    run = _Run(config, stop, on_step, on_event, started_at, _read_data(config, stop))
    import torch  # heavy imports only now: the mistakes in the data are reported at once

    _open_checkpoint(run)
    _prepare(run)
    if run.resumed is not None:
        _restore(run)
    _plan_budget(run)
    try:
        _fit(run)
    except (torch.OutOfMemoryError, RuntimeError) as e:
        if isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e) or "can't allocate memory" in str(e):
            raise UserError(
                f"out of memory on {run.device} (batch size {config.batch_size}, max length {config.max_length}): "
                "retry with a smaller --batch-size (and a larger --grad-accum), a shorter --max-length, or --gradient-checkpointing"
            ) from None
        raise
    result = _result(run)
    if stop.requested:
        return result
    return _finish(run, result)


def _read_data(config: TrainConfig, stop: StopFlag) -> _Data:
    """The dataset's conversations and the base's folder; every mistake found here costs no model loading."""
    from trainer.bases import resolve_base
    from trainer.train.lora import target_modules
    from trainer.train.samples import CHARS_PER_TOKEN, read_jsonl

    train_file, val_file = config.data_dir / "train.jsonl", config.data_dir / "val.jsonl"
    registry.finish_pending(config.name)
    registry.read(config.name)  # a broken twin.toml fails now, not after training
    # Each message is clipped to what max_length tokens can hold: memory stays bounded whatever the data.
    max_chars = config.max_length * CHARS_PER_TOKEN
    train_convs = read_jsonl(train_file, max_chars)
    if not train_convs:
        raise UserError(f"dataset file {train_file} has no samples: ingest more chat history with `twin ingest`")
    val_convs = read_jsonl(val_file, max_chars)[: config.max_val_samples] if val_file.exists() else []
    if not val_convs:
        log.warning("%s is missing or empty: training without validation (no perplexity, no early stopping)", val_file)
    base_dir = resolve_base(config.base)
    target_modules(_model_type(base_dir), config.lora_targets)  # an unknown architecture fails before any work
    stop.check()
    return _Data(train_file, val_file, train_convs, val_convs, base_dir)


def _open_checkpoint(run: _Run) -> None:
    """The checkpoint to resume (refused if it was made with other settings or data), or a warning it is replaced."""
    from trainer.train import checkpoint

    run.data_hash = checkpoint.fingerprint(run.data.train_file, run.data.val_file)
    if run.config.resume:
        run.resumed = checkpoint.load(run.ckpt_dir)
        check_resumable(run.config, run.resumed[0], run.data_hash)
    elif checkpoint.exists(run.ckpt_dir):
        log.warning(
            "starting over: the checkpoint of the interrupted run in %s will be replaced (--resume continues it)",
            run.ckpt_dir,
        )


def _prepare(run: _Run) -> None:
    """The device, the tokenized samples, the base with LoRA, the optimizer and its schedule."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.train.budget import Schedule
    from trainer.train.lora import add_lora
    from trainer.train.loss import backbone_and_head
    from trainer.train.samples import encode_all, ensure_chat_template

    config, data = run.config, run.data
    run.device = _pick_device(config.device)
    if run.device.type == "cuda":
        run.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    tokenizer = run.tokenizer = AutoTokenizer.from_pretrained(data.base_dir)
    run.plain_format = ensure_chat_template(tokenizer)
    if tokenizer.eos_token_id is None:
        raise UserError(f"the tokenizer of base {config.base!r} has no end-of-sequence token: pick another --base")
    if tokenizer.pad_token is None:  # GPT-2: batches (and later users of merged/) pad with EOS
        tokenizer.pad_token = tokenizer.eos_token
    run.pad_id = tokenizer.pad_token_id
    train_convs, val_convs = data.train_convs, data.val_convs
    if config.condition:
        from trainer.train.conditioning import conditioned

        train_convs = conditioned(data.train_file, train_convs)
        val_convs = conditioned(data.val_file, val_convs)
    if config.whole_conversations:
        from trainer.train.conversations import encode_conversations

        run.train_samples = encode_conversations(tokenizer, train_convs, config.max_length, data.train_file)
    else:
        run.train_samples = encode_all(tokenizer, train_convs, config.max_length, data.train_file)
    # Validation stays one sample per reply: its perplexity is the one `twin eval` measures on every variant.
    # Its context is cut shorter than training's pieces: validating often must stay cheap.
    run.val_samples = encode_all(tokenizer, val_convs, min(config.max_length, VAL_MAX_LENGTH), data.val_file)
    run.n_train = len(train_convs)
    if not run.train_samples:  # every reply blank after cleaning: nothing to learn, and an epoch of no steps never ends
        raise UserError(
            f"dataset file {data.train_file} has no reply with text to learn from: ingest more chat history"
        )
    data.train_convs, data.val_convs = [], []
    run.stop.check()

    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(data.base_dir, dtype=torch.float32)
    run.saved_dtype = _checkpoint_dtype(data.base_dir)
    model.config.use_cache = False
    if config.gradient_checkpointing:
        # Non-reentrant: works with frozen inputs (LoRA) and replays dropout masks. Newer transformers renamed the call.
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = run.model = add_lora(
        model, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets or None
    )
    model.to(run.device)
    run.stop.check()

    run.backbone, run.head = backbone_and_head(model)
    run.params = [p for p in model.parameters() if p.requires_grad]
    run.optimizer = torch.optim.AdamW(run.params, lr=config.lr, weight_decay=config.weight_decay)
    run.lengths = [len(s) for s in run.train_samples]
    run.groups_per_epoch = math.ceil(math.ceil(len(run.train_samples) / config.batch_size) / config.grad_accum)
    run.total_steps = config.max_steps or run.groups_per_epoch * config.epochs
    run.schedule = Schedule(round(config.warmup_ratio * run.total_steps), run.total_steps)
    run.scheduler = torch.optim.lr_scheduler.LambdaLR(run.optimizer, run.schedule)
    run.scaler = torch.amp.GradScaler("cuda") if run.amp_dtype == torch.float16 else None
    from trainer.train import checkpoint

    run.progress = checkpoint.Progress()


def _restore(run: _Run) -> None:
    """Continue where the checkpoint stopped: adapter, optimizer, schedule, scaler, progress, random state, log."""
    import torch
    from peft import set_peft_model_state_dict

    from trainer.train import checkpoint

    assert run.resumed is not None
    state, adapter, run.best = run.resumed
    set_peft_model_state_dict(run.model, adapter)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler is not None and state["scaler"] is not None:
        run.scaler.load_state_dict(state["scaler"])
    run.progress = checkpoint.Progress(**state["progress"])
    torch.set_rng_state(state["rng"])
    if run.device.type == "cuda" and state["cuda_rng"]:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    _trim_log(run.log_path, run.progress.step)
    if run.progress.planned_steps:
        run.total_steps = run.schedule.total = run.progress.planned_steps
    run.fresh_log = False  # the resumed run appends to its log


def _plan_budget(run: _Run) -> None:
    """On a time budget: one validation at the end on fewer samples, and the step count planned from the speed.

    A resumed run keeps the count its budget had chosen.
    """
    from trainer.train.budget import BUDGET_VAL_SAMPLES

    if not run.budgeted:
        return
    run.val_samples = run.val_samples[:BUDGET_VAL_SAMPLES]
    if not run.progress.planned_steps:
        run.budget = Replanner(
            budget_s=run.config.time_budget_s,
            started_at=run.started_at,
            tokens_per_step=sum(run.lengths) / run.groups_per_epoch,
            val_tokens=sum(len(v) for v in run.val_samples),
            cap=run.total_steps,
            reserved_s=run.config.time_reserved_s,
        )


def _fit(run: _Run) -> None:
    """The loop: epochs of batch groups, each an optimizer step; validating, checkpointing, stopping when told."""
    from trainer.train.batches import epoch_batches
    from trainer.train.display import TrainDisplay

    config, progress, stop = run.config, run.progress, run.stop
    run.model.train()
    if run.resumed is None and not run.budgeted:  # on a budget the one validation is the last: no time for two
        _validate(run)
    stop.check()
    stop.training()  # from here a signal finishes the step and saves a checkpoint
    with TrainDisplay(run.total_steps, progress.step) as run.display:
        if run.on_step is not None:
            run.on_step(progress.step)
        while progress.step < run.total_steps and not run.stopped_early and not stop.requested:
            batches = epoch_batches(run.lengths, config.batch_size, config.seed, progress.epoch)
            groups = [batches[g : g + config.grad_accum] for g in range(0, len(batches), config.grad_accum)]
            while progress.group < len(groups) and progress.step < run.total_steps:
                _step(run, groups[progress.group])
                if config.eval_every and not run.budgeted and progress.step % config.eval_every == 0:
                    run.stopped_early = _validate(run)
                    _save_checkpoint(run)
                if run.stopped_early or stop.requested:
                    break
            if progress.group >= len(groups):
                progress.epoch += 1
                progress.group = 0
                if not run.budgeted:  # on a budget the one validation is the last
                    run.stopped_early = _validate(run) or run.stopped_early
                if progress.step < run.total_steps and not run.stopped_early:
                    _save_checkpoint(run)
        if not run.stopped_early and not stop.requested:
            _validate(run)  # a max_steps run may end mid-epoch
        if run.stopped_early:
            run.display.note(
                f"early stopping: no improvement in {config.patience} validations; best at step {progress.best_step}"
            )
        if stop.requested:
            _save_checkpoint(run)
            run.display.note(f"interrupted at step {progress.step}/{run.total_steps}; checkpoint saved")


def _step(run: _Run, group: list[list[int]]) -> None:
    """One optimizer step over a group of micro-batches, then its bookkeeping: budget, display, events, log."""
    import torch

    from trainer.train.batches import collate
    from trainer.train.loss import label_loss

    config, progress = run.config, run.progress
    started = time.perf_counter()
    micro = [collate([run.train_samples[i] for i in idx], run.pad_id) for idx in group]
    n_labels = sum(b.label_tokens for b in micro)
    step_loss = 0.0
    for batch in micro:
        with _autocast(run):
            loss, _ = label_loss(run.backbone, run.head, batch.to(run.device))
        loss = loss / max(n_labels, 1)
        (run.scaler.scale(loss) if run.scaler else loss).backward()
        step_loss += float(loss.detach())
    if run.scaler is not None:
        run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.params, 1.0)
    if run.scaler is not None:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)

    tokens = sum(b.real_tokens for b in micro)
    progress.step += 1
    progress.group += 1
    progress.tokens += tokens
    progress.seconds += time.perf_counter() - started
    run.window_loss += step_loss * n_labels
    run.window_labels += n_labels
    run.window_tokens += tokens
    tps = progress.tokens / max(progress.seconds, 1e-9)
    if run.budget is not None:
        plan = run.budget.observe(progress.step, tokens, started)
        if plan is not None:
            _replan(run, plan)
    run.display.update(progress.step, step_loss, tps)
    run.last_loss = step_loss
    run.run_steps += 1
    run.run_seconds += time.perf_counter() - started
    if run.on_event is not None:
        run.on_event(
            {
                "event": "step",
                "step": progress.step,
                "total_steps": run.total_steps,
                "loss": step_loss,
                "tokens_per_s": tps,
                "eta_seconds": (run.total_steps - progress.step) * run.run_seconds / run.run_steps,
            }
        )
    if progress.step % config.log_every == 0:
        _record(
            run,
            {
                "event": "train",
                "step": progress.step,
                "epoch": progress.epoch,
                "loss": run.window_loss / max(run.window_labels, 1),
                "lr": run.scheduler.get_last_lr()[0],
                "tokens": run.window_tokens,
                "tokens_per_s": tps,
            },
        )
        run.window_loss, run.window_tokens, run.window_labels = 0.0, 0, 0
    if run.on_step is not None:
        run.on_step(progress.step)


def _replan(run: _Run, plan: dict[str, float]) -> None:
    """A time budget chose a step count: the schedule, the display and the log follow it."""
    first = not run.progress.planned_steps
    total = int(plan["steps"])
    run.total_steps = run.progress.planned_steps = run.schedule.total = total
    # the warm-up follows the chosen count (it was a share of the epochs' count)
    run.schedule.warmup = min(run.schedule.warmup, round(run.config.warmup_ratio * total))
    run.display.resize(total)
    _record(run, {"event": "budget", "step": run.progress.step, **plan})  # plan_steps' arguments, then "steps"
    if first:
        tokens = total * plan["tokens_per_step"]
        kept = f", {plan['reserved_s']:.0f}s kept for what follows" if plan["reserved_s"] else ""
        run.display.note(
            f"time budget {run.config.time_budget_s:.0f}s: {plan['tokens_per_s']:.0f} tokens/s "
            f"measured, {total} steps chosen ({tokens:.0f} tokens, {tokens / sum(run.lengths):.2f} epochs){kept}"
        )


def _autocast(run: _Run) -> Any:
    import torch

    return torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None)


def _val_loss(run: _Run) -> float:
    """The mean loss per label token over the validation samples."""
    import torch

    from trainer.train.batches import collate, sequential_batches
    from trainer.train.loss import label_loss

    run.model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), _autocast(run):
        for idx in sequential_batches([len(s) for s in run.val_samples], run.config.batch_size):
            batch = collate([run.val_samples[i] for i in idx], run.pad_id).to(run.device)
            loss, n = label_loss(run.backbone, run.head, batch)
            total, count = total + float(loss), count + n
    run.model.train()
    return total / max(count, 1)


def _validate(run: _Run) -> bool:
    """Evaluate, log, keep the best adapter; True when early stopping says stop."""
    progress, config = run.progress, run.config
    if not run.val_samples or progress.last_eval_step == progress.step:
        return False
    loss = _val_loss(run)
    progress.last_eval_step = progress.step
    progress.last_val_loss = loss
    if progress.first_val_loss is None:
        progress.first_val_loss = loss
    ppl = math.exp(min(loss, 50))
    _record(run, {"event": "eval", "step": progress.step, "epoch": progress.epoch, "val_loss": loss, "val_ppl": ppl})
    if progress.best_loss is None or loss < progress.best_loss - config.min_delta:
        progress.best_loss, progress.best_step, progress.bad_evals = loss, progress.step, 0
        run.best = _adapter_weights(run)
    else:
        progress.bad_evals += 1
    if run.display is not None:
        run.display.note(f"step {progress.step}: validation loss {loss:.4f} (perplexity {ppl:.1f})")
    return config.patience > 0 and progress.bad_evals >= config.patience


def _adapter_weights(run: _Run) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(run.model).items()}


def _save_checkpoint(run: _Run) -> None:
    from trainer.train import checkpoint

    checkpoint.save(
        run.ckpt_dir,
        adapter=_adapter_weights(run),
        best=run.best,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        scaler=run.scaler,
        progress=run.progress,
        config=dataclasses.asdict(run.config),
        data_hash=run.data_hash,
    )
    if run.on_event is not None:
        run.on_event(
            {
                "event": "checkpoint",
                "step": run.progress.step,
                "train_loss": run.last_loss,
                "val_loss": run.progress.last_val_loss,
            }
        )


def _record(run: _Run, event: dict[str, Any]) -> None:
    """A line of train_log.jsonl (a fresh run's first one replaces an earlier run's log), and the same event."""
    line = json.dumps(event) + "\n"
    if run.fresh_log:
        write_text(run.log_path, line)
        run.fresh_log = False
    else:
        with open(run.log_path, "a", encoding="utf-8") as f:
            f.write(line)
    if run.on_event is not None:
        run.on_event(event)


def _result(run: _Run) -> TrainResult:
    progress = run.progress
    return TrainResult(
        name=run.config.name,
        merged_dir=None,
        adapter_dir=None,
        log_path=run.log_path,
        steps=progress.step,
        total_steps=run.total_steps,
        best_step=progress.best_step if run.val_samples else progress.step,
        first_val_loss=progress.first_val_loss,
        best_val_loss=progress.best_loss,
        tokens=progress.tokens,
        tokens_per_s=progress.tokens / max(progress.seconds, 1e-9),
        interrupted=run.stop.requested,
        signal=run.stop.signum,
        stopped_early=run.stopped_early,
        checkpointed=run.stop.requested,
    )


def _finish(run: _Run, result: TrainResult) -> TrainResult:
    """What stays: the best adapter, and the base with it merged in, replacing the old ones as one unit."""
    from peft import set_peft_model_state_dict

    from trainer.train import checkpoint
    from trainer.train.merge import save_adapter, save_merged

    config, model = run.config, run.model
    if run.best is not None:
        set_peft_model_state_dict(model, run.best)
    model.to("cpu")
    # adapter/, merged/ and [train] replace the old ones as one unit: a kill before the end leaves the old twin whole.
    with registry.replacing(config.name) as unit:
        save_adapter(model, unit.dir / "adapter", str(run.data.base_dir))
        table = _train_table(
            config, run.data.base_dir, model, run.plain_format, result, run.n_train, len(run.val_samples), run.device
        )
        # whole-conversation pieces (= samples with --per-reply)
        unit.set("train", table | {"train_sequences": len(run.train_samples)})
        save_merged(model, run.tokenizer, unit.dir / "merged", run.saved_dtype)
    checkpoint.remove(run.ckpt_dir)
    result.adapter_dir, result.merged_dir = config.twin_dir / "adapter", config.twin_dir / "merged"
    return result


def _pick_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is visible to PyTorch; use --device cpu (or auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: Apple's MPS is not available here; use --device cpu (or auto)")
    return torch.device(name)


def _model_type(base_dir: Path) -> str:
    try:
        return str(json.loads((base_dir / "config.json").read_text())["model_type"])
    except (OSError, ValueError, KeyError):
        raise UserError(
            f"{base_dir / 'config.json'} does not describe a model (no model_type): pass a Hugging Face causal LM"
        ) from None


def _checkpoint_dtype(base_dir: Path) -> Any:
    """The dtype the base was stored in: merged/ is saved in it (bf16 stays bf16, the embedded copy is fp32)."""
    import torch

    try:
        config = json.loads((base_dir / "config.json").read_text())
    except (OSError, ValueError):
        return torch.float32
    name = config.get("dtype") or config.get("torch_dtype") or "float32"
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(str(name), torch.float32)


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past the checkpoint: the resumed run writes them again."""
    if not path.is_file():
        write_text(path, "")
        return
    keep = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    write_text(path, "".join(line + "\n" for line in keep))


def _train_table(config, base_dir, model, plain_format, result, n_train, n_val, device) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    table: dict[str, Any] = {
        "base": config.base,
        "base_path": str(base_dir),
        "architecture": model.config.model_type,
        "chat_template": "plain" if plain_format else "base",
        "adapter": "adapter",
        "merged": "merged",
        "log": LOG_FILE,
        "train_samples": n_train,
        "val_samples": n_val,
        "steps": result.steps,
        "best_step": result.best_step,
        "stopped_early": result.stopped_early,
        "tokens": result.tokens,
        "tokens_per_s": round(result.tokens_per_s, 1),
        "device": str(device),
        "settings": {k: v for k, v in dataclasses.asdict(config).items() if k not in ("name", "resume", "dataset_dir")},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }
    if result.best_val_loss is not None:
        table["best_val_loss"] = round(result.best_val_loss, 5)
        table["best_val_ppl"] = round(math.exp(min(result.best_val_loss, 50)), 3)
        table["first_val_loss"] = round(result.first_val_loss, 5)
    return table
