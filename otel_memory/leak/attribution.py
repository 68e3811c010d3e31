"""Allocation-site attribution of leak suspects with tracemalloc, for a bounded window.

tracemalloc slows allocation-heavy code 3-8x (research.md section 6), so it never runs for
long: ``begin()`` starts it (one frame) for ``window_s`` seconds, at most once per
``min_interval_s``; ``finish()`` reads the sites and stops it again (unless someone else had
started it). Only allocations made inside the window are traced, so what is still alive at the
end is what the window added and kept, which is where a leak shows.

- Python 3.12+: ``tracemalloc.get_object_traceback()`` of sample objects of each suspect type
  gives that type's own site.
- Python 3.11: that call returns None for ordinary class instances (cpython #101430), so the
  site is the line that holds the most memory allocated in the window and still alive; it is
  given to every suspect whose own site could not be found.

Sites are ``path:line`` with the path relative to its ``sys.path`` entry (no host paths).

Example::

    attributor = AllocationAttributor(window_s=10.0)
    if attributor.begin(["myapp.Session"]):
        ...                           # the application runs for window_s
        sites = attributor.finish()   # {"myapp.Session": "myapp/sessions.py:42"}
"""

from __future__ import annotations

import gc
import os
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import compress

from ._names import type_name

_SAMPLES_PER_TYPE = 200
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def short_path(filename: str) -> str:
    """``filename`` relative to the longest ``sys.path`` entry holding it, else its basename."""
    best = ""
    for entry in sys.path:
        if entry and filename.startswith(entry.rstrip(os.sep) + os.sep) and len(entry) > len(best):
            best = entry.rstrip(os.sep)
    if best:
        return filename[len(best) + 1:]
    return os.path.basename(filename)


class AllocationAttributor:
    """Runs tracemalloc for a bounded window and names where suspect types were allocated.

    Example::

        attributor = AllocationAttributor(window_s=5.0, min_interval_s=600.0)
        attributor.begin(["list"]); time.sleep(5); attributor.finish()
    """

    def __init__(self, window_s: float = 10.0, min_interval_s: float = 3600.0) -> None:
        if not isinstance(window_s, (int, float)) or window_s <= 0:
            raise ValueError(f"attribution window_s={window_s!r}; expected a positive number of seconds")
        if not isinstance(min_interval_s, (int, float)) or min_interval_s < 0:
            raise ValueError(f"attribution min_interval_s={min_interval_s!r}; expected seconds >= 0")
        self.window_s = float(window_s)
        self.min_interval_s = float(min_interval_s)
        self._started_at: float | None = None
        self._last_began: float | None = None
        self._we_started = False
        self._lookups: dict[str, str | None] = {}

    @property
    def active(self) -> bool:
        """True while a window is open."""
        return self._started_at is not None

    def due_in(self, now: float | None = None) -> float | None:
        """Seconds until the open window should be finished; None when none is open."""
        if self._started_at is None:
            return None
        now = time.monotonic() if now is None else now
        return max(0.0, self._started_at + self.window_s - now)

    def begin(self, suspects: Iterable[str] | Mapping[str, str | None]) -> bool:
        """Open a window for ``suspects``: type names, or {suspect key: type name whose objects
        to look up, or None for "where most memory grew"}; False when a window is open or it
        is too soon."""
        now = time.monotonic()
        if self._started_at is not None:
            return False
        if self._last_began is not None and now - self._last_began < self.min_interval_s:
            return False
        self._lookups = (dict(suspects) if isinstance(suspects, Mapping)
                         else {name: name for name in suspects})
        if not self._lookups:
            return False
        self._we_started = not tracemalloc.is_tracing()
        if self._we_started:
            tracemalloc.start(1)
        self._started_at = self._last_began = now
        return True

    def finish(self) -> dict[str, str]:
        """Close the window: {suspect key (or type name): "path:line"} for those whose site
        was found."""
        if self._started_at is None:
            return {}
        try:
            if not tracemalloc.is_tracing():
                return {}
            by_type = _sites_by_object(tuple({name for name in self._lookups.values() if name}))
            sites = {key: by_type[name] for key, name in self._lookups.items()
                     if name is not None and name in by_type}
            missing = [key for key in self._lookups if key not in sites]
            if missing and self._we_started:
                site = _largest_surviving_site()
                if site is not None:
                    sites.update(dict.fromkeys(missing, site))
            return sites
        finally:
            if self._we_started and tracemalloc.is_tracing():
                tracemalloc.stop()
            self._started_at = None
            self._we_started = False

    def cancel(self) -> None:
        """Close the window without reading it."""
        if self._started_at is not None and self._we_started and tracemalloc.is_tracing():
            tracemalloc.stop()
        self._started_at = None
        self._we_started = False


def _sites_by_object(names: tuple[str, ...]) -> dict[str, str]:
    """Sites from the tracebacks of sample objects of each type (works on 3.12+)."""
    wanted = set(names)
    objects = gc.get_objects()
    try:
        kinds = {kind for kind in set(map(type, objects)) if type_name(kind) in wanted}
        if not kinds:
            return {}
        samples: dict[str, Counter[str]] = {}
        looked: Counter[str] = Counter()
        for obj in compress(objects, map(kinds.__contains__, map(type, objects))):
            name = type_name(type(obj))
            found = samples.setdefault(name, Counter())
            if looked[name] >= _SAMPLES_PER_TYPE:
                continue
            traceback = tracemalloc.get_object_traceback(obj)
            if traceback is not None and len(traceback):
                looked[name] += 1
                frame = traceback[0]
                found[f"{short_path(frame.filename)}:{frame.lineno}"] += 1
        return {name: found.most_common(1)[0][0] for name, found in samples.items() if found}
    finally:
        del objects


def _largest_surviving_site() -> str | None:
    """The line holding the most memory allocated in the window and still alive."""
    snapshot = tracemalloc.take_snapshot().filter_traces([
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, os.path.join(_OWN_DIR, "*")),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ])
    stats = snapshot.statistics("lineno")
    if not stats:
        return None
    frame = stats[0].traceback[0]
    return f"{short_path(frame.filename)}:{frame.lineno}"
