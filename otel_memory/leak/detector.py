"""The LeakDetector: periodic heap censuses, sustained-growth ranking, spans, metrics and logs.

Each check takes a chunked census (``census.py``, sampling churning types for survival.py on
the way), and ranks four kinds of suspect: types (``ranking.py``), types whose floor rises
under churn (``ranking.py`` with window.py and survival.py), single containers
(``container_ranking.py``, named by the attribute holding them) and native memory
(``native_ranking.py``). It compares the process's growth over the trend window with the leak
threshold and the growth rate threshold, and emits:

- a span ``memory.leak_check`` with one ``memory.leak_suspect`` event per suspect, carrying a
  ``memory.leak.kind`` attribute (and a ``memory.leak_process_growth`` event while the
  process-level alert holds);
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

import atexit
import gc
import logging
import threading
import time
import weakref
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from .. import catalog as c
from .. import forking
from ..config import MAX_INTERVAL_S
from ..errors import ArgumentTypeError, ConfigError, describe_value, error_summary
from ..instruments import SCOPE_NAME
from ..trend import MemoryTrend, TrendReport, TrendSource, TrendTracker
from .census import DEFAULT_CHUNK_SIZE, HeapSnapshot, SnapshotDiff, own_objects, subtract, take_census
from .census import compare as compare_snapshots
from .container_ranking import ContainerRanker
from .containers import find_attribute
from .metrics import LeakCounters, LeakMetrics
from .native import NativeMemoryReader, process_rss
from .native_ranking import NativeRanker
from .policy import RankingPolicy
from .ranking import GrowthRanker
from .report import (
    KIND_CONTAINER,
    KIND_FLOOR,
    KIND_NATIVE,
    LeakReport,
    LeakSuspect,
    ProcessGrowth,
    SummaryRow,
)
from .survival import SurvivalSampler

if TYPE_CHECKING:
    from .attribution import AllocationAttributor

_log = logging.getLogger("otel_memory")

MB = 1024 * 1024
_DEEP_LOOK_ROWS = 20


class LeakDetector:
    """Finds types that keep growing, and process growth past the threshold.

    ``check()`` can be called directly (tests, a CLI); ``start()`` runs it every ``interval_s``
    from a daemon thread that holds only a weak reference to the detector.

    Options: ``threshold_bytes`` is the growth over the trend window that raises the
    process-level alert, ``growth_rate_bytes_per_s`` the sustained rate over a full window
    that raises it too (0: off) (the window is the manager's, or any ``TrendSource``, held
    weakly, or ``trend_window_s`` of RSS readings taken at each check without one); ``policy``
    the ranking rules; ``native`` the reader of the resident set and malloc's statistics
    (None: no native check);
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
        threshold_bytes: int = 100 * MB, manager: TrendSource | None = None,
        policy: RankingPolicy | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
        attribute_allocations: bool = False, attribution_window_s: float = 10.0,
        attribution_interval_s: float = 3600.0, deep_look: bool = True,
        deep_look_interval_s: float = 3600.0, trend_window_s: float = 600.0,
        growth_rate_bytes_per_s: float = 50 * MB / 3600,
        native: NativeMemoryReader | bool | None = True,
    ) -> None:
        if (isinstance(interval_s, bool) or not isinstance(interval_s, (int, float))
                or not 0 < interval_s <= MAX_INTERVAL_S):
            raise ConfigError(f"interval_s={describe_value(interval_s)}; expected a number of seconds "
                              f"> 0 and <= {MAX_INTERVAL_S:g}")
        if not isinstance(threshold_bytes, int) or threshold_bytes < 0:
            raise ValueError(f"threshold_bytes={threshold_bytes!r}; expected an int >= 0")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size!r}; expected a positive int")
        if policy is not None and not isinstance(policy, RankingPolicy):
            raise ArgumentTypeError(f"policy={type(policy).__name__}; expected a RankingPolicy")
        if (isinstance(growth_rate_bytes_per_s, bool) or not isinstance(growth_rate_bytes_per_s, (int, float))
                or not 0 <= growth_rate_bytes_per_s < float("inf")):
            raise ValueError(f"growth_rate_bytes_per_s={growth_rate_bytes_per_s!r}; "
                             "expected a finite number >= 0 (0: off)")
        self.interval_s = float(interval_s)
        self.growth_rate_bytes_per_s = float(growth_rate_bytes_per_s)
        self.threshold_bytes = threshold_bytes
        self.chunk_size = chunk_size
        self.deep_look = deep_look
        self.deep_look_interval_s = deep_look_interval_s
        self._manager_ref = weakref.ref(manager) if manager is not None else None
        self._own_trend = TrendTracker(window_s=trend_window_s) if manager is None else None
        self._ranker = GrowthRanker(policy)
        self._containers = ContainerRanker(self._ranker.policy)
        self._native_ranker = NativeRanker(self._ranker.policy)
        self._native = (NativeMemoryReader() if native is True else None if native is False
                        else native)
        self._survival = SurvivalSampler() if self._ranker.policy.survival_checks else None
        self._attributes: dict[int, str | None] = {}
        self._attributor: AllocationAttributor | None = None
        if attribute_allocations:   # opt-in: its module is loaded only by those who turn it on
            from .attribution import AllocationAttributor

            self._attributor = AllocationAttributor(attribution_window_s, attribution_interval_s)
        if self._attributor is not None:   # dropped without stop(): tracemalloc must not run on
            weakref.finalize(self, self._attributor.cancel)
        self._tracer = trace.get_tracer(SCOPE_NAME, tracer_provider=tracer_provider)
        self.counters = LeakCounters()
        self._meter_provider = meter_provider
        self._metrics: LeakMetrics | None = LeakMetrics(meter_provider, self.counters)
        self._lock = threading.Lock()
        self._latest: LeakReport | None = None
        self._suspect_keys: frozenset[str] = frozenset()
        self._sites: dict[str, str] = {}
        self._alerting = False
        self._frozen_told = False
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
        _note_the_exit()
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
        self._containers.reset()
        self._native_ranker.reset()
        if self._survival is not None:
            self._survival.clear()
        self._attributes.clear()
        self.counters.reset()
        self._suspect_keys = frozenset()
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
        """Take a census, update the history, emit span, metrics and logs; the new report.

        The megabytes of temporaries a check makes and frees go back to the system when malloc
        would keep them (see native.NativeMemoryReader.give_back).
        """
        try:
            return self._check()
        finally:
            if self._native is not None:
                self._native.give_back()

    def _check(self) -> LeakReport:
        with self._lock, self._tracer.start_as_current_span(c.SPAN_LEAK_CHECK) as span:
            started = time.perf_counter()
            self._tell_of_frozen_objects()
            self._collect_sites_if_due()
            survival = self._survival
            snapshot = take_census(self.chunk_size, visit=survival.visit if survival else None)
            survivors = survival.finish() if survival is not None else {}
            snapshot = subtract(snapshot, own_objects(self._bookkeeping()))
            suspects = list(self._ranker.update(snapshot, survivors))
            check, warming = self._ranker.checks, self._ranker.warming_up
            suspects += self._container_suspects(snapshot, warming, check)
            native = (self._native.read(snapshot.heap_bytes) if self._native is not None else None)
            native_suspect = self._native_ranker.update(native, warming_up=warming, check=check,
                                                        now=snapshot.taken_at)
            if native_suspect is not None:
                suspects.append(native_suspect)
            if survival is not None:
                survival.plan(self._ranker.churning(snapshot.totals))
            suspects = [s.with_allocation_site(self._sites.get(s.key)) for s in suspects]
            new = [s for s in suspects if s.key not in self._suspect_keys]
            self._suspect_keys = frozenset(s.key for s in suspects)
            growth = self._process_growth(warming)
            deep = self._deep_look_if_unexplained(growth, suspects)
            if new and self._attributor is not None:
                self._attributor.begin({s.key: _lookup_name(s) for s in new})
            report = LeakReport(
                check_number=check, checked_at=time.time(),
                duration_s=time.perf_counter() - started, objects_scanned=snapshot.objects_scanned,
                heap_bytes=snapshot.heap_bytes, suspects=suspects,
                new_suspects=tuple(s.type_name for s in new), warming_up=warming,
                process_growth=growth, deep_summary=deep, native=native)
            self._latest = report
            self._publish(report, span, new)
        return report

    def _tell_of_frozen_objects(self) -> None:
        """Once: objects moved to the permanent generation by gc.freeze() (a preloading server
        does it before it forks workers) are not listed by gc.get_objects(), so no census sees
        them nor the untracked items they hold."""
        frozen = gc.get_freeze_count()
        if frozen and not self._frozen_told:
            self._frozen_told = True
            _log.warning("otel_memory: %d objects were frozen with gc.freeze(); leak checks do "
                         "not see them: a container made before the freeze is not watched, nor "
                         "the strings and numbers it holds", frozen)

    def _bookkeeping(self) -> list[object]:
        """The detector's own data, which its censuses count and must not rank: histories,
        survival samples, names looked up, the last report."""
        return [*self._ranker.bookkeeping(), *self._containers.bookkeeping(),
                *self._native_ranker.bookkeeping(),
                *(self._survival.bookkeeping() if self._survival is not None else ()),
                self._attributes, self._sites, self._suspect_keys, self._latest,
                *((self._own_trend.bookkeeping(),) if self._own_trend is not None else ())]

    def _container_suspects(self, snapshot: HeapSnapshot, warming: bool, check: int
                            ) -> list[LeakSuspect]:
        found = self._containers.update(snapshot, warming_up=warming, check=check)
        live = {ident for ident, _ in found}
        for ident in [ident for ident in self._attributes if ident not in live]:
            del self._attributes[ident]
        suspects = []
        for ident, suspect in found:
            if ident not in self._attributes:     # looked up once, when it becomes a suspect
                self._attributes[ident] = _attribute_holding(ident)
            suspects.append(replace(suspect, attribute=self._attributes[ident]))
        return suspects

    def _process_growth(self, warming: bool) -> ProcessGrowth | None:
        trend = self._trend()
        if trend is None or trend.samples < 2:
            return None
        increasing = trend.trend is MemoryTrend.INCREASING
        reason = None
        if increasing and trend.growth_over_window_bytes > self.threshold_bytes:
            reason = "total"
        elif (increasing and not warming and trend.full and self.growth_rate_bytes_per_s > 0
              and trend.growth_bytes_per_s >= self.growth_rate_bytes_per_s):
            reason = "rate"
        return ProcessGrowth(trend.growth_over_window_bytes, trend.window_s, self.threshold_bytes,
                             trend.growth_bytes_per_s, reason is not None,
                             self.growth_rate_bytes_per_s, reason)

    def _trend(self) -> TrendReport | None:
        if self._manager_ref is not None:
            manager = self._manager_ref()
            if manager is None or not manager.initialized:
                return None
            return manager.get_memory_trend()
        if self._own_trend is None:
            return None
        rss = process_rss()
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

    def _publish(self, report: LeakReport, span: trace.Span, new: list[LeakSuspect]) -> None:
        counters = self.counters
        counters.checks += 1
        counters.suspects = len(report.suspects)
        for kind in counters.by_kind:
            counters.by_kind[kind] = len(report.of_kind(kind))
        for suspect in new:
            counters.detected_by_kind[suspect.kind] += 1
        counters.suspects_detected += len(new)
        counters.growth_bytes_per_s = report.growth_bytes_per_s
        counters.last_duration_s = report.duration_s
        counters.last_objects_scanned = report.objects_scanned
        growth = report.process_growth
        alert = growth is not None and growth.alert
        counters.process_growth_alert = int(alert)
        counters.alert_reason = growth.reason if growth is not None else None
        if report.native is not None:
            counters.native_bytes = report.native.native_bytes
            counters.malloc_retained_bytes = report.native.retained_bytes
        span.set_attributes(_prefixed(c.ATTR_LEAK_CHECK_PREFIX, {
            "number": report.check_number, "objects_scanned": report.objects_scanned,
            "heap_bytes": report.heap_bytes, "duration_s": report.duration_s,
            "suspects": len(report.suspects), "warming_up": report.warming_up}))
        for suspect in report.suspects:
            attributes = _prefixed(c.ATTR_LEAK_SUSPECT_PREFIX, asdict(suspect))
            attributes[c.ATTR_LEAK_KIND] = attributes.pop(c.ATTR_LEAK_SUSPECT_PREFIX + "kind")
            span.add_event(c.EVENT_LEAK_SUSPECT, attributes)
        if growth is not None and alert:
            span.add_event(c.EVENT_LEAK_PROCESS_GROWTH,
                           _prefixed(c.ATTR_LEAK_PROCESS_GROWTH_PREFIX, asdict(growth)))
        for suspect in new:
            if suspect.kind == KIND_NATIVE:
                _log.warning("Potential memory leak: native memory grew by %.1f MB (%.1f KB/s) "
                             "that the Python heap does not account for (resident %.1f MB, "
                             "Python heap %.1f MB, malloc free lists %s)",
                             suspect.size_delta / MB, suspect.growth_bytes_per_s / 1024,
                             _mb(report.native.rss_bytes if report.native else None),
                             _mb(report.native.python_bytes if report.native else None),
                             _mb_text(report.native.retained_bytes if report.native else None))
                continue
            unit = {KIND_CONTAINER: "items", KIND_FLOOR: "long-lived objects"}.get(suspect.kind,
                                                                                   "objects")
            _log.warning("Potential memory leak: %s grew by %d %s / %.1f MB over %d snapshots "
                         "(%.1f KB/s)%s", suspect.describe(), suspect.count_delta, unit,
                         suspect.size_delta / MB, suspect.snapshots,
                         suspect.growth_bytes_per_s / 1024,
                         f" (allocated at {suspect.allocation_site})" if suspect.allocation_site else "")
        if alert and not self._alerting and growth is not None:
            if growth.reason == "rate":
                _log.warning("Potential memory leak: the process grows by %.1f MB/hour over the "
                             "last %.0f s (rate threshold %.1f MB/hour)",
                             growth.growth_bytes_per_s * 3600 / MB, growth.window_s,
                             growth.rate_threshold_bytes_per_s * 3600 / MB)
            else:
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


