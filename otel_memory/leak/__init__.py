"""Leak detection: chunked heap censuses, sustained-growth ranking and leak-suspect reports.

- ``census``: a type census of the heap in chunks (aggregates only), pympler summary rows,
  untracked items by holder, the largest containers (``containers``);
- ``policy``: the ranking rules; ``series``: the peak rule over one series;
- ``ranking``: which types keep setting new peaks, scored by the rule of succession, and whose
  floor rises under churn (``survival``: weak-reference samples; ``window``: opt-in counts);
- ``container_ranking``: single containers that keep growing, named by the attribute holding them;
- ``native``, ``native_ranking``: resident memory outside the Python heap, less malloc's free lists;
- ``report``: ``LeakSuspect`` and ``LeakReport`` (JSON for the health endpoint);
- ``attribution``: a bounded tracemalloc window naming allocation sites;
- ``detector``: ``LeakDetector``, which runs it all and emits spans, metrics and logs.

Example::

    from otel_memory.leak import LeakDetector

    detector = LeakDetector(interval_s=60.0)
    detector.start()
    report = detector.check()
    [suspect.type_name for suspect in report.suspects]
"""

from __future__ import annotations

from .census import HeapSnapshot, SnapshotDiff, TypeDelta, TypeTotal
from .detector import LeakDetector
from .policy import RankingPolicy
from .report import LeakReport, LeakSuspect, ProcessGrowth, SummaryRow

__all__ = [
    "HeapSnapshot",
    "LeakDetector",
    "LeakReport",
    "LeakSuspect",
    "ProcessGrowth",
    "RankingPolicy",
    "SnapshotDiff",
    "SummaryRow",
    "TypeDelta",
    "TypeTotal",
]
