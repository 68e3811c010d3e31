"""One memory sample per collection cycle, shared by every callback and the monitor.

The peer instrumentation calls psutil once per callback (~1.1 ms a collection); here the first
reader of a cycle takes one sample and everyone else reuses it while it is fresh. A probe that
fails loses its signal, with one warning, until it is tried again (after 1 s, then less and less
often: a file that is gone for good costs one exception every 5 minutes, a passing "too many
open files" one second); the rest of the sample carries on.

Example::

    sampler = Sampler(discover_limit())
    sample = sampler.current()
    sample.rss, sample.peak
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import psutil

from . import probes
from .limits import EffectiveLimit

_log = logging.getLogger("otel_memory")
_T = TypeVar("_T")
# (read memory.current, read the inactive file cache from memory.stat, read memory.events,
# the inactive file key)
_CgroupReaders = tuple[Callable[[], int], Callable[[], dict[str, int]],
                       Callable[[], dict[str, int]], str]


@dataclass(frozen=True)
class MemorySample:
    """Everything one collection cycle reports; None where a signal is off or unavailable.

    Example::

        sample = Sampler(discover_limit()).take()
        sample.rss >= sample.allocated_blocks   # bytes against blocks: both present
    """

    time: float
    pid: int
    rss: int | None = None
    vms: int | None = None
    peak: int | None = None
    minor_faults: int | None = None
    major_faults: int | None = None
    allocated_blocks: int | None = None
    gc: tuple[tuple[int, int, int], ...] | None = None
    container_usage: int | None = None
    container_working_set: int | None = None
    oom_kills: int | None = None
    psi_some_s: float | None = None
    psi_full_s: float | None = None
    uss: int | None = None
    tracemalloc_current: int | None = None
    tracemalloc_peak: int | None = None


#: How long a signal whose probe failed is left out before its probe is tried again; each
#: further failure doubles it, up to PROBE_RETRY_MAX_S.
PROBE_RETRY_FIRST_S = 1.0
PROBE_RETRY_MAX_S = 300.0


class Sampler:
    """Takes MemorySamples and shares the latest one for ``max_age_s`` seconds.

    Example::

        sampler = Sampler(limit, proc_root="/proc", enable_uss=False)
        sampler.current().rss
    """

    def __init__(
        self,
        limit: EffectiveLimit,
        *,
        proc_root: str | Path = "/proc",
        enable_uss: bool = False,
        max_age_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._proc = Path(proc_root)
        self._enable_uss = enable_uss
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: MemorySample | None = None
        # signal -> (when its probe is tried again, the back-off that led there)
        self._failing: dict[str, tuple[float, float]] = {}
        self._warned: set[str] = set()
        self._process: psutil.Process | None = None
        # gc.get_stats() at fork: a forked child counts its own collections from zero.
        self._gc_base: tuple[tuple[int, int, int], ...] | None = None
        self._statm: str | None = str(self._proc / "self" / "statm")
        psi = limit.cgroup.pressure if limit.cgroup else None
        self._psi_path = str(psi if psi is not None and psi.exists() else self._proc / "pressure" / "memory")
        # Readers bound to their paths once: a sample calls them every collection cycle.
        self._read_psi = partial(probes.read_psi_totals, self._psi_path)
        cgroup = limit.cgroup
        self._cgroup_readers: _CgroupReaders | None = None
        if cgroup is not None:
            inactive = "inactive_file" if cgroup.version == 2 else "total_inactive_file"
            self._cgroup_readers = (
                partial(probes.read_int_file, str(cgroup.usage)),
                partial(probes.read_keyed, str(cgroup.stat), inactive),
                partial(probes.read_keyed, str(cgroup.events), "oom_kill"), inactive)

    @property
    def disabled(self) -> frozenset[str]:
        """Signals whose probe failed, left out until it is tried again."""
        return frozenset(self._failing)

    def current(self, max_age_s: float | None = None) -> MemorySample:
        """The latest sample if it is at most ``max_age_s`` old and of this process, else a new one.

        ``max_age_s=0`` always takes a new sample (the monitor's tick does). Every callback of
        a collection asks, so a fresh sample is returned without taking the lock (reading one
        attribute is atomic); only a new sample is taken under it.
        """
        age = self._max_age_s if max_age_s is None else max_age_s
        latest = self._latest
        if (latest is not None and age > 0 and self._clock() - latest.time <= age
                and latest.pid == os.getpid()):
            return latest
        with self._lock:
            latest = self._latest
            if (latest is None or age <= 0 or latest.pid != os.getpid()
                    or self._clock() - latest.time > age):
                latest = self._latest = self.take()
            return latest

    def invalidate(self) -> None:
        """Forget the shared sample: the next reader takes a new one (a new collection cycle)."""
        self._latest = None

    def reset(self) -> None:
        """Forget the cached sample and process handle and count GC from here (after fork)."""
        self._latest = None
        self._process = None
        self._lock = threading.Lock()
        try:
            self._gc_base = probes.read_gc_stats()
        except Exception:  # noqa: BLE001 - the gc probe reports its own failure on the next take
            self._gc_base = None

    def _gc_stats(self) -> tuple[tuple[int, int, int], ...]:
        stats = probes.read_gc_stats()
        base = self._gc_base
        if base is None or len(base) != len(stats):
            return stats
        return tuple((a - x, b - y, c - z) for (a, b, c), (x, y, z) in zip(stats, base, strict=True))

    def _probe(self, signal: str, read: Callable[[], _T]) -> _T | None:
        """``read()``, or None while its signal is left out: a probe that fails (a file gone,
        too many open files) is tried again PROBE_RETRY_FIRST_S later, then twice as long
        after each further failure, up to PROBE_RETRY_MAX_S. One warning a signal says so;
        its return is logged at INFO."""
        failing = self._failing.get(signal)
        if failing is not None and self._clock() < failing[0]:
            return None
        try:
            value = read()
        except Exception as error:  # noqa: BLE001 - any probe failure loses that signal only
            backoff = (PROBE_RETRY_FIRST_S if failing is None
                       else min(2 * failing[1], PROBE_RETRY_MAX_S))
            self._failing[signal] = (self._clock() + backoff, backoff)
            if signal not in self._warned:
                self._warned.add(signal)
                _log.warning("otel_memory: %s is unavailable: %s: %s; tried again in %g s, then "
                             "less and less often (at most every %g s)", signal,
                             type(error).__name__, error, backoff, PROBE_RETRY_MAX_S)
            return None
        # (pop: admission's readings and the monitor's samples may probe at the same time)
        if failing is not None and self._failing.pop(signal, None) is not None:
            _log.info("otel_memory: %s is available again", signal)
        return value

    def _psutil_process(self) -> psutil.Process:
        if self._process is None or self._process.pid != os.getpid():
            self._process = psutil.Process(os.getpid())
        return self._process

    def _rss_vms(self) -> tuple[int, int]:
        if self._statm is not None:
            try:
                return probes.read_statm(self._statm)
            except FileNotFoundError:   # no procfs (macOS): psutil from now on
                self._statm = None
        info = self._psutil_process().memory_info()
        return int(info.rss), int(info.vms)

    def take_usage(self) -> MemorySample:
        """Only what pressure is computed from, now: this process's RSS and the container's
        usage and working set. Admission reads it up to 100 times a second; the rest of a
        sample (PSI, GC, rusage, USS through smaps) would cost up to 20 times more. Not shared
        with the collection cycle."""
        rss_vms = self._probe("process.memory", self._rss_vms)
        usage, working_set = self._container_usage()
        return MemorySample(time=self._clock(), pid=os.getpid(),
                            rss=rss_vms[0] if rss_vms else None,
                            vms=rss_vms[1] if rss_vms else None,
                            container_usage=usage, container_working_set=working_set)

    def _container_usage(self) -> tuple[int | None, int | None]:
        """The container's usage and working set (usage less inactive file pages)."""
        cgroup = self._cgroup_readers
        if cgroup is None:
            return None, None
        read_usage, read_stat, _read_events, inactive_key = cgroup
        usage = self._probe("container.usage", read_usage)
        stat = self._probe("container.working_set", read_stat)
        if usage is None or stat is None:
            return usage, None
        return usage, max(0, usage - stat[inactive_key])

    def take(self) -> MemorySample:
        """Read every enabled signal now."""
        rss_vms = self._probe("process.memory", self._rss_vms)
        rusage = self._probe("rusage", probes.read_rusage)
        usage, working_set = self._container_usage()
        oom_kills = None
        if self._cgroup_readers is not None:
            events = self._probe("container.oom_kills", self._cgroup_readers[2])
            oom_kills = events["oom_kill"] if events is not None else None
        psi = self._probe("psi", self._read_psi)
        traced = self._probe("tracemalloc", probes.read_tracemalloc)
        uss = (self._probe("uss", lambda: int(self._psutil_process().memory_full_info().uss))
               if self._enable_uss else None)
        return MemorySample(
            time=self._clock(),
            pid=os.getpid(),
            rss=rss_vms[0] if rss_vms else None,
            vms=rss_vms[1] if rss_vms else None,
            peak=rusage[0] if rusage else None,
            minor_faults=rusage[1] if rusage else None,
            major_faults=rusage[2] if rusage else None,
            allocated_blocks=self._probe("allocated_blocks", probes.read_allocated_blocks),
            gc=self._probe("gc", self._gc_stats),
            container_usage=usage,
            container_working_set=working_set,
            oom_kills=oom_kills,
            psi_some_s=psi[0] if psi else None,
            psi_full_s=psi[1] if psi else None,
            uss=uss,
            tracemalloc_current=traced[0] if traced else None,
            tracemalloc_peak=traced[1] if traced else None,
        )
