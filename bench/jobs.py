"""Serving while a fine-tuning job trains, and upload speed.

One daemon (default thread settings), one run: chat latency p50/p95 on an idle
machine, then the same requests while a job trains the embedded model, and the
ratio of the two; the training's own tokens/s while the chats ran; upload MB/s
for a large file through the SDK. Prints name=value lines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai

from daemon.process import DaemonProcess
from twin.demo import SAMPLE
from twin.embedded import MODEL_ID

MESSAGES = [{"role": "user", "content": "Tell me about your weekend in two sentences."}]


def chats(client: openai.OpenAI, n: int, max_tokens: int) -> tuple[list[float], int]:
    """n sequential chat requests: their latencies and the completion tokens they produced."""
    latencies, tokens = [], 0
    for i in range(n):
        start = time.perf_counter()
        r = client.chat.completions.create(
            model=MODEL_ID, messages=MESSAGES, max_tokens=max_tokens, temperature=0, seed=i,
            extra_body={"ignore_eos": True},
        )  # fmt: skip
        latencies.append(time.perf_counter() - start)
        tokens += r.usage.completion_tokens
    return latencies, tokens


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) >= 2 else xs[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--upload-mb", type=int, default=200)
    parser.add_argument(
        "--serve-threads", type=int, default=0, help="fix the daemon's llama.cpp threads (0: its default policy)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["TWIN_HOME"] = str(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")} | {"TWIN_HOME": str(home)}
        env.setdefault("HF_HUB_OFFLINE", "1")
        from trainer.bases import embedded_hf_dir

        started = time.perf_counter()
        embedded_hf_dir()  # the base's HF copy, once, outside the measured part
        print(f"base_import_s={time.perf_counter() - started:.1f}")

        with DaemonProcess(
            ["--model", "default", "--threads", str(args.serve_threads)], env=env, log_path=Path(tmp) / "serve.log"
        ) as d:
            client = openai.OpenAI(base_url=d.url, api_key="-", max_retries=0, timeout=600)

            big = Path(tmp) / "big.jsonl"
            with open(big, "wb") as f:
                f.write(os.urandom(args.upload_mb * 2**20))
            started = time.perf_counter()
            with open(big, "rb") as f:
                upload = client.files.create(file=f, purpose="fine-tune")
            seconds = time.perf_counter() - started
            print(f"upload_mb={args.upload_mb}")
            print(f"upload_mb_per_s={args.upload_mb / seconds:.1f}")
            client.files.delete(upload.id)
            big.unlink()

            chats(client, 2, args.max_tokens)  # warm-up
            idle, idle_tokens = chats(client, args.requests, args.max_tokens)

            with open(SAMPLE, "rb") as f:
                sample = client.files.create(file=f, purpose="fine-tune")
            job = client.fine_tuning.jobs.create(
                training_file=sample.id, model=MODEL_ID, suffix="bench",
                hyperparameters={"batch_size": 4}, extra_body={"twin": {"max_steps": 400, "quant": "q4_1"}},
            )  # fmt: skip

            def steps() -> list:
                events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
                return [e for e in events if e.type == "metrics" and e.data and "train_loss" in e.data]

            while not steps():
                if client.fine_tuning.jobs.retrieve(job.id).status in ("failed", "cancelled", "succeeded"):
                    raise SystemExit(f"the job ended before training: {client.fine_tuning.jobs.retrieve(job.id)}")
                time.sleep(0.5)
            first = steps()[0].data
            window = time.perf_counter()
            busy, busy_tokens = chats(client, args.requests, args.max_tokens)
            window = time.perf_counter() - window
            last = steps()[0].data
            client.fine_tuning.jobs.cancel(job.id)

    print(f"serve_threads={args.serve_threads or 'auto'}")
    print(f"requests={args.requests}")
    print(f"max_tokens={args.max_tokens}")
    print(f"chat_idle_p50_s={statistics.median(idle):.3f}")
    print(f"chat_idle_p95_s={p95(idle):.3f}")
    print(f"chat_training_p50_s={statistics.median(busy):.3f}")
    print(f"chat_training_p95_s={p95(busy):.3f}")
    print(f"chat_p50_ratio_training_to_idle={statistics.median(busy) / statistics.median(idle):.2f}")
    print(f"chat_p95_ratio_training_to_idle={p95(busy) / p95(idle):.2f}")
    print(f"chat_idle_tokens_per_s={idle_tokens / sum(idle):.1f}")
    print(f"chat_training_tokens_per_s={busy_tokens / sum(busy):.1f}")
    print(f"train_steps_during_chats={last['step'] - first['step']}")
    print(f"chats_window_s={window:.1f}")
    print(f"train_tokens_per_s_cumulative={last['tokens_per_s']:.1f}")


if __name__ == "__main__":
    main()
