"""The last export at interpreter exit: sent when the exporter answers, never waited on when not.

The SDK's MeterProvider and TracerProvider export once more at exit (their own atexit hooks),
and an OTLP exporter whose collector is down retries that export with back-off for most of its
timeout (about 7 of OTEL_EXPORTER_OTLP_TIMEOUT's 10 s) before the process may end. With no
instrumentation the SDK has nothing to export and exits at once; our metrics (a GC pause
histogram, once recorded, is in every later export) and the leak detector's spans would make
each exit of an app without a collector seconds longer.

So a MemoryManager registers, once per provider (its MeterProvider and its TracerProvider), a
hook that runs before the SDK's (atexit runs the last registered first). It flushes the
provider in a helper thread and watches the SDK's and exporters' log records for a warning or
error:

- the flush ends first: the exporters answered, our last values went out; the SDK's own exit
  export follows as it always does;
- an export fails or is retried first: the collector is not there. The provider's exporters
  are made to abandon their retries and the provider is shut down without waiting for them, so
  the SDK's hook finds nothing left to do. One warning says so.
- neither, for as long as the SDK itself would wait (30 s): treated as failing. When an export
  of the same signal failed in the RECENT_FAILURE_S before exit, the flush may be queued behind
  that export's back-off (up to 5 s without a new warning), so it is given RECENT_GRACE_S
  only: a collector that is back answers within it.

A MeterProvider's shutdown takes a timeout, and its readers shut their exporters down within
it. A TracerProvider's takes none, and its BatchSpanProcessor joins a worker that may be in
the middle of an export's retries: its span exporters are shut down first (which ends their
back-off at once), found through the SDK's private ``_active_span_processor._span_processors``
(there is no public way to list them). Where that attribute is missing the provider's shutdown
still runs, in a helper thread waited on for at most ABANDON_WAIT_S; the SDK's own hook then
returns at once because the processors are already marked shut down.

Spans can still end after our hook flushed their provider (a leak check in progress, the
application's own exit hooks), and the SDK's exit hooks export them. So from the first of our
hooks on, the first export of a signal that fails (an exporter's warning, or an error of the
SDK's export loops) shuts down that signal's exporters in every watched provider, in a helper
thread: the span processors' or the metric readers' (the readers' private ``_exporter``, the
provider's private ``_metric_readers``). An export in its back-off ends at once.

Which signal a record is about, its logger's name or the words of its message say
(``signal_of``); a record that names none counts for every signal, except what exporters say
when they are shut down (SHUTDOWN_MESSAGES), which is not a failure. A warning about metrics
does not make the tracer provider's hook abandon its spans, nor the other way round. Our
watches go first among the export loggers' filters: the SDK's duplicate filter and the rate
limiter of ``workers.limit_export_logs`` drop records a watch must still see.

Providers without ``force_flush`` and ``shutdown`` (the API's no-op and proxy providers) and
meter providers the application already shut down are left alone.

Example::

    finish_at_exit(meter_provider)               # MemoryManager.initialize() does this
    finish_at_exit(tracer_provider, TRACES)      # and this; None: the global provider at exit
    finish(meter_provider)                       # what the hook runs: 'exported' or 'abandoned'
"""

from __future__ import annotations

import atexit
import inspect
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics, trace

_log = logging.getLogger("otel_memory")

#: How long the SDK's own exit hook may take (MeterProvider.shutdown's default timeout).
SDK_SHUTDOWN_S = 30.0
#: The shutdown timeout once an export failed: enough for readers with nothing left to send.
FAILING_SHUTDOWN_MS = 250
#: The longest the hook waits for a failing provider's shutdown before the exit goes on.
ABANDON_WAIT_S = 1.0
#: How long after an export warning the export loops may still be retrying (the OTLP timeout).
RECENT_FAILURE_S = 10.0
#: How long the flush may take at exit after a recent export warning.
RECENT_GRACE_S = 1.0
#: Logger name prefixes of the SDK's export loops and of the exporters.
EXPORT_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk")
#: Logger name prefix of the exporters alone.
EXPORTER_LOGGER_PREFIX = "opentelemetry.exporter"
#: The OTLP exporters' warning when they are shut down a second time.
REPEATED_SHUTDOWN_MESSAGE = "Exporter already shutdown, ignoring call"
#: What exporters say when they were shut down: the end of a retry, not a failure.
SHUTDOWN_MESSAGES = frozenset({"Shutdown in progress, aborting retry.", REPEATED_SHUTDOWN_MESSAGE,
                               "Exporter already shutdown, ignoring batch"})
