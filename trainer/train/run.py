"""LoRA fine-tuning of a base model on a twin's dataset: `train(TrainConfig(name=...))`.

The recipe reads top to bottom: read the dataset, load the base, add LoRA,
train (evaluating, checkpointing, stopping early or on a signal), then save the
best adapter and the base with it merged in. A plain PyTorch loop: batches
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _train(
    config: TrainConfig,
    on_step: Callable[[int], None] | None,
    on_event: Callable[[dict[str, Any]], None] | None,
    stop: StopFlag,
) -> TrainResult:
    from trainer.bases import resolve_base
    from trainer.train.lora import target_modules
    from trainer.train.samples import CHARS_PER_TOKEN, encode_all, ensure_chat_template, read_jsonl

    started_at = time.perf_counter()  # a time budget counts from here: loading the model is part of it

    # --- the data
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

    # Heavy imports only now: the mistakes above are reported at once.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.train import checkpoint
    from trainer.train.batches import collate, epoch_batches
    from trainer.train.display import TrainDisplay
    from trainer.train.lora import add_lora

    data_hash = checkpoint.fingerprint(train_file, val_file)
    folder = config.twin_dir
    ckpt_dir = folder / checkpoint.CHECKPOINT_DIR
    log_path = folder / LOG_FILE
    resumed = None
    if config.resume:
        resumed = checkpoint.load(ckpt_dir)
        check_resumable(config, resumed[0], data_hash)
    elif checkpoint.exists(ckpt_dir):
        log.warning(
            "starting over: the checkpoint of the interrupted run in %s will be replaced (--resume continues it)",
            ckpt_dir,
        )

    device = _pick_device(config.device)
    amp_dtype = None
    if device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    plain_format = ensure_chat_template(tokenizer)
    if tokenizer.eos_token_id is None:
        raise UserError(f"the tokenizer of base {config.base!r} has no end-of-sequence token: pick another --base")
    if tokenizer.pad_token is None:  # GPT-2: batches (and later users of merged/) pad with EOS
        tokenizer.pad_token = tokenizer.eos_token
    pad_id = tokenizer.pad_token_id
    if config.condition:
        from trainer.train.conditioning import conditioned

        train_convs = conditioned(train_file, train_convs)
        val_convs = conditioned(val_file, val_convs)
    if config.whole_conversations:
        from trainer.train.conversations import encode_conversations

        train_samples = encode_conversations(tokenizer, train_convs, config.max_length, train_file)
    else:
        train_samples = encode_all(tokenizer, train_convs, config.max_length, train_file)
    # Validation stays one sample per reply: its perplexity is the one `twin eval` measures on every variant.
    # Its context is cut shorter than training's pieces: validating often must stay cheap.
    val_samples = encode_all(tokenizer, val_convs, min(config.max_length, VAL_MAX_LENGTH), val_file)
    n_train = len(train_convs)  # samples (replies); train_samples may be whole-conversation pieces
    if not train_samples:  # every reply blank after cleaning: nothing to learn, and an epoch of no steps never ends
        raise UserError(f"dataset file {train_file} has no reply with text to learn from: ingest more chat history")
    del train_convs, val_convs
    stop.check()

    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    saved_dtype = _checkpoint_dtype(base_dir)
    model.config.use_cache = False
    if config.gradient_checkpointing:
        # Non-reentrant: works with frozen inputs (LoRA) and replays dropout masks. Newer transformers renamed the call.
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = add_lora(model, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets or None)
    model.to(device)
    stop.check()

    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    from trainer.train.loss import backbone_and_head, label_loss

    backbone, head = backbone_and_head(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    lengths = [len(s) for s in train_samples]
    groups_per_epoch = math.ceil(math.ceil(len(train_samples) / config.batch_size) / config.grad_accum)
    total_steps = config.max_steps or groups_per_epoch * config.epochs
    from trainer.train.budget import (
        BUDGET_VAL_SAMPLES,
        CALIBRATION_STEPS,
        EVAL_SPEEDUP,
        REPLAN_EVERY,
        Schedule,
        plan_steps,
    )

    schedule = Schedule(round(config.warmup_ratio * total_steps), total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    progress = checkpoint.Progress()
    best: dict[str, torch.Tensor] | None = None
    if resumed is not None:
        state, adapter, best = resumed
        set_peft_model_state_dict(model, adapter)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        progress = checkpoint.Progress(**state["progress"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        _trim_log(log_path, progress.step)
        if progress.planned_steps:
            total_steps = schedule.total = progress.planned_steps
    # A fresh run's first line replaces an earlier run's log; until then that log stays as it was.
    fresh_log = resumed is None
    budgeted = config.time_budget_s > 0
    # The speed is measured on the first steps, then again every REPLAN_EVERY steps (a machine that gets busier
    # mid-run would otherwise overrun the budget); a resumed run keeps the count it had chosen.
    replanning = budgeted and not progress.planned_steps
    window: list[float] = [0, 0.0, 0]  # tokens, seconds and steps since the last plan
    epochs_steps = total_steps
    if budgeted:
        val_samples = val_samples[:BUDGET_VAL_SAMPLES]

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    def evaluate() -> float:
        from trainer.train.batches import sequential_batches

        model.eval()
        total, count = 0.0, 0
        with torch.no_grad(), autocast():
            for idx in sequential_batches([len(s) for s in val_samples], config.batch_size):
                loss, n = label_loss(backbone, head, collate([val_samples[i] for i in idx], pad_id).to(device))
                total, count = total + float(loss), count + n
        model.train()
        return total / max(count, 1)

    def adapter_weights() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}

    def save_checkpoint() -> None:
        checkpoint.save(
            ckpt_dir,
            adapter=adapter_weights(),
            best=best,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            progress=progress,
            config=dataclasses.asdict(config),
            data_hash=data_hash,
        )
        if on_event is not None:
            on_event(
                {
                    "event": "checkpoint",
                    "step": progress.step,
                    "train_loss": last_loss,
                    "val_loss": progress.last_val_loss,
                }
            )

    def record(event: dict[str, Any]) -> None:
        nonlocal fresh_log
        line = json.dumps(event) + "\n"
        if fresh_log:
            write_text(log_path, line)
            fresh_log = False
        else:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(line)
        if on_event is not None:
            on_event(event)

    def validate(display: TrainDisplay | None) -> bool:
        """Evaluate, log, keep the best adapter; True when early stopping says stop."""
        nonlocal best
        if not val_samples or progress.last_eval_step == progress.step:
            return False
        loss = evaluate()
        progress.last_eval_step = progress.step
        progress.last_val_loss = loss
        if progress.first_val_loss is None:
            progress.first_val_loss = loss
        record(
            {
                "event": "eval",
                "step": progress.step,
                "epoch": progress.epoch,
                "val_loss": loss,
                "val_ppl": math.exp(min(loss, 50)),
            }
        )
        if progress.best_loss is None or loss < progress.best_loss - config.min_delta:
            progress.best_loss, progress.best_step, progress.bad_evals = loss, progress.step, 0
            best = adapter_weights()
        else:
            progress.bad_evals += 1
        if display is not None:
            display.note(f"step {progress.step}: validation loss {loss:.4f} (perplexity {math.exp(min(loss, 50)):.1f})")
        return config.patience > 0 and progress.bad_evals >= config.patience

    last_loss: float | None = None
    run_steps, run_seconds = 0, 0.0  # this run's own pace (a resumed run's first steps are no guide)
    model.train()
    stopped_early = False
    window_loss, window_tokens, window_labels = 0.0, 0, 0
    try:
        if resumed is None and not budgeted:  # on a budget the one validation is the last: no time for two
            validate(None)
        stop.check()
        stop.training()  # from here a signal finishes the step and saves a checkpoint
        with TrainDisplay(total_steps, progress.step) as display:
            if on_step is not None:
                on_step(progress.step)
            while progress.step < total_steps and not stopped_early and not stop.requested:
                batches = epoch_batches(lengths, config.batch_size, config.seed, progress.epoch)
                groups = [batches[g : g + config.grad_accum] for g in range(0, len(batches), config.grad_accum)]
                while progress.group < len(groups) and progress.step < total_steps:
                    started = time.perf_counter()
                    micro = [collate([train_samples[i] for i in idx], pad_id) for idx in groups[progress.group]]
                    n_labels = sum(b.label_tokens for b in micro)
                    step_loss = 0.0
                    for batch in micro:
                        with autocast():
                            loss, _ = label_loss(backbone, head, batch.to(device))
                        loss = loss / max(n_labels, 1)
                        (scaler.scale(loss) if scaler else loss).backward()
                        step_loss += float(loss.detach())
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)

                    tokens = sum(b.real_tokens for b in micro)
                    progress.step += 1
                    progress.group += 1
                    progress.tokens += tokens
                    progress.seconds += time.perf_counter() - started
                    window_loss += step_loss * n_labels
                    window_labels += n_labels
                    window_tokens += tokens
                    tps = progress.tokens / max(progress.seconds, 1e-9)
                    if replanning and progress.step > 1:
                        window[0] += tokens
                        window[1] += time.perf_counter() - started
                        first = not progress.planned_steps
                        if progress.step > CALIBRATION_STEPS and (first or window[2] >= REPLAN_EVERY):
                            plan: dict[str, Any] = {
                                "budget_s": config.time_budget_s,
                                "elapsed_s": time.perf_counter() - started_at,
                                "tokens_per_s": window[0] / max(window[1], 1e-9),
                                "tokens_per_step": sum(lengths) / groups_per_epoch,
                                "eval_s": sum(len(v) for v in val_samples) / (EVAL_SPEEDUP * window[0]) * window[1],
                                "done": progress.step,
                                "cap": epochs_steps,
                            }
                            total_steps = progress.planned_steps = schedule.total = plan_steps(**plan)
                            # the warm-up follows the chosen count (it was a share of the epochs' count)
                            schedule.warmup = min(schedule.warmup, round(config.warmup_ratio * total_steps))
                            display.resize(total_steps)
                            record({"event": "budget", "step": progress.step, **plan, "steps": total_steps})
                            window[:] = [0, 0.0, 0]  # the next plan reads the speed of the steps from here
                            if first:
                                display.note(
                                    f"time budget {config.time_budget_s:.0f}s: {plan['tokens_per_s']:.0f} tokens/s "
                                    f"measured, {total_steps} steps chosen ({total_steps * plan['tokens_per_step']:.0f}"
                                    f" tokens, {total_steps * plan['tokens_per_step'] / sum(lengths):.2f} epochs)"
                                )
                        window[2] += 1
                    display.update(progress.step, step_loss, tps)
                    last_loss = step_loss
                    run_steps += 1
                    run_seconds += time.perf_counter() - started
                    if on_event is not None:
                        on_event(
                            {
                                "event": "step",
                                "step": progress.step,
                                "total_steps": total_steps,
                                "loss": step_loss,
                                "tokens_per_s": tps,
                                "eta_seconds": (total_steps - progress.step) * run_seconds / run_steps,
                            }
                        )
                    if progress.step % config.log_every == 0:
                        record(
                            {
                                "event": "train",
                                "step": progress.step,
                                "epoch": progress.epoch,
                                "loss": window_loss / max(window_labels, 1),
                                "lr": scheduler.get_last_lr()[0],
                                "tokens": window_tokens,
                                "tokens_per_s": tps,
                            }
                        )
                        window_loss, window_tokens, window_labels = 0.0, 0, 0
                    if on_step is not None:
                        on_step(progress.step)
                    if config.eval_every and not budgeted and progress.step % config.eval_every == 0:
                        stopped_early = validate(display)
                        save_checkpoint()
                    if stopped_early or stop.requested:
                        break
                if progress.group >= len(groups):
                    progress.epoch += 1
                    progress.group = 0
                    if not budgeted:  # on a budget the one validation is the last
                        stopped_early = validate(display) or stopped_early
                    if progress.step < total_steps and not stopped_early:
                        save_checkpoint()
            if not stopped_early and not stop.requested:
                validate(display)  # a max_steps run may end mid-epoch
            if stopped_early:
                display.note(
                    f"early stopping: no improvement in {config.patience} validations; best at step {progress.best_step}"
                )
            if stop.requested:
                save_checkpoint()
                display.note(f"interrupted at step {progress.step}/{total_steps}; checkpoint saved")
    except (torch.OutOfMemoryError, RuntimeError) as e:
        if isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e) or "can't allocate memory" in str(e):
            raise UserError(
                f"out of memory on {device} (batch size {config.batch_size}, max length {config.max_length}): "
                "retry with a smaller --batch-size (and a larger --grad-accum), a shorter --max-length, or --gradient-checkpointing"
            ) from None
        raise

    tokens_per_s = progress.tokens / max(progress.seconds, 1e-9)
    result = TrainResult(
        name=config.name,
        merged_dir=None,
        adapter_dir=None,
        log_path=log_path,
        steps=progress.step,
        total_steps=total_steps,
        best_step=progress.best_step if val_samples else progress.step,
        first_val_loss=progress.first_val_loss,
        best_val_loss=progress.best_loss,
        tokens=progress.tokens,
        tokens_per_s=tokens_per_s,
        interrupted=stop.requested,
        signal=stop.signum,
        stopped_early=stopped_early,
        checkpointed=stop.requested,
    )
    if stop.requested:
        return result

    # --- what stays: the best adapter, and the base with it merged in
    from trainer.train.merge import save_adapter, save_merged

    if best is not None:
        set_peft_model_state_dict(model, best)
    model.to("cpu")
    # adapter/, merged/ and [train] replace the old ones as one unit: a kill before the end leaves the old twin whole.
    with registry.replacing(config.name) as unit:
        save_adapter(model, unit.dir / "adapter", str(base_dir))
        unit.set(
            "train",
            _train_table(config, base_dir, model, plain_format, result, n_train, len(val_samples), device)
            | {"train_sequences": len(train_samples)},  # whole-conversation pieces (= samples with --per-reply)
        )
        save_merged(model, tokenizer, unit.dir / "merged", saved_dtype)
    checkpoint.remove(ckpt_dir)
    result.adapter_dir, result.merged_dir = folder / "adapter", folder / "merged"
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
