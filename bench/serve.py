"""Serving overhead: tokens/s streamed through the daemon (OpenAI SDK) vs llama-cpp-python in-process.

Same model (the embedded SmolLM2: the file the daemon decodes, its q8_0 copy with the
default --parallel, see daemon/weights.py), prompt, greedy decoding, max_tokens and
thread count on both sides; runs alternate so that machine noise hits both alike.
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
from twin.embedded import MODEL_ID, embedded_gguf

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]


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

    serve_tps = statistics.median(served)
    raw_tps = statistics.median(raw)
    print(f"serve_tokens_per_s={serve_tps:.1f}")
    print(f"raw_tokens_per_s={raw_tps:.1f}")
    print(f"serve_overhead_ratio={serve_tps / raw_tps:.3f}")
    print(f"ttft_ms_p50={statistics.median(ttft):.1f}")
    print(f"max_tokens={args.max_tokens}")
    print(f"weights={'q8_0 copy' if decoded != embedded_gguf() else 'the file'}")
    print(f"tokens_per_run_serve_raw={'/'.join(map(str, sorted(counts)[0]))}")


if __name__ == "__main__":
    main()