#: The signals whose providers are watched, each with where its global provider is found.
METRICS = "metrics"
TRACES = "traces"
LOGS = "logs"
#: The words of logger names and log arguments that name each signal.
_SIGNAL_WORDS = {METRICS: frozenset({"metric", "metrics"}),
                 TRACES: frozenset({"trace", "traces", "span", "spans"}),
                 LOGS: frozenset({"log", "logs"})}
_GLOBAL_PROVIDERS: dict[str, Callable[[], object]] = {
    METRICS: metrics.get_meter_provider, TRACES: trace.get_tracer_provider}

_lock = threading.Lock()
_watched: weakref.WeakSet[Any] = weakref.WeakSet()
_watching_global: set[str] = set()


class _FailureWatch(logging.Filter):
    """Passes every record on unchanged. A warning or error that is not an exporter's word on
    its own shutdown (and is about ``signal``'s exports, or about no signal in particular,
    when ``signal`` is given) sets the events it was given, notes when it came in
    ``failed_at`` (monotonic seconds by signal, None for no signal in particular) and calls
    ``on_failure``. Installed first among a logger's filters: the SDK's duplicate filter and
    our rate limiter drop records that must still count."""

    def __init__(self, *events: threading.Event, signal: str | None = None,
                 on_failure: Callable[[logging.LogRecord], None] | None = None) -> None:
        super().__init__()
        self.events = events
        self.signal = signal
        self.on_failure = on_failure
        self.failed_at: dict[str | None, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.msg in SHUTDOWN_MESSAGES:
            return True
        signal = signal_of(record)
        if self.signal is not None and signal not in (None, self.signal):
            return True
        self.failed_at[signal] = time.monotonic()
        for event in self.events:
            event.set()
        if self.on_failure is not None:
            self.on_failure(record)
        return True

    def last_failure(self, signal: str | None) -> float:
        """When an export of ``signal`` or of no signal in particular last failed (any
        signal's when ``signal`` is None); -inf when none did."""
        if signal is None:
            return max(self.failed_at.values(), default=-math.inf)
        return max(self.failed_at.get(signal, -math.inf), self.failed_at.get(None, -math.inf))


def _watch_first(logger: logging.Logger, watch: logging.Filter) -> None:
    """Put ``watch`` first among ``logger``'s filters (once): filters after one that drops a
    record never see it."""
    if watch not in logger.filters:
        logger.filters.insert(0, watch)


def signal_of(record: logging.LogRecord) -> str | None:
    """The signal (METRICS, TRACES, LOGS) an export record is about, as its logger's name or a
    word of its arguments says (the gRPC exporters share a logger and name their signal in the
    message: "... while exporting traces ..."); None when they name none, or several."""
    words = set(record.name.replace("_", ".").split("."))
    arguments = record.args if isinstance(record.args, tuple) else ()
    words.update(argument.lower() for argument in arguments if isinstance(argument, str))
    found = {signal for signal, names in _SIGNAL_WORDS.items() if words & names}
    return found.pop() if len(found) == 1 else None


class _ExitState:
    """Whether the exit hooks began, and the signals whose exporters' retries were ended since
    (None: every signal's)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.began = False
        self.retries_ended: set[str | None] = set()


_exit = _ExitState()


def _end_retries_if_exiting(record: logging.LogRecord) -> None:
    """Once an exit hook of ours ran, the first export of a signal that fails (an exporter's
    warning, or an error of the SDK's export loops) ends the retries of that signal's exporters
    in every watched provider, every signal's when the record names none (see the module's
    docstring). In a helper thread: an exporter's shutdown may wait for the very export that
    is logging."""
    if not (record.name.startswith(EXPORTER_LOGGER_PREFIX) or record.levelno >= logging.ERROR):
        return
    signal = signal_of(record)
    with _exit.lock:
        if not _exit.began or None in _exit.retries_ended or signal in _exit.retries_ended:
            return
        _exit.retries_ended.add(signal)
    threading.Thread(target=_shut_down_exporters, args=(signal,), name="otel-memory-exit-retries",
                     daemon=True).start()


#: Watches the export loggers from the first finish_at_exit() on: when did an export last fail?
_failures = _FailureWatch(on_failure=_end_retries_if_exiting)


def finish_at_exit(provider: metrics.MeterProvider | trace.TracerProvider | None,
                   signal: str = METRICS) -> None:
    """At exit, run ``finish(provider)`` before the SDK's own exit hook (once per provider).

    None means the global provider of ``signal`` (METRICS or TRACES), looked up at exit.
    """
    if signal not in _GLOBAL_PROVIDERS:
        raise ValueError(f"signal={signal!r} is not known; expected one of {sorted(_GLOBAL_PROVIDERS)}")
    for logger in _export_loggers():
        _watch_first(logger, _failures)
    with _lock:
        if provider is None:
            if signal in _watching_global:
                return
            _watching_global.add(signal)
            atexit.register(_at_exit, _GLOBAL_PROVIDERS[signal])
            return
        try:
            if provider in _watched:
                return
            _watched.add(provider)
        except TypeError:   # not weakly referenceable: watched for the whole process
            atexit.register(_at_exit, lambda: provider)
            return
        atexit.register(_at_exit, weakref.ref(provider))


def _at_exit(find: Callable[[], object]) -> None:
    """``find`` is a weak reference to the provider or the getter of a global provider."""
    with _exit.lock:
        _exit.began = True
    for logger in _export_loggers():   # exporters imported since finish_at_exit() too
        _watch_first(logger, _failures)
    provider = find()
    if provider is None:
        return
    try:
        finish(provider)
    except Exception as error:  # noqa: BLE001 - the process is exiting; never stop it here
        _log.debug("otel_memory: the exit export could not be checked: %s", type(error).__name__)


def _export_loggers() -> list[logging.Logger]:
    """The loggers of the SDK and the exporters this process has imported."""
    names = [name for name, logger in list(logging.Logger.manager.loggerDict.items())
             if name.startswith(EXPORT_LOGGERS) and isinstance(logger, logging.Logger)]
    return [logging.getLogger(name) for name in names]


def _signal(provider: object) -> str | None:
    if isinstance(provider, trace.TracerProvider):
        return TRACES
    if isinstance(provider, metrics.MeterProvider):
        return METRICS
    return None


def _kind(provider: object) -> str:
    if isinstance(provider, trace.TracerProvider):
        return "tracer provider"
    if isinstance(provider, metrics.MeterProvider):
        return "meter provider"
    return type(provider).__name__


def finish(provider: object, *, wait_s: float = SDK_SHUTDOWN_S) -> str:
    """Flush ``provider``; shut it down without waiting for retries when an export fails.

    Returns ``exported`` (the flush ended with no warning), ``abandoned`` (shut down after a
    failing or endless export) or ``skipped`` (nothing to do).
    """
    flush, shutdown = getattr(provider, "force_flush", None), getattr(provider, "shutdown", None)
    if not callable(flush) or not callable(shutdown) or getattr(provider, "_shutdown", False) is True:
        return "skipped"
    recently_failed = time.monotonic() - _failures.last_failure(_signal(provider)) < RECENT_FAILURE_S
    failed, done, settled = threading.Event(), threading.Event(), threading.Event()
    watch = _FailureWatch(failed, settled, signal=_signal(provider))
    loggers = _export_loggers()
    for logger in loggers:
        _watch_first(logger, watch)

    def flush_now() -> None:
        try:
            flush()
        except Exception:  # noqa: BLE001 - a reader that failed is an export that failed
            failed.set()
        finally:
            done.set()
            settled.set()

    try:
        threading.Thread(target=flush_now, name="otel-memory-exit-flush", daemon=True).start()
        settled.wait(min(wait_s, RECENT_GRACE_S) if recently_failed else wait_s)
    finally:
        settled.set()
        for logger in loggers:
            logger.removeFilter(watch)
    if done.is_set() and not failed.is_set():
        return "exported"
    _log.warning("otel_memory: the last export at exit %s; shutting the %s down without "
                 "waiting for the exporter's retries",
                 "failed" if failed.is_set() or recently_failed else "did not end",
                 _kind(provider))
    _abandon(provider, shutdown)
    return "abandoned"


def _span_exporters(provider: object) -> list[Any]:
    """The exporters of ``provider``'s span processors (BatchSpanProcessor and
    SimpleSpanProcessor have a ``span_exporter``); none for other providers.

    Reads the SDK's private ``_active_span_processor._span_processors``: there is no public way
    to list a TracerProvider's processors. Missing or of another shape, nothing is found.
    """
    processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())
    if not isinstance(processors, (tuple, list)):
        return []
    exporters = [getattr(processor, "span_exporter", None) for processor in processors]
    return [exporter for exporter in exporters if callable(getattr(exporter, "shutdown", None))]


def _metric_exporters(provider: object) -> list[Any]:
    """The exporters of ``provider``'s metric readers (PeriodicExportingMetricReader's private
    ``_exporter``; the SDK's private ``_metric_readers``); none for other providers."""
    readers = getattr(provider, "_metric_readers", ())
    if not isinstance(readers, (tuple, list)):
        return []
    exporters = [getattr(reader, "_exporter", None) for reader in readers]
    return [exporter for exporter in exporters if callable(getattr(exporter, "shutdown", None))]


