"""How the compute libraries' worker threads wait: passive for torch, active for llama.cpp.

Torch's OpenMP workers spin while they wait for work; when the cores are busy
(a laptop doing other things, a daemon beside the trainer) that made training
and evaluation 7-20x slower here, and waiting passively costs about 10% on an
idle machine. llama.cpp's token-by-token generation is the opposite: passive
waiting made the daemon three times slower (bench/serve.py). So the commands
that run torch ask for passive waiting before torch loads, and the daemons they
start do not inherit it. A policy the user set is left alone everywhere.

How many threads: one policy for the daemon's llama.cpp (`llama_threads`) and
a fine-tuning job's torch (`training_threads`) on the same machine.
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


def llama_threads(requested: int, job_training: bool = False) -> int:
    """Threads for the next llama.cpp generation: `requested` when set, else by what else runs.

    llama.cpp's threads spin-wait on each other: one that has to share its core
    with another process stalls them all (2 threads on 2 cores beside a job using
    1.5 cores: 6.8 tokens/s; 1 thread: about 50, DESIGN.md). So while the daemon's
    own fine-tuning job trains (on every core, at nice 10: `training_threads`) it
    generates on a quarter of the cores; the scheduler hands those threads their
    cores the moment a request comes, and training has the whole machine between
    requests (with one thread it trained at a third of the speed). Otherwise a
    core counts as free only while other processes use less than 0.3 of it.
    At least 1 thread either way.
    """
    global _sampler
    if requested > 0:
        return requested
    cores = physical_cores()
    if job_training:
        return max(1, cores // 4)
    if _sampler is None:
        _sampler = _Sampler()
    return max(1, min(cores, cores - math.ceil(_sampler.others() - 0.3)))


def training_threads(requested: int) -> int:
    """Torch threads of a fine-tuning job's build beside the daemon: `requested` when set, else every core."""
    return requested or physical_cores()
