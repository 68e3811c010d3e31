"""Sustained-growth ranking: which types grow census after census, and how surely.

One diff says nothing: objects come and go. A type becomes a leak suspect only when, after a
warm-up, it sets new peaks (of object count or bytes) over several censuses (objgraph's rule:
passing the previous peak, so a workload that oscillates stops counting once its range is
known), seldom falls, has grown by a minimum absolute amount, and is still growing. The
certainty is Scalene's rule-of-succession score ``1 - (falls + 1) / (peaks - falls + 2)``:
five new peaks and no fall give 0.86, one fall among five peaks gives 0.67.

What this means for typical workloads:

- a bounded cache filling up sets a few peaks, then plateaus; it goes stale before it has set
  ``min_growth_checks`` peaks after the warm-up, or stops being a suspect once stale;
- batches allocated and freed, an oscillating queue: falls keep the score low;
- a one-time import or allocation: one peak;
- a buffer filled and flushed: the flush is a fall to zero (a type that is gone is kept, as
  zero, for 10 censuses before it is forgotten);
- a leak: a new peak at every census and no falls;
- a churning type that sets a few records in a row by chance: a new peak must pass the old
  one by more than the type's largest drop so far, and the growth must be twice that drop;
- a leak hidden in heavy churn of the same type: few peaks, many falls, but a floor that
  rises. The floor is measured directly for types that take weak references: the objects
  that outlive censuses keep growing (survival.py), a suspect of kind ``floor``. For others
  (dicts, lists, tuples) the container that holds the leak is the suspect
  (container_ranking.py), and the opt-in test over the census counts of the last
  ``window_checks`` censuses (window.py) also reports kind ``floor``. Counts alone cannot do
  it by default: a leak of 150 objects a census in swings of 6,000 is, after 24 censuses,
  within the range a stationary or wandering series reaches by chance.

Besides the type census the detector ranks single containers (container_ranking.py) and the
native gap (native.py) with the same peak rule (series.py).

Example::

    ranker = GrowthRanker(RankingPolicy(warmup_checks=3, min_growth_checks=4))
    for snapshot in snapshots:
        suspects = ranker.update(snapshot)
"""

from __future__ import annotations

from collections.abc import Mapping

from .census import HeapSnapshot, TypeTotal
from .policy import RankingPolicy
from .report import KIND_FLOOR, KIND_TYPE, LeakSuspect
from .series import Growth, SeriesHistory, advance, grown, observe, succession_score
from .window import Window, kendall_tau, rising_floor, rising_trend

_OWN_TYPES = "otel_memory.leak."
_FORGET_AFTER_ABSENT_CHECKS = 10


__all__ = ["GrowthRanker", "RankingPolicy", "succession_score"]


