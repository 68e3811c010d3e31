"""Flask: a memory health view and admission control around the whole app.

Run: python examples/web_flask.py            (drives the app with an in-process client)
     python examples/web_flask.py --serve    (Flask's server on 127.0.0.1:8000)
Under gunicorn with several workers, see docs/workers.md.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
from flask import Flask, jsonify

from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.manager import MemoryManager
from otel_memory.web import WSGIAdmissionMiddleware, health_http_status, health_status, leak_report

manager = MemoryManager(MemoryManagementConfig(
    monitor_config=MemoryLimitConfig(max_heap_mb=1024), enable_leak_detection=False))
app = Flask(__name__)


@app.get("/health/memory")
def memory_health() -> Any:
    status = health_status(manager)
    return jsonify(status), health_http_status(status)


@app.get("/health/memory/leaks")
def memory_leaks() -> Any:
    return jsonify(leak_report(manager))


@app.get("/items/<int:item_id>")
def read_item(item_id: int) -> Any:
    return jsonify(item_id=item_id)


app.wsgi_app = WSGIAdmissionMiddleware(app.wsgi_app, manager)  # type: ignore[method-assign]


def demo() -> None:
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://example") as client:
        for path in ("/health/memory", "/health/memory/leaks", "/items/7"):
            answer = client.get(path)
            print(path, answer.status_code, answer.json())
        print("POST /health/memory", client.post("/health/memory").status_code)


if __name__ == "__main__":
    manager.initialize()
    try:
        if "--serve" in sys.argv:
            app.run(host="127.0.0.1", port=8000)
        else:
            demo()
    finally:
        manager.shutdown()
