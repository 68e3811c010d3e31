"""Survival samples: how many of a churning type's objects outlive censuses."""

from __future__ import annotations

import pytest

from otel_memory.leak.census import take_census, type_name
from otel_memory.leak.survival import SurvivalSampler


class Ticket:
    def __init__(self, number: int) -> None:
        self.number = number


class Slotted:
    __slots__ = ("number",)

    def __init__(self, number: int) -> None:
        self.number = number


def census_round(sampler: SurvivalSampler, counts: dict[str, int]) -> dict[str, int]:
    sampler.plan(counts)
    take_census(visit=sampler.visit)
    return sampler.finish()


def test_churn_dies_young_and_kept_objects_are_counted_once_old_enough() -> None:
    sampler = SurvivalSampler(per_type=200, age=2)
    name = type_name(Ticket)
    kept: list[Ticket] = []
    working: list[Ticket] = []
    estimates = []
    for _ in range(8):
        working[:] = [Ticket(i) for i in range(4000)]        # replaced every round
        kept.extend(Ticket(i) for i in range(500))           # never freed
        estimates.append(census_round(sampler, {name: len(working) + len(kept)}).get(name))
    assert estimates[:2] == [None, None]                      # no cohort old enough yet
    # what was alive two rounds ago and still is: the kept tickets of that round
    for step in range(2, 8):
        expected = 500 * (step - 1)
        assert estimates[step] == pytest.approx(expected, abs=0.35 * expected + 150), estimates
    assert estimates[-1] > estimates[2] * 2           # the floor keeps rising


def test_pure_churn_leaves_no_survivors() -> None:
    sampler = SurvivalSampler(per_type=100, age=1)
    name = type_name(Ticket)
    working: list[Ticket] = []
    found = []
    for _ in range(4):
        working[:] = [Ticket(i) for i in range(3000)]
        found.append(census_round(sampler, {name: 3000}).get(name))
    assert found[1:] == [0, 0, 0]


def test_types_without_weak_references_are_skipped_and_the_sample_is_bounded() -> None:
    sampler = SurvivalSampler(per_type=50, age=1, max_types=2)
    slots = [Slotted(i) for i in range(2000)]
    tickets = [Ticket(i) for i in range(3000)]
    census_round(sampler, {type_name(Slotted): 2000, type_name(Ticket): 3000})
    census_round(sampler, {type_name(Slotted): 2000, type_name(Ticket): 3000})
    survivors = census_round(sampler, {type_name(Slotted): 2000, type_name(Ticket): 3000})
    assert type_name(Slotted) not in survivors     # no weak references: never sampled again
    assert survivors[type_name(Ticket)] == pytest.approx(3000, rel=0.05)
    refs = sum(len(cohort.refs) for cohorts in sampler.bookkeeping()[0].values()  # type: ignore[attr-defined]
               for cohort in cohorts)
    assert 0 < refs <= 2 * 50 * 2
    del slots, tickets


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="per_type=0; expected an int >= 1"):
        SurvivalSampler(per_type=0)
