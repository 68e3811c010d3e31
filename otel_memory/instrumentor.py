"""``MemoryInstrumentor``: the auto-instrumentation entry point.

``opentelemetry-instrument python app.py`` finds MemoryInstrumentor through the
``opentelemetry_instrumentor`` entry point ``memory`` and calls it after the SDK is configured;
configuration then comes from the MEMORY_* environment variables. It starts the same
process-wide manager as ``otel_memory.instrument()`` (``global_manager.py``); this module is
apart because it needs opentelemetry-instrumentation's ``BaseInstrumentor`` (2.4 MB of
imports an application calling ``instrument()`` has no use for).

Example::

    MemoryInstrumentor().instrument(meter_provider=provider)
    MemoryInstrumentor().uninstrument()
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from .global_manager import instrument, uninstrument

_log = logging.getLogger("otel_memory")


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
