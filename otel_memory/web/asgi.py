"""ASGI: the memory health app and the admission middleware.

``make_asgi_app(manager)`` serves ``/health/memory`` and ``/health/memory/leaks`` (and answers
the lifespan protocol, so it runs alone under uvicorn). ``ASGIAdmissionMiddleware(app,
manager)`` answers 503 with Retry-After instead of running the wrapped app while pressure is
critical (counted as admission point "asgi"), and records every HTTP request's duration in
``memory.request.duration`` with the pressure level it began at.

Example::

    app = ASGIAdmissionMiddleware(fastapi_app, manager)
    fastapi_app.mount("/health", make_asgi_app(manager, health_path="/memory",
                                               leaks_path="/memory/leaks"))
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from .admission import DEFAULT_EXEMPT_PATHS, AdmissionGate
from .health import HEALTH_PATH, LEAKS_PATH, HealthRoutes, HttpAnswer

if TYPE_CHECKING:
    from ..manager import MemoryManager

ADMISSION_ASGI = "asgi"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _send(answer: HttpAnswer, send: Send, method: str) -> None:
    await send({"type": "http.response.start", "status": answer.status,
                "headers": [(name.encode(), value.encode()) for name, value in answer.headers]})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else answer.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def make_asgi_app(manager: MemoryManager, *, health_path: str = HEALTH_PATH,
                  leaks_path: str = LEAKS_PATH) -> ASGIApp:
    """An ASGI app serving the health JSON and the latest leak report."""
    routes = HealthRoutes(manager, health_path=health_path, leaks_path=leaks_path)

    async def health_app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "http":
            method = str(scope.get("method", ""))
            path = str(scope.get("path", "")) or "/"
            await _send(routes.answer(method, path), send, method)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    return health_app


class ASGIAdmissionMiddleware:
    """Refuses requests at critical pressure and times every request; see the module docstring.

    Example::

        app = ASGIAdmissionMiddleware(app, manager, exempt_paths=("/health/memory", "/metrics"))
    """

    def __init__(self, app: ASGIApp, manager: MemoryManager, *, retry_after_s: int = 5,
                 exempt_paths: Iterable[str] = DEFAULT_EXEMPT_PATHS) -> None:
        if not callable(app):
            raise TypeError(f"app={app!r} is not an ASGI application (not callable)")
        self.app = app
        self.gate = AdmissionGate(manager, point=ADMISSION_ASGI, retry_after_s=retry_after_s,
                                  exempt_paths=exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        level, refusal = self.gate.enter(str(scope.get("path", "")) or "/")
        if refusal is not None:
            self.gate.record(level, refusal.status, started)
            await _send(refusal, send, str(scope.get("method", "")))
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.gate.record(level, status, started)


__all__ = ["ADMISSION_ASGI", "ASGIAdmissionMiddleware", "make_asgi_app"]
