"""WSGI: the memory health app and the admission middleware.

``make_wsgi_app(manager)`` serves ``/health/memory`` and ``/health/memory/leaks``.
``WSGIAdmissionMiddleware(app, manager)`` answers 503 with Retry-After instead of running the
wrapped app while pressure is critical (counted as admission point "wsgi"), and records every
request's duration in ``memory.request.duration`` with the pressure level it began at.

Example::

    application = WSGIAdmissionMiddleware(flask_app.wsgi_app, manager)
    # mounted at /health by a dispatcher, which moves /health from PATH_INFO to SCRIPT_NAME:
    health = make_wsgi_app(manager, health_path="/memory", leaks_path="/memory/leaks")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .admission import DEFAULT_EXEMPT_PATHS, AdmissionGate
from .health import HEALTH_PATH, LEAKS_PATH, HealthRoutes, HttpAnswer

if TYPE_CHECKING:
    from ..manager import MemoryManager

ADMISSION_WSGI = "wsgi"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _send(answer: HttpAnswer, start_response: StartResponse, method: str) -> list[bytes]:
    start_response(answer.status_line, list(answer.headers))
    return [] if method == "HEAD" else [answer.body]


def make_wsgi_app(manager: MemoryManager, *, health_path: str = HEALTH_PATH,
                  leaks_path: str = LEAKS_PATH) -> WSGIApp:
    """A WSGI app serving the health JSON and the latest leak report."""
    routes = HealthRoutes(manager, health_path=health_path, leaks_path=leaks_path)

    def health_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", ""))
        path = str(environ.get("PATH_INFO", "")) or "/"
        return _send(routes.answer(method, path), start_response, method)

    return health_app


class WSGIAdmissionMiddleware:
    """Refuses requests at critical pressure and times every request; see the module docstring.

    Example::

        app = WSGIAdmissionMiddleware(app, manager, retry_after_s=10)
    """

    def __init__(self, app: WSGIApp, manager: MemoryManager, *, retry_after_s: int = 5,
                 exempt_paths: Iterable[str] = DEFAULT_EXEMPT_PATHS) -> None:
        if not callable(app):
            raise TypeError(f"app={app!r} is not a WSGI application (not callable)")
        self.app = app
        self.gate = AdmissionGate(manager, point=ADMISSION_WSGI, retry_after_s=retry_after_s,
                                  exempt_paths=exempt_paths)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        level, refusal = self.gate.enter(str(environ.get("PATH_INFO", "")) or "/")
        if refusal is not None:
            self.gate.record(level, refusal.status, started)
            return _send(refusal, start_response, str(environ.get("REQUEST_METHOD", "")))
        status = [500]

        def capture(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            try:
                status[0] = int(status_line.split(" ", 1)[0])
            except ValueError:
                status[0] = 500
            return start_response(status_line, headers, exc_info)

        try:
            body = self.app(environ, capture)
        except BaseException:
            self.gate.record(level, 500, started)
            raise
        return _TimedBody(body, lambda: self.gate.record(level, status[0], started))


class _TimedBody:
    """The wrapped app's body; records the duration when the server closes it."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close: Callable[[], None] | None = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()


__all__ = ["ADMISSION_WSGI", "WSGIAdmissionMiddleware", "make_wsgi_app"]
