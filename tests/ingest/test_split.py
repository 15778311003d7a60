"""The 80/20 split by session: deterministic with a seed, or by time; never one session on both sides."""

from __future__ import annotations

import json
import re

from trainer.ingest.split import choose_val

DAY = 86_400


def sessions_export(tg, write, sizes: list[int]):
    """One chat; session k (a day apart) holds sizes[k] exchanges whose texts carry the tag s<k>."""
    rows, mid = [], 0
    for k, size in enumerate(sizes):
        for i in range(size):
            t = k * DAY + 20 * i
            rows.append(tg.msg(mid := mid + 1, t, "Anna", f"s{k} q{i}"))
            rows.append(tg.msg(mid := mid + 1, t + 10, "Me", f"s{k} a{i}"))
    return write("result.json", tg.chat(rows))


def tags(path) -> list[set[int]]:
    """The sessions each sample of a dataset file comes from."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = " ".join(m["content"] for m in json.loads(line)["messages"])
        out.append({int(t) for t in re.findall(r"\bs(\d+)\b", text)})
    return out


def test_random_split_keeps_sessions_whole_and_is_seeded(tg, write, run):
    path = sessions_export(tg, write, [3, 1, 4, 1, 5, 2, 6, 2, 3, 3])  # 30 samples
    result = run(path, val_fraction=0.2, seed=0, me=("Me",))
    train = set().union(*tags(result.train))
    val = set().union(*tags(result.val))
    assert all(len(t) == 1 for t in tags(result.train) + tags(result.val))
    assert train.isdisjoint(val) and train | val == set(range(10))
    assert result.val_samples == 6 and result.train_samples == 24  # exactly 20%: sessions that fit under the target
    first = (result.train.read_bytes(), result.val.read_bytes())
    again = run(path, val_fraction=0.2, seed=0, me=("Me",))
    assert (again.train.read_bytes(), again.val.read_bytes()) == first
    other = run(path, val_fraction=0.2, seed=1, me=("Me",))
    assert set().union(*tags(other.val)) != val


def test_time_split_puts_the_latest_sessions_in_validation(tg, write, run, samples_of):
    path = sessions_export(tg, write, [1] * 10)
    result = run(path, val_fraction=0.2, split="time", me=("Me",))
    assert samples_of(result.val) == [["user: s8 q0", "assistant: s8 a0"], ["user: s9 q0", "assistant: s9 a0"]]
    assert [s[0] for s in samples_of(result.train)] == [f"user: s{k} q0" for k in range(8)]
    assert result.stats["sessions"] == {"conversations": 10, "train": 8, "val": 2}


def test_choose_val_random_takes_what_fits_under_the_target():
    # target 20% of 20 = 4: the shuffled order decides, a session of 10 never fits
    val = choose_val([10, 2, 2, 2, 2, 2], [0] * 6, 0.2, "random", seed=3)
    assert sum([10, 2, 2, 2, 2, 2][i] for i in val) == 4 and 0 not in val
    assert choose_val([10, 2, 2, 2, 2, 2], [0] * 6, 0.2, "random", seed=3) == val


def test_choose_val_takes_one_small_session_when_none_fits():
    assert choose_val([50, 40, 30], [0, 1, 2], 0.2, "random", seed=0) == {2}


def test_choose_val_time_newest_first_and_at_least_one():
    assert choose_val([1, 1, 1, 1, 1], [5, 4, 3, 2, 1], 0.4, "time", seed=0) == {0, 1}
    assert choose_val([5, 5, 50], [1, 2, 3], 0.2, "time", seed=0) == {2}


def test_one_session_or_no_fraction_holds_nothing_out():
    assert choose_val([7], [0], 0.2, "random", seed=0) == set()
    assert choose_val([3, 4], [0, 1], 0.0, "time", seed=0) == set()
