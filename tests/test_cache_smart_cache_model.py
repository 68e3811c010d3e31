"""SmartCache against a model: any sequence of operations keeps the limits, LRU order, TTL expiry
and counters exactly as the model (a plain OrderedDict with the specified rules) says."""

from __future__ import annotations

import math
import os
import sys
from collections import OrderedDict

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.cache import CachePressurePolicy, SmartCache
from otel_memory.cache.metrics import EVICTION_REASONS
from otel_memory.cache.sizing import ENTRY_OVERHEAD, EXPIRY_OVERHEAD
from otel_memory.errors import CacheRefused, EntryTooLarge
from otel_memory.pressure import MemoryPressure

MAX_ENTRIES = 4
MAX_MB = 0.005                      # 5242 bytes: values up to 3000 bytes force memory evictions
DEFAULT_TTL = 5.0
PROVIDER = MeterProvider()

keys = st.sampled_from([f"key-{n}" for n in range(7)])
values = st.integers(0, 3000).map(lambda n: "v" * n)
ttls = st.sampled_from([None, 1.0, 3.0, math.inf])
levels = st.sampled_from(list(MemoryPressure))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class Model:
    """The specification, written as plainly as possible."""

    def __init__(self, max_bytes: int, policy: CachePressurePolicy) -> None:
        self.entries: OrderedDict[str, tuple[str, int, float]] = OrderedDict()
        self.max_bytes = self.budget = max_bytes
        self.policy = policy
        self.refusing = False
        self.hits = self.misses = 0
        self.evictions = dict.fromkeys(EVICTION_REASONS, 0)
        self.evicted_bytes = dict.fromkeys(EVICTION_REASONS, 0)
        self.loads = {"success": 0, "failure": 0}

    @property
    def bytes(self) -> int:
        return sum(size for _, size, _ in self.entries.values())

    def remove(self, key: str, reason: str) -> None:
        _, size, _ = self.entries.pop(key)
        self.evictions[reason] += 1
        self.evicted_bytes[reason] += size

    def purge(self, now: float) -> None:
        for key in [k for k, (_, _, expires) in self.entries.items() if expires <= now]:
            self.remove(key, "expired")

    def size(self, key: str, value: str, ttl: float | None) -> int:
        return sys.getsizeof(key) + len(value) + ENTRY_OVERHEAD + (EXPIRY_OVERHEAD if ttl else 0)

    def insert(self, key: str, value: str, ttl: float | None, now: float) -> str | None:
        """None when stored, else the name of the error expected."""
        effective = DEFAULT_TTL if ttl is None else (None if ttl == math.inf else ttl)
        size = self.size(key, value, effective)
        if size > self.max_bytes:
            return "EntryTooLarge"
        if self.refusing or size > self.budget:
            return "CacheRefused"
        self.purge(now)
        self.entries.pop(key, None)
        self.entries[key] = (value, size, now + effective if effective else math.inf)
        while len(self.entries) > MAX_ENTRIES:
            self.remove(next(iter(self.entries)), "size")
        while self.bytes > self.budget:
            self.remove(next(iter(self.entries)), "memory")
        return None

    def get(self, key: str, now: float) -> str | None:
        entry = self.entries.get(key)
        if entry is not None and entry[2] > now:
            self.entries.move_to_end(key)
            self.hits += 1
            return entry[0]
        if entry is not None:
            self.remove(key, "expired")
        self.misses += 1
        return None

    def pressure(self, level: MemoryPressure, now: float) -> bool:
        self.budget = int(self.max_bytes * self.policy.budget_fraction(level))
        self.refusing = self.policy.refuses_inserts(level)
        self.purge(now)
        shrunk = False
        while self.bytes > self.budget:
            self.remove(next(iter(self.entries)), "pressure")
            shrunk = True
        return shrunk


