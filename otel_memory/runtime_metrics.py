"""The runtime signals of a MemoryManager as observable instruments over its shared sample.

Example::

    metrics = RuntimeMetrics(manager)      # made by MemoryManager.initialize()
    metrics.record_gc_pauses([(0, 0.0002)])
    metrics.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import catalog as c
from .instruments import InstrumentSet, Points, get_meter

if TYPE_CHECKING:
    from .manager import MemoryManager

_GENERATIONS = [{c.ATTR_GC_GENERATION: generation} for generation in range(3)]
_NO_ATTRIBUTES: dict[str, str] = {}


class RuntimeMetrics:
    """Registers the process, GC, pressure and response metrics of one manager.

    Example::

        RuntimeMetrics(manager).close()
    """

    def __init__(self, manager: MemoryManager) -> None:
        self._manager = manager
        self._set = InstrumentSet(get_meter(manager.meter_provider))
        sampler = manager.sampler
        observe = self._set.observe

        def one(field: str) -> Points:
            return [(getattr(sampler.current(), field), _NO_ATTRIBUTES)]

        observe(c.PROCESS_MEMORY_USAGE, lambda: one("rss"))
        observe(c.PROCESS_MEMORY_VIRTUAL, lambda: one("vms"))
        observe(c.MEMORY_ALLOCATED, lambda: one("rss"))
        observe(c.MEMORY_ALLOCATION_COUNT, lambda: one("allocated_blocks"))
        observe(c.MEMORY_PEAK, self._peak)
        observe(c.PROCESS_PAGING_FAULTS, self._faults)
        observe(c.MEMORY_LIMIT, lambda: [
            (manager.limit.bytes, {c.ATTR_LIMIT_SOURCE: manager.limit.source})])
        observe(c.MEMORY_UTILIZATION, lambda: [
            (100.0 * manager.usage_of(sampler.current()) / manager.limit.bytes, _NO_ATTRIBUTES)])
        observe(c.MEMORY_THRESHOLD, self._thresholds)
        if manager.limit.cgroup is not None:
            observe(c.MEMORY_CONTAINER_USAGE, lambda: one("container_usage"))
            observe(c.MEMORY_CONTAINER_WORKING_SET, lambda: one("container_working_set"))
            observe(c.MEMORY_CONTAINER_OOM_KILLS, lambda: one("oom_kills"))
        observe(c.MEMORY_PSI_STALL, self._psi)
        if manager.config.enable_uss:
            observe(c.MEMORY_USS, lambda: one("uss"))
        if manager.config.enable_tracemalloc:
            observe(c.MEMORY_TRACEMALLOC_CURRENT, lambda: one("tracemalloc_current"))
            observe(c.MEMORY_TRACEMALLOC_PEAK, lambda: one("tracemalloc_peak"))
        observe(c.CPYTHON_GC_COLLECTIONS, lambda: self._gc(0))
        observe(c.CPYTHON_GC_COLLECTED_OBJECTS, lambda: self._gc(1))
        observe(c.CPYTHON_GC_UNCOLLECTABLE_OBJECTS, lambda: self._gc(2))
        observe(c.MEMORY_GC_PAUSE_TIME, lambda: [
            (total, _GENERATIONS[generation])
            for generation, total in enumerate(manager.gc_watch.totals)])
        self._gc_pause = self._set.histogram(c.MEMORY_GC_PAUSE_DURATION)
        observe(c.MEMORY_PRESSURE_LEVEL, lambda: [(int(manager.get_memory_pressure()), _NO_ATTRIBUTES)])
        observe(c.MEMORY_PRESSURE_TRANSITIONS, lambda: [
            (count, {c.ATTR_PRESSURE_STATE: level.state})
            for level, count in manager.transitions.items()])
        observe(c.MEMORY_PRESSURE_ACTIONS, lambda: [
            (count, {c.ATTR_PRESSURE_ACTION: action}) for action, count in manager.actions.items()])
        observe(c.MEMORY_PRESSURE_RECLAIMED, lambda: [
            (count, {c.ATTR_PRESSURE_ACTION: action}) for action, count in manager.reclaimed.items()])
        observe(c.MEMORY_ADMISSION_REJECTIONS, lambda: [
            (count, {c.ATTR_ADMISSION_POINT: point}) for point, count in manager.rejections.items()])
        observe(c.MEMORY_TREND_GROWTH_RATE, lambda: [
            (manager.trend.report().growth_bytes_per_s, _NO_ATTRIBUTES)])
        observe(c.MEMORY_TREND_DIRECTION, lambda: [
            (manager.trend.report().trend.value, _NO_ATTRIBUTES)])
        observe(c.MEMORY_TREND_AVERAGE, lambda: [
            (manager.trend.report().average_bytes, _NO_ATTRIBUTES)])

    def _peak(self) -> Points:
        sample = self._manager.sampler.current()
        if sample.peak is None and sample.rss is None:
            return []
        return [(max(sample.peak or 0, sample.rss or 0), _NO_ATTRIBUTES)]

    def _faults(self) -> Points:
        sample = self._manager.sampler.current()
        return [(sample.minor_faults, {c.ATTR_PAGING_FAULT_TYPE: "minor"}),
                (sample.major_faults, {c.ATTR_PAGING_FAULT_TYPE: "major"})]

    def _psi(self) -> Points:
        sample = self._manager.sampler.current()
        return [(sample.psi_some_s, {c.ATTR_PSI_SCOPE: "some"}),
                (sample.psi_full_s, {c.ATTR_PSI_SCOPE: "full"})]

    def _thresholds(self) -> Points:
        thresholds = self._manager.thresholds
        return [(thresholds.moderate, {c.ATTR_THRESHOLD_KIND: "moderate"}),
                (thresholds.high, {c.ATTR_THRESHOLD_KIND: "high"}),
                (thresholds.critical, {c.ATTR_THRESHOLD_KIND: "critical"})]

    def _gc(self, index: int) -> Points:
        stats = self._manager.sampler.current().gc or ()
        return [(row[index], _GENERATIONS[generation]) for generation, row in enumerate(stats)]

    def record_gc_pauses(self, pauses: list[tuple[int, float]]) -> None:
        """Record drained GC pauses into the pause histogram (slow path, monitor thread)."""
        if not self._set.active:
            return
        record = self._gc_pause.record
        for generation, seconds in pauses:
            record(seconds, _GENERATIONS[generation])

    def close(self) -> None:
        """Silence every instrument of this manager."""
        self._set.close()
