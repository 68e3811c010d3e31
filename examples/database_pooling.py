"""Database pooling with otel_memory: a DatabaseConnectionPool, an instrumented psycopg_pool and
the metrics both export.

Run against a PostgreSQL you can reach:

    OTEL_MEMORY_EXAMPLE_DSN="host=127.0.0.1 port=5432 user=postgres dbname=postgres" \\
        .venv/bin/python examples/database_pooling.py

Without OTEL_MEMORY_EXAMPLE_DSN it says what it needs and exits 0. Finishes in a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.integration import DatabaseConnectionPool, instrument_psycopg_pool


def show(reader: InMemoryMetricReader, title: str) -> None:
    """Print the pool metrics of one collection, one line per point."""
    print(f"--- {title}")
    data = reader.get_metrics_data()
    if data is None:
        return
    wanted = {spec.name for spec in catalog.in_group(catalog.Group.POOL, catalog.Group.DB)}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name not in wanted:
                    continue
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    shown = value if value is not None else f"count={point.count} sum={point.sum:.4f}s"
                    attributes = ", ".join(f"{k}={v}" for k, v in sorted(point.attributes.items()))
                    print(f"{metric.name:<42} {attributes:<60} {shown}")


def main() -> int:
    dsn = os.environ.get("OTEL_MEMORY_EXAMPLE_DSN")
    if not dsn:
        print("Set OTEL_MEMORY_EXAMPLE_DSN to a PostgreSQL connection string to run this example,\n"
              "e.g. OTEL_MEMORY_EXAMPLE_DSN='host=127.0.0.1 port=5432 user=postgres dbname=postgres'.")
        return 0
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])

    # 1. Our pool: sync and asyncio connections, health-checked, with both metric families.
    db = DatabaseConnectionPool(4, dsn, name="example_db", timeout=5.0, meter_provider=provider,
                                connect_kwargs={"connect_timeout": 5})

    def worker(n: int) -> None:
        for _ in range(5):
            with db.get_connection() as conn:
                conn.execute("SELECT pg_sleep(0.01), %s", (n,))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def async_queries() -> None:
        async def one(n: int) -> None:
            async with db.get_connection() as conn:
                await conn.execute("SELECT %s", (n,))

        await asyncio.gather(*(one(n) for n in range(10)))
        await db.aclose()

    asyncio.run(async_queries())
    print(db, db.stats())

    # 2. A psycopg_pool you already have: same db.client.connection.* metrics.
    import psycopg_pool

    existing = psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=2, open=False, name="legacy_pool")
    instrument_psycopg_pool(existing, meter_provider=provider)
    existing.open(wait=True, timeout=10)
    with existing.connection() as conn:
        conn.execute("SELECT 1")
    show(reader, "metrics")
    existing.close()
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
