"""The ASGI app run by uvicorn in the e2e tests: health endpoints and a memory-hungry route
behind admission control. Each uvicorn worker imports this module, so each sets itself up.

GET /hold?mb=N&seconds=S holds N MB for S seconds, as a request that needs memory would.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import parse_qs

from otel_memory.web import ASGIAdmissionMiddleware, make_asgi_app
from otel_memory.workers import init_worker

MB = 1024 * 1024

telemetry = init_worker()
health = make_asgi_app(telemetry.manager)


async def respond(send: Any, status: int, document: dict[str, Any]) -> None:
    body = json.dumps(document).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def routes(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http" or scope["path"].startswith("/health/"):
        await health(scope, receive, send)
    elif scope["path"] == "/whoami":
        await respond(send, 200, {"pid": os.getpid(), "instance_id": telemetry.instance_id})
    elif scope["path"] == "/hold":
        query = parse_qs(scope.get("query_string", b"").decode())
        ballast = b"\x01" * (int(query["mb"][0]) * MB)  # touched pages: real RSS
        await asyncio.sleep(float(query["seconds"][0]))
        await respond(send, 200, {"held_mb": len(ballast) // MB})
    else:
        await respond(send, 404, {"error": "unknown path"})


app = ASGIAdmissionMiddleware(routes, telemetry.manager)
