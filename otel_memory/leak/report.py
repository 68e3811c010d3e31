"""What a leak check found: suspects, process growth, and the JSON the health endpoint serves.

Everything here is a type name, a count, a size, a rate or a code location (file:line); never
an object, its value or its repr.

Example::

    report = detector.check()
    for suspect in report.suspects:
        print(suspect.type_name, suspect.count_delta, suspect.size_delta, suspect.score)
    json.dumps(report.to_json_dict())
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .census import TypeTotal
from .native import NativeMemory

KIND_TYPE = "type"
"""A type whose objects keep growing in number or bytes."""
KIND_CONTAINER = "container"
"""One container (dict, list, set, ...) whose length keeps growing."""
KIND_NATIVE = "native"
"""Resident memory that the Python heap does not account for, growing."""
KIND_FLOOR = "floor"
"""A type whose floor keeps rising under churn of its own kind."""
KINDS = (KIND_TYPE, KIND_CONTAINER, KIND_NATIVE, KIND_FLOOR)
NATIVE_TYPE_NAME = "native"


@dataclass(frozen=True)
class LeakSuspect:
    """Something that kept growing over several censuses: a type, a container, native memory.

    Example::

        LeakSuspect("myapp.Session", count_delta=8000, size_delta=450_000,
                    growth_bytes_per_s=1875.0, score=0.86, snapshots=5)
        LeakSuspect("dict", count_delta=40_000, size_delta=2_400_000, growth_bytes_per_s=900.0,
                    score=0.86, snapshots=6, kind="container", item_type="str",
                    attribute="myapp.cache:_SESSIONS")
    """

    type_name: str
    """The type; for a container, the container's type; ``native`` for native memory."""
    count_delta: int
    """Objects more than at the baseline (the end of the warm-up, or when the type appeared)."""
    size_delta: int
    """Bytes more than at the baseline."""
    growth_bytes_per_s: float
    score: float
    """Rule-of-succession certainty, 0 to 1."""
    snapshots: int
    """Censuses in which the type set a new peak."""
    count: int = 0
    size: int = 0
    allocation_site: str | None = None
    """``file:line`` where the growth was allocated, when attribution ran."""
    kind: str = KIND_TYPE
    """One of KINDS: type, container, native, floor."""
    holder: str | None = None
    """For items the collector does not track (str, int, bytes, atomic dicts): the type of
    container that holds most of them (``list``, ``dict``, ..., ``object`` for attributes)."""
    item_type: str | None = None
    """For a container: the type of its newest items (values, for a mapping)."""
    attribute: str | None = None
    """For a container: the module-level name or class attribute holding it, when found
    (``myapp.cache:_SESSIONS``)."""

    @property
    def key(self) -> str:
        """What identifies this suspect from check to check (kind, type, where held, items)."""
        return f"{self.kind}:{self.type_name}:{self.attribute or ''}:{self.item_type or ''}"

    def with_allocation_site(self, site: str | None) -> LeakSuspect:
        """This suspect with its allocation site."""
        return replace(self, allocation_site=site)

    def with_holder(self, holder: str | None) -> LeakSuspect:
        """This suspect with the container type holding its items."""
        return replace(self, holder=holder)

    def describe(self) -> str:
        """One line for a log: kind, type and where it is held (names only, never values)."""
        if self.kind == KIND_NATIVE:
            return "native memory (not in the Python heap)"
        text = f"{self.kind} {self.type_name}"
        if self.item_type:
            text += f" of {self.item_type}"
        if self.attribute:
            text += f" at {self.attribute}"
        if self.holder:
            text += f" held in {self.holder}"
        return text

    def to_json_dict(self) -> dict[str, Any]:
        """The suspect as JSON-safe values."""
        return {
            "type_name": self.type_name, "count_delta": self.count_delta,
            "size_delta": self.size_delta, "growth_bytes_per_s": round(self.growth_bytes_per_s, 3),
            "score": round(self.score, 4), "snapshots": self.snapshots, "count": self.count,
            "size": self.size, "allocation_site": self.allocation_site, "kind": self.kind,
            "holder": self.holder, "item_type": self.item_type, "attribute": self.attribute,
        }


@dataclass(frozen=True)
class ProcessGrowth:
    """Growth of the whole process over the trend window, compared with the leak threshold.

    Example::

        ProcessGrowth(growth_bytes=150 * MB, window_s=600.0, threshold_bytes=100 * MB,
                      growth_bytes_per_s=262_144.0, alert=True)
    """

    growth_bytes: float
    window_s: float
    threshold_bytes: int
    growth_bytes_per_s: float
    alert: bool
    rate_threshold_bytes_per_s: float = 0.0
    """The sustained growth rate that also alerts (0: off)."""
    reason: str | None = None
    """Why it alerts: ``total`` (grew past the threshold over the window), ``rate`` (grew
    faster than the rate threshold over a full window), or None."""

    def to_json_dict(self) -> dict[str, Any]:
        """The growth as JSON-safe values."""
        return {
            "growth_bytes": round(self.growth_bytes), "window_s": round(self.window_s, 3),
            "threshold_bytes": self.threshold_bytes,
            "growth_bytes_per_s": round(self.growth_bytes_per_s, 3), "alert": self.alert,
            "rate_threshold_bytes_per_s": round(self.rate_threshold_bytes_per_s, 3),
            "reason": self.reason,
        }


# One row of a deeper look (a pympler summary): type name, objects, bytes, the same triple a
# census keeps per type. Example: SummaryRow("str", 120_000, 9_800_000)
SummaryRow = TypeTotal


@dataclass(frozen=True)
class LeakReport:
    """The result of one leak check.

    Example::

        report = detector.check()
        report.suspects[0].type_name if report.suspects else None
        report.process_growth.alert if report.process_growth else False
    """

    check_number: int
    checked_at: float
    """Unix time of the check."""
    duration_s: float
    objects_scanned: int
    heap_bytes: int
    suspects: list[LeakSuspect]
    """Most certain and fastest-growing first (a fresh list per report)."""
    new_suspects: tuple[str, ...] = ()
    """Type names that became suspects at this check."""
    warming_up: bool = False
    process_growth: ProcessGrowth | None = None
    deep_summary: tuple[SummaryRow, ...] = ()
    """Top rows of a pympler summary, when growth past the threshold had no suspect to explain it."""
    native: NativeMemory | None = None
    """Resident set, Python heap and malloc's retained bytes at this check."""

    def of_kind(self, kind: str) -> list[LeakSuspect]:
        """The suspects of one kind."""
        return [suspect for suspect in self.suspects if suspect.kind == kind]

    @property
    def growth_bytes_per_s(self) -> float:
        """Combined growth rate of the suspects."""
        return sum(max(0.0, suspect.growth_bytes_per_s) for suspect in self.suspects)

    def to_json_dict(self) -> dict[str, Any]:
        """The report as JSON-safe values (what /health/memory/leaks serves)."""
        return {
            "check_number": self.check_number, "checked_at": round(self.checked_at, 3),
            "duration_s": round(self.duration_s, 6), "objects_scanned": self.objects_scanned,
            "heap_bytes": self.heap_bytes, "warming_up": self.warming_up,
            "growth_bytes_per_s": round(self.growth_bytes_per_s, 3),
            "suspects": [suspect.to_json_dict() for suspect in self.suspects],
            "new_suspects": list(self.new_suspects),
            "process_growth": self.process_growth.to_json_dict() if self.process_growth else None,
            "deep_summary": [{"type_name": row.type_name, "count": row.count, "size": row.size}
                             for row in self.deep_summary],
            "native": self.native.to_json_dict() if self.native else None,
        }
