"""HttpClientPool without a server: configuration, lending and closing clients.

Requests against a real server are in tests/e2e/test_http_pools.py."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.config import MemoryManagementConfig
from otel_memory.integration import HttpClientPool


async def test_sync_and_async_clients_and_close(meter_provider: MeterProvider) -> None:
    config = MemoryManagementConfig.from_env({"MEMORY_HTTP_POOL_SIZE": "4"})
    http = HttpClientPool.from_config(config, base_url="http://127.0.0.1:1", meter_provider=meter_provider)
    assert http.size == 4
    with http.get_client() as client:
        assert isinstance(client, httpx.Client)
        assert str(client.base_url) == "http://127.0.0.1:1"
    async with http.get_client() as aclient:
        assert isinstance(aclient, httpx.AsyncClient)
    assert http.async_pool.name == "http.async"
    await http.aclose()
    assert client.is_closed and aclient.is_closed  # idle clients are closed with the pool


def test_for_manager_sizes_from_config_and_yields_under_pressure(meter_provider: MeterProvider) -> None:
    from otel_memory.manager import MemoryManager
    from otel_memory.pressure import MemoryPressure

    manager = MemoryManager(MemoryManagementConfig(http_client_pool_size=3), meter_provider=meter_provider)
    http = HttpClientPool.for_manager(manager, base_url="http://127.0.0.1:1")
    assert http.size == 3 and http.pool in manager.responders()
    with http.get_client() as first, http.get_client() as second:
        pass
    assert http.stats().idle == 2
    for responder in manager.responders():
        responder.respond_to_pressure(MemoryPressure.CRITICAL)
    assert http.stats().idle == 0 and http.stats().destroyed_by("pressure") == 2
    assert first.is_closed and second.is_closed
