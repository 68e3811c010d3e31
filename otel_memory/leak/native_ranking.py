"""Ranking native memory: the gap between the resident set and the Python heap, growing.

The native reading of each check (native.py) is one series: ``native_bytes`` (resident set
minus the census's bytes minus malloc's retained free bytes). It is a suspect by the peak rule
of series.py with its own minimum growth, ``RankingPolicy.native_min_growth_bytes``, and only
while the gap explains at least ``native_share`` of the resident set's growth since the
baseline: a leak of Python objects grows the gap a little too (pymalloc's own overhead), but
far less than it grows the resident set.

Example::

    ranker = NativeRanker(RankingPolicy())
    suspect = ranker.update(reading, warming_up=False, check=n, now=time.monotonic())
"""

from __future__ import annotations

from .native import NativeMemory
from .policy import RankingPolicy
from .report import KIND_NATIVE, NATIVE_TYPE_NAME, LeakSuspect
from .series import SeriesHistory, advance, grown


class NativeRanker:
    """Follows the native gap from check to check.

    Example::

        ranker = NativeRanker(RankingPolicy(warmup_checks=2))
        ranker.update(NativeMemory(300 * MB, 100 * MB, 10 * MB), warming_up=True, check=1, now=0.0)
    """

    def __init__(self, policy: RankingPolicy) -> None:
        self.policy = policy
        self._gap: SeriesHistory | None = None
        self._rss: SeriesHistory | None = None

    def bookkeeping(self) -> tuple[object, ...]:
        """What this ranker keeps (for the census to leave out)."""
        return self._gap, self._rss

    def reset(self) -> None:
        """Forget the series."""
        self._gap = self._rss = None

    def update(self, reading: NativeMemory | None, *, warming_up: bool, check: int,
               now: float) -> LeakSuspect | None:
        """Learn one reading; the native suspect, or None."""
        if reading is None:
            return None
        native, rss = max(0, reading.native_bytes), reading.rss_bytes
        if self._gap is None or self._rss is None:
            self._gap = SeriesHistory(0, native, now, check)
            self._rss = SeriesHistory(0, rss, now, check)
            return None
        policy = self.policy
        if warming_up:
            self._rss.learn(0, rss, now)      # the resident set's baseline, for native_share
        if not advance(policy, self._gap, 0, native, now, check, warming_up, 1 << 62,
                       policy.native_min_growth_bytes):
            return None
        growth = grown(policy, self._gap, 0, native, now, check, 1 << 62,
                       policy.native_min_growth_bytes)
        rss_growth = rss - self._rss.base_size
        if growth is None or growth.size_delta < policy.native_share * rss_growth:
            return None
        return LeakSuspect(type_name=NATIVE_TYPE_NAME, count_delta=0, size_delta=growth.size_delta,
                           growth_bytes_per_s=growth.rate, score=growth.score,
                           snapshots=growth.peaks, count=0, size=native, kind=KIND_NATIVE)
