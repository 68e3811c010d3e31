"""Pool metrics: exported through a real SDK MeterProvider, they match the pool's real state."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.errors import PoolTimeout
from otel_memory.pool import ObjectPool
from tests.conftest import collect, points


def pool_value(metrics: dict[str, Any], spec: catalog.MetricSpec, pool: str) -> Any:
    found = [v for v, attrs in points(metrics, spec.name) if attrs.get(catalog.ATTR_POOL_NAME) == pool]
    assert len(found) == 1, (spec.name, pool, points(metrics, spec.name))
    return found[0]


def test_gauges_and_counters_follow_the_pool(meter_provider: MeterProvider,
                                             reader: InMemoryMetricReader) -> None:
    pool = ObjectPool("gauged", lambda: bytearray(8), 3, meter_provider=meter_provider, timeout=5.0)
    held = [pool.acquire() for _ in range(3)]
    held[2].release()
    got = collect(reader)
    expected = {catalog.MEMORY_POOL_SIZE: 3, catalog.MEMORY_POOL_BORROWED: 2, catalog.MEMORY_POOL_IDLE: 1,
                catalog.MEMORY_POOL_MAX: 3, catalog.MEMORY_POOL_BORROWS: 3, catalog.MEMORY_POOL_CREATED: 3,
                catalog.MEMORY_POOL_PENDING_REQUESTS: 0}
    for spec, want in expected.items():
        assert pool_value(got, spec, "gauged") == want, spec.name

    extra = pool.acquire()
    waiter_done = threading.Event()

    def wait_for_one() -> None:
        with pool.borrow():
            waiter_done.set()

    thread = threading.Thread(target=wait_for_one)
    thread.start()
    deadline = time.monotonic() + 5
    while pool.stats().pending_requests != 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    got = collect(reader)
    assert pool_value(got, catalog.MEMORY_POOL_PENDING_REQUESTS, "gauged") == 1
    assert pool_value(got, catalog.MEMORY_POOL_BORROWED, "gauged") == 3
    time.sleep(0.02)
    extra.release()
    thread.join()
    assert waiter_done.is_set()
    last = pool.acquire()  # all three lent now
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0.01)
    for handle in held[:2]:
        handle.discard()
    last.release()
    pool.close()
    got = collect(reader)
    assert pool_value(got, catalog.MEMORY_POOL_TIMEOUTS, "gauged") == 1
    assert pool_value(got, catalog.MEMORY_POOL_BORROWS, "gauged") == 6
    destroyed = {attrs[catalog.ATTR_POOL_DESTROY_REASON]: v
                 for v, attrs in points(got, catalog.MEMORY_POOL_DESTROYED.name)
                 if attrs[catalog.ATTR_POOL_NAME] == "gauged"}
    assert destroyed == {"health_check": 0, "max_lifetime": 0, "idle_timeout": 0, "pressure": 0,
                         "discarded": 2, "closed": 1}
    assert pool_value(got, catalog.MEMORY_POOL_SIZE, "gauged") == 0
    # one borrow waited and got an object (>= 20 ms); the timed-out one is counted as a timeout
    wait = got[catalog.MEMORY_POOL_WAIT_TIME.name].data.data_points
    mine = [p for p in wait if p.attributes[catalog.ATTR_POOL_NAME] == "gauged"]
    assert len(mine) == 1 and mine[0].count == 1
    assert mine[0].sum >= 0.02
    create = got[catalog.MEMORY_POOL_CREATE_TIME.name].data.data_points
    assert [p.count for p in create if p.attributes[catalog.ATTR_POOL_NAME] == "gauged"] == [3]
    assert catalog.MEMORY_POOL_USE_TIME.name not in got  # not enabled


def test_two_pools_on_one_provider_are_both_exported_and_use_time_when_enabled(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    first = ObjectPool("first", list, 2, meter_provider=meter_provider)
    second = ObjectPool("second", list, 5, meter_provider=meter_provider, measure_use_time=True)
    with first.borrow(), second.borrow():
        time.sleep(0.01)
    got = collect(reader)
    assert pool_value(got, catalog.MEMORY_POOL_MAX, "first") == 2
    assert pool_value(got, catalog.MEMORY_POOL_MAX, "second") == 5
    use = [p for p in got[catalog.MEMORY_POOL_USE_TIME.name].data.data_points]
    assert [(p.attributes[catalog.ATTR_POOL_NAME], p.count) for p in use] == [("second", 1)]
    assert use[0].sum >= 0.01


def test_db_pools_also_export_the_semantic_convention_metrics(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    pool = ObjectPool("conns", list, 4, min_idle=1, meter_provider=meter_provider, db_metrics=True)
    held = pool.acquire()
    with pool.borrow():
        pass
    got = collect(reader)
    counts = {attrs[catalog.ATTR_DB_STATE]: v for v, attrs in
              points(got, catalog.DB_CLIENT_CONNECTION_COUNT.name)
              if attrs[catalog.ATTR_DB_POOL_NAME] == "conns"}
    assert counts == {"idle": 1, "used": 1}

    def db_value(spec: catalog.MetricSpec) -> Any:
        return [v for v, attrs in points(got, spec.name) if attrs[catalog.ATTR_DB_POOL_NAME] == "conns"]

    assert db_value(catalog.DB_CLIENT_CONNECTION_MAX) == [4]
    assert db_value(catalog.DB_CLIENT_CONNECTION_IDLE_MAX) == [4]
    assert db_value(catalog.DB_CLIENT_CONNECTION_IDLE_MIN) == [1]
    assert db_value(catalog.DB_CLIENT_CONNECTION_PENDING_REQUESTS) == [0]
    assert db_value(catalog.DB_CLIENT_CONNECTION_TIMEOUTS) == [0]
    assert db_value(catalog.DB_CLIENT_CONNECTION_WAIT_TIME) == [2]  # every borrow, waited or not
    assert db_value(catalog.DB_CLIENT_CONNECTION_CREATE_TIME) == [2]
    assert db_value(catalog.DB_CLIENT_CONNECTION_USE_TIME) == [1]
    held.release()



def test_a_pool_whose_stats_fail_is_left_out_alone(
        meter_provider: MeterProvider, reader: InMemoryMetricReader,
        caplog: pytest.LogCaptureFixture) -> None:
    from otel_memory.integration.instrument_db import Instrumentation

    def broken() -> tuple[int, int, int, int, int, int]:
        raise RuntimeError("the adapted pool is closed")

    healthy = ObjectPool("healthy_db", list, 3, meter_provider=meter_provider, db_metrics=True)
    failing = Instrumentation("failing_db", broken, meter_provider)
    for _ in range(2):
        got = collect(reader)
        names = {attrs[catalog.ATTR_DB_POOL_NAME]
                 for _, attrs in points(got, catalog.DB_CLIENT_CONNECTION_MAX.name)}
        assert "healthy_db" in names and "failing_db" not in names
    warned = [r for r in caplog.records if "failing_db" in r.getMessage()]
    assert len(warned) == 1 and "RuntimeError" in warned[0].getMessage()
    failing.uninstrument()
    healthy.close()


def test_two_live_pools_with_one_name_are_warned_about(meter_provider: MeterProvider,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    first = ObjectPool("twin", list, 1, meter_provider=meter_provider)
    assert not [r for r in caplog.records if "'twin'" in r.getMessage()]
    second = ObjectPool("twin", list, 1, meter_provider=meter_provider)
    warned = [r.getMessage() for r in caplog.records if "'twin'" in r.getMessage()]
    assert len(warned) == 1 and "collide" in warned[0]
    first.close()
    second.close()


def test_child_forked_while_a_collection_held_the_lock_still_collects(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    import os
    import signal

    from otel_memory.pool.metrics import instruments_for

    pool = ObjectPool("forked_metrics", list, 2, meter_provider=meter_provider)
    shared = instruments_for(meter_provider)
    with shared._lock:  # as if the parent's reader thread were mid-collection at the fork
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                signal.alarm(5)  # a deadlock ends the child with SIGALRM
                with pool.borrow():
                    value = pool_value(collect(reader), catalog.MEMORY_POOL_BORROWED, "forked_metrics")
                code = 0 if value == 1 else 2
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    pool.close()
