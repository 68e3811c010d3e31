"""Web integration: the memory health endpoints and admission control for WSGI and ASGI servers.

Example::

    from otel_memory.web import ASGIAdmissionMiddleware, health_status, make_asgi_app

    app = ASGIAdmissionMiddleware(app, manager)       # 503 + Retry-After at critical pressure
    health_status(manager)["status"]                   # 'healthy'
"""

from .asgi import ASGIAdmissionMiddleware, make_asgi_app
from .health import HEALTH_PATH, LEAKS_PATH, health_http_status, health_status, leak_report
from .wsgi import WSGIAdmissionMiddleware, make_wsgi_app

__all__ = [
    "HEALTH_PATH",
    "LEAKS_PATH",
    "ASGIAdmissionMiddleware",
    "WSGIAdmissionMiddleware",
    "health_http_status",
    "health_status",
    "leak_report",
    "make_asgi_app",
    "make_wsgi_app",
]
