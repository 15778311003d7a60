"""Training throughput: `twin train`'s loop against the original plan's recipe, same model, data, batch size and steps.

The plan's recipe: HF `Trainer`, every sample padded to max_length, labels =
input_ids. twin's: batches grouped by length and padded to their longest
sample, labels on my replies only, logits only where there are labels. Both run
LoRA (r=16, alpha=32, every projection) on the embedded SmolLM2-135M, fp32 on
CPU, each in its own process so peak RSS is its own. Tokens/s counts real
tokens (no padding) over the time spent in training steps; both validation
losses are measured the same way (loss on the reply tokens of the validation split).

The machine is shared and its load changes by the minute, so the two processes
run in lockstep: each waits before every optimizer step until the parent lets
it go, and the parent alternates them step by step. Both recipes see the same
background load, and the ratio holds even when the absolute figures do not.

    python bench/train.py [--steps 8] [--batch-size 4] [--max-length 256]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Chat-like messages: short lines, as `twin ingest` turns them into samples (up to 8 turns of context before my reply).
THEIRS = [
    "привет",
    "ты где?",
    "завтра встреча в 10, не забудь",
    "the report is due friday, can you check it",
    "купи хлеба по дороге пожалуйста",
    "did you see the match yesterday",
    "поедем на дачу в субботу?",
    "can you send me the photos from the trip",
    "мама звонила, перезвони ей когда сможешь",
    "what time is dinner",
    "ок",
    "а ты что думаешь про это всё?",
    "lol",
    "слушай, а можешь помочь с переездом в воскресенье?",
]
MINE = [
    "ага",
    "ок 👍",
    "да, щас",
    "не знаю пока, посмотрим вечером)",
    "sure, will do",
    "yep",
    "haha no way 😂",
    "давай в субботу утром, я заеду за тобой часов в девять, только напомни",
    "перезвоню как освобожусь",
    "sounds good, see you there",
    "ну такое",
    "конечно, без проблем, сейчас скину всё что есть",
]


def make_dataset(folder: Path, n_train: int, n_val: int, seed: int = 0) -> None:
    """Chat samples of varied length: 0-3 earlier exchanges of context (ingest keeps 8 turns by default), then their message and my reply."""
    rng = random.Random(seed)

    def conversation() -> dict:
        messages = []
        for _ in range(rng.randint(0, 3)):
            messages.append({"role": "user", "content": rng.choice(THEIRS)})
            messages.append({"role": "assistant", "content": rng.choice(MINE)})
        messages.append({"role": "user", "content": rng.choice(THEIRS)})
        messages.append({"role": "assistant", "content": " ".join(rng.choice(MINE) for _ in range(rng.randint(1, 2)))})
        return {"messages": messages}

    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.jsonl", n_train), ("val.jsonl", n_val)):
        (folder / name).write_text(
            "".join(json.dumps(conversation(), ensure_ascii=False) + "\n" for _ in range(n)), encoding="utf-8"
        )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def wait_for_parent() -> None:
    """The lockstep protocol: say we are ready for the next step, then block until the parent says go."""
    print("WAIT", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("bench parent went away")


def run_twin(args: argparse.Namespace) -> dict:
    from trainer.train.run import TrainConfig, train

    def before_next_step(step: int) -> None:
        if step:
            print("DONE", flush=True)
        if step < args.steps:
            wait_for_parent()

    result = train(
        TrainConfig(
            name="bench",
            max_steps=args.steps,
            batch_size=args.batch_size,
            max_length=args.max_length,
            lr=args.lr,
            warmup_ratio=0.0,
            eval_every=0,
            patience=0,
            log_every=1,
            seed=0,
        ),
        on_step=before_next_step,
    )
    evals = [json.loads(line) for line in result.log_path.read_text().splitlines() if '"eval"' in line]
    return {
        "tokens_per_s": result.tokens_per_s,
        "tokens": result.tokens,
        "val_loss": evals[-1]["val_loss"],
        "peak_rss_mb": peak_rss_mb(),
    }


def run_hf(args: argparse.Namespace) -> dict:
    """The original plan's recipe, as it was written: Trainer, padding="max_length", labels = input_ids."""
    import time

    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    from trainer.bases import resolve_base
    from trainer.train.lora import add_lora
    from trainer.train.samples import read_jsonl
    from twin import paths

    base = resolve_base("default")
    data = paths.twin_dir("bench") / "dataset"
    tok = AutoTokenizer.from_pretrained(base)
    texts = [tok.apply_chat_template(m, tokenize=False) for m in read_jsonl(data / "train.jsonl")]
    enc = tok(texts, padding="max_length", truncation=True, max_length=args.max_length)
    enc["labels"] = [list(ids) for ids in enc["input_ids"]]
    dataset = Dataset.from_dict(dict(enc))

    torch.manual_seed(0)
    model = add_lora(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), 16, 32, 0.05)
    counted = {"tokens": 0, "seconds": 0.0, "started": 0.0}

    class Lockstep(TrainerCallback):
        def on_step_begin(self, *a, **kw):
            wait_for_parent()
            counted["started"] = time.perf_counter()

        def on_step_end(self, *a, **kw):
            counted["seconds"] += time.perf_counter() - counted["started"]
            print("DONE", flush=True)

    class CountingTrainer(Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            counted["tokens"] += int(inputs["attention_mask"].sum())
            return super().training_step(model, inputs, num_items_in_batch)

    training_args = TrainingArguments(
        output_dir=str(paths.twin_dir("bench") / "hf-out"),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    trainer = CountingTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=default_data_collator,
        callbacks=[Lockstep()],
    )
    trainer.train()
    return {
        "tokens_per_s": counted["tokens"] / counted["seconds"],
        "tokens": counted["tokens"],
        "val_loss": reply_val_loss(model, tok, data, args),
        "peak_rss_mb": peak_rss_mb(),
    }


def reply_val_loss(model, tok, data: Path, args: argparse.Namespace) -> float:
    """The validation loss twin logs (reply tokens only), for the model the plan's recipe trained."""
    import torch

    from trainer.train.batches import collate, sequential_batches
    from trainer.train.loss import backbone_and_head, label_loss
    from trainer.train.samples import encode_all, read_jsonl

    samples = encode_all(tok, read_jsonl(data / "val.jsonl"), args.max_length, data / "val.jsonl")
    backbone, head = backbone_and_head(model)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for idx in sequential_batches([len(s) for s in samples], args.batch_size):
            loss, n = label_loss(backbone, head, collate([samples[i] for i in idx], tok.pad_token_id))
            total, count = total + float(loss), count + n
    return total / count


def _read_until(child: subprocess.Popen, prefix: str) -> str:
    for line in child.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise SystemExit(f"a bench child ended early (exit code {child.wait()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--train-samples", type=int, default=64)
    parser.add_argument("--val-samples", type=int, default=8)
    parser.add_argument("--run", choices=["twin", "hf"], help=argparse.SUPPRESS)  # a child process: one recipe
    args = parser.parse_args()

    if args.run:
        out = run_twin(args) if args.run == "twin" else run_hf(args)
        print("RESULT " + json.dumps(out))
        return

    from trainer.bases import embedded_hf_dir

    base = embedded_hf_dir()  # built once in the user's cache; both children link it
    results = {}
    with tempfile.TemporaryDirectory(prefix="twin-bench-train-") as tmp:
        home = Path(tmp)
        link = home / "cache" / "bases" / base.name
        link.parent.mkdir(parents=True)
        link.symlink_to(base, target_is_directory=True)
        make_dataset(home / "twins" / "bench" / "dataset", args.train_samples, args.val_samples)
        env = {**os.environ, "TWIN_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        children = {}
        for recipe in ("twin", "hf"):
            cmd = [
                sys.executable,
                __file__,
                "--run",
                recipe,
                "--steps",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
                "--max-length",
                str(args.max_length),
                "--lr",
                str(args.lr),
            ]
            children[recipe] = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            for child in children.values():
                _read_until(child, "WAIT")  # loaded and ready for step 1
            for step in range(args.steps):
                for child in children.values():  # one step of one recipe at a time, the other one idle
                    child.stdin.write("go\n")
                    child.stdin.flush()
                    _read_until(child, "DONE")
                    if step + 1 < args.steps:
                        _read_until(child, "WAIT")
            for recipe, child in children.items():
                results[recipe] = json.loads(_read_until(child, "RESULT ")[len("RESULT ") :])
                if child.wait() != 0:
                    raise SystemExit(f"the {recipe} run failed")
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.kill()

    twin, hf = results["twin"], results["hf"]
    print(f"train_tokens_per_s_twin={twin['tokens_per_s']:.1f}")
    print(f"train_tokens_per_s_hf={hf['tokens_per_s']:.1f}")
    print(f"train_speedup={twin['tokens_per_s'] / hf['tokens_per_s']:.2f}")
    print(f"train_peak_rss_mb_twin={twin['peak_rss_mb']:.0f}")
    print(f"train_peak_rss_mb_hf={hf['peak_rss_mb']:.0f}")
    print(f"val_loss_twin={twin['val_loss']:.4f}")
    print(f"val_loss_hf={hf['val_loss']:.4f}")


if __name__ == "__main__":
    main()