def _shut_down_exporters(signal: str | None) -> None:
    """Shut down the exporters of ``signal`` (None: span and metric exporters) of every provider
    watched at exit: an export in its back-off ends at once, and the SDK's shutdown of the
    provider no longer waits for it."""
    with _lock:
        providers: list[object] = list(_watched)
        providers += [_GLOBAL_PROVIDERS[watched]() for watched in _watching_global]
    exporters = [*(exporter for provider in providers if signal in (None, TRACES)
                   for exporter in _span_exporters(provider)),
                 *(exporter for provider in providers if signal in (None, METRICS)
                   for exporter in _metric_exporters(provider))]
    if exporters:   # the exporter said it failed; a hook of ours says it abandons a provider
        _log.debug("otel_memory: an export of %s failed during the exit; ending the exporters' "
                   "retries", signal or "telemetry")
    _shut_down(exporters)


def _shut_down(exporters: list[Any]) -> None:
    """Shut ``exporters`` down; their providers' shutdown shuts them down again, unannounced."""
    if exporters:   # the process is exiting: the filter stays
        for logger in _export_loggers():
            logger.addFilter(_repeated_shutdown)
    for exporter in exporters:
        try:
            exporter.shutdown()
        except Exception as error:  # noqa: BLE001 - the provider's own shutdown still follows
            _log.debug("otel_memory: an exporter could not be shut down: %s", type(error).__name__)


