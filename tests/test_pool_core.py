"""The pool state machine against a model: hypothesis drives borrows, returns, discards,
broken objects, failing factories, pressure and close, and checks every counter and object."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.errors import ConfigError, PoolClosed, PoolTimeout
from otel_memory.pool import DESTROY_REASONS, ObjectPool, Pooled
from otel_memory.pool._options import PoolOptions
from otel_memory.pressure import MemoryPressure

_PROVIDER = MeterProvider()


class Item:
    def __init__(self, number: int) -> None:
        self.number = number
        self.broken = False
        self.destroyed = False


class PoolModel(RuleBasedStateMachine):
    """The pool as a list of idle objects (top = most recently returned) and a set of lent ones."""

    @initialize(max_size=st.integers(1, 4))
    def start(self, max_size: int) -> None:
        # min_idle stays 0: topping up runs on the housekeeping thread, outside the model
        self.max_size = max_size
        self.factory_fails = False
        self.made: list[Item] = []

        def factory() -> Item:
            if self.factory_fails:
                raise ConnectionError("factory down")
            item = Item(len(self.made))
            self.made.append(item)
            return item

        def destroy(item: Item) -> None:
            assert not item.destroyed, "destroyed twice"
            item.destroyed = True

        self.pool = ObjectPool("model", factory, max_size, min_idle=0, timeout=0.0,
                               health_check=lambda item: not item.broken, destroy=destroy,
                               meter_provider=_PROVIDER)
        self.idle: list[Item] = []
        self.lent: list[tuple[Pooled[Item], Item]] = []
        self.closed = False
        self.counts = dict.fromkeys(DESTROY_REASONS, 0)
        self.borrows = self.timeouts = self.create_errors = 0

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.lent)

    @rule()
    def acquire(self) -> None:
        expected: Item | None = None
        if self.closed:
            with pytest.raises(PoolClosed):
                self.pool.acquire()
            return
        while self.idle:
            top = self.idle.pop()
            if top.broken:
                self.counts["health_check"] += 1
                continue
            expected = top
            break
        if expected is None and self.size < self.max_size and self.factory_fails:
            with pytest.raises(ConnectionError):
                self.pool.acquire()
            self.create_errors += 1
            return
        if expected is None and self.size >= self.max_size:
            with pytest.raises(PoolTimeout):
                self.pool.acquire()
            self.timeouts += 1
            return
        handle = self.pool.acquire()
        if expected is not None:
            assert handle.get() is expected
        else:
            assert handle.get() is self.made[-1] and not handle.get().destroyed
        self.borrows += 1
        self.lent.append((handle, handle.get()))

    @precondition(lambda self: bool(self.lent))
    @rule(index=st.integers(0, 3), discard=st.booleans())
    def give_back(self, index: int, discard: bool) -> None:
        handle, item = self.lent.pop(index % len(self.lent))
        if discard:
            handle.discard()
            self.counts["discarded"] += 1
            assert item.destroyed
        elif self.closed:
            handle.release()
            self.counts["closed"] += 1
            assert item.destroyed
        else:
            handle.release()
            self.idle.append(item)
        with pytest.raises(RuntimeError):
            handle.get()

    @precondition(lambda self: bool(self.idle))
    @rule(index=st.integers(0, 3))
    def break_idle_object(self, index: int) -> None:
        self.idle[index % len(self.idle)].broken = True

    @rule()
    def toggle_factory(self) -> None:
        self.factory_fails = not self.factory_fails

    @rule(level=st.sampled_from(list(MemoryPressure)))
    def pressure(self, level: MemoryPressure) -> None:
        released = self.pool.respond_to_pressure(level)
        if level >= MemoryPressure.HIGH and self.idle:
            gone = len(self.idle)
            assert released is True
            self.counts["pressure"] += gone
            for item in self.idle[:gone]:
                assert item.destroyed
            self.idle = self.idle[gone:]
        else:
            assert released is False

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self) -> None:
        self.pool.close()
        self.closed = True
        self.counts["closed"] += len(self.idle)
        assert all(item.destroyed for item in self.idle)
        self.idle = []

    @invariant()
    def counters_match_the_model(self) -> None:
        if not hasattr(self, "pool"):
            return
        stats = self.pool.stats()
        assert (stats.size, stats.idle, stats.borrowed) == (self.size, len(self.idle), len(self.lent))
        assert len(self.pool.core.idle) == stats.idle  # stats derive idle; the stack agrees
        assert stats.size <= self.max_size
        assert dict(stats.destroyed) == self.counts
        assert (stats.borrows, stats.timeouts, stats.create_errors) == (
            self.borrows, self.timeouts, self.create_errors)
        assert stats.created == len(self.made) == stats.size + stats.destroyed_total
        lent_items = [item for _, item in self.lent]
        assert len({id(i) for i in lent_items + self.idle}) == len(lent_items) + len(self.idle)
        assert not any(item.destroyed for item in lent_items + self.idle)

    def teardown(self) -> None:
        for handle, _ in getattr(self, "lent", []):
            handle.release()


TestPoolModel = PoolModel.TestCase
TestPoolModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def test_options_are_validated_with_names() -> None:
    with pytest.raises(ConfigError, match="pool name=''"):
        PoolOptions.validate("", 1)
    with pytest.raises(ConfigError, match=r"idle_timeout='1'.*seconds"):
        PoolOptions.validate("p", 1, idle_timeout="1")
    options: dict[str, Any] = {"min_idle": 1, "max_lifetime": 60}
    assert PoolOptions.validate("p", 2, **options).max_lifetime == 60
