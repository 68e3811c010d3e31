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
- a leak hidden in heavy churn of the same type: few peaks, many falls, but (opt-in) a
  rising floor over the last ``window_checks`` censuses (window.py), scored by Kendall's tau.

Example::

    ranker = GrowthRanker(RankingPolicy(warmup_checks=3, min_growth_checks=4))
    for snapshot in snapshots:
        suspects = ranker.update(snapshot)
"""

from __future__ import annotations

from dataclasses import dataclass

from .census import HeapSnapshot
from .report import LeakSuspect
from .window import Window, kendall_tau, rising_floor

MB = 1024 * 1024
_OWN_TYPES = "otel_memory.leak."
_FORGET_AFTER_ABSENT_CHECKS = 10


@dataclass(frozen=True)
class RankingPolicy:
    """The rules of the ranking; the defaults suit a check every minute.

    Example::

        RankingPolicy(warmup_checks=2, min_growth_objects=500, min_growth_bytes=256 * 1024)
    """

    warmup_checks: int = 5
    """Censuses that only learn the baseline (imports, caches and pools warming up) and the
    size of each type's swings."""
    min_growth_checks: int = 5
    """New peaks needed after the warm-up."""
    min_score: float = 0.8
    """Rule-of-succession score needed."""
    min_growth_objects: int = 1000
    """Growth since the baseline, in objects, that is enough (or ``min_growth_bytes``)."""
    min_growth_bytes: int = 1 * MB
    """Growth since the baseline, in bytes, that is enough (or ``min_growth_objects``)."""
    stale_checks: int = 3
    """A type that set no new peak in this many censuses (or in twice its usual gap between
    peaks, when that is longer: a leak in bursts) is no longer a suspect."""
    peak_tolerance: float = 0.001
    """A new peak must pass the previous one by more than this fraction of it, so that a
    creep of a few objects (the detector's own numbers) counts rarely, not at every census."""
    fall_tolerance: float = 0.02
    """A drop counts as a fall when larger than this fraction of the previous value."""
    window_checks: int = 0
    """Censuses of the rising-floor test (window.py) for growth hidden in churn of the same
    type; 0: off (the default: a type whose count wanders slowly over a range far above
    ``min_growth_objects`` can pass it, see window.py). 36 finds a leak of 1000 objects per
    census hidden in swings of 19000 after 36 censuses."""
    window_min_tau: float = 0.5
    """Kendall's tau the rising-floor test needs."""

    def __post_init__(self) -> None:
        for name in ("warmup_checks", "min_growth_objects", "min_growth_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r}; expected an int >= 0")
        for name in ("min_growth_checks", "stale_checks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}; expected an int >= 1")
        if not isinstance(self.window_checks, int) or not (self.window_checks == 0
                                                           or self.window_checks >= 6):
            raise ValueError(f"window_checks={self.window_checks!r}; expected 0 (off) or an int >= 6")
        for name in ("min_score", "peak_tolerance", "fall_tolerance", "window_min_tau"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name}={value!r}; expected a number from 0 to 1")


def succession_score(peaks: int, falls: int) -> float:
    """Scalene's rule-of-succession leak score: near 1 for growth without falls."""
    denominator = peaks - falls + 2
    if denominator <= 0:
        return 0.0
    return max(0.0, 1.0 - (falls + 1) / denominator)


class _History:
    """What the ranker remembers of one type (plain numbers, no objects)."""

    __slots__ = ("absent", "base_count", "base_size", "base_time", "counts", "falls",
                 "first_peak_check", "floor_rose_check", "last_count", "last_peak_check",
                 "last_size", "noise_count", "noise_size", "peak_count", "peak_size", "peaks",
                 "sizes")

    def __init__(self, count: int, size: int, when: float, check: int) -> None:
        self.base_count = self.peak_count = self.last_count = count
        self.base_size = self.peak_size = self.last_size = size
        self.base_time = when
        self.peaks = 0
        self.falls = 0
        self.first_peak_check = self.last_peak_check = check
        self.absent = 0
        self.noise_count = self.noise_size = 0    # the largest drop seen from one census to the next
        self.floor_rose_check = -1_000_000
        self.counts: Window | None = None     # the window, once the type is big enough
        self.sizes: Window | None = None


