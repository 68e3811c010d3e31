"""EntryStore: LRU order, limits, the expiry heap and its compaction."""

from __future__ import annotations

from otel_memory.cache.metrics import EVICTION_REASONS
from otel_memory.cache.store import NEVER, EntryStore


def counts(store: EntryStore[str]) -> dict[str, int]:
    return {reason: count for reason, count in zip(EVICTION_REASONS, store.evictions, strict=True) if count}


def test_limits_evict_least_recently_used_first() -> None:
    store: EntryStore[str] = EntryStore(max_entries=3, max_bytes=1000)
    for key in "abcd":
        store.add(key, key, size=100, expires=NEVER)
    assert store.over_limits()
    removed = store.evict_to_limits()
    assert [entry[0] for entry in removed] == ["a"] and list(store._data) == ["b", "c", "d"]
    store.add("big", "big", size=850, expires=NEVER)
    assert [entry[0] for entry in store.evict_to_limits()] == ["b", "c"]
    assert store.bytes == 950 and counts(store) == {"size": 2, "memory": 1}   # 4 > 3 entries, then bytes


def test_replacing_keeps_bytes_exact_and_stale_heap_items_are_skipped() -> None:
    store: EntryStore[str] = EntryStore(max_entries=10, max_bytes=10_000)
    store.add("k", 1, size=100, expires=5.0)
    replaced = store.add("k", 2, size=300, expires=50.0)
    assert replaced is not None and replaced[0] == 1 and store.bytes == 300
    assert store.has_expired(now=6.0)
    assert store.purge_expired(now=6.0) == []          # the item at 5.0 belongs to the old entry
    assert [entry[0] for entry in store.purge_expired(now=50.0)] == [2]
    assert store.bytes == 0 and counts(store) == {"expired": 1}


def test_heap_stays_within_twice_the_entries() -> None:
    store: EntryStore[str] = EntryStore(max_entries=100, max_bytes=10**9)
    for round_ in range(200):
        for key in range(50):
            store.add(f"k{key}", round_, size=10, expires=1000.0 + round_)
        assert len(store._heap) <= 2 * len(store._data) + 64 + 1
    assert len(store._data) == 50
    assert sorted(item[2] for item in store._heap if item[0] == 1199.0) == sorted(store._data)