class GrowthRanker:
    """Turns a series of heap snapshots into ranked leak suspects; see the module docstring.

    Example::

        ranker = GrowthRanker(RankingPolicy(warmup_checks=2))
        ranker.update(take_census())      # () during the warm-up
    """

    def __init__(self, policy: RankingPolicy | None = None) -> None:
        self.policy = policy or RankingPolicy()
        self._history: dict[str, SeriesHistory] = {}
        self._survivors: dict[str, Window] = {}
        self.checks = 0

    def reset(self) -> None:
        """Forget everything, warm-up included."""
        self._history.clear()
        self._survivors.clear()
        self.checks = 0

    def bookkeeping(self) -> tuple[object, ...]:
        """What this ranker keeps (for the census to leave out)."""
        return self._history, self._survivors

    @property
    def warming_up(self) -> bool:
        """True while the censuses so far only learn the baseline."""
        return self.checks <= self.policy.warmup_checks

    def churning(self, totals: Mapping[str, TypeTotal]) -> dict[str, int]:
        """Types big enough to hide a leak whose counts swing: {name: count}; the survival
        sampler's candidates."""
        policy = self.policy
        found: dict[str, int] = {}
        for name, total in totals.items():
            seen = self._history.get(name)
            if (seen is not None and total.count >= policy.min_growth_objects
                    and seen.noise_count * 20 >= total.count and not name.startswith(_OWN_TYPES)):
                found[name] = total.count
        return found

    def update(self, snapshot: HeapSnapshot, survivors: Mapping[str, int] | None = None
               ) -> tuple[LeakSuspect, ...]:
        """Learn from one census (and the survival estimates of churning types); the current
        suspects, most certain and fastest first."""
        self.checks += 1
        check, now, policy = self.checks, snapshot.taken_at, self.policy
        totals = snapshot.totals
        history = self._history
        warming = check <= policy.warmup_checks
        for name in [name for name in history if name not in totals]:
            # gone for now: that is a fall to zero; forgotten when gone for long
            gone = history[name]
            gone.absent += 1
            if gone.absent > _FORGET_AFTER_ABSENT_CHECKS:
                del history[name]
            elif not warming:
                observe(policy, gone, 0, 0, check, policy.min_growth_objects, policy.min_growth_bytes)
                self._remember(gone, 0, 0)
            else:
                gone.base_count = gone.base_size = gone.last_count = gone.last_size = 0
        self._learn_survivors(survivors or {})
        suspects: list[LeakSuspect] = []
        for name, total in totals.items():
            if name.startswith(_OWN_TYPES):
                continue    # the detector's own bookkeeping grows with the types it has seen
            seen = history.get(name)
            if seen is None:
                base = (total.count, total.size) if warming else (0, 0)
                seen = history[name] = SeriesHistory(*base, now, check)
            if not advance(policy, seen, total.count, total.size, now, check, warming,
                           policy.min_growth_objects, policy.min_growth_bytes):
                continue
            self._remember(seen, total.count, total.size)
            suspect = (self._suspect(name, seen, total, now, check)
                       or self._floor_suspect(name, seen, total, now, check)
                       or self._window_suspect(name, seen, now, check))
            if suspect is not None:
                suspects.append(_with_holder(suspect, snapshot))
        suspects.sort(key=lambda s: (-s.score, -s.growth_bytes_per_s, s.type_name))
        return tuple(suspects)

    def _remember(self, seen: SeriesHistory, count: int, size: int) -> None:
        """Append to the windows of the floor tests, once the series is big enough."""
        policy = self.policy
        length = policy.window_checks
        if seen.counts is None and length and (seen.peak_count * 2 >= policy.min_growth_objects
                                               or seen.peak_size * 2 >= policy.min_growth_bytes):
            seen.counts, seen.sizes = Window(length), Window(length)
        if isinstance(seen.counts, Window) and isinstance(seen.sizes, Window):
            seen.counts.append(count)
            seen.sizes.append(size)

    def _learn_survivors(self, survivors: Mapping[str, int]) -> None:
        length = self.policy.survival_checks
        if not length:
            return
        for name in [name for name in self._survivors if name not in survivors]:
            del self._survivors[name]
        for name, old in survivors.items():
            window = self._survivors.get(name)
            if window is None:
                window = self._survivors[name] = Window(length)
            window.append(old)

    def _suspect(self, name: str, seen: SeriesHistory, total: TypeTotal, now: float,
                 check: int) -> LeakSuspect | None:
        policy = self.policy
        growth = grown(policy, seen, total.count, total.size, now, check,
                       policy.min_growth_objects, policy.min_growth_bytes)
        if growth is None:
            return None
        return _type_suspect(name, growth, total, KIND_TYPE)

    def _floor_suspect(self, name: str, seen: SeriesHistory, total: TypeTotal, now: float,
                       check: int) -> LeakSuspect | None:
        """The floor measured directly: the objects that outlive censuses keep growing
        (survival.py; types whose instances take weak references)."""
        policy = self.policy
        elapsed = max(now - seen.base_time, 1e-9)
        survivors = self._survivors.get(name)
        if survivors is not None and survivors.filled * 2 >= policy.survival_checks:
            values = survivors.ordered()
            trend = rising_trend(values, policy.min_growth_objects, policy.survival_min_tau)
            if trend is not None:
                rise, tau = trend
                share = total.size / total.count if total.count else 0.0
                return _type_suspect(name, Growth(rise, round(rise * share),
                                                  rise * share / elapsed, tau, survivors.filled),
                                     total, KIND_FLOOR)
        return None

    def _window_suspect(self, name: str, seen: SeriesHistory, now: float, check: int
                        ) -> LeakSuspect | None:
        """The opt-in rising-floor test over the last ``window_checks`` censuses (window.py).

        A type stays a suspect while its tau stays high and the floor rose at least once in
        the last third of a window (one low census among churn does not clear it); once the
        growth stops, the floor test fails within two thirds of a window."""
        policy = self.policy
        if not policy.window_checks or not isinstance(seen.counts, Window) \
                or not isinstance(seen.sizes, Window) or seen.counts.filled < policy.window_checks:
            return None
        counts = seen.counts.ordered()[-policy.window_checks:]
        sizes = seen.sizes.ordered()[-policy.window_checks:]
        if (rising_floor(counts, policy.min_growth_objects) is not None
                or rising_floor(sizes, policy.min_growth_bytes) is not None):
            seen.floor_rose_check = check
        if check - seen.floor_rose_check > policy.window_checks // 3:
            return None
        tau = max(kendall_tau(counts), kendall_tau(sizes))
        if tau < policy.window_min_tau:
            return None
        count, size = counts[-1], sizes[-1]
        count_delta, size_delta = count - seen.base_count, size - seen.base_size
        elapsed = now - seen.base_time
        return LeakSuspect(type_name=name, count_delta=count_delta, size_delta=size_delta,
                           growth_bytes_per_s=size_delta / elapsed if elapsed > 0 else 0.0,
                           score=tau, snapshots=seen.peaks, count=count, size=size,
                           kind=KIND_FLOOR)


def _type_suspect(name: str, growth: Growth, total: TypeTotal, kind: str) -> LeakSuspect:
    return LeakSuspect(type_name=name, count_delta=growth.count_delta,
                       size_delta=growth.size_delta, growth_bytes_per_s=growth.rate,
                       score=growth.score, snapshots=growth.peaks, count=total.count,
                       size=total.size, kind=kind)


def _with_holder(suspect: LeakSuspect, snapshot: HeapSnapshot) -> LeakSuspect:
    """For a type the collector does not track, the container type holding most of it now."""
    holders = snapshot.holders_of(suspect.type_name)
    if not holders:
        return suspect
    return suspect.with_holder(max(holders, key=lambda holder: holders[holder].size))
