"""The WSGI app run by gunicorn in the e2e tests: health endpoints behind admission control.

gunicorn's post_fork hook (gunicorn_conf.py) has already set up this worker's telemetry when
the worker imports this module (the pattern of docs/workers.md; this server needs the telemetry,
so it refuses to boot without it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from otel_memory.web import WSGIAdmissionMiddleware, make_wsgi_app
from otel_memory.workers import current_worker

telemetry = current_worker()
if telemetry is None:
    raise RuntimeError("the post_fork hook did not set up this worker's telemetry (see its warning)")
health = make_wsgi_app(telemetry.manager)


def routes(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ.get("PATH_INFO", "").startswith("/health/"):
        return health(environ, start_response)
    if environ.get("PATH_INFO") == "/whoami":
        body = json.dumps({"pid": os.getpid(), "instance_id": telemetry.instance_id}).encode()
        start_response("200 OK", [("content-type", "application/json")])
        return [body]
    start_response("404 Not Found", [("content-type", "text/plain")])
    return [b"not found"]


application = WSGIAdmissionMiddleware(routes, telemetry.manager)
