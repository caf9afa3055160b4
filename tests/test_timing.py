"""The bench's interleaved timing: rounds, pairwise ratios and the stopping rule, on a fake clock."""

import numpy as np
import pytest

from mtkd.timing import interleaved_rounds, paired_ratios, ratio_summary


def test_ratio_summary_against_numpy():
    times, base = [2.0, 3.3, 2.2, 8.0, 2.4], [1.0, 1.5, 1.0, 2.0, 1.2]
    ratios = np.array(times) / np.array(base)
    q25, q75 = np.percentile(ratios, [25, 75])
    assert ratio_summary(times, base) == pytest.approx({
        "median": np.median(ratios), "min": ratios.min(), "max": ratios.max(), "pairs": 5,
        "spread": (q75 - q25) / np.median(ratios)})


class FakeMachine:
    """A clock that the runners advance: case B costs twice A, and the machine slows down 10x half
    way through, which a ratio of separately timed medians would mistake for a cost."""

    def __init__(self):
        self.now, self.calls = 0.0, []

    def clock(self):
        return self.now

    def runner(self, name, cost):
        def run(index):
            self.calls.append((name, index))
            self.now += cost * (10.0 if index >= 10 else 1.0)
        return run


def test_rounds_interleave_cases_and_pair_within_a_round():
    machine = FakeMachine()
    runners = {"a": machine.runner("a", 1.0), "b": machine.runner("b", 2.0)}
    result = paired_ratios(runners, "a", min_rounds=20, max_rounds=20, clock=machine.clock)
    assert machine.calls[:4] == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]  # A, B, A, B, ...
    ratio = result["ratios"]["b"]
    assert ratio == pytest.approx({"median": 2.0, "min": 2.0, "max": 2.0, "pairs": 20, "spread": 0.0})
    assert result["seconds"] == pytest.approx({"a": 5.5, "b": 11.0})  # medians of 10 slow, 10 fast rounds


def test_stops_once_the_spread_is_small_or_the_budget_is_spent():
    machine = FakeMachine()
    runners = {"a": machine.runner("a", 1.0), "b": machine.runner("b", 3.0)}
    times = interleaved_rounds(runners, min_rounds=4, max_rounds=100, baseline="a", spread=0.05, clock=machine.clock)
    assert len(times["a"]) == len(times["b"]) == 4  # exact ratios: spread 0 as soon as allowed
    noisy = FakeMachine()
    jitter = iter(np.random.default_rng(0).uniform(0.5, 1.5, 1000))
    runners = {"a": noisy.runner("a", 1.0), "b": lambda i: setattr(noisy, "now", noisy.now + next(jitter))}
    times = interleaved_rounds(runners, min_rounds=5, max_rounds=100, budget_seconds=60.0, baseline="a",
                               spread=0.01, clock=noisy.clock)
    assert 5 <= len(times["a"]) < 100 and sum(times["a"]) + sum(times["b"]) <= 60.0 + 20.0
