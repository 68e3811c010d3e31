"""The runtime signals of a MemoryManager as observable instruments over its shared sample.

The callbacks hold the manager weakly: the meter provider keeps them for its whole life, and
they must not keep a manager alive after the application dropped it.

Example::

    metrics = RuntimeMetrics(manager)      # made by MemoryManager.initialize()
    metrics.record_gc_pauses([(0, 0.0002)])
    metrics.close()
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import catalog as c
from .instruments import InstrumentSet, Points, get_meter

if TYPE_CHECKING:
    from .manager import MemoryManager
    from .sampler import MemorySample
    from .trend import TrendReport

_GENERATIONS = [{c.ATTR_GC_GENERATION: generation} for generation in range(3)]
_NO_ATTRIBUTES: dict[str, str] = {}


class RuntimeMetrics:
    """Registers the process, GC, pressure and response metrics of one manager.

    Example::

        RuntimeMetrics(manager).close()
    """

    def __init__(self, manager: MemoryManager) -> None:
        self._manager_ref = weakref.ref(manager)
        self._trend_cache: tuple[tuple[int, int], TrendReport] | None = None
        self._set = InstrumentSet(get_meter(manager.meter_provider))
        observe = self._set.observe
        sample_field = self._sample_field
        with_manager = self._with_manager

        observe(c.PROCESS_MEMORY_USAGE, sample_field("rss"))
        observe(c.PROCESS_MEMORY_VIRTUAL, sample_field("vms"))
        observe(c.MEMORY_ALLOCATED, sample_field("rss"))
        observe(c.MEMORY_ALLOCATION_COUNT, sample_field("allocated_blocks"))
        observe(c.MEMORY_PEAK, with_manager(_peak))
        observe(c.PROCESS_PAGING_FAULTS, with_manager(_faults))
        observe(c.MEMORY_LIMIT, with_manager(lambda m: [
            (m.limit.bytes, {c.ATTR_LIMIT_SOURCE: m.limit.source})]))
        observe(c.MEMORY_UTILIZATION, with_manager(lambda m: [
            (100.0 * m.usage_of(m.sampler.current()) / m.limit.bytes, _NO_ATTRIBUTES)]))
        observe(c.MEMORY_THRESHOLD, with_manager(_thresholds))
        if manager.limit.cgroup is not None:
            observe(c.MEMORY_CONTAINER_USAGE, sample_field("container_usage"))
            observe(c.MEMORY_CONTAINER_WORKING_SET, sample_field("container_working_set"))
            observe(c.MEMORY_CONTAINER_OOM_KILLS, sample_field("oom_kills"))
        observe(c.MEMORY_PSI_STALL, with_manager(_psi))
        if manager.config.enable_uss:
            observe(c.MEMORY_USS, sample_field("uss"))
        if manager.config.enable_tracemalloc:
            observe(c.MEMORY_TRACEMALLOC_CURRENT, sample_field("tracemalloc_current"))
            observe(c.MEMORY_TRACEMALLOC_PEAK, sample_field("tracemalloc_peak"))
        observe(c.CPYTHON_GC_COLLECTIONS, with_manager(lambda m: _gc(m, 0)))
        observe(c.CPYTHON_GC_COLLECTED_OBJECTS, with_manager(lambda m: _gc(m, 1)))
        observe(c.CPYTHON_GC_UNCOLLECTABLE_OBJECTS, with_manager(lambda m: _gc(m, 2)))
        observe(c.MEMORY_GC_PAUSE_TIME, with_manager(lambda m: [
            (total, _GENERATIONS[generation]) for generation, total in enumerate(m.gc_watch.totals)]))
        self._gc_pause = self._set.histogram(c.MEMORY_GC_PAUSE_DURATION)
        observe(c.MEMORY_PRESSURE_LEVEL, with_manager(lambda m: [
            (int(m.get_memory_pressure()), _NO_ATTRIBUTES)]))
        observe(c.MEMORY_PRESSURE_TRANSITIONS, with_manager(lambda m: [
            (count, {c.ATTR_PRESSURE_STATE: level.state}) for level, count in m.transitions.items()]))
        observe(c.MEMORY_PRESSURE_ACTIONS, with_manager(lambda m: [
            (count, {c.ATTR_PRESSURE_ACTION: action}) for action, count in list(m.actions.items())]))
        observe(c.MEMORY_PRESSURE_RECLAIMED, with_manager(lambda m: [
            (count, {c.ATTR_PRESSURE_ACTION: action}) for action, count in list(m.reclaimed.items())]))
        observe(c.MEMORY_ADMISSION_REJECTIONS, with_manager(lambda m: [
            (count, {c.ATTR_ADMISSION_POINT: point}) for point, count in list(m.rejections.items())]))
        trend = self._trend_report
        observe(c.MEMORY_TREND_GROWTH_RATE, with_manager(lambda m: [
            (trend(m).growth_bytes_per_s, _NO_ATTRIBUTES)]))
        observe(c.MEMORY_TREND_DIRECTION, with_manager(lambda m: [
            (trend(m).trend.value, _NO_ATTRIBUTES)]))
        observe(c.MEMORY_TREND_AVERAGE, with_manager(lambda m: [
            (trend(m).average_bytes, _NO_ATTRIBUTES)]))

    def _trend_report(self, manager: MemoryManager) -> TrendReport:
        """The trend report, computed once per monitoring tick rather than once per metric."""
        key = (id(manager.trend), manager.last_tick)
        cached = self._trend_cache
        if cached is None or cached[0] != key:
            cached = self._trend_cache = (key, manager.trend.report())
        return cached[1]

    def _with_manager(self, points: Callable[[MemoryManager], Points]) -> Callable[[], Points]:
        """``points(manager)`` while the manager lives, nothing after it was collected."""
        manager_ref = self._manager_ref

        def observe() -> Points:
            manager = manager_ref()
            return [] if manager is None else points(manager)

        return observe

    def _sample_field(self, field: str) -> Callable[[], Points]:
        def points(manager: MemoryManager) -> Points:
            sample: MemorySample = manager.sampler.current()
            return [(getattr(sample, field), _NO_ATTRIBUTES)]

        return self._with_manager(points)

    def record_gc_pauses(self, pauses: list[tuple[int, float]]) -> None:
        """Record drained GC pauses into the pause histogram (slow path, monitor thread)."""
        if not self._set.active:
            return
        record = self._gc_pause.record
        for generation, seconds in pauses:
            record(seconds, _GENERATIONS[generation])

    @property
    def instruments(self) -> InstrumentSet:
        """The instrument set, closed together with this object."""
        return self._set

    def close(self) -> None:
        """Silence every instrument of this manager."""
        self._set.close()


def _peak(manager: MemoryManager) -> Points:
    sample = manager.sampler.current()
    if sample.peak is None and sample.rss is None:
        return []
    return [(max(sample.peak or 0, sample.rss or 0), _NO_ATTRIBUTES)]


def _faults(manager: MemoryManager) -> Points:
    sample = manager.sampler.current()
    return [(sample.minor_faults, {c.ATTR_PAGING_FAULT_TYPE: "minor"}),
            (sample.major_faults, {c.ATTR_PAGING_FAULT_TYPE: "major"})]


def _psi(manager: MemoryManager) -> Points:
    sample = manager.sampler.current()
    return [(sample.psi_some_s, {c.ATTR_PSI_SCOPE: "some"}),
            (sample.psi_full_s, {c.ATTR_PSI_SCOPE: "full"})]


def _thresholds(manager: MemoryManager) -> Points:
    thresholds = manager.thresholds
    return [(thresholds.moderate, {c.ATTR_THRESHOLD_KIND: "moderate"}),
            (thresholds.high, {c.ATTR_THRESHOLD_KIND: "high"}),
            (thresholds.critical, {c.ATTR_THRESHOLD_KIND: "critical"})]


def _gc(manager: MemoryManager, index: int) -> Points:
    stats = manager.sampler.current().gc or ()
    return [(row[index], _GENERATIONS[generation]) for generation, row in enumerate(stats)]
