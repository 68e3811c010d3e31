"""The memory health report and the routing shared by the WSGI and ASGI health apps.

``health_status(manager)`` is the original design's JSON: status healthy (LOW, MODERATE),
degraded (HIGH) or unhealthy (CRITICAL), memory_mb, peak_mb and pressure, plus the effective
limit and where it came from. It reveals no object contents, host paths or environment values.
``HealthRoutes`` answers GET/HEAD on the health path (HTTP 503 when unhealthy) and on the leak
report path (200 with ``{"status": "no report yet", "report": null}`` until the leak detector
has one); any other path is 404, any other method 405, each with a JSON error saying what was
expected.

Example::

    health_status(manager)
    # {'status': 'healthy', 'memory_mb': 84, 'peak_mb': 90, 'pressure': 'Low',
    #  'limit_mb': 512, 'limit_source': 'config', 'utilization_percent': 16.4}
    HealthRoutes(manager).answer("GET", "/health/memory").status    # 200
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import MB
from ..errors import error_summary
from ..pressure import MemoryPressure

if TYPE_CHECKING:
    from ..manager import MemoryManager

_log = logging.getLogger("otel_memory")

HEALTH_PATH = "/health/memory"
LEAKS_PATH = "/health/memory/leaks"
ALLOWED_METHODS = ("GET", "HEAD")

_STATUS = {MemoryPressure.LOW: "healthy", MemoryPressure.MODERATE: "healthy",
           MemoryPressure.HIGH: "degraded", MemoryPressure.CRITICAL: "unhealthy"}
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
            503: "Service Unavailable"}


def health_status(manager: MemoryManager) -> dict[str, Any]:
    """The health JSON of ``manager``; status "unknown" when it is not initialized."""
    if not manager.initialized:
        return {"status": "unknown", "memory_mb": None, "peak_mb": None, "pressure": None,
                "limit_mb": None, "limit_source": None, "utilization_percent": None}
    stats = manager.get_memory_stats()
    return {
        "status": _STATUS[stats.pressure],
        "memory_mb": stats.allocated_bytes // MB,
        "peak_mb": stats.peak_usage_bytes // MB,
        "pressure": stats.pressure.title,
        "limit_mb": stats.limit_bytes // MB,
        "limit_source": stats.limit_source,
        "utilization_percent": round(100.0 * stats.utilization, 1),
    }


def health_http_status(document: dict[str, Any]) -> int:
    """The HTTP status for a ``health_status`` document: 503 when unhealthy or unknown, else 200."""
    return 503 if document["status"] in ("unhealthy", "unknown") else 200


def leak_report(manager: MemoryManager) -> dict[str, Any]:
    """The latest leak report as JSON, or ``{"status": "no report yet", "report": None}``."""
    detector = manager.leak_detector
    report = detector.latest_report() if detector is not None else None
    if report is None:
        return {"status": "no report yet", "report": None}
    return {"status": "ok", "report": report.to_json_dict()}


@dataclass(frozen=True)
class HttpAnswer:
    """A complete HTTP answer: status code, headers and body.

    Example::

        HttpAnswer(404, (("content-type", "application/json"),), b'{"error": "..."}').status_line
        # '404 Not Found'
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def status_line(self) -> str:
        """The WSGI status string, e.g. "503 Service Unavailable"."""
        return f"{self.status} {_REASONS.get(self.status, '')}".rstrip()


def json_answer(status: int, document: dict[str, Any],
                extra_headers: tuple[tuple[str, str], ...] = ()) -> HttpAnswer:
    """An HttpAnswer with ``document`` as its JSON body, never cached."""
    body = json.dumps(document, sort_keys=True).encode()
    headers = (("content-type", "application/json"), ("content-length", str(len(body))),
               ("cache-control", "no-store"), *extra_headers)
    return HttpAnswer(status, headers, body)


class HealthRoutes:
    """Answers requests to the health and leak report paths of one manager.

    Example::

        routes = HealthRoutes(manager, health_path="/healthz/memory")
        routes.answer("POST", "/healthz/memory").status     # 405
    """

    def __init__(self, manager: MemoryManager, *, health_path: str = HEALTH_PATH,
                 leaks_path: str = LEAKS_PATH) -> None:
        for name, path in (("health_path", health_path), ("leaks_path", leaks_path)):
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"{name}={path!r}; expected a path starting with '/'")
        if health_path == leaks_path:
            raise ValueError(f"health_path and leaks_path are both {health_path!r}; expected two paths")
        self.manager = manager
        self.paths = (health_path, leaks_path)

    def answer(self, method: str, path: str) -> HttpAnswer:
        """The answer to ``method`` on ``path`` (for HEAD, the app sends the headers only)."""
        health_path = self.paths[0]
        if path not in self.paths:
            return json_answer(404, {"error": "unknown path", "expected": list(self.paths)})
        if method not in ALLOWED_METHODS:
            return json_answer(405, {"error": f"method {method[:16]!r} is not allowed",
                                     "expected": list(ALLOWED_METHODS)},
                               (("allow", ", ".join(ALLOWED_METHODS)),))
        try:
            if path == health_path:
                document = health_status(self.manager)
                return json_answer(health_http_status(document), document)
            return json_answer(200, leak_report(self.manager))
        except Exception as error:  # noqa: BLE001 - a health probe must answer, never crash the server
            _log.warning("otel_memory: %s could not be answered: %s", path, error_summary(error))
            return json_answer(500, {"error": "the memory report could not be produced"})


def rejection_answer(retry_after_s: int) -> HttpAnswer:
    """The 503 answer of admission control, with Retry-After."""
    return json_answer(503, {"error": "memory pressure is critical; retry later",
                             "retry_after_s": retry_after_s},
                       (("retry-after", str(retry_after_s)),))
