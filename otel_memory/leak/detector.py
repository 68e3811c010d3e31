"""The LeakDetector: periodic heap censuses, sustained-growth ranking, spans, metrics and logs.

Each check takes a chunked census (``census.py``), feeds it to the ranker (``ranking.py``),
compares the process's growth over the trend window with the leak threshold, and emits:

- a span ``memory.leak_check`` with one ``memory.leak_suspect`` event per suspect (and a
  ``memory.leak_process_growth`` event while the process-level alert holds);
- the ``memory.leak.*`` metrics;
- a WARN log per new suspect and when the process-level alert starts.

Deeper looks run off the hot path and rate-limited: a pympler summary when the process grew
past the threshold and no suspect explains it, and (opt-in) a tracemalloc window naming the
allocation site of new suspects.

Example::

    detector = LeakDetector(interval_s=60.0, threshold_bytes=100 * MB)
    detector.start()
    ...
    report = detector.latest_report()
    detector.stop()
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from .. import catalog as c
from .. import forking
from ..errors import error_summary
from ..instruments import SCOPE_NAME
from ..trend import MemoryTrend, TrendReport, TrendTracker
from .attribution import AllocationAttributor
from .census import DEFAULT_CHUNK_SIZE, HeapSnapshot, SnapshotDiff, take_census
from .census import compare as compare_snapshots
from .metrics import LeakCounters, LeakMetrics
from .ranking import GrowthRanker, RankingPolicy
from .report import LeakReport, LeakSuspect, ProcessGrowth, SummaryRow

if TYPE_CHECKING:
    from ..manager import MemoryManager

_log = logging.getLogger("otel_memory")

MB = 1024 * 1024
_DEEP_LOOK_ROWS = 20


class LeakDetector:
    """Finds types that keep growing, and process growth past the threshold.

    ``check()`` can be called directly (tests, a CLI); ``start()`` runs it every ``interval_s``
    from a daemon thread that holds only a weak reference to the detector.

    Options: ``threshold_bytes`` is the growth over the trend window that raises the
    process-level alert (the window is the manager's, held weakly, or ``trend_window_s`` of
    RSS readings taken at each check without one); ``policy`` the ranking rules;
    ``chunk_size`` the objects counted between two releases of the GIL; ``deep_look`` a
    pympler summary (seconds on a big heap) at most every ``deep_look_interval_s`` when the
    alert holds and no suspect explains half the growth; ``attribute_allocations`` a
    tracemalloc window of ``attribution_window_s`` for new suspects, at most every
    ``attribution_interval_s``.

    Example::

        detector = LeakDetector(meter_provider=provider, interval_s=30.0)
        before = detector.snapshot(); ...; after = detector.snapshot()
        detector.compare(before, after).rows[:10]
        report = detector.check()
    """

    def __init__(
        self, *, meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None, interval_s: float = 60.0,
        threshold_bytes: int = 100 * MB, manager: MemoryManager | None = None,
        policy: RankingPolicy | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
        attribute_allocations: bool = False, attribution_window_s: float = 10.0,
        attribution_interval_s: float = 3600.0, deep_look: bool = True,
        deep_look_interval_s: float = 3600.0, trend_window_s: float = 600.0,
    ) -> None:
        if not isinstance(interval_s, (int, float)) or interval_s <= 0:
            raise ValueError(f"interval_s={interval_s!r}; expected a positive number of seconds")
        if not isinstance(threshold_bytes, int) or threshold_bytes < 0:
            raise ValueError(f"threshold_bytes={threshold_bytes!r}; expected an int >= 0")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size!r}; expected a positive int")
        if policy is not None and not isinstance(policy, RankingPolicy):
            raise TypeError(f"policy={type(policy).__name__}; expected a RankingPolicy")
        self.interval_s = float(interval_s)
        self.threshold_bytes = threshold_bytes
        self.chunk_size = chunk_size
        self.deep_look = deep_look
        self.deep_look_interval_s = deep_look_interval_s
        self._manager_ref = weakref.ref(manager) if manager is not None else None
        self._own_trend = TrendTracker(window_s=trend_window_s) if manager is None else None
        self._ranker = GrowthRanker(policy)
        self._attributor = (AllocationAttributor(attribution_window_s, attribution_interval_s)
                            if attribute_allocations else None)
        if self._attributor is not None:   # dropped without stop(): tracemalloc must not run on
            weakref.finalize(self, self._attributor.cancel)
        self._tracer = trace.get_tracer(SCOPE_NAME, tracer_provider=tracer_provider)
        self.counters = LeakCounters()
        self._meter_provider = meter_provider
        self._metrics: LeakMetrics | None = LeakMetrics(meter_provider, self.counters)
        self._lock = threading.Lock()
        self._latest: LeakReport | None = None
        self._suspect_names: frozenset[str] = frozenset()
        self._sites: dict[str, str] = {}
        self._alerting = False
        self._last_deep_look: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Run check() every ``interval_s`` from a daemon thread (idempotent, cheap)."""
        if self._running:
            return
        self._running = True
        if self._metrics is None:      # stopped before: instruments again
            self._metrics = LeakMetrics(self._meter_provider, self.counters)
        forking.after_fork_in_child(self)
        self._start_thread()

    def _start_thread(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_run, args=(weakref.ref(self), self._stop, self.interval_s),
            name="otel-memory-leak-detector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, close an open tracemalloc window and silence the metrics."""
        self._running = False
        self._stop.set()
        forking.forget(self)
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        if self._attributor is not None:
            with self._lock:
                self._attributor.cancel()
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None

    @property
    def policy(self) -> RankingPolicy:
        """The ranking rules in use (warm-up, peaks needed, minimum growth, ...)."""
        return self._ranker.policy

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._running

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._ranker.reset()
        self.counters.reset()
        self._suspect_names = frozenset()
        self._latest = None
        self._alerting = False
        if self._own_trend is not None:
            self._own_trend.clear()
        if self._running:
            self._start_thread()

    # --- snapshots ------------------------------------------------------------------------

    def snapshot(self) -> HeapSnapshot:
        """A census of the heap now (aggregates only); see census.take_census."""
        return take_census(self.chunk_size)

    def compare(self, before: HeapSnapshot, after: HeapSnapshot) -> SnapshotDiff:
        """What changed between two snapshots, largest growth first (pympler's summary diff)."""
        return compare_snapshots(before, after)

    def latest_report(self) -> LeakReport | None:
        """The report of the last check, or None before the first."""
        return self._latest

    # --- the check ------------------------------------------------------------------------

    def check(self) -> LeakReport:
        """Take a census, update the history, emit span, metrics and logs; the new report."""
        with self._lock, self._tracer.start_as_current_span(c.SPAN_LEAK_CHECK) as span:
            started = time.perf_counter()
            self._collect_sites_if_due()
            snapshot = take_census(self.chunk_size)
            suspects = [s.with_allocation_site(self._sites.get(s.type_name))
                        for s in self._ranker.update(snapshot)]
            new = tuple(s.type_name for s in suspects if s.type_name not in self._suspect_names)
            self._suspect_names = frozenset(s.type_name for s in suspects)
            growth = self._process_growth()
            deep = self._deep_look_if_unexplained(growth, suspects)
            if new and self._attributor is not None:
                self._attributor.begin(new)
            report = LeakReport(
                check_number=self._ranker.checks, checked_at=time.time(),
                duration_s=time.perf_counter() - started, objects_scanned=snapshot.objects_scanned,
                heap_bytes=snapshot.heap_bytes, suspects=suspects, new_suspects=new,
                warming_up=self._ranker.checks <= self._ranker.policy.warmup_checks,
                process_growth=growth, deep_summary=deep)
            self._latest = report
            self._publish(report, span)
        return report

    def _process_growth(self) -> ProcessGrowth | None:
        trend = self._trend()
        if trend is None or trend.samples < 2:
            return None
        alert = (trend.trend is MemoryTrend.INCREASING
                 and trend.growth_over_window_bytes > self.threshold_bytes)
        return ProcessGrowth(trend.growth_over_window_bytes, trend.window_s, self.threshold_bytes,
                             trend.growth_bytes_per_s, alert)

    def _trend(self) -> TrendReport | None:
        if self._manager_ref is not None:
            manager = self._manager_ref()
            if manager is None or not manager.initialized:
                return None
            return manager.get_memory_trend()
        if self._own_trend is None:
            return None
        rss = _rss()
        if rss is not None:
            self._own_trend.add(time.monotonic(), rss)
        return self._own_trend.report()

    def _deep_look_if_unexplained(self, growth: ProcessGrowth | None,
                                  suspects: list[LeakSuspect]) -> tuple[SummaryRow, ...]:
        if not self.deep_look or growth is None or not growth.alert:
            return ()
        explained = sum(max(0, s.size_delta) for s in suspects)
        if explained >= growth.growth_bytes / 2:
            return ()
        now = time.monotonic()
        if self._last_deep_look is not None and now - self._last_deep_look < self.deep_look_interval_s:
            return ()
        self._last_deep_look = now
        return deep_summary()

    def _publish(self, report: LeakReport, span: trace.Span) -> None:
        counters = self.counters
        counters.checks += 1
        counters.suspects = len(report.suspects)
        counters.suspects_detected += len(report.new_suspects)
        counters.growth_bytes_per_s = report.growth_bytes_per_s
        counters.last_duration_s = report.duration_s
        counters.last_objects_scanned = report.objects_scanned
        alert = report.process_growth is not None and report.process_growth.alert
        counters.process_growth_alert = int(alert)
        span.set_attributes(_prefixed(c.ATTR_LEAK_CHECK_PREFIX, {
            "number": report.check_number, "objects_scanned": report.objects_scanned,
            "heap_bytes": report.heap_bytes, "duration_s": report.duration_s,
            "suspects": len(report.suspects), "warming_up": report.warming_up}))
        for suspect in report.suspects:
            span.add_event(c.EVENT_LEAK_SUSPECT, _prefixed(c.ATTR_LEAK_SUSPECT_PREFIX, asdict(suspect)))
        if report.process_growth is not None and alert:
            span.add_event(c.EVENT_LEAK_PROCESS_GROWTH,
                           _prefixed(c.ATTR_LEAK_PROCESS_GROWTH_PREFIX, asdict(report.process_growth)))
        new = set(report.new_suspects)
        for suspect in report.suspects:
            if suspect.type_name in new:
                _log.warning("Potential memory leak: %s grew by %d objects / %.1f MB over %d snapshots%s",
                             suspect.type_name, suspect.count_delta, suspect.size_delta / MB,
                             suspect.snapshots,
                             f" (allocated at {suspect.allocation_site})" if suspect.allocation_site else "")
        if alert and not self._alerting and report.process_growth is not None:
            growth = report.process_growth
            _log.warning("Potential memory leak: the process grew by %.1f MB over %.0f s "
                         "(leak threshold %.1f MB)", growth.growth_bytes / MB, growth.window_s,
                         growth.threshold_bytes / MB)
        self._alerting = alert

    def _finish_attribution_if_due(self) -> None:
        with self._lock:
            self._collect_sites_if_due()

    def _collect_sites_if_due(self) -> None:
        attributor = self._attributor
        if attributor is None:
            return
        due = attributor.due_in()
        if due is not None and due <= 0:
            self._sites.update(attributor.finish())

    def _wait_s(self, next_check: float) -> float:
        wait = next_check - time.monotonic()
        if self._attributor is not None:
            due = self._attributor.due_in()
            if due is not None:
                wait = min(wait, due)
        return max(0.0, wait)


def deep_summary(limit: int = _DEEP_LOOK_ROWS) -> tuple[SummaryRow, ...]:
    """A pympler ``muppy`` summary of the whole heap, largest types first (slow: seconds)."""
    from pympler import muppy, summary

    objects = muppy.get_objects()
    try:
        rows = summary.summarize(objects)  # type: ignore[no-untyped-call]
    finally:
        del objects
    rows.sort(key=lambda row: -int(row[2]))
    return tuple(SummaryRow(str(row[0]), int(row[1]), int(row[2])) for row in rows[:limit])


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, str | bool | int | float]:
    return {prefix + key: value for key, value in values.items()
            if isinstance(value, (str, bool, int, float))}


def _rss() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - no RSS only means no process-level trend
        return None


def _run(ref: weakref.ref[LeakDetector], stop: threading.Event, interval: float) -> None:
    next_check = time.monotonic() + interval
    failures: set[str] = set()
    while True:
        detector = ref()
        if detector is None:
            return
        wait = detector._wait_s(next_check)
        del detector
        if stop.wait(wait):
            return
        detector = ref()
        if detector is None:
            return
        try:
            detector._finish_attribution_if_due()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + interval
                detector.check()
        except Exception as error:  # noqa: BLE001 - the detector must never die or raise
            if type(error).__name__ not in failures:
                failures.add(type(error).__name__)
                _log.warning("otel_memory: leak check failed: %s", error_summary(error))
        del detector
