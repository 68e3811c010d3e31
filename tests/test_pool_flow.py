"""The shared protocols (pool/_flow.py) keep ObjectPool and AsyncObjectPool in step: one scenario
played on both pools gives the same stats after every step, and the same outcome."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.errors import PoolClosed, PoolTimeout
from otel_memory.pool import AsyncObjectPool, ObjectPool, PoolStats


class Item:
    def __init__(self, number: int) -> None:
        self.number = number
        self.healthy = True
        self.resettable = True


# (operation, argument): what the scenario does, step by step
SCENARIO: list[tuple[str, Any]] = [
    ("borrow", 0), ("borrow", 1), ("release", 0), ("borrow", 2), ("break", 2), ("release", 2),
    ("release", 1), ("borrow", 3),  # the most recently returned (healthy) item comes first
    ("discard", 3), ("borrow", 4),  # the broken one fails its health check: destroyed, replaced
    ("borrow", 5), ("timeout", None),
    ("spoil", 4), ("release", 4),  # its reset raises: destroyed
    ("release", 5), ("borrow", 6), ("close", None), ("release", 6), ("closed", None),
]


def hooks(made: list[Item]) -> dict[str, Callable[..., Any]]:
    def factory() -> Item:
        made.append(Item(len(made)))
        return made[-1]

    def reset(item: Item) -> None:
        if not item.resettable:
            raise OSError("cannot reset")

    return {"factory": factory, "health_check": lambda item: item.healthy, "reset": reset}


def comparable(stats: PoolStats) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(stats).items() if k != "name"}


def play_sync(meter_provider: MeterProvider) -> list[Any]:
    made: list[Item] = []
    hook = hooks(made)
    pool = ObjectPool("parity_sync", hook.pop("factory"), 2, timeout=0.01,
                      meter_provider=meter_provider, **hook)
    handles: dict[int, Any] = {}
    trace: list[Any] = []
    for operation, argument in SCENARIO:
        outcome: Any = None
        try:
            if operation == "borrow":
                handles[argument] = pool.acquire()
                outcome = handles[argument].get().number
            elif operation == "release":
                handles.pop(argument).release()
            elif operation == "discard":
                handles.pop(argument).discard()
            elif operation == "break":
                handles[argument].get().healthy = False
            elif operation == "spoil":
                handles[argument].get().resettable = False
            elif operation in ("timeout", "closed"):
                pool.acquire()
            elif operation == "close":
                pool.close()
        except (PoolTimeout, PoolClosed) as error:
            outcome = type(error).__name__
        trace.append((operation, outcome, comparable(pool.stats())))
    return trace


def play_async(meter_provider: MeterProvider) -> list[Any]:
    made: list[Item] = []
    hook = hooks(made)
    factory = hook.pop("factory")

    async def afactory() -> Item:
        await asyncio.sleep(0)
        return factory()  # type: ignore[no-any-return]

    async def main() -> list[Any]:
        pool: AsyncObjectPool[Item] = AsyncObjectPool(
            "parity_async", afactory, 2, timeout=0.01, meter_provider=meter_provider,
            **hook)
        handles: dict[int, Any] = {}
        trace: list[Any] = []
        for operation, argument in SCENARIO:
            outcome: Any = None
            try:
                if operation == "borrow":
                    handles[argument] = await pool.acquire()
                    outcome = handles[argument].get().number
                elif operation == "release":
                    await handles.pop(argument).release()
                elif operation == "discard":
                    await handles.pop(argument).discard()
                elif operation == "break":
                    handles[argument].get().healthy = False
                elif operation == "spoil":
                    handles[argument].get().resettable = False
                elif operation in ("timeout", "closed"):
                    await pool.acquire()
                elif operation == "close":
                    await pool.close()
            except (PoolTimeout, PoolClosed) as error:
                outcome = type(error).__name__
            trace.append((operation, outcome, comparable(pool.stats())))
        return trace

    return asyncio.run(main())


def test_sync_and_async_pools_walk_the_same_scenario_identically(meter_provider: MeterProvider) -> None:
    sync_trace, async_trace = play_sync(meter_provider), play_async(meter_provider)
    for step, (in_sync, in_async) in enumerate(zip(sync_trace, async_trace, strict=True)):
        assert in_sync == in_async, (step, SCENARIO[step])
    final = sync_trace[-1][2]
    destroyed = dict(final["destroyed"])
    assert (destroyed["health_check"], destroyed["discarded"], destroyed["closed"]) == (2, 1, 1)
    assert (final["timeouts"], final["size"], final["borrowed"], final["created"]) == (1, 0, 0, 4)
    assert [outcome for _, outcome, _ in sync_trace if outcome is not None] == [
        0, 1, 0, 1, 2, 3, "PoolTimeout", 3, "PoolClosed"]

