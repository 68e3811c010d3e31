"""The peak rule over one series of (count, bytes), shared by every kind of leak suspect.

A type's census totals, one container's length and size, the native gap: each is a series the
ranker feeds census by census. A series is suspect when, after a baseline, it keeps setting
new peaks (objgraph's rule: passing the previous peak, so an oscillation stops counting once
its range is known), seldom falls, has grown by a minimum absolute amount well above its own
swings, and is still growing. The certainty is Scalene's rule-of-succession score
``1 - (falls + 1) / (peaks - falls + 2)``.

Example::

    history = SeriesHistory(count=1000, size=64_000, when=0.0, check=1)
    for check, (count, size) in enumerate(later, start=2):
        observe(policy, history, count, size, check)
    growth = grown(policy, history, count, size, now, check, min_objects=1000, min_bytes=MB)
"""

from __future__ import annotations

from dataclasses import dataclass

from .policy import RankingPolicy


class SeriesHistory:
    """What a ranker remembers of one series (plain numbers, no objects).

    Example::

        SeriesHistory(count=0, size=0, when=time.monotonic(), check=1)
    """

    __slots__ = ("absent", "base_count", "base_size", "base_time", "counts", "extra", "falls",
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
        self.counts: object = None     # windows of the floor tests, once the series is big enough
        self.sizes: object = None
        self.extra: object = None      # what a ranker keeps beside (a holder breakdown, ...)

    def learn(self, count: int, size: int, when: float) -> None:
        """A census of the warm-up: move the baseline and learn the swings."""
        self.noise_count = max(self.noise_count, self.last_count - count)
        self.noise_size = max(self.noise_size, self.last_size - size)
        self.base_count, self.base_size, self.base_time = count, size, when
        self.peak_count = max(self.peak_count, count)
        self.peak_size = max(self.peak_size, size)
        self.last_count, self.last_size = count, size


@dataclass(frozen=True)
class Growth:
    """How much and how surely a series grew since its baseline.

    Example::

        Growth(count_delta=7000, size_delta=450_000, rate=1875.0, score=0.86, peaks=5)
    """

    count_delta: int
    size_delta: int
    rate: float
    """Bytes per second since the baseline."""
    score: float
    peaks: int


def succession_score(peaks: int, falls: int) -> float:
    """Scalene's rule-of-succession leak score: near 1 for growth without falls."""
    denominator = peaks - falls + 2
    if denominator <= 0:
        return 0.0
    return max(0.0, 1.0 - (falls + 1) / denominator)


def observe(policy: RankingPolicy, seen: SeriesHistory, count: int, size: int, check: int,
            min_objects: int, min_bytes: int) -> None:
    """Learn one census after the warm-up: a new peak, a fall, or neither.

    A new peak passes the old one by more than the series' own largest drop (the records a
    churning series sets by chance come in ever smaller steps and stop counting) and by at
    least a ``min_growth_checks``-th of the minimum growth (a plateau that wobbles by a few
    dozen objects sets no peaks; a leak slower than that sets one every few censuses)."""
    step, tolerance = policy.peak_tolerance, policy.fall_tolerance
    least_count = min_objects // policy.min_growth_checks
    least_size = min_bytes // policy.min_growth_checks
    if (count > seen.peak_count + max(step * seen.peak_count, seen.noise_count, least_count)
            or size > seen.peak_size + max(step * seen.peak_size, seen.noise_size, least_size)):
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


def advance(policy: RankingPolicy, seen: SeriesHistory, count: int, size: int, when: float,
            check: int, warming_up: bool, min_objects: int, min_bytes: int) -> bool:
    """One census: learned into the baseline during the warm-up (False), observed after (True)."""
    seen.absent = 0
    if warming_up:
        seen.learn(count, size, when)
        return False
    observe(policy, seen, count, size, check, min_objects, min_bytes)
    return True


def grown(policy: RankingPolicy, seen: SeriesHistory, count: int, size: int, now: float,
          check: int, min_objects: int, min_bytes: int) -> Growth | None:
    """The growth when the series is suspect by the peak rule, else None."""
    if seen.peaks < policy.min_growth_checks:
        return None
    usual_gap = (seen.last_peak_check - seen.first_peak_check) / max(1, seen.peaks - 1)
    if check - seen.last_peak_check >= max(policy.stale_checks, 2 * usual_gap + 1):
        return None
    score = succession_score(seen.peaks, seen.falls)
    if score < policy.min_score:
        return None
    count_delta, size_delta = count - seen.base_count, size - seen.base_size
    # enough growth, and well above the series' own swings: a churning series whose values
    # happen to set a few records in a row is not a leak
    if (count_delta < max(min_objects, 2 * seen.noise_count)
            and size_delta < max(min_bytes, 2 * seen.noise_size)):
        return None
    elapsed = now - seen.base_time
    rate = size_delta / elapsed if elapsed > 0 else 0.0
    return Growth(count_delta, size_delta, rate, score, seen.peaks)
