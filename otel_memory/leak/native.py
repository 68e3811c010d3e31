"""Native memory: what the process holds beyond what the Python heap accounts for.

A C extension, a ctypes buffer or a library's own cache grows the resident set while every
census stays flat. After each census the detector compares the resident set with the bytes the
census counted; where glibc is the allocator, ``mallinfo2()`` (through ctypes) also tells how
much freed memory malloc keeps in its arenas for reuse. That retained memory is subtracted:
a heap that ``malloc_trim`` would give back is not a leak. What is left,

    native = RSS - census bytes - malloc's free arena bytes,

is the native series the ranker watches (interpreter, libraries and pymalloc's overhead are a
constant part of it; a native leak makes it rise census after census).

A census makes and frees megabytes of temporary lists and dicts, and glibc keeps such freed
memory resident for reuse: without help every application would carry a megabyte or two more
after its first leak check. ``give_back()`` (``malloc_trim(0)``: 0.3-2.4 ms measured on
fragmented heaps of 100-600 MB) returns it after each check. malloc still counts trimmed
chunks as free (``fordblks``) though their pages are gone, so retained bytes cannot tell when
to trim. On a big heap with many free gaps a trim takes far longer (74-206 ms measured on
1.5 GB with 100k gaps) and holds up every thread that allocates meanwhile: a trim slower than
TRIM_SLOW_S makes the next checks skip theirs, twice as many each time it is slow again (up
to TRIM_SKIP_MAX).

Example::

    reader = NativeMemoryReader()
    reading = reader.read(python_bytes=snapshot.heap_bytes)
    reading.native_bytes if reading else None
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..libc import MallocStats, glibc_mallinfo2, glibc_malloc_trim

_log = logging.getLogger("otel_memory")

#: A malloc_trim(0) slower than this is a stall for the threads that allocate meanwhile.
TRIM_SLOW_S = 0.01
#: The most checks a run of slow trims makes skip theirs.
TRIM_SKIP_MAX = 64


@dataclass(frozen=True)
class NativeMemory:
    """One reading: resident set, the census's bytes, malloc's retained free bytes.

    Example::

        NativeMemory(rss_bytes=300 * MB, python_bytes=120 * MB, retained_bytes=20 * MB)
        .native_bytes      # 160 MB: interpreter, libraries, extensions' own memory
    """

    rss_bytes: int
    python_bytes: int
    retained_bytes: int | None
    """Free bytes malloc keeps for reuse; None where mallinfo2() is not available."""

    @property
    def native_bytes(self) -> int:
        """Resident bytes the Python heap and malloc's free lists do not explain."""
        return self.rss_bytes - self.python_bytes - (self.retained_bytes or 0)

    def to_json_dict(self) -> dict[str, int | None]:
        """The reading as JSON-safe values."""
        return {"rss_bytes": self.rss_bytes, "python_bytes": self.python_bytes,
                "retained_bytes": self.retained_bytes, "native_bytes": self.native_bytes}


def process_rss() -> int | None:
    """The resident set of this process (psutil), or None when it cannot be read."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - no RSS only means no native reading
        return None


class NativeMemoryReader:
    """Reads the resident set and malloc's statistics; each source fails alone, once.

    ``rss``, ``malloc`` and ``trim`` are parameters so that tests can give fixtures; by
    default psutil, glibc's ``mallinfo2()`` and ``malloc_trim(0)`` (when present).

    Example::

        reader = NativeMemoryReader(rss=lambda: 300 * MB, malloc=lambda: None)
        reader.read(python_bytes=100 * MB).native_bytes
    """

    def __init__(self, rss: Callable[[], int | None] = process_rss,
                 malloc: Callable[[], MallocStats | None] | bool | None = True,
                 trim: Callable[[], object] | bool | None = True,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._rss = rss
        self._malloc: Callable[[], MallocStats | None] | None = (
            glibc_mallinfo2() if malloc is True else None if malloc is False else malloc)
        self._trim: Callable[[], object] | None = (
            glibc_malloc_trim() if trim is True else None if trim is False else trim)
        self._warned: set[str] = set()
        self._clock = clock
        self._skips_left = 0     # checks that give nothing back after a slow trim
        self._skips_next = 1     # how many the next slow trim makes skip

    @property
    def has_malloc_stats(self) -> bool:
        """True when malloc's retained memory is known (glibc)."""
        return self._malloc is not None

    def read(self, python_bytes: int) -> NativeMemory | None:
        """A reading, or None when the resident set cannot be read."""
        rss = self._call("rss", self._rss)
        if not isinstance(rss, int):
            return None
        stats = self._call("mallinfo2", self._malloc) if self._malloc is not None else None
        return NativeMemory(rss, int(python_bytes),
                            stats.free_bytes if isinstance(stats, MallocStats) else None)

    def give_back(self) -> bool:
        """Return the freed memory malloc keeps to the system (``malloc_trim(0)``): a leak
        check calls it after its census. True when it was called."""
        if self._trim is None:
            return False
        if self._skips_left:
            self._skips_left -= 1
            return False
        started = self._clock()
        try:
            self._trim()
        except Exception as error:  # noqa: BLE001 - a failing trim must not fail the check
            self._warn_once("malloc_trim", error)
            return False
        if self._clock() - started > TRIM_SLOW_S:
            self._skips_left = self._skips_next
            self._skips_next = min(2 * self._skips_next, TRIM_SKIP_MAX)
        else:
            self._skips_next = 1
        return True

    def _call(self, name: str, source: Callable[[], object]) -> object | None:
        try:
            return source()
        except Exception as error:  # noqa: BLE001 - a failing source loses one signal
            self._warn_once(name, error)
            return None

    def _warn_once(self, name: str, error: Exception) -> None:
        if name not in self._warned:
            self._warned.add(name)
            _log.warning("otel_memory: native memory source %s failed (%s); "
                         "the native leak check goes without it", name, type(error).__name__)
