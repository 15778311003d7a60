"""How the compute libraries' worker threads wait: passive for torch, active for llama.cpp.

Torch's OpenMP workers spin while they wait for work; when the cores are busy
(a laptop doing other things, a daemon beside the trainer) that made training
and evaluation 7-20x slower here, and waiting passively costs about 10% on an
idle machine. llama.cpp's token-by-token generation is the opposite: passive
waiting made the daemon three times slower (bench/serve.py). So the commands
that run torch ask for passive waiting before torch loads, and the daemons they
start do not inherit it. A policy the user set is left alone everywhere.
"""

from __future__ import annotations

import os
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
