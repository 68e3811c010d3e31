"""instrument_sqlalchemy_engine / instrument_psycopg_pool report where the manager reports."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.integration import instrument_sqlalchemy_engine
from tests.conftest import collect, manager_with_limit, points, rss_mb


def test_the_managers_meter_provider_is_used_when_none_is_given(
        tmp_path: Path, meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    manager = manager_with_limit(rss_mb() * 4 + 200, meter_provider)
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        instrumentation = instrument_sqlalchemy_engine(engine, name="orders", memory_manager=manager)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        metrics = collect(reader)
        counts = points(metrics, catalog.DB_CLIENT_CONNECTION_COUNT.name)
        assert counts, "db.client.connection.count did not reach the manager's MeterProvider"
        assert {attributes[catalog.ATTR_DB_POOL_NAME] for _, attributes in counts} == {"orders"}
        assert points(metrics, catalog.DB_CLIENT_CONNECTION_USE_TIME.name)
        instrumentation.uninstrument()
    finally:
        engine.dispose()
        manager.shutdown()


def test_an_explicit_meter_provider_wins_over_the_managers(
        tmp_path: Path, meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    other_reader = InMemoryMetricReader()
    other = MeterProvider(metric_readers=[other_reader])
    manager = manager_with_limit(rss_mb() * 4 + 200, meter_provider)
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        instrument_sqlalchemy_engine(engine, name="explicit", meter_provider=other, memory_manager=manager)
        assert points(collect(other_reader), catalog.DB_CLIENT_CONNECTION_MAX.name)
        assert not points(collect(reader), catalog.DB_CLIENT_CONNECTION_MAX.name)
    finally:
        engine.dispose()
        manager.shutdown()
        other.shutdown()
