"""The last export at interpreter exit: sent when the exporter answers, never waited on when not.

The SDK's MeterProvider exports once more at exit (its own atexit hook), and an OTLP exporter
whose collector is down retries that export with back-off for most of its timeout (about 7 of
OTEL_EXPORTER_OTLP_TIMEOUT's 10 s) before the process may end. With no instrumentation the
SDK has nothing to export and exits at once; our metrics (a GC pause histogram, once recorded,
is in every later export) would make each exit of an app without a collector seconds longer.

So a MemoryManager registers, once per MeterProvider, a hook that runs before the SDK's
(atexit runs the last registered first). It flushes the provider in a helper thread and watches
the SDK's and exporters' log records for a warning or error:

- the flush ends first: the exporters answered, our last values went out; the SDK's own exit
  export follows as it always does;
- an export fails or is retried first: the collector is not there. The provider is shut down
  with a short timeout, which makes its exporters abandon their retries, and the SDK's hook
  finds nothing left to do. One warning says so.
- neither, for as long as the SDK itself would wait (30 s): treated as failing.

Providers without ``force_flush`` and ``shutdown`` (the API's no-op and proxy providers) and
providers the application already shut down are left alone.

Example::

    finish_at_exit(meter_provider)     # MemoryManager.initialize() does this
    finish(meter_provider)             # what the hook runs: 'exported' or 'abandoned'
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import Any

from opentelemetry import metrics

_log = logging.getLogger("otel_memory")

#: How long the SDK's own exit hook may take (MeterProvider.shutdown's default timeout).
SDK_SHUTDOWN_S = 30.0
#: The shutdown timeout once an export failed: enough for readers with nothing left to send.
FAILING_SHUTDOWN_MS = 250
#: Logger name prefixes of the SDK's export loops and of the exporters.
EXPORT_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk")

_lock = threading.Lock()
_watched: weakref.WeakSet[Any] = weakref.WeakSet()
_watching_global = False


def finish_at_exit(provider: metrics.MeterProvider | None) -> None:
    """At exit, run ``finish(provider)`` before the SDK's own exit hook (once per provider).

    None means the global provider, looked up at exit.
    """
    global _watching_global
    with _lock:
        if provider is None:
            if _watching_global:
                return
            _watching_global = True
            atexit.register(_at_exit, None)
            return
        try:
            if provider in _watched:
                return
            _watched.add(provider)
        except TypeError:   # not weakly referenceable: watched for the whole process
            atexit.register(_at_exit, lambda: provider)
            return
        atexit.register(_at_exit, weakref.ref(provider))


def _at_exit(ref: Any) -> None:
    provider = metrics.get_meter_provider() if ref is None else ref()
    if provider is None:
        return
    try:
        finish(provider)
    except Exception as error:  # noqa: BLE001 - the process is exiting; never stop it here
        _log.debug("otel_memory: the exit export could not be checked: %s", type(error).__name__)


class _FailureWatch(logging.Filter):
    """Passes every record on unchanged; a warning or error sets the events it was given."""

    def __init__(self, *events: threading.Event) -> None:
        super().__init__()
        self.events = events

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            for event in self.events:
                event.set()
        return True


def _export_loggers() -> list[logging.Logger]:
    """The loggers of the SDK and the exporters this process has imported."""
    names = [name for name, logger in list(logging.Logger.manager.loggerDict.items())
             if name.startswith(EXPORT_LOGGERS) and isinstance(logger, logging.Logger)]
    return [logging.getLogger(name) for name in names]


def finish(provider: object, *, wait_s: float = SDK_SHUTDOWN_S) -> str:
    """Flush ``provider``; shut it down without waiting for retries when an export fails.

    Returns ``exported`` (the flush ended with no warning), ``abandoned`` (shut down after a
    failing or endless export) or ``skipped`` (nothing to do).
    """
    flush, shutdown = getattr(provider, "force_flush", None), getattr(provider, "shutdown", None)
    if not callable(flush) or not callable(shutdown) or getattr(provider, "_shutdown", False) is True:
        return "skipped"
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
        settled.wait(wait_s)
    finally:
        settled.set()
        for logger in loggers:
            logger.removeFilter(watch)
    if done.is_set() and not failed.is_set():
        return "exported"
    _log.warning("otel_memory: the last export at exit %s; shutting the meter provider down without "
                 "waiting for the exporter's retries", "failed" if failed.is_set() else "did not end")
    try:
        shutdown(timeout_millis=FAILING_SHUTDOWN_MS)
    except TypeError:   # a provider whose shutdown takes no timeout
        shutdown()
    return "abandoned"
