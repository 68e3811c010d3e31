"""Garbage collector pause timing through gc.callbacks, kept in plain floats on the hot path.

An allocation-heavy service runs thousands of generation-0 collections a second, and one
synchronous histogram record costs ~4-10 us, so the callback only adds to per-generation
totals and remembers the latest pauses in a bounded buffer. The monitor drains the buffer
into the histogram once a tick, recording at most ``per_tick`` pauses per generation (a
uniform sample of the buffer) so quantiles stay right while the cost stays bounded; the
exact totals are exported as ``memory.gc.pause.time``.

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


class GcPauseWatch:
    """Times every collection; see the module docstring for how it stays cheap.

    Example::

        watch = GcPauseWatch(per_tick=200)
        watch.install(); gc.collect(); watch.drain()[-1][0] == 2
    """

    def __init__(self, *, buffer: int = 8192, per_tick: int = 200,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.totals = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._pending: deque[tuple[int, float]] = deque(maxlen=buffer)
        self._per_tick = per_tick
        self._callback = self._make_callback(clock)
        self._installed = False

    def _make_callback(self, clock: Callable[[], float]) -> Callable[[str, dict[str, Any]], None]:
        started = [0.0]
        totals, counts, append = self.totals, self.counts, self._pending.append

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = clock()
                return
            pause = clock() - started[0]
            generation = info["generation"]
            totals[generation] += pause
            counts[generation] += 1
            append((generation, pause))

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
        for generation in range(3):
            self.totals[generation] = 0.0
            self.counts[generation] = 0
        self._pending.clear()

    def drain(self) -> list[tuple[int, float]]:
        """The pauses since the last drain, at most ``per_tick`` per generation (uniform sample)."""
        items: list[tuple[int, float]] = []
        while self._pending:
            try:
                items.append(self._pending.popleft())
            except IndexError:  # emptied by a concurrent drain
                break
        by_generation: dict[int, list[tuple[int, float]]] = {}
        for item in items:
            by_generation.setdefault(item[0], []).append(item)
        result: list[tuple[int, float]] = []
        for generation in sorted(by_generation):
            pauses = by_generation[generation]
            if len(pauses) > self._per_tick:
                pauses = random.sample(pauses, self._per_tick)
            result.extend(pauses)
        return result
