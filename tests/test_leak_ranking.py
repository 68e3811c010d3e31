"""Sustained-growth ranking on synthetic census series: leaks rank, plateaus and noise do not."""

from __future__ import annotations

import pytest

from otel_memory.leak.census import HeapSnapshot, TypeTotal
from otel_memory.leak.ranking import GrowthRanker, RankingPolicy, succession_score
from otel_memory.leak.report import LeakSuspect

POLICY = RankingPolicy(warmup_checks=3, min_growth_checks=4, min_growth_objects=1000,
                       min_growth_bytes=1024 * 1024)


def snapshot(when: float, **counts: int) -> HeapSnapshot:
    totals = {name: TypeTotal(name, count, count * 100) for name, count in counts.items()}
    return HeapSnapshot(when, totals, sum(counts.values()), sum(t.size for t in totals.values()), 0.0, 0.0)


def run(series: list[int], policy: RankingPolicy = POLICY, name: str = "app.T",
        ) -> list[tuple[LeakSuspect, ...]]:
    ranker = GrowthRanker(policy)
    steady = 50_000   # another type that never changes
    return [ranker.update(snapshot(10.0 * i, **{name: count, "dict": steady}))
            for i, count in enumerate(series)]


def test_a_type_growing_at_every_census_becomes_a_suspect_after_warm_up_and_four_peaks() -> None:
    results = run([1000 + 500 * i for i in range(10)])
    assert [bool(r) for r in results] == [False] * 6 + [True] * 4
    first = results[6][0]
    assert first.type_name == "app.T" and first.snapshots == 4
    assert first.count_delta == 2000 and first.size_delta == 200_000   # since the end of warm-up
    assert first.growth_bytes_per_s == pytest.approx(200_000 / 40.0)
    assert first.score == pytest.approx(succession_score(4, 0)) == pytest.approx(1 - 1 / 6)
    assert results[-1][0].score > first.score


def test_growth_during_the_warm_up_does_not_count() -> None:
    results = run([1000, 50_000, 90_000, 90_000, 90_000, 90_000, 90_000, 90_000])
    assert not any(results)


def test_a_cache_filling_to_its_bound_and_plateauing_is_no_suspect() -> None:
    results = run([1000, 2000, 3000, 4000, 5000, 6000, 6000, 6000, 6000, 6000, 6000])
    assert not any(results)


def test_a_suspect_that_stops_growing_goes_stale() -> None:
    results = run([1000 + 500 * i for i in range(9)] + [5000] * 4)
    assert [bool(r) for r in results][6:] == [True, True, True, True, True, False, False]


