"""The rising-floor test: growth hidden in heavy churn of the same type.

A type that leaks while its live count also swings widely (a leak of dicts in a service that
builds and drops thousands of dicts per request) seldom sets new peaks and often falls, so the
peak rule of ``ranking.py`` misses it. Over a window of recent censuses, such a leak still
lifts the floor: every value of the last third is above every value of the first third, by at
least the minimum growth, and Kendall's tau (the share of pairs of censuses in rising order
minus those in falling order) is high. A stationary series passes that with a probability of
about 1 in C(2k, k) for thirds of k censuses (1 in 2.7 million for k = 12) when its
censuses are independent, and a bounded one (a filled cache, an oscillating queue, a flushed
buffer) cannot pass once its range is known. A count that wanders slowly (each census close
to the last, over a range far above the minimum growth) is locally a trend and can pass,
which is why ``RankingPolicy.window_checks`` is off unless a service turns it on.

Example::

    rise = rising_floor(counts, min_rise=1000)      # None when the floor did not rise enough
    if rise is not None and kendall_tau(counts) >= 0.5:
        ...
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence


class Window:
    """The last ``size`` values of a series, in a machine-int ring buffer.

    Plain C integers, not Python ints: the window must not itself make ``int`` grow in the
    censuses it ranks.

    Example::

        window = Window(36)
        window.append(1200)
        if window.full:
            rising_floor(window.ordered(), 1000)
    """

    __slots__ = ("_next", "_values", "filled")

    def __init__(self, size: int) -> None:
        self._values = array("q", bytes(8 * size))
        self._next = 0
        self.filled = 0

    @property
    def full(self) -> bool:
        """True once ``size`` values were appended."""
        return self.filled == len(self._values)

    def append(self, value: int) -> None:
        """Add the newest value, dropping the oldest when full."""
        self._values[self._next] = value
        self._next = (self._next + 1) % len(self._values)
        self.filled = min(self.filled + 1, len(self._values))

    def ordered(self) -> array[int]:
        """The values, oldest first."""
        if not self.full:
            return self._values[:self._next]
        return self._values[self._next:] + self._values[:self._next]


def rising_floor(values: Sequence[int], min_rise: int) -> int | None:
    """How far the lowest value of the last third is above the highest of the first third,
    when that is at least ``min_rise`` (> 0); else None."""
    third = len(values) // 3
    if third < 2 or min_rise <= 0:
        return None
    rise = min(values[-third:]) - max(values[:third])
    return rise if rise >= min_rise else None


def rising_trend(values: Sequence[int], min_rise: int, min_tau: float = 0.6) -> tuple[int, float] | None:
    """A series that keeps rising (the survival estimates of survival.py): Kendall's tau at
    least ``min_tau``, a least-squares rise over the series of at least ``min_rise``, and its
    highest value in the newest third (still rising, not a plateau). (rise, tau) or None."""
    n = len(values)
    if n < 4 or min_rise <= 0:
        return None
    tau = kendall_tau(values)
    if tau < min_tau:
        return None
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    slope = (sum((i - mean_x) * (value - mean_y) for i, value in enumerate(values))
             / sum((i - mean_x) ** 2 for i in range(n)))
    rise = round(slope * (n - 1))
    if rise < min_rise or max(values[-max(1, n // 3):]) < max(values):
        return None
    return rise, tau


def kendall_tau(values: Sequence[int]) -> float:
    """Kendall's tau of ``values`` against time: 1 strictly rising, -1 falling, ~0 no trend."""
    n = len(values)
    if n < 2:
        return 0.0
    score = 0
    for i in range(n - 1):
        first = values[i]
        for later in values[i + 1:]:
            score += (later > first) - (later < first)
    return score / (n * (n - 1) / 2)
