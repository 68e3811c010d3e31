"""Django: a memory health view and admission control around the WSGI application.

A single-file Django project. Run:
     python examples/web_django.py            (drives the app with an in-process client)
     python examples/web_django.py --serve    (wsgiref on 127.0.0.1:8000)
"""

from __future__ import annotations

import sys

import django
import httpx
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.manager import MemoryManager
from otel_memory.web import WSGIAdmissionMiddleware, health_http_status, health_status, leak_report

settings.configure(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["127.0.0.1", "localhost", "example"],
                   SECRET_KEY="example-only-not-secret", MIDDLEWARE=[])
django.setup()

manager = MemoryManager(MemoryManagementConfig(
    monitor_config=MemoryLimitConfig(max_heap_mb=1024), enable_leak_detection=False))


def memory_health(request: HttpRequest) -> JsonResponse:
    status = health_status(manager)
    return JsonResponse(status, status=health_http_status(status))


def memory_leaks(request: HttpRequest) -> JsonResponse:
    return JsonResponse(leak_report(manager))


def read_item(request: HttpRequest, item_id: int) -> JsonResponse:
    return JsonResponse({"item_id": item_id})


urlpatterns = [
    path("health/memory", memory_health),
    path("health/memory/leaks", memory_leaks),
    path("items/<int:item_id>", read_item),
]


def application_for_server() -> WSGIAdmissionMiddleware:
    from django.core.wsgi import get_wsgi_application

    return WSGIAdmissionMiddleware(get_wsgi_application(), manager)


def demo() -> None:
    with httpx.Client(transport=httpx.WSGITransport(app=application_for_server()),
                      base_url="http://example") as client:
        for url in ("/health/memory", "/health/memory/leaks", "/items/7"):
            answer = client.get(url)
            print(url, answer.status_code, answer.json())


if __name__ == "__main__":
    manager.initialize()
    try:
        if "--serve" in sys.argv:
            from wsgiref.simple_server import make_server

            make_server("127.0.0.1", 8000, application_for_server()).serve_forever()
        else:
            demo()
    finally:
        manager.shutdown()