def _mb(value: int | None) -> float:
    return (value or 0) / MB


def _mb_text(value: int | None) -> str:
    return "unknown" if value is None else f"{value / MB:.1f} MB"


def _attribute_holding(ident: int) -> str | None:
    """find_attribute(ident), or None when the modules could not be read (the suspect is
    still reported, without the name)."""
    try:
        return find_attribute(ident)
    except Exception as error:  # noqa: BLE001 - a module of the application's may refuse
        _log.debug("otel_memory: a container's attribute could not be named: %s",
                   error_summary(error))
        return None


def _lookup_name(suspect: LeakSuspect) -> str | None:
    """The type whose objects' allocation site attribution looks for."""
    if suspect.kind == KIND_CONTAINER:
        return suspect.item_type
    if suspect.kind == KIND_NATIVE:
        return None
    return suspect.type_name


#: Set by an exit hook (registered when the first detector starts): the interpreter's exit
#: hooks run, after the application's last non-daemon thread ended. (The main thread alone
#: ending is no sign: an application may go on in its other threads.)
_interpreter_exiting = threading.Event()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _note_the_exit() -> None:
    """Register, once per process, the exit hook that stops every detector's next check."""
    global _exit_hook_registered
    with _exit_hook_lock:
        if not _exit_hook_registered:
            atexit.register(_interpreter_exiting.set)
            _exit_hook_registered = True


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
        if _interpreter_exiting.is_set():
            # a check now would only hold the exit and end a span after the last export
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
