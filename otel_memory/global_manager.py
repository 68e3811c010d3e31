"""The process-wide MemoryManager that ``otel_memory.instrument()`` starts and stops.

Application code calls ``instrument()``; auto-instrumentation reaches the same functions
through ``MemoryInstrumentor`` (``instrumentor.py``), which alone needs
opentelemetry-instrumentation loaded.

Example::

    import otel_memory

    manager = otel_memory.instrument()          # MemoryManagementConfig.from_env()
    ...
    otel_memory.uninstrument()
"""

from __future__ import annotations

from opentelemetry import metrics, trace

from .config import MemoryManagementConfig
from .forking import ProcessLock
from .manager import MemoryManager

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