class SmartCacheMachine(RuleBasedStateMachine):
    @initialize(policy=st.sampled_from([
        CachePressurePolicy(), CachePressurePolicy(0.9, 0.4, 0.1, refuse_when_critical=False),
        CachePressurePolicy(0.8, 0.6, 0.3, refuse_when_critical=True)]))
    def start(self, policy: CachePressurePolicy) -> None:
        self.clock = Clock()
        self.cache: SmartCache[str, str] = SmartCache(
            None, MAX_ENTRIES, MAX_MB, DEFAULT_TTL, name="model", sizer=len, timer=self.clock,
            meter_provider=PROVIDER, pressure_policy=policy)
        self.model = Model(self.cache.max_bytes, policy)

    @rule(key=keys, value=values, ttl=ttls)
    def insert(self, key: str, value: str, ttl: float | None) -> None:
        expected = self.model.insert(key, value, ttl, self.clock.now)
        try:
            self.cache.insert(key, value, ttl_seconds=ttl)
            outcome = None
        except (EntryTooLarge, CacheRefused) as error:
            outcome = type(error).__name__
        assert outcome == expected

    @rule(key=keys)
    def get(self, key: str) -> None:
        assert self.cache.get(key) == self.model.get(key, self.clock.now)

    @rule(key=keys, value=values)
    def get_or_load(self, key: str, value: str) -> None:
        expected = self.model.get(key, self.clock.now)
        if expected is None:
            self.model.loads["success"] += 1
            self.model.insert(key, value, None, self.clock.now)
            expected = value
        assert self.cache.get_or_load(key, lambda _key: value) == expected

    @rule(key=keys)
    def pop(self, key: str) -> None:
        entry = self.model.entries.get(key)
        expected = None
        if entry is not None:
            live = entry[2] > self.clock.now
            self.model.remove(key, "explicit" if live else "expired")
            expected = entry[0] if live else None
        assert self.cache.pop(key, None) == expected

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 2.0, 6.0]))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(level=levels)
    def pressure(self, level: MemoryPressure) -> None:
        assert self.cache.respond_to_pressure(level) == self.model.pressure(level, self.clock.now)

    @rule()
    def length_and_order(self) -> None:
        self.model.purge(self.clock.now)
        assert len(self.cache) == len(self.model.entries)
        assert list(self.cache) == list(self.model.entries)

    @rule()
    def clear(self) -> None:
        self.model.purge(self.clock.now)
        for key in list(self.model.entries):
            self.model.remove(key, "explicit")
        self.cache.clear()

    @invariant()
    def matches_the_model(self) -> None:
        cache, model = self.cache, self.model
        assert list(cache._data) == list(model.entries)           # LRU order, expired included
        assert {k: e[0] for k, e in cache._data.items()} == {k: e[0] for k, e in model.entries.items()}
        assert cache.usage_bytes == model.bytes <= cache.budget_bytes == model.budget
        assert len(cache._data) <= MAX_ENTRIES
        assert cache.refusing == model.refusing
        assert (cache.hits, cache.misses) == (model.hits, model.misses)
        assert dict(zip(EVICTION_REASONS, cache.evictions, strict=True)) == model.evictions
        assert dict(zip(EVICTION_REASONS, cache.evicted_bytes, strict=True)) == model.evicted_bytes
        assert cache.loads == model.loads


# CACHE_MODEL_EXAMPLES=2000 for a longer search (passes in ~25 s).
SmartCacheMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("CACHE_MODEL_EXAMPLES", "150")), stateful_step_count=40,
    deadline=None)
TestSmartCacheModel = SmartCacheMachine.TestCase


def test_the_model_itself_evicts_expired_first() -> None:
    model = Model(10_000, CachePressurePolicy())
    for key in ("a", "b", "c", "d"):
        assert model.insert(key, "", math.inf if key != "b" else 1.0, now=0.0) is None
    assert model.insert("e", "", math.inf, now=2.0) is None
    assert list(model.entries) == ["a", "c", "d", "e"] and model.evictions["expired"] == 1

