"""The floor of a churning type, measured directly: how many of its objects outlive censuses.

A leak hidden in heavy churn of its own type (150 sessions a minute kept forever among 2,000
to 8,000 that come and go) moves the type's count far less than the churn does; no rule on
counts alone finds it within a day without false alarms. What tells the two apart is age: the
churn dies young, the leak never dies. So at each census this module keeps weak references to
an even sample of each candidate type's objects (one cohort per census; types whose instances
take weak references only, a few types at a time), and ``age`` censuses later counts how many
of that cohort are still alive. ``alive / sampled * count then`` estimates how many objects of
the type lived through those censuses: ~0 for pure churn, a plateau for a bounded cache, and a
line that keeps rising for a leak. The ranker applies its floor rule to that series.

The sample is taken while the census walks (``visit``), from every ``stride``-th object of the
type in the collector's order; no object is kept alive by it, and only counts leave it.

Example::

    sampler = SurvivalSampler(per_type=256, age=3)
    sampler.plan({"myapp.Session": 6000})
    snapshot = take_census(visit=sampler.visit)
    survivors = sampler.finish()        # {"myapp.Session": 1450} once a cohort is 3 censuses old
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Mapping
from itertools import compress, islice, repeat
from operator import is_

from ._names import type_name


class _Cohort:
    __slots__ = ("count", "refs")

    def __init__(self, count: int) -> None:
        self.count = count
        self.refs: list[weakref.ref[object]] = []


class SurvivalSampler:
    """Samples candidate types during a census and estimates their long-lived objects.

    Example::

        sampler = SurvivalSampler()
        sampler.plan({"myapp.Order": 5000})
        take_census(visit=sampler.visit)
        sampler.finish()
    """

    def __init__(self, per_type: int = 256, age: int = 3, max_types: int = 6) -> None:
        for name, value in (("per_type", per_type), ("age", age), ("max_types", max_types)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}; expected an int >= 1")
        self.per_type = per_type
        self.age = age
        self.max_types = max_types
        self._cohorts: dict[str, deque[_Cohort]] = {}
        self._current: dict[str, _Cohort] = {}
        self._strides: dict[str, list[int]] = {}     # name -> [stride, objects to skip]
        self._names: dict[type, str | None] = {}     # type -> its name when planned, else None
        self._unsampled: set[str] = set()            # planned types seen without weak references

    def plan(self, candidates: Mapping[str, int]) -> None:
        """Sample these types (name -> count at the last census) in the next census: the
        largest ``max_types`` whose instances take weak references. Types no longer planned
        are dropped."""
        chosen = sorted((name for name in candidates if name not in self._unsampled),
                        key=lambda name: (-candidates[name], name))[:self.max_types]
        for name in list(self._cohorts):
            if name not in chosen:
                del self._cohorts[name]
        self._current = {name: _Cohort(0) for name in chosen}
        self._strides = {name: [max(1, candidates[name] // self.per_type), 0] for name in chosen}
        self._names = {}

    def visit(self, chunk: list[object], types: list[type]) -> None:
        """Take the sample from one census chunk (the census calls this)."""
        if not self._current:
            return
        names = self._names
        for kind in set(types):
            if kind in names:
                continue
            name = type_name(kind)
            names[kind] = name if name in self._current else None
            if names[kind] is not None and not getattr(kind, "__weakrefoffset__", 0):
                names[kind] = None
                self._unsampled.add(name)
                del self._current[name]
        for kind in set(types):
            planned = names[kind]
            if planned is None or planned not in self._current:
                continue
            name = planned
            cohort = self._current[name]
            matches = list(compress(chunk, map(is_, types, repeat(kind))))
            cohort.count += len(matches)
            stride = self._strides[name]
            room = self.per_type * 2 - len(cohort.refs)
            if room > 0:
                for obj in islice(matches, stride[1], None, stride[0]):
                    cohort.refs.append(weakref.ref(obj))
                    room -= 1
                    if room == 0:
                        break
            stride[1] = (stride[1] - len(matches)) % stride[0]
            del matches

    def finish(self) -> dict[str, int]:
        """Close this census's cohorts; for each type with a cohort ``age`` censuses old, the
        estimated number of its objects that lived through those censuses."""
        survivors: dict[str, int] = {}
        for name, cohort in self._current.items():
            history = self._cohorts.setdefault(name, deque(maxlen=self.age + 1))
            history.append(cohort)
            if len(history) > self.age:
                oldest = history[0]
                if oldest.refs:
                    alive = sum(1 for ref in oldest.refs if ref() is not None)
                    survivors[name] = round(alive / len(oldest.refs) * oldest.count)
        self._current = {}
        self._names = {}
        return survivors

    def bookkeeping(self) -> tuple[object, ...]:
        """What the sampler keeps: its cohorts of weak references (for the census to leave out)."""
        return self._cohorts, self._current, self._strides, self._names

    def clear(self) -> None:
        """Forget every cohort (after a fork)."""
        self._cohorts.clear()
        self._current = {}
        self._strides = {}
        self._names = {}
