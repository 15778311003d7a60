"""Serving overhead: tokens/s streamed through the daemon (OpenAI SDK) vs llama-cpp-python in-process.

Same model (the embedded SmolLM2: the file the daemon decodes, its q8_0 copy with the
default --parallel, see daemon/weights.py), prompt, greedy decoding, max_tokens and
thread count on both sides; runs alternate so that machine noise hits both alike.

Then what a twin's served default costs: a chat-sized reply (the chat default's sampling, at most
REPLY_TOKENS tokens, a fresh seed each round) with one draw against `[serve] candidates` draws kept by
MMI (each candidate also scored under the bare context, twin.consensus) and by consensus, alternating;
reply_ms is the wall time of the whole reply, which a reranked reply streams only once it is picked.
Prints name=value lines.
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

from daemon.process import DaemonProcess
from twin.consensus import TWIN_CANDIDATES
from twin.embedded import MODEL_ID, embedded_gguf

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
CHAT = [
    {"role": "system", "content": "You are Sam. Reply as Sam would, in one short message."},
    {"role": "user", "content": "are you still coming tonight? we got pizza"},
]
REPLY_TOKENS = 32


def served_run(client, max_tokens: int) -> tuple[int, float, float]:
    """One streamed request: (completion tokens, seconds from first token to last, time to first token)."""
    start = time.perf_counter()
    first = None
    tokens = 0
    stream = client.chat.completions.create(
        model=MODEL_ID,
        messages=MESSAGES,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"repetition_penalty": 1.0},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter()
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    return tokens, end - start, (first or end) - start


def reply_run(client, candidates: int, rerank: str, seed: int) -> tuple[float, int]:
    """One sampled chat reply of `candidates` draws: (wall seconds, words of the reply kept)."""
    start = time.perf_counter()
    reply = client.chat.completions.create(
        model=MODEL_ID,
        messages=CHAT,
        max_tokens=REPLY_TOKENS,
        seed=seed,
        extra_body={"candidates": candidates, "rerank": rerank},
    )
    return time.perf_counter() - start, len((reply.choices[0].message.content or "").split())


def raw_run(llm, max_tokens: int) -> tuple[int, float, float]:
    start = time.perf_counter()
    first = None
    tokens = 0
    for chunk in llm.create_chat_completion(
        messages=MESSAGES, max_tokens=max_tokens, temperature=0, stream=True, repeat_penalty=1.0
    ):
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
            first = first or time.perf_counter()
    end = time.perf_counter()
    return tokens, end - start, (first or end) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp threads on both sides")
    args = parser.parse_args()

    import openai

    from daemon.fingerprint import gguf_sha256
    from daemon.weights import batch_weights
    from twin import llamacpp
    from twin.config import ServeSettings

    threads = args.threads
    defaults = ServeSettings()
    decoded = batch_weights(embedded_gguf(), gguf_sha256(embedded_gguf()), defaults.parallel, defaults.requantize)
    llm = llamacpp.open_llama(decoded, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    with (
        tempfile.TemporaryDirectory() as tmp,
        DaemonProcess(["--model", "default", "--threads", str(threads)], log_path=Path(tmp) / "serve.log") as d,
    ):
        client = openai.OpenAI(base_url=d.url, api_key="-", max_retries=0)
        served_run(client, 8)  # warm both sides up
        raw_run(llm, 8)
        served, raw, ttft, counts = [], [], [], set()
        for _ in range(args.rounds):
            n, secs, first = served_run(client, args.max_tokens)
            served.append(n / secs)
            ttft.append(first * 1000)
            m, secs, _ = raw_run(llm, args.max_tokens)
            raw.append(m / secs)
            counts.add((n, m))
        for _ in range(5):
            ttft.append(served_run(client, 1)[2] * 1000)
        ways = [(1, "mmi"), (TWIN_CANDIDATES, "mmi"), (TWIN_CANDIDATES, "consensus")]
        reply_s: dict[tuple[int, str], list[float]] = {way: [] for way in ways}
        reply_words: dict[tuple[int, str], list[int]] = {way: [] for way in ways}
        for round_ in range(args.rounds * 2):
            for way in ways:
                secs, n = reply_run(client, *way, seed=round_)
                reply_s[way].append(secs)
                reply_words[way].append(n)

    serve_tps = statistics.median(served)
    raw_tps = statistics.median(raw)
    print(f"serve_tokens_per_s={serve_tps:.1f}")
    print(f"raw_tokens_per_s={raw_tps:.1f}")
    print(f"serve_overhead_ratio={serve_tps / raw_tps:.3f}")
    print(f"ttft_ms_p50={statistics.median(ttft):.1f}")
    print(f"max_tokens={args.max_tokens}")
    print(f"weights={'q8_0 copy' if decoded != embedded_gguf() else 'the file'}")
    print(f"tokens_per_run_serve_raw={'/'.join(map(str, sorted(counts)[0]))}")
    one = statistics.median(reply_s[ways[0]])
    for way in ways:
        label = "one_draw" if way[0] == 1 else f"{way[1]}_{way[0]}"
        print(
            f"reply_ms_p50_{label}={statistics.median(reply_s[way]) * 1000:.0f}"
            f" reply_words_mean_{label}={statistics.mean(reply_words[way]):.1f}"
            + ("" if way[0] == 1 else f" reply_cost_ratio_{label}={statistics.median(reply_s[way]) / one:.2f}")
        )


if __name__ == "__main__":
    main()
