"""Concurrency: aggregate tokens/s of 4 and 8 simultaneous streams over one, and time to first token of a long chat.

- agg_ratio_K: K streams at once (different prompts, ignore_eos, equal max_tokens,
  greedy) against one stream alone, completion tokens over wall time; each round
  measures 1, 4 and 8 back to back and the median ratio is printed.
- complete_K: in the worst round, how many of the K streams returned every token.
- ttft_ratio_t10: time to first token of turn 10 of a growing chat over turn 1's (median of three chats),
  with two other conversations (longer prompts) run between its turns, on a daemon
  with the default --parallel.

Prints name=value lines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.process import DaemonProcess
from twin.embedded import MODEL_ID

TOPICS = ["a lighthouse", "a desert", "a violin", "a glacier", "a market", "a comet", "an orchard", "a submarine"]


def stream(client, content: str, max_tokens: int) -> tuple[int, float]:
    """One streamed chat: (completion tokens, seconds to the first content)."""
    start = time.perf_counter()
    first = None
    tokens = 0
    for chunk in client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": content}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True, "repetition_penalty": 1.0},
    ):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return tokens, first or 0.0


def together(client, k: int, max_tokens: int) -> tuple[float, int]:
    """k streams at once: (aggregate completion tokens/s, streams that returned all max_tokens)."""
    counts = [0] * k

    def one(i: int) -> None:
        counts[i] = stream(client, f"Write a long story about {TOPICS[i % len(TOPICS)]}.", max_tokens)[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return sum(counts) / seconds, sum(c == max_tokens for c in counts)


def chat_ttft(client, turns: int, topic: str) -> list[float]:
    """Time to first token of each turn of one growing chat, two other chats interleaved between its turns."""
    history: list[dict[str, str]] = []
    ttfts = []
    for turn in range(turns):
        history.append({"role": "user", "content": f"Tell me something new about {topic}, part {turn + 1}."})
        start = time.perf_counter()
        first, reply = None, ""
        for chunk in client.chat.completions.create(
            model=MODEL_ID, messages=history, max_tokens=24, temperature=0, stream=True
        ):
            text = chunk.choices[0].delta.content if chunk.choices else None
            if text and first is None:
                first = time.perf_counter() - start
            reply += text or ""
        ttfts.append(first or time.perf_counter() - start)
        history.append({"role": "assistant", "content": reply})
        for other in ("weather on a mountain", "the history of bread"):  # other conversations run in between
            stream(client, f"Explain {other} in detail. " * 8, 8)
    return ttfts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--requantize", default="auto", help="the daemon's --requantize (off: decode the Q4_1 file)")
    args = parser.parse_args()

    import openai

    with tempfile.TemporaryDirectory() as tmp:
        daemon_args = ["--model", "default", "--threads", str(args.threads), "--requantize", args.requantize]
        with DaemonProcess([*daemon_args, "--parallel", "8"], log_path=Path(tmp) / "serve.log") as d:
            client = openai.OpenAI(base_url=d.url, api_key="-", max_retries=0)
            together(client, 8, 4)  # warm up every slot
            ratios: dict[int, list[float]] = {4: [], 8: []}
            complete = {4: 4, 8: 8}
            singles = []
            for _ in range(args.rounds):
                single, _ = together(client, 1, args.max_tokens)
                singles.append(single)
                for k in (4, 8):
                    agg, full = together(client, k, args.max_tokens)
                    ratios[k].append(agg / single)
                    complete[k] = min(complete[k], full)
        with DaemonProcess(daemon_args, log_path=Path(tmp) / "serve-chat.log") as d:
            client = openai.OpenAI(base_url=d.url, api_key="-", max_retries=0)
            stream(client, "Hello.", 2)  # warm up
            chats = [chat_ttft(client, 10, topic) for topic in ("owls", "volcanoes", "chess")]
            ttfts = [statistics.median(turn) for turn in zip(*chats, strict=True)]

    print(f"single_tokens_per_s={statistics.median(singles):.1f}")
    for k in (4, 8):
        print(f"agg_ratio_{k}={statistics.median(ratios[k]):.2f}")
        print(f"complete_{k}={complete[k]}/{k}")
    print(f"ttft_t1_ms={ttfts[0] * 1000:.0f}")
    print(f"ttft_t10_ms={ttfts[-1] * 1000:.0f}")
    print(f"ttft_ratio_t10={ttfts[-1] / ttfts[0]:.2f}")
    print(f"threads={args.threads}")
    print(f"max_tokens={args.max_tokens}")
    print(f"requantize={args.requantize}")


if __name__ == "__main__":
    main()
