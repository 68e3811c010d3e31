"""Admission control and request timing shared by the WSGI and ASGI middleware.

Example::

    gate = AdmissionGate(manager, point="wsgi", retry_after_s=5, exempt_paths=("/health/memory",))
    level, refusal = gate.enter("/api/report")      # refusal is an HttpAnswer(503) at CRITICAL
    gate.record(level, 200, started)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import catalog as c
from ..errors import MemoryPressureRejected
from ..instruments import InstrumentSet, get_meter
from ..pressure import MemoryPressure
from .health import HEALTH_PATH, LEAKS_PATH, HttpAnswer, rejection_answer

if TYPE_CHECKING:
    from ..manager import MemoryManager

DEFAULT_EXEMPT_PATHS = (HEALTH_PATH, LEAKS_PATH)


class AdmissionGate:
    """Asks the manager to admit each request and records its duration by pressure level.

    Example::

        AdmissionGate(manager, point="asgi").enter("/")    # (MemoryPressure.LOW, None)
    """

    def __init__(self, manager: MemoryManager, *, point: str, retry_after_s: int = 5,
                 exempt_paths: Iterable[str] = DEFAULT_EXEMPT_PATHS) -> None:
        if isinstance(retry_after_s, bool) or not isinstance(retry_after_s, int) or retry_after_s < 1:
            raise ValueError(f"retry_after_s={retry_after_s!r}; expected a whole number of seconds >= 1")
        if isinstance(exempt_paths, str):
            raise TypeError(f"exempt_paths={exempt_paths!r} is one string; expected a collection of "
                            f"paths, e.g. ({exempt_paths!r},)")
        exempt = frozenset(exempt_paths)
        for path in exempt:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"exempt_paths holds {path!r}; expected paths starting with '/'")
        self.manager = manager
        self.point = point
        self.retry_after_s = retry_after_s
        self.exempt_paths = exempt
        self._refusal = rejection_answer(retry_after_s)
        self._duration = InstrumentSet(get_meter(manager.meter_provider)).histogram(
            c.MEMORY_REQUEST_DURATION)
        self._attributes: dict[tuple[MemoryPressure, int], dict[str, str | int]] = {}

    def enter(self, path: str) -> tuple[MemoryPressure, HttpAnswer | None]:
        """The level admission decided on, and the 503 answer when the request is refused."""
        if path in self.exempt_paths:
            return self.manager.get_memory_pressure(), None
        try:
            self.manager.admit(self.point)     # may read usage afresh and change the level
        except MemoryPressureRejected:
            return MemoryPressure.CRITICAL, self._refusal
        return self.manager.get_memory_pressure(), None

    def record(self, level: MemoryPressure, status: int, started: float) -> None:
        """Record one request's duration since ``started`` (a perf_counter reading)."""
        elapsed = time.perf_counter() - started
        attributes = self._attributes.get((level, status))
        if attributes is None:
            attributes = {c.ATTR_PRESSURE_STATE: level.state, c.ATTR_HTTP_STATUS_CODE: status}
            if len(self._attributes) < 256:  # bounded: status codes come from the app
                self._attributes[(level, status)] = attributes
        self._duration.record(elapsed, attributes)
