"""Benchmark: pool borrow+return against bare queues, side by side in one run.

ObjectPool (an SDK MeterProvider with a reader attached, so metrics are live) against
``queue.Queue`` get+put, and AsyncObjectPool against ``asyncio.Queue`` get+put. Prints the
time per operation and the ratio pool/queue; the goal is <= 1.0 for both.

Run: ``.venv/bin/python benchmarks/bench_pool.py [--rounds 5] [--ops 100000]``
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory.pool import AsyncObjectPool, ObjectPool


def _sync_queue(ops: int) -> float:
    q: queue.Queue[bytearray] = queue.Queue(maxsize=8)
    for _ in range(8):
        q.put(bytearray(16))
    began = time.perf_counter()
    for _ in range(ops):
        obj = q.get()
        q.put(obj)
    return (time.perf_counter() - began) / ops


def _sync_pool(provider: MeterProvider) -> Callable[[int], float]:
    pool = ObjectPool("bench", lambda: bytearray(16), 8, meter_provider=provider)

    def run(ops: int) -> float:
        borrow = pool.borrow
        began = time.perf_counter()
        for _ in range(ops):
            with borrow():
                pass
        return (time.perf_counter() - began) / ops

    return run


def _sync_handle(provider: MeterProvider) -> Callable[[int], float]:
    pool = ObjectPool("bench_handle", lambda: bytearray(16), 8, meter_provider=provider)

    def run(ops: int) -> float:
        acquire = pool.acquire
        began = time.perf_counter()
        for _ in range(ops):
            acquire().release()
        return (time.perf_counter() - began) / ops

    return run


async def _async_queue(ops: int) -> float:
    q: asyncio.Queue[bytearray] = asyncio.Queue(maxsize=8)
    for _ in range(8):
        q.put_nowait(bytearray(16))
    began = time.perf_counter()
    for _ in range(ops):
        obj = await q.get()
        await q.put(obj)
    return (time.perf_counter() - began) / ops


async def _async_pool(pool: AsyncObjectPool[bytearray], ops: int) -> float:
    borrow = pool.borrow
    began = time.perf_counter()
    for _ in range(ops):
        async with borrow():
            pass
    return (time.perf_counter() - began) / ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=100_000)
    args = parser.parse_args()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    sync_pool, sync_handle = _sync_pool(provider), _sync_handle(provider)
    apool: AsyncObjectPool[bytearray] = AsyncObjectPool(
        "bench_async", lambda: bytearray(16), 8, meter_provider=provider)
    results: dict[str, list[float]] = {k: [] for k in ("queue", "pool", "handle", "aqueue", "apool")}
    loop = asyncio.new_event_loop()
    for _ in range(args.rounds):  # interleaved so machine noise hits all alike
        results["queue"].append(_sync_queue(args.ops))
        results["pool"].append(sync_pool(args.ops))
        results["handle"].append(sync_handle(args.ops))
        results["aqueue"].append(loop.run_until_complete(_async_queue(args.ops)))
        results["apool"].append(loop.run_until_complete(_async_pool(apool, args.ops)))
    loop.close()
    reader.get_metrics_data()  # the metrics really are live
    best = {k: min(v) * 1e6 for k, v in results.items()}
    median = {k: statistics.median(v) * 1e6 for k, v in results.items()}
    print(f"{'case':<44} {'best us/op':>10} {'median':>8}")
    rows = [("queue.Queue get+put", "queue"), ("ObjectPool borrow() with metrics", "pool"),
            ("ObjectPool acquire().release() with metrics", "handle"),
            ("asyncio.Queue get+put", "aqueue"), ("AsyncObjectPool borrow() with metrics", "apool")]
    for label, key in rows:
        print(f"{label:<44} {best[key]:>10.3f} {median[key]:>8.3f}")
    print(f"ratio ObjectPool borrow / queue.Queue:         {median['pool'] / median['queue']:.2f} "
          "(goal <= 1.0)")
    print(f"ratio ObjectPool acquire / queue.Queue:        {median['handle'] / median['queue']:.2f}")
    print(f"ratio AsyncObjectPool borrow / asyncio.Queue:  {median['apool'] / median['aqueue']:.2f} "
          "(goal <= 1.0)")
    provider.shutdown()


if __name__ == "__main__":
    main()
