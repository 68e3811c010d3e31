"""HttpClientPool: httpx clients in an otel_memory pool, for threads and asyncio.

Each pooled client keeps its own keep-alive connections; the pool bounds how many clients
(and so sockets) exist, retires them after ``max_lifetime`` (DNS changes, server-side idle
closes) and exports ``memory.pool.*``. Closed clients are found on borrow and replaced.

Example::

    http = HttpClientPool(8, base_url="https://api.example.com", name="example_api")
    with http.get_client() as client:
        client.get("/health").raise_for_status()
    async with http.get_client() as aclient:
        await aclient.get("/health")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry import metrics

from ..config import MemoryManagementConfig
from ..pool import AsyncObjectPool, ObjectPool
from ._scope import BorrowScope, PoolPair, check_base_url, check_seconds, check_size

if TYPE_CHECKING:
    from ..manager import MemoryManager

__all__ = ["HttpClientPool"]


def _open(client: httpx.Client | httpx.AsyncClient) -> bool:
    return not client.is_closed


def _close(client: httpx.Client) -> None:
    client.close()


async def _aclose(client: httpx.AsyncClient) -> None:
    await client.aclose()


class HttpClientPool(PoolPair[httpx.Client, httpx.AsyncClient]):
    """A pool of httpx clients (sync and async pools are separate: ``<name>.async``).

    ``client_options`` go to ``httpx.Client`` / ``httpx.AsyncClient`` (headers, auth, limits...).

    Example::

        pool = HttpClientPool(4, base_url="http://127.0.0.1:8080", timeout=2.0)
        with pool.get_client() as client:
            client.post("/v1/items", json={"id": 1})
        pool.close()
    """

    def __init__(self, size: int, *, base_url: str = "", name: str = "http", timeout: float | None = 30.0,
                 request_timeout: float = 30.0, max_waiting: int | None = None,
                 max_lifetime: float | None = 300.0, idle_timeout: float | None = 120.0,
                 meter_provider: metrics.MeterProvider | None = None, manager: MemoryManager | None = None,
                 **client_options: Any) -> None:
        check_size("HttpClientPool", size)
        check_base_url("HttpClientPool", base_url, required=False)
        check_seconds("HttpClientPool", "request_timeout", request_timeout)
        self._client_options: dict[str, Any] = {"base_url": base_url, "timeout": request_timeout,
                                                **client_options}
        self._options: dict[str, Any] = {
            "timeout": timeout, "max_waiting": max_waiting, "max_lifetime": max_lifetime,
            "idle_timeout": idle_timeout,
            "meter_provider": meter_provider or (manager.meter_provider if manager else None)}
        super().__init__(name, size, manager, ObjectPool(
            name, self._make_client, size, health_check=_open, destroy=_close, **self._options))

    @classmethod
    def from_config(cls, config: MemoryManagementConfig, **options: Any) -> HttpClientPool:
        """A pool of ``config.http_client_pool_size`` (MEMORY_HTTP_POOL_SIZE) clients."""
        return cls(config.http_client_pool_size, **options)

    @classmethod
    def for_manager(cls, manager: MemoryManager, **options: Any) -> HttpClientPool:
        """A pool sized by the manager's config (MEMORY_HTTP_POOL_SIZE), reporting through its
        MeterProvider and releasing idle clients under its HIGH/CRITICAL pressure."""
        return cls(manager.config.http_client_pool_size, manager=manager, **options)

    def _make_client(self) -> httpx.Client:
        return httpx.Client(**self._client_options)

    def _make_async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(**self._client_options)

    def _make_async_pool(self) -> AsyncObjectPool[httpx.AsyncClient]:
        return AsyncObjectPool(f"{self.name}.async", self._make_async_client, self.size,
                               health_check=_open, destroy=_aclose, **self._options)

    def get_client(self, timeout: float | None = None) -> BorrowScope[httpx.Client, httpx.AsyncClient]:
        """``with`` lends an httpx.Client, ``async with`` an httpx.AsyncClient."""
        return self._scope(timeout)

    def __repr__(self) -> str:
        return f"<HttpClientPool {self.name!r} size={self.size}>"
