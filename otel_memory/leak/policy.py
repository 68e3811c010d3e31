"""The rules of leak ranking, shared by every kind of suspect (ranking, series, containers,
native memory).

Example::

    RankingPolicy(warmup_checks=2, min_growth_objects=500, min_growth_bytes=256 * 1024)
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


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
    """Kendall's tau the rising-floor tests need."""
    native_min_growth_bytes: int = 8 * MB
    """Growth of the native gap (native.py) since the baseline that is enough."""
    native_share: float = 0.5
    """Share of the resident set's growth the native gap must explain to be a suspect."""
    survival_checks: int = 12
    """Most recent values of a churning type's long-lived objects (survival.py) that its
    floor trend is judged on (at least half of them needed); 0: no survival sampling."""
    survival_min_tau: float = 0.8
    """Kendall's tau the survival trend needs. The long-lived objects of a leak under churn
    rise census after census (tau near 1); those of a bounded queue whose length swings at
    random do not, but over 12 values of no trend tau has a spread of 0.22, so at 0.6 (2.7 of
    those) a swinging queue was named about once in a few hundred censuses; 0.8 is 3.6."""

    def __post_init__(self) -> None:
        for name in ("warmup_checks", "min_growth_objects", "min_growth_bytes",
                     "native_min_growth_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r}; expected an int >= 0")
        for name in ("min_growth_checks", "stale_checks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}; expected an int >= 1")
        for name in ("window_checks", "survival_checks"):
            value = getattr(self, name)
            if not isinstance(value, int) or not (value == 0 or value >= 6):
                raise ValueError(f"{name}={value!r}; expected 0 (off) or an int >= 6")
        for name in ("min_score", "peak_tolerance", "fall_tolerance", "window_min_tau",
                     "survival_min_tau", "native_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name}={value!r}; expected a number from 0 to 1")
