"""How the compute libraries' worker threads wait: passive for torch, active for llama.cpp.

Torch's OpenMP workers spin while they wait for work; when the cores are busy
(a laptop doing other things, a daemon beside the trainer) that made training
and evaluation 7-20x slower here, and waiting passively costs about 10% on an
idle machine. llama.cpp's token-by-token generation is the opposite: passive
waiting made the daemon three times slower (bench/serve.py). So the commands
that run torch ask for passive waiting before torch loads, and the daemons they
start do not inherit it. A policy the user set is left alone everywhere.

The daemon's default thread count (`llama_threads`) follows the load: busy-wait
threads collapse when another process takes their core.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping

_VAR = "OMP_WAIT_POLICY"
_set_here = False


def passive_for_torch() -> None:
    """Call before torch is imported."""
    global _set_here
    if _VAR not in os.environ:
        os.environ[_VAR] = "PASSIVE"
        _set_here = True


def for_daemon(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for a daemon started from here: without the policy set for torch."""
    out = dict(env)
    if _set_here and out.get(_VAR) == "PASSIVE":
        del out[_VAR]
    return out


def split_cores(cores: int, train_threads: int = 0, serve_threads: int = 0) -> tuple[int, int]:
    """(training threads, serving threads) while a fine-tuning job shares the machine with the daemon.

    llama.cpp's threads spin on each other: with another process taking 1.5 of 2
    cores, 2 daemon threads fell to 6.8 tokens/s where 1 still gave about 50
    (DESIGN.md). So while a job runs the daemon generates on a quarter of the
    cores (at least one), and the build takes every core at nice 10 with torch
    waiting passively: the scheduler hands the daemon's thread its core the moment
    a request comes, and training has the whole machine between requests (with
    one thread it trained at a third of the speed). A count the user set is kept.
    """
    serve = serve_threads or max(1, cores // 4)
    train = train_threads or max(1, cores)
    return train, serve


class _Sampler:
    """How many cores other processes kept busy lately, from the kernel's CPU counters (no extra thread)."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self._last: tuple[float, float, float] | None = None
        self._value = 0.0

    def _now(self) -> tuple[float, float, float]:
        t = self._psutil.cpu_times()
        busy = t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        mine = self._me.cpu_times()
        return time.monotonic(), busy, mine.user + mine.system

    def others(self) -> float:
        """Cores used by other processes since the last call (over a fresh 0.1 s when that was long ago)."""
        now = self._now()
        if self._last is None or now[0] - self._last[0] > 5.0:
            self._last = now
            time.sleep(0.1)
            now = self._now()
        wall = now[0] - self._last[0]
        if wall >= 0.05:
            self._value = max(0.0, ((now[1] - self._last[1]) - (now[2] - self._last[2])) / wall)
            self._last = now
        return self._value


_sampler: _Sampler | None = None


def physical_cores() -> int:
    import psutil

    # llama.cpp runs best on physical cores; hyper-threads only add contention.
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def llama_threads(requested: int) -> int:
    """Threads for the next llama.cpp generation: `requested` when set, else the cores other processes leave free.

    llama.cpp's threads spin-wait on each other: one that has to share its core
    with another process stalls them all (2 threads on 2 cores beside a job using
    1.5 cores: 6.8 tokens/s; 1 thread: about 50). So a core counts as free only
    while others use less than 0.3 of it; at least 1 thread.
    """
    global _sampler
    if requested > 0:
        return requested
    if _sampler is None:
        _sampler = _Sampler()
    cores = physical_cores()
    return max(1, min(cores, cores - math.ceil(_sampler.others() - 0.3)))
