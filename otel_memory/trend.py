"""Memory trends: a rolling window of usage samples, its least-squares slope, average and peak.

The trend is read from the slope over the whole window, not from two points, and counts as
stable while the growth it predicts over the window stays inside a noise band.

Example::

    tracker = TrendTracker(window_s=600)
    tracker.add(time.monotonic(), rss)
    report = tracker.report()
    report.trend, report.growth_bytes_per_s
"""

from __future__ import annotations

import enum
import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import Protocol


class MemoryTrend(enum.Enum):
    """Direction of usage over the trend window; its value is what the trend gauge exports.

    Example::

        if manager.get_memory_trend().trend is MemoryTrend.INCREASING:
            ...
    """

    DECREASING = -1
    STABLE = 0
    INCREASING = 1


@dataclass(frozen=True)
class TrendReport:
    """The trend of the window, its slope in bytes/s, average, peak and growth over the window.

    Example::

        TrendReport(MemoryTrend.STABLE, 0.0, 100 * MB, 110 * MB, 0.0, 12, 60.0)
    """

    trend: MemoryTrend
    growth_bytes_per_s: float
    average_bytes: float
    peak_bytes: int
    growth_over_window_bytes: float
    samples: int
    window_s: float
    """Time between the oldest and newest samples."""
    configured_window_s: float = 0.0
    """The window the tracker keeps (``window_s`` reaches it once the window is full)."""

    @property
    def full(self) -> bool:
        """True once the samples span (nearly) the whole configured window."""
        return self.configured_window_s > 0 and self.window_s >= 0.9 * self.configured_window_s


class TrendSource(Protocol):
    """What reads a memory trend (the MemoryManager is one), without importing it.

    Example::

        def growth(source: TrendSource) -> float:
            return source.get_memory_trend().growth_bytes_per_s if source.initialized else 0.0
    """

    @property
    def initialized(self) -> bool:
        """True once the source has samples to report."""

    def get_memory_trend(self) -> TrendReport:
        """The trend over the source's window."""


class TrendTracker:
    """Keeps (time, usage) samples from the last ``window_s`` seconds.

    Example::

        tracker = TrendTracker(window_s=300, noise_band_bytes=2 * MB)
        for t, usage in samples: tracker.add(t, usage)
        tracker.report().trend
    """

    def __init__(self, window_s: float = 600.0, *, noise_band_bytes: float = 1024 * 1024,
                 noise_band_ratio: float = 0.01, max_samples: int = 2048, min_samples: int = 3) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s={window_s!r}; expected a positive number of seconds")
        self.window_s = window_s
        self._noise_bytes = noise_band_bytes
        self._noise_ratio = noise_band_ratio
        self._min_samples = min_samples
        self._samples: deque[tuple[float, int]] = deque(maxlen=max_samples)
        self._peak = 0
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def add(self, when: float, usage: int) -> None:
        """Record one usage reading at monotonic time ``when``."""
        with self._lock:
            self._samples.append((when, usage))
            self._peak = max(self._peak, usage)
            while self._samples and when - self._samples[0][0] > self.window_s:
                self._samples.popleft()

    def bookkeeping(self) -> object:
        """The samples kept (for a heap census to leave out)."""
        return self._samples

    def clear(self) -> None:
        """Forget every sample and the peak.

        Safe in a forked child (the owners' after-fork hooks call it): there the lock is made
        anew, since a thread of the parent may have held it at the fork and never release it.
        """
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._pid = os.getpid()
        with self._lock:
            self._samples.clear()
            self._peak = 0

    def report(self) -> TrendReport:
        """The trend of the samples in the window."""
        with self._lock:
            samples = list(self._samples)
            peak = self._peak
        count = len(samples)
        if count == 0:
            return TrendReport(MemoryTrend.STABLE, 0.0, 0.0, peak, 0.0, 0, 0.0, self.window_s)
        mean_t = sum(t for t, _ in samples) / count
        mean_u = sum(u for _, u in samples) / count
        span = samples[-1][0] - samples[0][0]
        variance = sum((t - mean_t) ** 2 for t, _ in samples)
        slope = (sum((t - mean_t) * (u - mean_u) for t, u in samples) / variance
                 if count >= 2 and variance > 0 else 0.0)
        growth = slope * span
        band = max(self._noise_bytes, self._noise_ratio * mean_u)
        if count < self._min_samples or abs(growth) <= band:
            trend = MemoryTrend.STABLE
        else:
            trend = MemoryTrend.INCREASING if growth > 0 else MemoryTrend.DECREASING
        return TrendReport(trend, slope, mean_u, peak, growth, count, span, self.window_s)
