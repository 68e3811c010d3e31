"""The instrumented app of the Prometheus end-to-end test: every capability, exported to Prometheus.

Run as ``python -m tests.e2e.prometheus_app``; it prints one JSON line (the metrics port and
facts about this host) and runs until stdin closes or SIGTERM. Its memory limit is 1.5 times
its starting RSS; after about two seconds a ballast of one RSS takes usage past the critical
threshold, so pressure goes from MODERATE to CRITICAL and the pressure alerts fire. It exercises a contended
object pool (waits, timeouts, rejections, a failing factory, a failing health check, a leaked
borrow), a pool with database connection metrics, a SmartCache with a loader, the WSGI
admission middleware over a real HTTP server, and a deliberate leak for the leak detector.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server

from otel_memory.cache import SmartCache
from otel_memory.config import MB, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.errors import CacheRefused
from otel_memory.manager import MemoryManager
from otel_memory.probes import read_psi_totals, read_statm
from otel_memory.response import MemoryPressureManager
from otel_memory.web import WSGIAdmissionMiddleware

SERVICE = "otel-memory-e2e"
# Rounds of the workload (about 20 a second) before a ballast of one RSS takes usage from
# about 2/3 of the limit (moderate pressure) past its critical threshold.
BALLAST_AFTER_ROUNDS = 40


class LeakedRecord:
    """What the deliberate leak accumulates."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Cycle:
    """Cyclic garbage for the collector to time and free."""

    def __init__(self, size: int = 0) -> None:
        self.me = self
        self.buffer = bytes(size)


_LEAKED: list[LeakedRecord] = []


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def _flaky_factory() -> bytearray:
    count = next(_FACTORY_CALLS)
    if count % 3 == 2:
        raise OSError("the e2e factory fails every third call")
    return bytearray(1024)


_FACTORY_CALLS = itertools.count()


def _borrower(pool: Any, hold_s: float, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with pool.borrow() as item:
                item[0:1] = b"x"
                stop.wait(hold_s)
        except Exception:  # noqa: BLE001 - timeouts, rejections and factory errors are the point
            stop.wait(0.005)


def _workload(manager: MemoryManager, url: str, ballast_bytes: int, stop: threading.Event) -> None:
    cache: SmartCache[int, bytes] = SmartCache(manager, 1000, 50, 300, name="e2e_cache")
    small: SmartCache[int, bytes] = SmartCache(manager, 20, 1, 300, name="e2e_small_cache")
    keys = itertools.count()
    while not stop.is_set():
        key = next(keys)
        if key == BALLAST_AFTER_ROUNDS:
            _LEAKED.append(LeakedRecord(b"x" * ballast_bytes))
        for target in (cache, small):
            if target.get(key % 50) is None:
                with contextlib.suppress(CacheRefused):  # while pressure is critical
                    target.insert(key % 50, os.urandom(256))
        try:
            cache.get_or_load(1000 + key % 40, lambda k: os.urandom(128))
            cache.get_or_load(5000 + key, _failing_loader)
        except LookupError:
            pass
        with contextlib.suppress(urllib.error.HTTPError):  # 503 while pressure is critical
            urllib.request.urlopen(f"{url}/work", timeout=2).read()
        _LEAKED.extend(LeakedRecord(os.urandom(64)) for _ in range(300))
        for _ in range(200):
            Cycle()
        Cycle(256 * 1024)
        stop.wait(0.05)


def _psi_readable() -> bool:
    try:
        read_psi_totals("/proc/pressure/memory")
    except (OSError, ValueError):
        return False
    return True


def _failing_loader(key: int) -> bytes:
    raise LookupError(f"no value for {key}")


def main() -> None:
    rss_mb = read_statm("/proc/self/statm")[0] / MB
    reader = PrometheusMetricReader()
    resource = Resource.create({"service.name": SERVICE, "service.instance.id": str(uuid.uuid4())})
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    server, _thread = start_http_server(0, addr="127.0.0.1")
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=round(rss_mb * 1.5, 1), monitoring_interval_ms=200),
        leak_detection_interval_s=1, enable_uss=True, enable_tracemalloc=True, gc_min_interval_s=0.5)
    manager = MemoryManager(config, meter_provider=meter_provider)
    manager.initialize()
    # Automatic collection is off, so cyclic garbage (with large buffers) waits for the
    # pressure manager's gc.collect(), whose reclaimed bytes are then measurable.
    gc.disable()
    pressure = MemoryPressureManager(manager)
    pressure.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    contended = manager.create_pool("e2e_buffers", _flaky_factory, 2, timeout=0.02, max_waiting=2,
                                    measure_use_time=True, health_check=lambda item: item[0] != 0xFF)
    database = manager.create_pool("e2e_db", lambda: bytearray(256), 2, timeout=0.02, db_metrics=True)
    threads = [threading.Thread(target=_borrower, args=(pool, 0.03, stop), daemon=True)
               for pool in (contended, contended, contended, contended, database, database, database)]
    leaked = contended.acquire(timeout=1.0)
    del leaked
    gc.collect()

    web = make_server("127.0.0.1", 0, WSGIAdmissionMiddleware(_hello, manager), handler_class=_Quiet)
    threads.append(threading.Thread(target=web.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True))
    threads.append(threading.Thread(
        target=_workload, args=(manager, f"http://127.0.0.1:{web.server_port}", int(rss_mb * MB), stop),
        daemon=True))
    for thread in threads:
        thread.start()
    facts = {"port": int(server.server_port), "service": SERVICE,
             "container_limit": manager.limit.cgroup is not None, "psi": _psi_readable()}
    print(json.dumps(facts), flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.wait(0.2):
        pass
    web.shutdown()
    pressure.stop()
    manager.shutdown()
    meter_provider.shutdown()
    time.sleep(0.1)


if __name__ == "__main__":
    main()