def _takes_timeout(shutdown: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(shutdown).parameters
    except (TypeError, ValueError):   # a builtin or a callable without a signature
        return False
    return "timeout_millis" in parameters


class _RepeatedShutdown(logging.Filter):
    """Drops the OTLP exporters' "already shutdown" warning: the provider's shutdown shuts
    down again the exporters we shut down first, and says so, once each."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != REPEATED_SHUTDOWN_MESSAGE


_repeated_shutdown = _RepeatedShutdown()


def _abandon(provider: object, shutdown: Callable[..., object]) -> None:
    """Shut ``provider`` down without waiting for its exporters' retries: its span exporters
    first (their back-off ends at once), then the provider, with FAILING_SHUTDOWN_MS when its
    shutdown takes a timeout, waited on for at most ABANDON_WAIT_S."""
    _shut_down(_span_exporters(provider))
    options = {"timeout_millis": FAILING_SHUTDOWN_MS} if _takes_timeout(shutdown) else {}
    ended = threading.Event()

    def shut_down() -> None:
        try:
            shutdown(**options)
        except Exception as error:  # noqa: BLE001 - the process is exiting; never stop it here
            _log.debug("otel_memory: the %s did not shut down cleanly: %s", _kind(provider),
                       type(error).__name__)
        finally:
            ended.set()

    threading.Thread(target=shut_down, name="otel-memory-exit-shutdown", daemon=True).start()
    if not ended.wait(ABANDON_WAIT_S):
        _log.debug("otel_memory: the %s is still shutting down; the exit goes on", _kind(provider))
