"""The runtime signals of a MemoryManager as observable instruments over its shared sample.

One collection costs one sample and one pass over it. The SDK hands every callback of a
collection the same CallbackOptions object: the first callback to see a new one asks the
sampler for the shared sample (and which families are left to peers), builds every signal's
Observation objects from it in one go when the sample is new, and each instrument's callback
then hands its ready list to the SDK with no other work. Values that do not change between
samples (pressure actions, reclaimed bytes, admission rejections: counted by other threads at
any time) are read live by their own callbacks instead.

The callbacks hold the manager weakly: the meter provider keeps them for its whole life, and
they must not keep a manager alive after the application dropped it.

The semantic-convention families that opentelemetry-instrumentation-system-metrics reports too
are left to it when it runs beside us (``MEMORY_SEMCONV_SIGNALS``, see ``peers``): looked at by
those signals' callbacks at each collection, they then have no points.

Example::

    metrics = RuntimeMetrics(manager)      # made by MemoryManager.initialize()
    metrics.record_gc_pauses([(0, 0.0002)])
    metrics.close()
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from opentelemetry.metrics import CallbackOptions, Observation

from . import catalog as c
from .instruments import InstrumentSet, Points, get_meter
from .peers import SharedFamilies, system_metrics_families

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

    from .config import MemoryManagementConfig
    from .gcwatch import GcPauseWatch
    from .limits import EffectiveLimit
    from .pressure import MemoryPressure, Thresholds
    from .sampler import MemorySample, Sampler
    from .trend import TrendReport, TrendTracker


class RuntimeSource(Protocol):
    """What the runtime metrics read from their source (the MemoryManager is one), named here so
    that this module never imports the manager and tests can build the metrics without one.

    Example::

        RuntimeMetrics(manager)              # a MemoryManager, after initialize()
    """

    sampler: Sampler
    limit: EffectiveLimit
    config: MemoryManagementConfig
    thresholds: Thresholds
    trend: TrendTracker
    gc_watch: GcPauseWatch
    transitions: dict[MemoryPressure, int]
    actions: dict[str, int]
    reclaimed: dict[str, int]
    rejections: dict[str, int]
    meter_provider: MeterProvider | None

    @property
    def last_tick(self) -> int:
        """Monitoring ticks so far; changes whenever the trend window does."""

    def usage_of(self, sample: MemorySample) -> int | None:
        """The usage that pressure is computed from, in bytes; None when unknown."""

    def get_memory_pressure(self) -> MemoryPressure:
        """The current pressure level."""

_GENERATIONS = [{c.ATTR_GC_GENERATION: generation} for generation in range(3)]
_MINOR = {c.ATTR_PAGING_FAULT_TYPE: "minor"}
_MAJOR = {c.ATTR_PAGING_FAULT_TYPE: "major"}
_PSI_SOME = {c.ATTR_PSI_SCOPE: "some"}
_PSI_FULL = {c.ATTR_PSI_SCOPE: "full"}
_THRESHOLD_KINDS = [{c.ATTR_THRESHOLD_KIND: kind} for kind in ("moderate", "high", "critical")]

Observations = list[Observation]
# A signal's Observations from the manager and the cycle's sample.
Build = Callable[["RuntimeSource", "MemorySample"], Observations]
# (the collection's CallbackOptions, its sample, one list per signal in registration order
# as built from the sample, the families left to peers, the lists as reported: empty for those)
_Cycle = tuple["CallbackOptions | None", "MemorySample | None", list[Observations],
               frozenset[str], list[Observations]]
_NO_CYCLE: _Cycle = (None, None, [], frozenset(), [])


class RuntimeMetrics:
    """Registers the process, GC, pressure and response metrics of one manager.

    Example::

        RuntimeMetrics(manager).close()
    """

    def __init__(self, manager: RuntimeSource, *, semconv_signals: str = "auto",
                 peer_families: Callable[[], frozenset[str] | None] = system_metrics_families) -> None:
        self._manager_ref = weakref.ref(manager)
        self._sampler = manager.sampler
        self._trend_cache: tuple[tuple[int, int], TrendReport] | None = None
        self._set = InstrumentSet(get_meter(manager.meter_provider))
        self._cycle: _Cycle = _NO_CYCLE
        self._signals: list[tuple[c.MetricSpec, Build]] = []
        signal = self._signals.append

        signal((c.PROCESS_MEMORY_USAGE, lambda m, s: _one(s.rss)))
        signal((c.PROCESS_MEMORY_VIRTUAL, lambda m, s: _one(s.vms)))
        signal((c.MEMORY_ALLOCATED, lambda m, s: _one(s.rss)))
        signal((c.MEMORY_ALLOCATED_BLOCKS, lambda m, s: _one(s.allocated_blocks)))
        signal((c.MEMORY_PEAK, _peak))
        signal((c.PROCESS_PAGING_FAULTS, _faults))
        signal((c.MEMORY_LIMIT, lambda m, s: [
            Observation(m.limit.bytes, {c.ATTR_LIMIT_SOURCE: m.limit.source})]))
        signal((c.MEMORY_UTILIZATION, _utilization))
        signal((c.MEMORY_THRESHOLD, _thresholds))
        if manager.limit.cgroup is not None:
            signal((c.CONTAINER_MEMORY_USAGE, lambda m, s: _one(s.container_usage)))
            signal((c.CONTAINER_MEMORY_WORKING_SET, lambda m, s: _one(s.container_working_set)))
            signal((c.MEMORY_CONTAINER_OOM_KILLS, lambda m, s: _one(s.oom_kills)))
        signal((c.MEMORY_PSI_STALL, _psi))
        if manager.config.enable_uss:
            signal((c.MEMORY_USS, lambda m, s: _one(s.uss)))
        if manager.config.enable_tracemalloc:
            signal((c.MEMORY_TRACEMALLOC_CURRENT, lambda m, s: _one(s.tracemalloc_current)))
            signal((c.MEMORY_TRACEMALLOC_PEAK, lambda m, s: _one(s.tracemalloc_peak)))
        signal((c.CPYTHON_GC_COLLECTIONS, lambda m, s: _gc(s, 0)))
        signal((c.CPYTHON_GC_COLLECTED_OBJECTS, lambda m, s: _gc(s, 1)))
        signal((c.CPYTHON_GC_UNCOLLECTABLE_OBJECTS, lambda m, s: _gc(s, 2)))
        signal((c.MEMORY_GC_PAUSE_TIME, lambda m, s: [
            Observation(total, _GENERATIONS[generation])
            for generation, total in enumerate(m.gc_watch.totals)]))
        signal((c.MEMORY_PRESSURE_LEVEL, lambda m, s: [
            Observation(int(m.get_memory_pressure()))]))
        signal((c.MEMORY_PRESSURE_TRANSITIONS, lambda m, s: [
            Observation(count, {c.ATTR_PRESSURE_STATE: level.state})
            for level, count in m.transitions.items()]))
        trend = self.trend_report
        signal((c.MEMORY_TREND_GROWTH_RATE, lambda m, s: [Observation(trend(m).growth_bytes_per_s)]))
        signal((c.MEMORY_TREND_DIRECTION, lambda m, s: [Observation(trend(m).trend.value)]))
        signal((c.MEMORY_TREND_AVERAGE, lambda m, s: [Observation(trend(m).average_bytes)]))
        self._shared = SharedFamilies((spec for spec, _build in self._signals), semconv_signals,
                                      peer_families)
        for index, (spec, _build) in enumerate(self._signals):
            self._set.observe_prepared(spec, self._observations(index))

        # Counted by other threads between samples: read when collected.
        self._gc_pause = self._set.histogram(c.MEMORY_GC_PAUSE_DURATION)
        with_manager = self._with_manager
        self._set.observe(c.MEMORY_PRESSURE_ACTIONS, with_manager(lambda m: [
            (count, {c.ATTR_PRESSURE_ACTION: action}) for action, count in list(m.actions.items())]))
        self._set.observe(c.MEMORY_PRESSURE_RECLAIMED, with_manager(lambda m: [
            (count, {c.ATTR_PRESSURE_ACTION: action}) for action, count in list(m.reclaimed.items())]))
        self._set.observe(c.MEMORY_ADMISSION_REJECTIONS, with_manager(lambda m: [
            (count, {c.ATTR_ADMISSION_POINT: point}) for point, count in list(m.rejections.items())]))

    def _observations(self, index: int) -> Callable[[CallbackOptions], Sequence[Observation]]:
        """The callback of signal ``index``: its list of this collection's cycle."""
        shared = self._signals[index][0].name in self._shared.shared

        def observations(options: CallbackOptions) -> Sequence[Observation]:
            cycle = self._cycle
            if cycle[0] is not options:   # the first callback of a collection
                cycle = self._start_cycle(options, shared)
            return cycle[4][index]

        return observations

    def _start_cycle(self, options: CallbackOptions, shared: bool) -> _Cycle:
        """The cycle of the collection ``options`` belongs to: the shared sample's lists (built
        anew when the sample is new), less the families another instrumentation reports now.

        Where the SDK gives each callback its own CallbackOptions (collections with less than
        10 s to run), every callback comes here: the sample is then the one already built on,
        and only the callbacks of shared families look at the peers again.
        """
        sample = self._sampler.current()
        previous = self._cycle
        if previous[1] is sample and not shared:
            cycle = self._cycle = (options, sample, previous[2], previous[3], previous[4])
            return cycle
        built = previous[2] if previous[1] is sample else self._build(sample)
        left = self._shared.left_to_peers() if self._shared.shared else frozenset()
        if built is previous[2] and left == previous[3]:
            reported = previous[4]
        else:
            reported = built if not left else [
                [] if spec.name in left else points
                for (spec, _build), points in zip(self._signals, built, strict=True)]
        cycle = self._cycle = (options, sample, built, left, reported)
        return cycle

    def _build(self, sample: MemorySample) -> list[Observations]:
        """Every signal's Observations from ``sample``; a signal that raises has none (one warning)."""
        manager = self._manager_ref()
        if manager is None:   # collected: every signal reports nothing
            return [[] for _ in self._signals]
        lists: list[Observations] = []
        for spec, build in self._signals:
            try:
                lists.append(build(manager, sample))
            except Exception as error:  # noqa: BLE001 - one failing signal must not stop the rest
                self._set.warn_once(spec, error)
                lists.append([])
        return lists

    def trend_report(self, manager: RuntimeSource) -> TrendReport:
        """The trend report, computed once per monitoring tick rather than once per metric."""
        key = (id(manager.trend), manager.last_tick)
        cached = self._trend_cache
        if cached is None or cached[0] != key:
            cached = self._trend_cache = (key, manager.trend.report())
        return cached[1]

    def _with_manager(self, points: Callable[[RuntimeSource], Points]) -> Callable[[], Points]:
        """``points(manager)`` while the manager lives, nothing after it was collected."""
        manager_ref = self._manager_ref

        def observe() -> Points:
            manager = manager_ref()
            return [] if manager is None else points(manager)

        return observe

    def record_gc_pauses(self, pauses: list[tuple[int, float]]) -> None:
        """Record drained GC pauses into the pause histogram (slow path, monitor thread).

        The manager calls this at the end of every tick, after the pressure level and the
        trend changed: the cycle built from the tick's sample is dropped so that the next
        collection reports them.
        """
        self._cycle = _NO_CYCLE
        if not self._set.active:
            return
        record = self._gc_pause.record
        for generation, seconds in pauses:
            record(seconds, _GENERATIONS[generation])

    @property
    def shared_families(self) -> SharedFamilies:
        """What this manager leaves to other instrumentations."""
        return self._shared

    @property
    def instruments(self) -> InstrumentSet:
        """The instrument set, closed together with this object."""
        return self._set

    def close(self) -> None:
        """Silence every instrument of this manager."""
        self._set.close()
        self._cycle = _NO_CYCLE


