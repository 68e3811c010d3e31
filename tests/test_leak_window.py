"""The rising-floor test: a ring of machine ints, the floor rule and Kendall's tau."""

from __future__ import annotations

import random
import sys

import pytest

from otel_memory.leak.census import HeapSnapshot, TypeTotal
from otel_memory.leak.ranking import GrowthRanker, RankingPolicy
from otel_memory.leak.window import Window, kendall_tau, rising_floor


def test_the_window_keeps_the_last_values_oldest_first() -> None:
    window = Window(4)
    for value in (1, 2, 3):
        window.append(value)
    assert not window.full and list(window.ordered()) == [1, 2, 3]
    for value in (4, 5, 6):
        window.append(value)
    assert window.full and list(window.ordered()) == [3, 4, 5, 6]


def test_the_window_holds_no_python_ints() -> None:
    window = Window(20_000)
    before = sys.getallocatedblocks()
    for value in range(10**9, 10**9 + 20_000):
        window.append(value)
    assert sys.getallocatedblocks() - before < 1000     # a deque would hold 20k int objects


def test_the_floor_must_rise_past_every_early_value() -> None:
    assert rising_floor([1, 5, 2, 9, 10, 8, 20, 21, 22], min_rise=10) == 15
    assert rising_floor([1, 5, 2, 9, 10, 8, 20, 21, 4], min_rise=1) is None
    assert rising_floor([1, 5, 2, 9, 10, 8, 20, 21, 22], min_rise=16) is None
    assert rising_floor([1, 2, 3], min_rise=1) is None            # too short to have thirds


def test_kendall_tau() -> None:
    assert kendall_tau(list(range(10))) == 1.0
    assert kendall_tau(list(range(10, 0, -1))) == -1.0
    assert kendall_tau([1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert kendall_tau([5]) == 0.0


WINDOWED = RankingPolicy(window_checks=36)


def ranked(series: dict[str, list[int]], policy: RankingPolicy = WINDOWED) -> list[set[str]]:
    ranker = GrowthRanker(policy)
    checks = len(next(iter(series.values())))
    result = []
    for i in range(checks):
        totals = {name: TypeTotal(name, values[i], values[i] * 64) for name, values in series.items()}
        result.append({s.type_name for s in ranker.update(HeapSnapshot(60.0 * i, totals, 0, 0, 0, 0))})
    return result


def test_a_leak_hidden_in_churn_of_its_own_type_is_found_by_its_rising_floor() -> None:
    rng = random.Random(5)
    series = [50_000 + 1000 * i + rng.randrange(0, 19_000) for i in range(80)]
    found = ranked({"dict": series})
    first = next(i for i, names in enumerate(found) if names)
    assert WINDOWED.warmup_checks + 36 <= first + 1 <= WINDOWED.warmup_checks + 36 + 6
    assert all("dict" in names for names in found[first:])
    ranker = GrowthRanker(WINDOWED)
    peaks_only = GrowthRanker()          # the default: the rising-floor test is off
    for i, value in enumerate(series):
        totals = {"dict": TypeTotal("dict", value, value * 64)}
        snapshot = HeapSnapshot(60.0 * i, totals, 0, 0, 0, 0)
        with_window, without = ranker.update(snapshot), peaks_only.update(snapshot)
    assert with_window and with_window[0].score >= 0.5 and not without


def test_stationary_churn_of_many_types_never_passes_the_window_test() -> None:
    rng = random.Random(11)
    series = {f"t{k}": [rng.randrange(5_000, 60_000) for _ in range(400)] for k in range(40)}
    assert not any(ranked(series))


def test_growth_that_stops_leaves_the_window_within_two_thirds_of_it() -> None:
    rng = random.Random(2)
    series = [50_000 + 1000 * min(i, 60) + rng.randrange(0, 19_000) for i in range(130)]
    found = ranked({"dict": series})
    assert any(found[40:60])
    assert not any(found[60 + 24 + 1:])


def test_a_slowly_wandering_count_is_why_the_test_is_opt_in() -> None:
    rng = random.Random(0)
    value, series = 30_000, []
    for _ in range(300):      # mean-reverting: each census close to the last, range ~ +-8000
        value += rng.randrange(-3000, 3001) + (30_000 - value) // 10
        series.append(value)
    windows = [series[end - 36:end] for end in range(36, 300)]
    passing = [w for w in windows if rising_floor(w, 1000) is not None and kendall_tau(w) >= 0.5]
    assert passing                                       # locally it looks like growth
    assert not any(ranked({"dict": series}, RankingPolicy()))     # the default stays quiet


def test_a_bad_window_length_is_refused() -> None:
    with pytest.raises(ValueError, match="window_checks=3; expected 0 \\(off\\) or an int >= 6"):
        RankingPolicy(window_checks=3)
