"""Training to a wall-clock budget: how many steps fit, from the speed measured on this machine's first steps.

`twin train --time-budget` (and `twin build --time-budget`, which hands training
what its other stages leave) runs a few real steps, measures trained tokens per
second, and sets the step count (again every REPLAN_EVERY steps, from the
speed of the latest ones) so the run, its one validation (at the end, on
BUDGET_VAL_SAMPLES samples, its time estimated from the same speed) and the
saving of the adapter and merged model end within the budget. A caller with
stages after training (`twin build`: conversion, persona, calibration) reserves
their time as measured at RESERVE_TOKENS_PER_S; the planner scales it by the
speed it measures, since those stages run on the same cores and slow down with
them. The learning-rate schedule is stretched to the chosen count (`Schedule`
is resized, not rebuilt).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

CALIBRATION_STEPS = 3  # steps measured before the count is chosen (the first one, warming caches, is left out)
REPLAN_EVERY = 10  # steps after which the count is chosen again from the speed of those steps
SAVE_SECONDS = 20.0  # merging and writing adapter/ and merged/ for the embedded model on 2 cores
BUDGET_VAL_SAMPLES = 64  # on a budget training validates once, at the end, on this many samples
EVAL_SPEEDUP = 3.0  # a validation token (forward only) costs about a third of a trained one
# the training speed (embedded model, 2 cores) at which a caller's reserved seconds were measured
RESERVE_TOKENS_PER_S = 96.0
MIN_TRAIN_S = 60.0  # the least of a budget that a reserve leaves to training


@dataclass
class Schedule:
    """Linear warm-up then cosine decay to 0 over `total` steps; a callable object so LambdaLR saves its state."""

    warmup: int
    total: int

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def plan_steps(
    budget_s: float,
    elapsed_s: float,
    tokens_per_s: float,
    tokens_per_step: float,
    eval_s: float,
    done: int,
    cap: int,
    reserved_s: float = 0.0,
) -> int:
    """The total step count that fits: steps already `done`, plus what the time left buys at the measured speed.

    Time left is the budget less what has passed, one more validation
    (`eval_s`, as long as the first one took), the saving and what the caller
    keeps for its later stages (`reserved_s`, at this speed). Never fewer than
    `done` (training stops at once), never more than `cap` (the epochs' count).
    """
    left = budget_s - elapsed_s - eval_s - SAVE_SECONDS - reserved_s
    more = math.floor(left * tokens_per_s / tokens_per_step) if left > 0 and tokens_per_step > 0 else 0
    return max(done, min(cap, done + more))


@dataclass
class Replanner:
    """The step count of a run on a budget, chosen from the speed of the steps seen: `observe` each step.

    The first plan comes after CALIBRATION_STEPS steps (the first step, warming
    caches, is not timed), then one every REPLAN_EVERY steps from the speed of
    the steps since the last plan: a machine that gets busier mid-run would
    otherwise overrun the budget.
    """

    budget_s: float
    started_at: float  # time.perf_counter() when the run began: loading the model counts
    tokens_per_step: float  # trained tokens an optimizer step takes on average
    val_tokens: int  # the tokens of the one validation at the end
    cap: int  # the epochs' step count: a plan never goes past it
    reserved_s: float = 0.0  # seconds kept for the caller's later stages, as measured at RESERVE_TOKENS_PER_S
    planned: bool = False
    _tokens: int = 0  # tokens, seconds and steps since the last plan
    _seconds: float = 0.0
    _steps: int = 0

    def observe(self, done: int, tokens: int, step_started: float) -> dict[str, float] | None:
        """After step `done` (`tokens` trained, begun at `step_started`): a new plan (plan_steps' arguments and the
        chosen "steps") when it is time for one, else None."""
        plan: dict[str, float] | None = None
        if done > 1:
            self._tokens += tokens
            self._seconds += time.perf_counter() - step_started
            if done > CALIBRATION_STEPS and (not self.planned or self._steps >= REPLAN_EVERY):
                tokens_per_s = self._tokens / max(self._seconds, 1e-9)
                plan = {
                    "budget_s": self.budget_s,
                    "elapsed_s": time.perf_counter() - self.started_at,
                    "tokens_per_s": tokens_per_s,
                    "tokens_per_step": self.tokens_per_step,
                    "eval_s": self.val_tokens / (EVAL_SPEEDUP * self._tokens) * self._seconds,
                    "done": done,
                    "cap": self.cap,
                    "reserved_s": scaled_reserve(self.reserved_s, tokens_per_s, self.budget_s),
                }
                plan["steps"] = plan_steps(**plan)  # type: ignore[arg-type]
                self.planned = True
                self._tokens, self._seconds, self._steps = 0, 0.0, 0  # the next plan reads the steps from here
            self._steps += 1
        return plan


def scaled_reserve(reserved_s: float, tokens_per_s: float, budget_s: float) -> float:
    """`reserved_s` (measured at RESERVE_TOKENS_PER_S) at the measured speed, leaving training at least MIN_TRAIN_S."""
    if reserved_s <= 0 or tokens_per_s <= 0:
        return 0.0
    return min(reserved_s * RESERVE_TOKENS_PER_S / tokens_per_s, max(0.0, budget_s - MIN_TRAIN_S))