class GrowthRanker:
    """Turns a series of heap snapshots into ranked leak suspects; see the module docstring.

    Example::

        ranker = GrowthRanker(RankingPolicy(warmup_checks=2))
        ranker.update(take_census())      # () during the warm-up
    """

    def __init__(self, policy: RankingPolicy | None = None) -> None:
        self.policy = policy or RankingPolicy()
        self._history: dict[str, _History] = {}
        self.checks = 0

    def reset(self) -> None:
        """Forget everything, warm-up included."""
        self._history.clear()
        self.checks = 0

    def update(self, snapshot: HeapSnapshot) -> tuple[LeakSuspect, ...]:
        """Learn from one census; the current suspects, most certain and fastest first."""
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
                self._observe(gone, 0, 0, check)
            else:
                gone.base_count = gone.base_size = gone.last_count = gone.last_size = 0
        suspects: list[LeakSuspect] = []
        for name, total in totals.items():
            if name.startswith(_OWN_TYPES):
                continue    # the detector's own bookkeeping grows with the types it has seen
            seen = history.get(name)
            if seen is None:
                base = (total.count, total.size) if warming else (0, 0)
                seen = history[name] = _History(*base, now, check)
            seen.absent = 0
            if warming:
                seen.noise_count = max(seen.noise_count, seen.last_count - total.count)
                seen.noise_size = max(seen.noise_size, seen.last_size - total.size)
                seen.base_count, seen.base_size, seen.base_time = total.count, total.size, now
                seen.peak_count = max(seen.peak_count, total.count)
                seen.peak_size = max(seen.peak_size, total.size)
                seen.last_count, seen.last_size = total.count, total.size
                continue
            self._observe(seen, total.count, total.size, check)
            suspect = (self._suspect(name, seen, total.count, total.size, now, check)
                       or self._window_suspect(name, seen, now, check))
            if suspect is not None:
                suspects.append(suspect)
        suspects.sort(key=lambda s: (-s.score, -s.growth_bytes_per_s, s.type_name))
        return tuple(suspects)

    def _observe(self, seen: _History, count: int, size: int, check: int) -> None:
        step, tolerance = self.policy.peak_tolerance, self.policy.fall_tolerance
        # a new peak passes the old one by more than the type's own largest drop: the records
        # a churning type sets by chance come in ever smaller steps and stop counting
        if (count > seen.peak_count + max(step * seen.peak_count, seen.noise_count)
                or size > seen.peak_size + max(step * seen.peak_size, seen.noise_size)):
            if seen.peaks == 0:
                seen.first_peak_check = check
            seen.peaks += 1
            seen.last_peak_check = check
            seen.peak_count = max(seen.peak_count, count)
            seen.peak_size = max(seen.peak_size, size)
        elif (count < seen.last_count - max(1.0, tolerance * seen.last_count)
              or size < seen.last_size - max(1.0, tolerance * seen.last_size)):
            seen.falls += 1
        seen.noise_count = max(seen.noise_count, seen.last_count - count)
        seen.noise_size = max(seen.noise_size, seen.last_size - size)
        seen.last_count, seen.last_size = count, size
        policy = self.policy
        if seen.counts is None and policy.window_checks and (
                seen.peak_count * 2 >= policy.min_growth_objects
                or seen.peak_size * 2 >= policy.min_growth_bytes):
            seen.counts = Window(policy.window_checks)
            seen.sizes = Window(policy.window_checks)
        if seen.counts is not None and seen.sizes is not None:
            seen.counts.append(count)
            seen.sizes.append(size)

    def _suspect(self, name: str, seen: _History, count: int, size: int, now: float,
                 check: int) -> LeakSuspect | None:
        policy = self.policy
        if seen.peaks < policy.min_growth_checks:
            return None
        usual_gap = (seen.last_peak_check - seen.first_peak_check) / max(1, seen.peaks - 1)
        if check - seen.last_peak_check >= max(policy.stale_checks, 2 * usual_gap + 1):
            return None
        score = succession_score(seen.peaks, seen.falls)
        if score < policy.min_score:
            return None
        count_delta, size_delta = count - seen.base_count, size - seen.base_size
        # enough growth, and well above the type's own swings: a churning type whose counts
        # happen to set a few records in a row is not a leak
        if (count_delta < max(policy.min_growth_objects, 2 * seen.noise_count)
                and size_delta < max(policy.min_growth_bytes, 2 * seen.noise_size)):
            return None
        elapsed = now - seen.base_time
        rate = size_delta / elapsed if elapsed > 0 else 0.0
        return LeakSuspect(type_name=name, count_delta=count_delta, size_delta=size_delta,
                           growth_bytes_per_s=rate, score=score, snapshots=seen.peaks,
                           count=count, size=size, allocation_site=None)

    def _window_suspect(self, name: str, seen: _History, now: float, check: int
                        ) -> LeakSuspect | None:
        """The rising-floor test over the last ``window_checks`` censuses (window.py).

        A type stays a suspect while its tau stays high and the floor rose at least once in
        the last third of a window (one low census among churn does not clear it); once the
        growth stops, the floor test fails within two thirds of a window."""
        policy = self.policy
        if seen.counts is None or seen.sizes is None or not seen.counts.full:
            return None
        counts, sizes = seen.counts.ordered(), seen.sizes.ordered()
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
                           score=tau, snapshots=seen.peaks, count=count, size=size)
