"""The storage under SmartCache: entries in LRU order, an expiry heap, and the removal counters.

Entries live in one OrderedDict (least recently used first) as ``(value, size, expires)``
tuples; entries with a finite TTL also have an item ``(expires, sequence, key)`` in a heap, so
expired entries are found without a scan. Heap items of replaced or removed entries stay until
they come up (an entry is expired only if its own ``expires`` has passed) or until the heap
holds twice as many items as the cache has entries, when it is rebuilt. Every method here
runs under the owner's lock and returns what it removed, so the owner can let the values go
after releasing the lock.

Example::

    store = EntryStore(max_entries=100, max_bytes=1 << 20)
    store.add("k", "v", size=200, expires=NEVER)
    removed = store.evict_to_limits()
"""

from __future__ import annotations

import math
from collections import OrderedDict
from heapq import heapify, heappop, heappush
from typing import Any, Generic, TypeVar

from .metrics import EVICTION_REASONS, EXPIRED, MEMORY, SIZE

K = TypeVar("K")

#: The expiry of entries without TTL; the hit path compares it by identity.
NEVER = math.inf
Entry = tuple[Any, int, float]


class EntryStore(Generic[K]):
    """Entries in LRU order with byte and entry limits and an expiry heap; see the module docstring.

    Example::

        store = EntryStore(max_entries=2, max_bytes=1000)
        store.add("a", 1, size=300, expires=NEVER)
        store.purge_expired(now=0.0)        # [] : nothing has a TTL
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._budget = max_bytes
        self._data: OrderedDict[K, Entry] = OrderedDict()
        self._heap: list[tuple[float, int, K]] = []
        self._seq = 0
        self.bytes = 0
        self.evictions = [0] * len(EVICTION_REASONS)
        self.evicted_bytes = [0] * len(EVICTION_REASONS)

    def add(self, key: K, value: Any, size: int, expires: float) -> Entry | None:
        """Store an entry as the most recently used; returns the entry it replaced."""
        data = self._data
        replaced = data.pop(key, None)
        if replaced is not None:
            self.bytes -= replaced[1]
        data[key] = (value, size, expires)
        self.bytes += size
        if expires is not NEVER:
            self._seq += 1
            heappush(self._heap, (expires, self._seq, key))
            if len(self._heap) > 2 * len(data) + 64:
                self._compact_heap()
        return replaced

    def over_limits(self) -> bool:
        """True when the entries exceed the entry limit or the current byte budget."""
        return self.bytes > self._budget or len(self._data) > self.max_entries

    def has_expired(self, now: float) -> bool:
        """True when some heap item is due (cheap: the heap's first item)."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= now

    def drop(self, key: K, reason: int) -> Entry:
        """Remove the entry of ``key``, counted under ``reason``."""
        entry = self._data.pop(key)
        self.bytes -= entry[1]
        self.evictions[reason] += 1
        self.evicted_bytes[reason] += entry[1]
        return entry

    def drop_lru(self, reason: int) -> Entry:
        """Remove the least recently used entry, counted under ``reason``."""
        _key, entry = self._data.popitem(last=False)
        self.bytes -= entry[1]
        self.evictions[reason] += 1
        self.evicted_bytes[reason] += entry[1]
        return entry

    def purge_expired(self, now: float) -> list[Entry]:
        """Remove every entry whose expiry is at or before ``now``."""
        heap, data, removed = self._heap, self._data, []
        while heap and heap[0][0] <= now:
            key = heappop(heap)[2]
            entry = data.get(key)
            if entry is not None and entry[2] <= now:
                removed.append(self.drop(key, EXPIRED))
        return removed

    def _compact_heap(self) -> None:
        self._heap = heap = []
        for key, entry in self._data.items():
            if entry[2] is not NEVER:
                self._seq += 1
                heap.append((entry[2], self._seq, key))
        heapify(heap)

    def evict_to_limits(self) -> list[Entry]:
        """Remove least recently used entries until both limits hold (reasons size, memory)."""
        data, removed = self._data, []
        while len(data) > self.max_entries:
            removed.append(self.drop_lru(SIZE))
        while self.bytes > self._budget:
            removed.append(self.drop_lru(MEMORY))
        return removed
