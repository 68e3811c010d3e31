"""The built-in pressure actions: rate-limited ``gc.collect()`` and glibc ``malloc_trim(0)``.

Each action measures RSS before and after, so the memory it gave back to the operating system
is known; the caller records it through ``MemoryManager.record_action``. ``malloc_trim`` exists
only in glibc: elsewhere (musl, macOS) it is reported unavailable once, with one warning, and
never tried again.

Example::

    limiter = RateLimiter(min_interval_s=10.0)
    if limiter.try_acquire():
        result = collect_garbage(read_rss)
        result.reclaimed_bytes
    trimmer = MallocTrim()
    if trimmer.available:
        trimmer.trim(read_rss).reclaimed_bytes
"""

from __future__ import annotations

import gc
import logging
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..libc import glibc_malloc_trim

_log = logging.getLogger("otel_memory")

GC_COLLECT = "gc_collect"
MALLOC_TRIM = "malloc_trim"
CACHE_SHRINK = "cache_shrink"
POOL_RELEASE = "pool_release"

ReadRss = Callable[[], int]


@dataclass(frozen=True)
class ActionResult:
    """What one action did: its kind, RSS before and after, and the bytes given back.

    Example::

        ActionResult(GC_COLLECT, rss_before=300 << 20, rss_after=120 << 20)
        # .reclaimed_bytes == 180 << 20
    """

    action: str
    rss_before: int = 0
    rss_after: int = 0
    detail: int = 0

    @property
    def reclaimed_bytes(self) -> int:
        """RSS before minus RSS after, never negative."""
        return max(0, self.rss_before - self.rss_after)


class RateLimiter:
    """Lets an action run at most once per ``min_interval_s`` (0 means every time).

    Example::

        limiter = RateLimiter(10.0)
        limiter.try_acquire(), limiter.try_acquire()   # (True, False)
    """

    def __init__(self, min_interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s={min_interval_s!r}; expected a number >= 0")
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """True (and the interval restarts) when the action may run now."""
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last < self.min_interval_s:
                return False
            self._last = now
            return True

    def reset(self) -> None:
        """Forget the last run (a forked child starts afresh)."""
        self._lock = threading.Lock()
        self._last = None


def collect_garbage(read_rss: ReadRss) -> ActionResult:
    """Run a full ``gc.collect()``; ``detail`` is the number of unreachable objects found."""
    before = read_rss()
    found = gc.collect()
    return ActionResult(GC_COLLECT, before, read_rss(), found)


class MallocTrim:
    """glibc ``malloc_trim(0)`` through ctypes: gives free heap pages back to the system.

    Example::

        trimmer = MallocTrim()
        trimmer.available       # False on musl or macOS, with one warning when first tried
    """

    def __init__(self) -> None:
        self._function: Callable[[], int] | None = None
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """True where glibc's malloc_trim can be called."""
        self._load()
        return self._function is not None

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            try:
                if platform.libc_ver()[0] != "glibc":
                    raise OSError(f"the C library is {platform.libc_ver()[0] or 'not glibc'}")
                self._function = glibc_malloc_trim()
                if self._function is None:
                    raise OSError("the C library has no malloc_trim")
            except OSError as error:
                _log.warning("otel_memory: malloc_trim is unavailable (glibc only), memory freed by "
                             "the GC stays with the allocator: %s", error)

    def trim(self, read_rss: ReadRss) -> ActionResult | None:
        """Call ``malloc_trim(0)``; None when unavailable. ``detail`` is 1 if memory was released."""
        function = self._function if self.available else None
        if function is None:
            return None
        before = read_rss()
        released = function()
        return ActionResult(MALLOC_TRIM, before, read_rss(), released)
