"""Turning everything on: ``instrument()`` for code, ``MemoryInstrumentor`` for auto-instrumentation.

``opentelemetry-instrument python app.py`` finds MemoryInstrumentor through the
``opentelemetry_instrumentor`` entry point ``memory`` and calls it after the SDK is configured;
configuration then comes from the MEMORY_* environment variables.

Example::

    import otel_memory

    manager = otel_memory.instrument()          # MemoryManagementConfig.from_env()
    ...
    otel_memory.uninstrument()
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from .config import MemoryManagementConfig
from .forking import ProcessLock
from .manager import MemoryManager

_log = logging.getLogger("otel_memory")
# made anew in a forked child: a gunicorn post_fork hook calling init_worker() must not wait
# for a thread of the parent that was inside instrument() at the fork
_lock = ProcessLock()
_manager: MemoryManager | None = None


def instrument(
    *,
    config: MemoryManagementConfig | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> MemoryManager:
    """Start the process-wide MemoryManager (once) and return it.

    Without ``config`` the MEMORY_* environment is read. A second call returns the running
    manager unchanged.
    """
    global _manager
    with _lock:
        if _manager is not None and _manager.initialized:
            return _manager
        manager = MemoryManager(config or MemoryManagementConfig.from_env(),
                                meter_provider=meter_provider, tracer_provider=tracer_provider)
        manager.initialize()
        _manager = manager
        return manager


def uninstrument() -> None:
    """Stop the manager instrument() started and remove its callbacks and threads."""
    global _manager
    with _lock:
        manager, _manager = _manager, None
    if manager is not None:
        manager.shutdown()


def current_manager() -> MemoryManager | None:
    """The manager instrument() started, if it is running."""
    return _manager


class MemoryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """The auto-instrumentation entry point.

    Example::

        MemoryInstrumentor().instrument(meter_provider=provider)
        MemoryInstrumentor().uninstrument()
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        try:
            instrument(config=kwargs.get("config"), meter_provider=kwargs.get("meter_provider"),
                       tracer_provider=kwargs.get("tracer_provider"))
        except Exception as error:  # noqa: BLE001 - auto-instrumentation must never stop the app
            _log.error("otel_memory: not instrumented: %s: %s", type(error).__name__, error)

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()
