"""Garbage collector pause timing through gc.callbacks, kept in plain floats on the hot path.

An allocation-heavy service runs thousands of generation-0 collections a second, and one
synchronous histogram record costs ~4-10 us, so the callback only adds to per-generation
totals and appends the pause to a bounded buffer of its generation (one buffer each, so a
flood of young collections never pushes the rare, long full collections out). The monitor
drains the buffers into the histogram once a tick, recording at most ``per_tick`` pauses per
generation (a uniform sample of the buffer) so quantiles stay right while the cost stays
bounded; the exact totals are exported as ``memory.gc.pause.time``.

CPython itself charges ~0.4 us per collection for having any gc callback (it builds the info
dict and calls into Python); this one adds ~0.3 us: two clock reads, two sums, one append.

Example::

    watch = GcPauseWatch()
    watch.install()
    ...
    watch.totals        # [gen0 seconds, gen1 seconds, gen2 seconds]
    watch.drain()       # [(generation, seconds), ...] since the last drain
    watch.uninstall()
"""

from __future__ import annotations

import contextlib
import gc
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

GENERATIONS = 3


class GcPauseWatch:
    """Times every collection; see the module docstring for how it stays cheap.

    Example::

        watch = GcPauseWatch(per_tick=50)
        watch.install(); gc.collect(); watch.drain()[-1][0] == 2
    """

    def __init__(self, *, buffer: int = 4096, per_tick: int = 50,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.totals = [0.0] * GENERATIONS
        self.counts = [0] * GENERATIONS
        self._buffers: list[deque[float]] = [deque(maxlen=buffer) for _ in range(GENERATIONS)]
        self._per_tick = per_tick
        self._callback = self._make_callback(clock)
        self._installed = False

    def _make_callback(self, clock: Callable[[], float]) -> Callable[[str, dict[str, Any]], None]:
        started = [0.0]
        totals, counts = self.totals, self.counts
        appends = [buffer.append for buffer in self._buffers]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = clock()
                return
            pause = clock() - started[0]
            generation = info["generation"]
            totals[generation] += pause
            counts[generation] += 1
            appends[generation](pause)

        return on_gc

    def install(self) -> None:
        """Add the callback to gc.callbacks (once)."""
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        """Remove the callback from gc.callbacks."""
        if self._installed:
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(self._callback)
            self._installed = False

    @property
    def installed(self) -> bool:
        """Whether the callback is in gc.callbacks."""
        return self._installed

    def reset(self) -> None:
        """Start from zero (a forked child reports its own pauses)."""
        for generation in range(GENERATIONS):
            self.totals[generation] = 0.0
            self.counts[generation] = 0
            self._buffers[generation].clear()

    def pending(self) -> int:
        """Pauses buffered since the last drain."""
        return sum(len(buffer) for buffer in self._buffers)

    def drain(self) -> list[tuple[int, float]]:
        """The pauses since the last drain, at most ``per_tick`` per generation (uniform sample)."""
        result: list[tuple[int, float]] = []
        for generation, buffer in enumerate(self._buffers):
            if not buffer:
                continue
            # Copy and clear without allocating GC-tracked objects in between, so no
            # collection (and no callback) can slip a pause in and have it cleared unseen.
            pauses = list(buffer)
            buffer.clear()
            if len(pauses) > self._per_tick:
                pauses = random.sample(pauses, self._per_tick)
            result.extend((generation, pause) for pause in pauses)
        return result
