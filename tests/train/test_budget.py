"""A time budget: the step count follows from the speed measured on the first steps (the timing is a benchmark)."""

from __future__ import annotations

import json
import math

import pytest

from trainer.train.budget import (
    CALIBRATION_STEPS,
    MIN_TRAIN_S,
    REPLAN_EVERY,
    RESERVE_TOKENS_PER_S,
    SAVE_SECONDS,
    Replanner,
    Schedule,
    plan_steps,
    scaled_reserve,
)
from trainer.train.config import TrainConfig
from trainer.train.run import train


def test_plan_steps_buys_what_the_time_left_allows() -> None:
    # 100 s budget, 10 s gone, 5 s of validation, the saving: the rest at 50 tokens/s in steps of 100 tokens
    left = 100 - 10 - 5 - SAVE_SECONDS
    assert plan_steps(100, 10, 50.0, 100.0, 5, done=4, cap=1000) == 4 + math.floor(left * 50 / 100)
    assert plan_steps(100, 10, 50.0, 100.0, 5, done=4, cap=20) == 20  # never past the epochs' count
    assert plan_steps(30, 40, 50.0, 100.0, 5, done=4, cap=1000) == 4  # over budget already: stop now
    # what the caller keeps for its later stages is time training does not get
    assert plan_steps(100, 10, 50.0, 100.0, 5, done=4, cap=1000, reserved_s=20) == 4 + math.floor(
        (left - 20) * 50 / 100
    )


def test_a_reserve_scales_with_the_measured_speed() -> None:
    # measured at RESERVE_TOKENS_PER_S; a machine training half as fast needs twice as long for the later stages
    assert scaled_reserve(400, RESERVE_TOKENS_PER_S, 900) == pytest.approx(400)
    assert scaled_reserve(400, RESERVE_TOKENS_PER_S / 2, 2000) == pytest.approx(800)
    assert scaled_reserve(400, RESERVE_TOKENS_PER_S * 2, 900) == pytest.approx(200)
    assert scaled_reserve(400, RESERVE_TOKENS_PER_S / 4, 900) == 900 - MIN_TRAIN_S  # training keeps its least
    assert scaled_reserve(0, 10.0, 900) == 0.0


def test_the_replanner_plans_after_the_first_steps_then_every_replan_every() -> None:
    import time

    planner = Replanner(
        budget_s=600, started_at=time.perf_counter(), tokens_per_step=100, val_tokens=300, cap=10_000, reserved_s=100
    )
    plans = {}
    for done in range(1, 40):
        plan = planner.observe(done, 100, time.perf_counter() - 0.01)  # each step about 10 ms, 100 tokens
        if plan is not None:
            plans[done] = plan
    assert list(plans) == list(range(CALIBRATION_STEPS + 1, 40, REPLAN_EVERY))  # step 1 (warming caches) is not timed
    first = plans[CALIBRATION_STEPS + 1]
    assert first["tokens_per_s"] == pytest.approx(100 / 0.01, rel=0.5)
    keys = ("budget_s", "elapsed_s", "tokens_per_s", "tokens_per_step", "eval_s", "done", "cap", "reserved_s")
    for plan in plans.values():
        assert plan["steps"] == plan_steps(**{k: plan[k] for k in keys}) and plan["cap"] == 10_000
        assert plan["reserved_s"] == scaled_reserve(100, plan["tokens_per_s"], 600)  # at each plan's own speed


def test_the_schedule_stretches_to_the_chosen_count() -> None:
    s = Schedule(warmup=2, total=10)
    assert s(0) < s(1) < s(2) == 1.0
    assert s(10) == pytest.approx(0.0)
    s.total = 20
    assert s(10) > 0.4


def test_training_on_a_budget_runs_the_steps_its_measured_speed_buys(make_dataset, tiny_gpt2) -> None:
    make_dataset("me", n_train=48, n_val=4)
    # 1000 epochs of a tiny model do not fit in the few seconds the budget leaves beside the saving
    # (a reserve as `twin build` keeps for its later stages: a few seconds at the tiny model's speed)
    config = TrainConfig(
        name="me",
        base=str(tiny_gpt2),
        time_budget_s=SAVE_SECONDS + 8,
        time_reserved_s=1.0,
        epochs=1000,
        batch_size=2,
        log_every=1,
    )
    result = train(config)
    events = [json.loads(line) for line in result.log_path.read_text().splitlines()]
    plans = [e for e in events if e["event"] == "budget"]
    keys = ("budget_s", "elapsed_s", "tokens_per_s", "tokens_per_step", "eval_s", "done", "cap", "reserved_s")
    for plan in plans:  # chosen on the first steps, then again every REPLAN_EVERY steps from their speed
        assert plan["steps"] == plan_steps(**{k: plan[k] for k in keys})
        assert plan["reserved_s"] == pytest.approx(scaled_reserve(1.0, plan["tokens_per_s"], config.time_budget_s))
    assert [p["done"] for p in plans] == list(range(CALIBRATION_STEPS + 1, plans[-1]["done"] + 1, REPLAN_EVERY))
    budget = plans[-1]
    assert budget["steps"] < budget["cap"]  # the budget chose
    assert result.steps == budget["steps"] == result.total_steps
    assert [e["step"] for e in events if e["event"] == "eval"] == [result.steps]  # one validation, at the end
    # warm-up and decay follow the chosen count, not the 1000 epochs' (whose warm-up would still be running)
    steps = budget["steps"]
    warmup = min(round(config.warmup_ratio * p["steps"]) for p in plans)
    chosen = Schedule(warmup, steps)
    after = [e for e in events if e["event"] == "train" and e["step"] > budget["done"]]
    assert len(after) == steps - budget["done"]
    for e in after:
        assert e["lr"] == pytest.approx(config.lr * chosen(e["step"]))
