"""FastAPI: a memory health view, admission control and the pressure responder in the lifespan.

Run: python examples/web_fastapi.py            (drives the app with an in-process client)
     python examples/web_fastapi.py --serve    (uvicorn on 127.0.0.1:8000; Ctrl-C to stop)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.manager import MemoryManager
from otel_memory.response import MemoryPressureManager
from otel_memory.web import ASGIAdmissionMiddleware, health_http_status, health_status, leak_report

manager = MemoryManager(MemoryManagementConfig(
    monitor_config=MemoryLimitConfig(max_heap_mb=1024, monitoring_interval_ms=1000),
    enable_leak_detection=False))


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    manager.initialize()
    pressure = MemoryPressureManager(manager)
    responder = asyncio.create_task(pressure.monitor_and_respond())  # asyncio mode
    yield
    pressure.stop()
    await responder
    manager.shutdown()


api = FastAPI(lifespan=lifespan)


@api.get("/health/memory")
def memory_health() -> JSONResponse:
    status = health_status(manager)
    return JSONResponse(status, status_code=health_http_status(status))


@api.get("/health/memory/leaks")
def memory_leaks() -> JSONResponse:
    return JSONResponse(leak_report(manager))


@api.get("/items/{item_id}")
def read_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


app = ASGIAdmissionMiddleware(api, manager)  # 503 + Retry-After at critical pressure


async def demo() -> None:
    async with lifespan(api), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                base_url="http://example") as client:
        for path in ("/health/memory", "/health/memory/leaks", "/items/7"):
            answer = await client.get(path)
            print(path, answer.status_code, answer.json())
        print("POST /health/memory", (await client.post("/health/memory")).status_code)


if __name__ == "__main__":
    if "--serve" in sys.argv:
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=8000)
    else:
        asyncio.run(demo())
