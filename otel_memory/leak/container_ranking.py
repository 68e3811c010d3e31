"""Ranking single containers: a dict, list, set or deque whose length keeps setting new peaks.

Each of the census's largest containers (containers.py) is a series of (length, own size),
followed by its ``id()`` and type. The peak rule of series.py decides, with the policy's
minimum growth in items (``min_growth_objects``) or bytes. Its growth in bytes is its own
size's growth plus the items it gained at the average size of their type in the census. A
container seen for the first time takes its first reading as its baseline, so a big list
built once is no suspect; one that drops out of the largest few is not counted as a fall,
and is forgotten when gone for long.

Example::

    ranker = ContainerRanker(RankingPolicy())
    for snapshot in snapshots:
        for suspect in ranker.update(snapshot, warming_up=False, check=n):
            print(suspect.type_name, suspect.item_type, suspect.count_delta)
"""

from __future__ import annotations

from .census import HeapSnapshot
from .policy import RankingPolicy
from .report import KIND_CONTAINER, LeakSuspect
from .series import SeriesHistory, advance, grown

_FORGET_AFTER_ABSENT_CHECKS = 10


class ContainerRanker:
    """Follows the largest containers from census to census; the growing ones are suspects.

    Example::

        ranker = ContainerRanker(RankingPolicy(warmup_checks=2))
        ranker.update(take_census(), warming_up=True, check=1)    # () while warming up
    """

    def __init__(self, policy: RankingPolicy) -> None:
        self.policy = policy
        self._history: dict[tuple[int, str], SeriesHistory] = {}

    def bookkeeping(self) -> tuple[object, ...]:
        """What this ranker keeps (for the census to leave out)."""
        return (self._history,)

    def reset(self) -> None:
        """Forget every container."""
        self._history.clear()

    def update(self, snapshot: HeapSnapshot, *, warming_up: bool, check: int
               ) -> list[tuple[int, LeakSuspect]]:
        """Learn from one census: (container id, suspect) for each growing container."""
        policy, now = self.policy, snapshot.taken_at
        seen_now = {(sample.ident, sample.type_name): sample for sample in snapshot.containers}
        for key in [key for key in self._history if key not in seen_now]:
            gone = self._history[key]
            gone.absent += 1
            if gone.absent > _FORGET_AFTER_ABSENT_CHECKS:
                del self._history[key]
        suspects: list[tuple[int, LeakSuspect]] = []
        for key, sample in seen_now.items():
            history = self._history.get(key)
            if history is None:
                self._history[key] = SeriesHistory(sample.length, sample.size, now, check)
                continue
            if not advance(policy, history, sample.length, sample.size, now, check, warming_up,
                           policy.min_growth_objects, policy.min_growth_bytes):
                continue
            growth = grown(policy, history, sample.length, sample.size, now, check,
                           policy.min_growth_objects, policy.min_growth_bytes)
            if growth is None:
                continue
            # its own table grows in steps; its items are what grows at every census
            items = snapshot.totals.get(sample.item_type or "")
            item_size = items.size / items.count if items is not None and items.count else 0.0
            size_delta = growth.size_delta + round(growth.count_delta * item_size)
            rate = size_delta / max(now - history.base_time, 1e-9)
            suspects.append((sample.ident, LeakSuspect(
                type_name=sample.type_name, count_delta=growth.count_delta,
                size_delta=size_delta, growth_bytes_per_s=rate, score=growth.score,
                snapshots=growth.peaks, count=sample.length, size=sample.size,
                kind=KIND_CONTAINER, item_type=sample.item_type)))
        return suspects
