"""The MemoryManager: effective limit, shared samples, pressure levels, listeners and registries.

One daemon thread ticks every ``monitoring_interval_ms``: it takes a sample, updates the
pressure level (with hysteresis), tells listeners and pressure responders about changes,
feeds the trend window and drains GC pauses into their histogram. Everything else reads the
shared sample, so methods are cheap to call from sync and asyncio code alike. ``admit()`` may
read usage afresh and change the level; it never waits for another thread's reading, and
listeners and responders hear of such a change from a helper thread, never from the
request's.

Example::

    manager = MemoryManager(MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=1024)))
    manager.initialize()
    manager.on_pressure_change(lambda level, previous: print(level.title))
    stats = manager.get_memory_stats()
    print(f"Memory usage: {stats.allocated_bytes // (1024 * 1024)} MB")
    manager.shutdown()
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import metrics, trace

from . import exiting, forking
from .config import MB, MemoryManagementConfig
from .errors import ConfigError, MemoryPressureRejected, PoolError, error_summary
from .gcwatch import GcPauseWatch
from .limits import SOURCE_CGROUP_V1, SOURCE_CGROUP_V2, EffectiveLimit, discover_limit
from .pressure import MemoryPressure, PressureTracker, Thresholds
from .sampler import MemorySample, Sampler
from .trend import TrendReport, TrendTracker

if TYPE_CHECKING:
    from .pool import ObjectPool, Pooled

_log = logging.getLogger("otel_memory")

PressureListener = Callable[[MemoryPressure, MemoryPressure], None]

ACTION_REJECT = "reject"
ADMISSION_ADMIT = "admit"
# admit() trusts the last reading while pressure is LOW and the reading is at most two
# monitoring intervals old (the monitor thread is not behind), and never longer than this: a
# surge between two ticks, or while the monitor is starved of CPU, is still refused. So while
# LOW, admit() reads usage at most four times a second, and compares two numbers otherwise.
ADMISSION_MAX_AGE_S = 0.25
# From MODERATE on, admit() reads usage afresh once the last reading is this old: each request
# sees the memory of those admitted more than 10 ms before it, and a busy server pays at most
# 100 readings a second (~50 us each), not one per request.
ADMISSION_ELEVATED_AGE_S = 0.01


class PressureResponder(Protocol):
    """A cache, pool or other component that gives memory back when pressure changes.

    ``respond_to_pressure`` returns True when it did something; the manager then counts one
    ``memory.pressure.actions`` of kind ``pressure_action`` (e.g. cache_shrink, pool_release).
    """

    pressure_action: str

    def respond_to_pressure(self, level: MemoryPressure) -> bool: ...


@dataclass(frozen=True)
class MemoryStats:
    """A snapshot of the process's memory, as the original design's get_memory_stats().

    Example::

        stats = manager.get_memory_stats()
        stats.allocated_bytes, stats.peak_usage_bytes, stats.limit_bytes, stats.pressure
    """

    allocated_bytes: int
    peak_usage_bytes: int
    limit_bytes: int
    limit_source: str
    usage_bytes: int
    utilization: float
    virtual_bytes: int
    allocation_count: int
    container_usage_bytes: int | None
    container_working_set_bytes: int | None
    pressure: MemoryPressure
    thresholds: Thresholds
    pid: int


class MemoryManager:
    """Watches this process's memory and keeps the pressure level; see the module docstring.

    Example::

        with MemoryManager(MemoryManagementConfig.from_env()) as manager:
            manager.get_memory_pressure()      # MemoryPressure.LOW
    """

    def __init__(
        self,
        config: MemoryManagementConfig | None = None,
        *,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        proc_root: str | Path = "/proc",
        cgroup_root: str | Path = "/sys/fs/cgroup",
    ) -> None:
        if config is not None and not isinstance(config, MemoryManagementConfig):
            raise ConfigError(f"config={type(config).__name__} is not a MemoryManagementConfig")
        self.config = config or MemoryManagementConfig()
        self.meter_provider = meter_provider
        self.tracer_provider = tracer_provider
        self._proc_root = proc_root
        self._cgroup_root = cgroup_root
        # _tick_lock serialises ticks and their announcements, so listeners hear the changes
        # in order; _lock guards state and is never held while listeners or responders run,
        # so they may call back into the manager from any thread. Order: _tick_lock, _lock.
        self._tick_lock = threading.RLock()
        self._lock = threading.RLock()
        self._listeners: list[PressureListener] = []
        self._responders: weakref.WeakSet[PressureResponder] = weakref.WeakSet()
        self._pools: dict[str, ObjectPool[Any]] = {}
        self._initialized = False
        self._level = MemoryPressure.LOW
        self._announced = MemoryPressure.LOW   # the level listeners and responders last heard
        self._reset_counts()
        self.gc_watch = GcPauseWatch()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._instruments: Any = None
        self._leak_detector: Any = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._ticks = 0
        self._last_reading = 0.0            # monotonic time the last reading began
        self._last_usage = 0                # the usage of the last reading that had one
        self._best_measure: int | None = None   # of usage_of's measures, the best read so far
        # admit() trusts a LOW reading this long: the monitor is then at most two ticks behind
        self._admission_max_age_s = min(
            ADMISSION_MAX_AGE_S, 2 * self.config.monitor_config.monitoring_interval_ms / 1000)
        self._started_tracemalloc = False   # stopped again by shutdown(): only if we started it

    def _reset_counts(self) -> None:
        self.transitions = {level: 0 for level in MemoryPressure}
        self.actions: dict[str, int] = {}
        self.reclaimed: dict[str, int] = {}
        self.rejections: dict[str, int] = {}
        self._rejecting_logged = False

    # --- lifecycle ------------------------------------------------------------------------

    def initialize(self) -> None:
        """Discover the limit, start the monitor thread and the instruments (idempotent)."""
        with self._tick_lock:
            with self._lock:
                if self._initialized:
                    return
                self._set_up()
            self.check_pressure()   # the first tick: listeners run outside _lock
            with self._lock:
                if not self._initialized:   # shut down by a listener of the first tick
                    return
                forking.after_fork_in_child(self)
                self._start_thread()
                if self.config.enable_leak_detection:
                    self._start_leak_detection()

    def _set_up(self) -> None:
        """Limit, thresholds, sampler, trend window, GC watch and instruments (both locks held)."""
        from .peers import semconv_signals_mode

        semconv_signals = semconv_signals_mode()   # a bad MEMORY_SEMCONV_SIGNALS: before anything starts
        monitor = self.config.monitor_config
        configured = int(monitor.max_heap_mb * MB) if monitor.max_heap_mb is not None else None
        self.limit: EffectiveLimit = discover_limit(
            configured, proc_root=self._proc_root, cgroup_root=self._cgroup_root)
        self.thresholds = Thresholds.resolve(monitor, self.limit.bytes)
        self._tracker = PressureTracker(self.thresholds)
        self.sampler = Sampler(self.limit, proc_root=self._proc_root, enable_uss=self.config.enable_uss)
        self.trend = TrendTracker(window_s=max(60.0, 120 * monitor.monitoring_interval_ms / 1000))
        if self.config.enable_tracemalloc:
            import tracemalloc

            if not tracemalloc.is_tracing():
                tracemalloc.start()
                self._started_tracemalloc = True
        self.gc_watch.install()
        from .runtime_metrics import RuntimeMetrics

        self._instruments = RuntimeMetrics(self, semconv_signals=semconv_signals)
        # Our metrics and the leak detector's spans must not make the exit wait on an exporter
        # that does not answer.
        exiting.finish_at_exit(self.meter_provider)
        exiting.finish_at_exit(self.tracer_provider, exiting.TRACES)
        self._initialized = True
        _log.info("otel_memory: limit %d MB from %s; thresholds moderate %d MB, high %d MB, "
                  "critical %d MB", self.limit.bytes // MB, self.limit.source,
                  self.thresholds.moderate // MB, self.thresholds.high // MB,
                  self.thresholds.critical // MB)

    def _start_leak_detection(self) -> None:
        try:
            from .leak import LeakDetector

            self._leak_detector = LeakDetector(
                meter_provider=self.meter_provider, tracer_provider=self.tracer_provider,
                interval_s=self.config.leak_detection_interval_s,
                threshold_bytes=int(self.config.leak_detection_threshold_mb * MB), manager=self,
                growth_rate_bytes_per_s=self.config.leak_growth_mb_per_hour * MB / 3600,
                attribute_allocations=self.config.enable_leak_attribution)
            self._leak_detector.start()
        except Exception as error:  # noqa: BLE001 - one capability failing must not stop the rest
            self._leak_detector = None
            _log.warning("otel_memory: leak detection is unavailable and disabled: %s: %s",
                         type(error).__name__, error)

    @property
    def leak_detector(self) -> Any:
        """The LeakDetector this manager started, or None."""
        return self._leak_detector

    def _start_thread(self) -> None:
        self._stop = threading.Event()
        interval = self.config.monitor_config.monitoring_interval_ms / 1000
        self._thread = threading.Thread(
            target=_monitor, args=(weakref.ref(self), self._stop, interval),
            name="otel-memory-monitor", daemon=True)
        self._thread.start()
        # When the application drops the manager without shutdown(): stop the thread, remove
        # the gc callback and silence the instruments. The finalizer holds none of self.
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(
            self, _release, self._stop, self.gc_watch, self._instruments)
        # Not at interpreter exit: the SDK's own exit hook still exports our last values then.
        self._finalizer.atexit = False

    def shutdown(self) -> None:
        """Stop monitoring, silence the instruments, close the pools; the app keeps running."""
        with self._lock:
            if not self._initialized:
                return
            self._initialized = False
            self._stop.set()
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
            self.gc_watch.uninstall()
            if self._instruments is not None:
                self._instruments.close()
            if self._started_tracemalloc:
                import tracemalloc

                tracemalloc.stop()
                self._started_tracemalloc = False
            if self._leak_detector is not None:
                self._leak_detector.stop()
                self._leak_detector = None
            pools, self._pools = list(self._pools.values()), {}
            forking.forget(self)
        for pool in pools:
            pool.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def __enter__(self) -> MemoryManager:
        self.initialize()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()

    @property
    def initialized(self) -> bool:
        """True between initialize() and shutdown()."""
        return self._initialized

    def _after_fork_in_child(self) -> None:
        self._tick_lock = threading.RLock()
        self._lock = threading.RLock()
        self._last_reading = 0.0    # the parent's reading: the child reads its own first
        self._reset_counts()
        self.gc_watch.reset()
        if not self._initialized:
            return
        self.sampler.reset()
        self.trend.clear()
        self._ticks += 1
        self._start_thread()

    # --- readings -------------------------------------------------------------------------

    def _require_initialized(self) -> None:
        if not self._initialized:
            raise RuntimeError("MemoryManager is not initialized; call initialize() first")

    def usage_of(self, sample: MemorySample) -> int | None:
        """The usage pressure is computed from: the container's working set when the limit is
        the container's, else the RSS of this process. Where the better measure was never read
        (no memory.stat, an unreadable memory.current) the next one stands in: the container's
        usage, then the RSS. Once a measure was read, a sample without it (its probe failed for
        a moment) gives None, never a lesser measure."""
        measures = ((sample.container_working_set, sample.container_usage, sample.rss)
                    if self.limit.source in (SOURCE_CGROUP_V1, SOURCE_CGROUP_V2) else (sample.rss,))
        best = self._best_measure
        for index, value in enumerate(measures):       # the best first
            if best is not None and index > best:
                break
            if value is not None:
                self._best_measure = index if best is None else min(best, index)
                return value
        return None

    def get_memory_stats(self) -> MemoryStats:
        """Current usage, peak, limit and pressure, from the shared sample."""
        self._require_initialized()
        sample = self.sampler.current()
        usage = self.usage_of(sample)
        if usage is None:
            usage = self._last_usage
        rss = sample.rss or 0
        return MemoryStats(
            allocated_bytes=rss, peak_usage_bytes=max(sample.peak or 0, rss),
            limit_bytes=self.limit.bytes, limit_source=self.limit.source, usage_bytes=usage,
            utilization=usage / self.limit.bytes, virtual_bytes=sample.vms or 0,
            allocation_count=sample.allocated_blocks or 0,
            container_usage_bytes=sample.container_usage,
            container_working_set_bytes=sample.container_working_set,
            pressure=self._level, thresholds=self.thresholds, pid=sample.pid)

    @property
    def last_tick(self) -> int:
        """How many monitoring ticks have run; changes whenever the trend window does."""
        return self._ticks

    def get_memory_pressure(self) -> MemoryPressure:
        """The level of the last tick."""
        return self._level

    def get_memory_trend(self) -> TrendReport:
        """Trend, growth rate, rolling average and peak over the trend window."""
        self._require_initialized()
        return self.trend.report()

    # --- pressure -------------------------------------------------------------------------

    def check_pressure(self) -> MemoryPressure:
        """Run one monitoring tick now: sample, update the level, notify on change."""
        self._require_initialized()
        with self._tick_lock:
            return self._tick()

    def _tick(self, *, monitoring: bool = True) -> MemoryPressure:
        """One reading; the caller holds the tick lock. A monitoring tick also feeds the trend
        window and the GC pause histogram; admission's readings (as many as requests) only
        update the level."""
        if not self._initialized:   # shut down while this tick waited for the previous one
            return self._level
        began = time.monotonic()
        sample = self.sampler.current(max_age_s=0.0) if monitoring else self.sampler.take_usage()
        usage = self.usage_of(sample)
        with self._lock:
            previous = self._level
            if usage is None:      # its probe failed (one warning): the level stays as it was
                level, usage = previous, self._last_usage
            else:
                level = self._tracker.update(usage)
                self._last_usage = usage
                if monitoring:
                    self.trend.add(sample.time, usage)
            self._level = level
            self._last_reading = began
            if monitoring:
                self._ticks += 1
            if level != previous:
                self.transitions[level] += 1
                if level != MemoryPressure.CRITICAL:
                    self._rejecting_logged = False
        if monitoring:
            self._announce_change()
        elif level != self._announced:
            # A request's thread (an event loop, maybe) must not run listeners and responders:
            # a helper thread tells them, in order after this reading.
            threading.Thread(target=_announce_later, args=(weakref.ref(self),),
                             name="otel-memory-pressure-change", daemon=True).start()
        if monitoring and self._instruments is not None:
            self._instruments.record_gc_pauses(self.gc_watch.drain())
        return level

    def _announce_change(self) -> None:
        """Tell listeners and responders of the level now if it is not the one they last
        heard (the caller holds the tick lock): changes are told in order, and a change
        undone before it was told is not told at all."""
        with self._lock:
            level, previous, usage = self._level, self._announced, self._last_usage
            self._announced = level
        if level != previous:
            self._announce(level, previous, usage)

    def _announce(self, level: MemoryPressure, previous: MemoryPressure, usage: int) -> None:
        _log.info("Memory pressure changed to %s", level.title)
        if level == MemoryPressure.CRITICAL:
            # "exceeded" only when it is: critical pressure begins below the limit.
            what = "Memory limit exceeded" if usage > self.limit.bytes else "Memory pressure critical"
            _log.warning("%s: %d MB used, %d MB limit (critical threshold %d MB)", what,
                         usage // MB, self.limit.bytes // MB, self.thresholds.critical // MB)
        for listener in list(self._listeners):
            try:
                listener(level, previous)
            except Exception as error:  # noqa: BLE001 - one bad listener must not stop the others
                # Its name and where it raised; never its repr (a bound method's shows its
                # object) nor the error's message (it may hold values).
                _log.error("otel_memory: pressure listener %s failed: %s",
                           getattr(listener, "__qualname__", type(listener).__name__),
                           error_summary(error))
        for responder in list(self._responders):
            try:
                if responder.respond_to_pressure(level):
                    self.record_action(responder.pressure_action)
            except Exception as error:  # noqa: BLE001
                _log.error("otel_memory: pressure responder %s failed: %s",
                           type(responder).__name__, error_summary(error))

    def on_pressure_change(self, callback: PressureListener) -> Callable[[], None]:
        """Call ``callback(level, previous)`` on every change of level; returns a remover."""
        with self._lock:
            self._listeners.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return remove

    def register_responder(self, responder: PressureResponder) -> None:
        """Tell ``responder`` about every change of level (held weakly)."""
        self._responders.add(responder)

    def unregister_responder(self, responder: PressureResponder) -> None:
        """Stop telling ``responder``."""
        self._responders.discard(responder)

    def responders(self) -> list[PressureResponder]:
        """The live registered responders."""
        return list(self._responders)

    def record_action(self, action: str, reclaimed_bytes: int = 0) -> None:
        """Count one pressure action of kind ``action`` and the memory it gave back."""
        with self._lock:
            self.actions[action] = self.actions.get(action, 0) + 1
            if reclaimed_bytes > 0:
                self.reclaimed[action] = self.reclaimed.get(action, 0) + reclaimed_bytes

    def admit(self, point: str = ADMISSION_ADMIT) -> None:
        """Raise MemoryPressureRejected when pressure is critical and admission control is on.

        The level is re-read first when its reading is older than two monitoring intervals
        (and ADMISSION_MAX_AGE_S) while LOW, or ADMISSION_ELEVATED_AGE_S from MODERATE on: a
        surge between two monitoring ticks, or while the monitor thread is starved, is refused
        too.
        """
        if not self.config.enable_admission_control or not self._initialized:
            return
        max_age = (self._admission_max_age_s if self._level is MemoryPressure.LOW
                   else ADMISSION_ELEVATED_AGE_S)
        if time.monotonic() - self._last_reading > max_age:
            self._read_for_admission(max_age)
        if self._level != MemoryPressure.CRITICAL:
            return
        with self._lock:
            self.rejections[point] = self.rejections.get(point, 0) + 1
            self.actions[ACTION_REJECT] = self.actions.get(ACTION_REJECT, 0) + 1
            if not self._rejecting_logged:
                self._rejecting_logged = True
                _log.error("Memory pressure critical, rejecting requests")
        raise MemoryPressureRejected("memory pressure is critical; the request was rejected")

    def _read_for_admission(self, max_age: float) -> None:
        """Update the level from a reading of its own, unless another thread took one at most
        ``max_age`` old meanwhile; while another thread is reading (or announcing a change to
        slow listeners) decide on the level there is: an admit never waits, on an event loop
        least of all."""
        if not self._tick_lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._last_reading > max_age:
                self._tick(monitoring=False)
        finally:
            self._tick_lock.release()

    # --- pools (the original design's registry) --------------------------------------------

    def create_pool(self, name: str, factory: Callable[[], Any], max_size: int,
                    **options: Any) -> ObjectPool[Any]:
        """Create a named ObjectPool that reports through this manager and yields under pressure.

        Raises ConfigError when ``enable_object_pooling`` is off, so a disabled switch is never
        ignored silently.
        """
        from .pool import ObjectPool

        if not self.config.enable_object_pooling:
            raise ConfigError(
                f"cannot create pool {name!r}: enable_object_pooling is False "
                "(MEMORY_ENABLE_OBJECT_POOLING); expected it True to use the manager's pools")
        with self._lock:
            if name in self._pools:
                raise ValueError(f"a pool named {name!r} already exists in this MemoryManager")
            options.setdefault("meter_provider", self.meter_provider)
            pool: ObjectPool[Any] = ObjectPool(name, factory, max_size, **options)
            self._pools[name] = pool
        self.register_responder(pool)
        return pool

    def get_pool(self, name: str) -> ObjectPool[Any]:
        """The pool created under ``name``; KeyError lists the known names."""
        try:
            return self._pools[name]
        except KeyError:
            raise KeyError(f"no pool named {name!r}; known pools: {sorted(self._pools)}") from None

    def get_from_pool(self, name: str, timeout: float | None = None) -> Pooled[Any] | None:
        """Borrow from the named pool; None when no object can be had within ``timeout``."""
        try:
            return self.get_pool(name).acquire(timeout=timeout)
        except PoolError:
            return None


def _release(stop: threading.Event, gc_watch: GcPauseWatch, instruments: Any) -> None:
    """What shutdown() does, for a manager collected without it."""
    stop.set()
    gc_watch.uninstall()
    if instruments is not None:
        instruments.close()


def _announce_later(ref: weakref.ref[MemoryManager]) -> None:
    """Tell of a change an admission reading found, after the tick that found it."""
    manager = ref()
    if manager is None:
        return
    with manager._tick_lock:
        if manager.initialized:
            manager._announce_change()


def _monitor(ref: weakref.ref[MemoryManager], stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        manager = ref()
        if manager is None or not manager.initialized:
            return
        try:
            manager.check_pressure()
        except Exception as error:  # noqa: BLE001 - the monitor must never die
            if not manager.initialized:   # shut down between the check above and the tick
                return
            _log.warning("otel_memory: monitoring tick failed: %s: %s", type(error).__name__, error)
        del manager