def test_a_leak_in_bursts_stays_a_suspect_between_bursts() -> None:
    series = [1000, 1000, 1000] + [1000 + 2000 * (i // 3 + 1) for i in range(30)]   # grows every 3rd
    results = run(series)
    first = next(i for i, r in enumerate(results) if r)
    assert all(results[first:])
    assert results[-1][0].snapshots == 10


def test_an_oscillating_workload_is_no_suspect() -> None:
    import random

    rng = random.Random(3)
    assert not any(run([rng.randrange(1000, 9000) for _ in range(60)]))


def test_a_saw_tooth_that_keeps_falling_scores_low() -> None:
    series = [1000, 1000, 1000] + [2000 + 1500 * (i // 2) - 1400 * (i % 2) for i in range(12)]
    results = run(series)
    assert not any(results)
    assert succession_score(6, 5) < POLICY.min_score


def test_a_one_time_jump_is_no_suspect() -> None:
    assert not any(run([1000] * 5 + [60_000] * 10))


def test_a_creep_of_a_few_objects_sets_no_peaks_and_small_growth_is_never_enough() -> None:
    ranker = GrowthRanker(POLICY)
    for i in range(30):
        ranker.update(snapshot(float(i), **{"int": 20_000 + 3 * i}))
    assert ranker._history["int"].peaks <= 5
    assert not any(run([100 + 20 * i for i in range(30)]))    # grows every time, but only by 20


def test_growth_in_bytes_alone_makes_a_suspect() -> None:
    ranker = GrowthRanker(POLICY)
    results = []
    for i in range(9):
        totals = {"list": TypeTotal("list", 10, 1000 + 400_000 * i)}
        results.append(ranker.update(HeapSnapshot(float(i), totals, 10, 0, 0.0, 0.0)))
    assert results[-1] and results[-1][0].type_name == "list" and results[-1][0].count_delta == 0


def test_suspects_rank_by_score_then_growth_rate() -> None:
    ranker = GrowthRanker(POLICY)
    results: tuple[LeakSuspect, ...] = ()
    for i in range(12):
        counts = {"app.Slow": 1000 + 400 * i, "app.Fast": 1000 + 4000 * i}
        if i >= 5:
            counts["app.Late"] = 3000 * (i - 4)
        results = ranker.update(snapshot(float(i), **counts))
    assert [s.type_name for s in results] == ["app.Fast", "app.Slow", "app.Late"]


def test_a_type_that_comes_and_goes_keeps_its_history_until_long_gone() -> None:
    ranker = GrowthRanker(POLICY)
    results = []
    for i in range(30):      # a buffer of 1500 more each step, flushed every fifth step
        count = 0 if i % 5 == 4 else 1500 * (i % 5 + 1)
        results.append(ranker.update(snapshot(float(i), **({"app.Buffer": count} if count else {}))))
    assert not any(results)
    assert ranker._history["app.Buffer"].falls >= 5
    for i in range(30, 41):
        ranker.update(snapshot(float(i), other=1))
    assert "app.Buffer" not in ranker._history


def test_the_score_is_the_rule_of_succession() -> None:
    assert succession_score(0, 0) == 0.5
    assert succession_score(4, 1) == pytest.approx(0.6)
    assert succession_score(2, 5) == 0.0


@pytest.mark.parametrize(("field", "value", "message"), [
    ("min_growth_checks", 0, "min_growth_checks=0; expected an int >= 1"),
    ("warmup_checks", -1, "warmup_checks=-1; expected an int >= 0"),
    ("min_score", 1.5, "min_score=1.5; expected a number from 0 to 1"),
])
def test_a_bad_policy_is_refused_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RankingPolicy(**{field: value})  # type: ignore[arg-type]


def _floor_suspects(survivors: list[int], policy: RankingPolicy = POLICY) -> list[bool]:
    """Whether a churning type (its count swinging, no new peaks) is a floor suspect at each
    census, given the survival estimates of its long-lived objects."""
    ranker = GrowthRanker(policy)
    found = []
    for i, alive in enumerate(survivors):
        count = 9000 if i % 2 else 3000
        result = ranker.update(snapshot(10.0 * i, **{"app.Order": count, "dict": 50_000}),
                               {"app.Order": alive})
        found.append(any(s.kind == "floor" for s in result))
    return found


def test_long_lived_objects_rising_census_after_census_are_a_floor_suspect() -> None:
    rising = [594, 814, 998, 1187, 1418, 1775, 1838, 1987, 2153, 2407, 2595, 2798]
    assert _floor_suspects([0] * 4 + rising)[-1]


def test_a_queue_swinging_at_random_is_no_floor_suspect() -> None:
    # survivors of a FIFO queue whose length is drawn at random each step (a leak scenario's
    # steady workload): Kendall's tau 0.61 over these 12, a chance rise, not a floor
    swinging = [492, 509, 224, 0, 2500, 3516, 511, 714, 4292, 4303, 1737, 5115]
    assert not any(_floor_suspects([0] * 4 + swinging))
    lenient = RankingPolicy(warmup_checks=3, min_growth_checks=4, min_growth_objects=1000,
                            min_growth_bytes=1024 * 1024, survival_min_tau=0.6)
    assert _floor_suspects([0] * 4 + swinging, lenient)[-1]   # what 0.6 made of it
