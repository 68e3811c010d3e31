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
  failed in the RECENT_FAILURE_S before exit, the flush may be queued behind that export's
  back-off (up to 5 s without a new warning), so it is given RECENT_GRACE_S only: a collector
  that is back answers within it.

A MeterProvider's shutdown takes a timeout, and its readers shut their exporters down within
it. A TracerProvider's takes none, and its BatchSpanProcessor joins a worker that may be in
the middle of an export's retries: its span exporters are shut down first (which ends their
back-off at once), found through the SDK's private ``_active_span_processor._span_processors``
(there is no public way to list them). Where that attribute is missing the provider's shutdown
still runs, in a helper thread waited on for at most ABANDON_WAIT_S; the SDK's own hook then
returns at once because the processors are already marked shut down.

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
#: The signals whose providers are watched, each with where its global provider is found.
METRICS = "metrics"
TRACES = "traces"
_GLOBAL_PROVIDERS: dict[str, Callable[[], object]] = {
    METRICS: metrics.get_meter_provider, TRACES: trace.get_tracer_provider}

_lock = threading.Lock()
_watched: weakref.WeakSet[Any] = weakref.WeakSet()
_watching_global: set[str] = set()


class _FailureWatch(logging.Filter):
    """Passes every record on unchanged; a warning or error sets the events it was given and
    ``failed_at`` (monotonic seconds)."""

    def __init__(self, *events: threading.Event) -> None:
        super().__init__()
        self.events = events
        self.failed_at = -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.failed_at = time.monotonic()
            for event in self.events:
                event.set()
        return True


#: Watches the export loggers from the first finish_at_exit() on: when did an export last fail?
_failures = _FailureWatch()


def finish_at_exit(provider: metrics.MeterProvider | trace.TracerProvider | None,
                   signal: str = METRICS) -> None:
    """At exit, run ``finish(provider)`` before the SDK's own exit hook (once per provider).

    None means the global provider of ``signal`` (METRICS or TRACES), looked up at exit.
    """
    if signal not in _GLOBAL_PROVIDERS:
        raise ValueError(f"signal={signal!r} is not known; expected one of {sorted(_GLOBAL_PROVIDERS)}")
    for logger in _export_loggers():
        logger.addFilter(_failures)   # once per logger: addFilter skips a filter already there
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
    recently_failed = time.monotonic() - _failures.failed_at < RECENT_FAILURE_S
    failed, done, settled = threading.Event(), threading.Event(), threading.Event()
    watch = _FailureWatch(failed, settled)
    loggers = _export_loggers()
    for logger in loggers:
        logger.addFilter(watch)

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


def _takes_timeout(shutdown: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(shutdown).parameters
    except (TypeError, ValueError):   # a builtin or a callable without a signature
        return False
    return "timeout_millis" in parameters


class _RepeatedShutdown(logging.Filter):
    """Drops the OTLP exporters' "already shutdown" warning: the provider's shutdown shuts
    down again the span exporters ``_abandon`` shut down first, and says so, once each."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Exporter already shutdown, ignoring call"


_repeated_shutdown = _RepeatedShutdown()


def _abandon(provider: object, shutdown: Callable[..., object]) -> None:
    """Shut ``provider`` down without waiting for its exporters' retries: its span exporters
    first (their back-off ends at once), then the provider, with FAILING_SHUTDOWN_MS when its
    shutdown takes a timeout, waited on for at most ABANDON_WAIT_S."""
    exporters = _span_exporters(provider)
    if exporters:   # the process is exiting: the filter stays
        for logger in _export_loggers():
            logger.addFilter(_repeated_shutdown)
    for exporter in exporters:
        try:
            exporter.shutdown()
        except Exception as error:  # noqa: BLE001 - the provider's own shutdown still follows
            _log.debug("otel_memory: a span exporter could not be shut down: %s", type(error).__name__)
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
