"""llama.cpp threads under CPU contention: tokens/s of the embedded model at 1 and 2 threads, quiet and busy.

"busy" runs a burner beside the generation: one process spinning and one
spinning half the time, about 1.5 cores, like a training job beside the daemon.
Runs alternate so machine noise hits every cell alike. Also measures the
daemon's default (`twin.threads.llama_threads`, which looks at the load before
each request). Prints name=value lines.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twin.embedded import embedded_gguf

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def _burn(duty: float, stop_at: float) -> None:
    while time.time() < stop_at:
        start = time.perf_counter()
        while time.perf_counter() - start < 0.01 * duty:
            pass
        if duty < 1:
            time.sleep(0.01 * (1 - duty))


class Burner:
    """About 1.5 cores busy (one full spinner, one at half duty) until stopped; bounded by `seconds` in any case."""

    def __init__(self, seconds: float = 120) -> None:
        self.seconds = seconds
        self.procs: list[mp.Process] = []

    def __enter__(self) -> Burner:
        stop_at = time.time() + self.seconds
        self.procs = [mp.Process(target=_burn, args=(d, stop_at), daemon=True) for d in (1.0, 0.5)]
        for p in self.procs:
            p.start()
        time.sleep(0.5)  # let the scheduler see them
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.terminate()
            p.join()


def tokens_per_second(llm, threads: int, tokens: int) -> float:  # type: ignore[no-untyped-def]
    import llama_cpp

    llama_cpp.llama_set_n_threads(llm._ctx.ctx, threads, threads)
    llm.reset()
    prompt = llm.tokenize(PROMPT.encode(), add_bos=False, special=False)
    llm.eval(prompt)
    start = time.perf_counter()
    n = 0
    for token in llm.generate(prompt, temp=0.0, reset=False):
        n += 1
        if n >= tokens or token == llm.token_eos():
            break
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from twin import llamacpp
    from twin.threads import llama_threads

    llm = llamacpp.open_llama(embedded_gguf(), n_ctx=512, n_threads=2, verbose=False)
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for busy in (False, True):
            ctx = Burner() if busy else None
            if ctx:
                ctx.__enter__()
            try:
                auto = llama_threads(0)
                for threads, name in ((1, "1"), (2, "2"), (auto, "auto")):
                    tps = tokens_per_second(llm, threads, args.tokens)
                    results.setdefault(f"{'busy' if busy else 'quiet'}_threads_{name}", []).append(tps)
                    print(f"# round busy={busy} threads={threads} ({name}): {tps:.1f} tokens/s", flush=True)
                results.setdefault(f"{'busy' if busy else 'quiet'}_auto_choice", []).append(auto)
            finally:
                if ctx:
                    ctx.__exit__()
    for name, values in results.items():
        print(
            f"{name}_tokens_per_second={statistics.median(values):.1f}"
            if "choice" not in name
            else f"{name}={statistics.median(values):g}"
        )
    q2, b2 = statistics.median(results["quiet_threads_2"]), statistics.median(results["busy_threads_2"])
    q1, b1 = statistics.median(results["quiet_threads_1"]), statistics.median(results["busy_threads_1"])
    print(f"busy_over_quiet_threads_2={b2 / q2:.2f}")
    print(f"busy_over_quiet_threads_1={b1 / q1:.2f}")
    print(f"quiet_1_over_2={q1 / q2:.2f}")
    llm.close()


if __name__ == "__main__":
    main()