def _one(value: float | None) -> Observations:
    return [] if value is None else [Observation(value)]


def _utilization(manager: RuntimeSource, sample: MemorySample) -> Observations:
    usage = manager.usage_of(sample)
    return [] if usage is None else [Observation(100.0 * usage / manager.limit.bytes)]


def _peak(_manager: RuntimeSource, sample: MemorySample) -> Observations:
    if sample.peak is None and sample.rss is None:
        return []
    return [Observation(max(sample.peak or 0, sample.rss or 0))]


def _faults(_manager: RuntimeSource, sample: MemorySample) -> Observations:
    if sample.minor_faults is None or sample.major_faults is None:
        return []
    return [Observation(sample.minor_faults, _MINOR), Observation(sample.major_faults, _MAJOR)]


def _psi(_manager: RuntimeSource, sample: MemorySample) -> Observations:
    if sample.psi_some_s is None or sample.psi_full_s is None:
        return []
    return [Observation(sample.psi_some_s, _PSI_SOME), Observation(sample.psi_full_s, _PSI_FULL)]


def _thresholds(manager: RuntimeSource, _sample: MemorySample) -> Observations:
    thresholds = manager.thresholds
    values = (thresholds.moderate, thresholds.high, thresholds.critical)
    return [Observation(value, kind) for value, kind in zip(values, _THRESHOLD_KINDS, strict=True)]


def _gc(sample: MemorySample, index: int) -> Observations:
    return [Observation(row[index], _GENERATIONS[generation])
            for generation, row in enumerate(sample.gc or ())]
