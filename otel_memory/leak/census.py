"""A type census of the heap, taken in chunks so that the application never waits long.

``gc.get_objects()`` lists every object the collector tracks; the census walks that list in
chunks of ``chunk_size`` objects and releases the GIL between chunks (``time.sleep(0)``) once
PAUSE_EVERY_S has passed since it last did, so a thread that wants to run waits about one
chunk, not for the whole heap, and a census among busy threads does not wait for the GIL
after every small step. Each chunk is counted
with C-level iterators only (``map``, ``zip``, ``Counter.update``): per type the number of
objects and the bytes ``sys.getsizeof`` reports.

Objects the collector does not track (strings, ints, dicts holding only atoms) are counted one
reference away from a tracked container, as pympler's ``muppy`` does, so that a leak of
strings or of small dicts into a list shows under ``str`` and ``dict``, not only as the list's
own growth. Those untracked objects are de-duplicated within a chunk (by identity); an object
shared by containers of several chunks may be counted more than once. The census is made for
growth over time, where that constant error cancels out.

A container larger than a chunk (a list of a million items, a big dict or set) has its
references read in slices, with pauses between them as between chunks, so that it does not
turn into one long call.
The one step that cannot be split is ``gc.get_objects()`` itself: one C call, about 10-15 ms
per million tracked objects (see benchmarks/bench_leak.py).

Automatic garbage collection is held off while a census runs (it would untrack tuples and
dicts already counted, which would then be counted twice).

Only aggregates are kept: the snapshot holds type names, counts and sizes, never an object.
The list of objects is consumed from its end while walking, so the census stops holding each
chunk of objects as soon as it is counted. An object whose ``__sizeof__`` fails counts with
0 bytes.

Example::

    before = take_census()
    ...
    after = take_census()
    for row in compare(before, after).rows[:5]:
        print(row.type_name, row.count_delta, row.size_delta)
"""

from __future__ import annotations

import gc
import sys
import time
import types
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain, compress, filterfalse, repeat
from operator import is_, not_
from typing import Any

from .. import forking
from ._names import type_name
from .containers import MIN_CONTAINER_BYTES, ContainerSample, ContainerTally

DEFAULT_CHUNK_SIZE = 5_000

# pympler summary rows: [type name, object count, total bytes]
SummaryRows = list[list[object]]
# Sees each chunk of objects and their types while a census walks (must not keep them).
ChunkVisitor = Callable[[list[object], list[type]], None]


@dataclass(frozen=True, slots=True)
class TypeTotal:
    """Object count and bytes of one type in a census.

    Example::

        TypeTotal("dict", 12_000, 1_500_000)
    """

    type_name: str
    count: int
    size: int


@dataclass(frozen=True)
class HeapSnapshot:
    """The aggregates of one census: per type name, how many objects and how many bytes.

    Example::

        snapshot = take_census()
        snapshot.totals["dict"].count, snapshot.objects_scanned, snapshot.heap_bytes
        snapshot.summary()     # pympler summary rows: [[type name, count, bytes], ...]
    """

    taken_at: float
    """time.monotonic() when the census finished."""
    totals: dict[str, TypeTotal]
    objects_scanned: int
    heap_bytes: int
    duration_s: float
    cpu_s: float
    held: dict[tuple[str, str], TypeTotal] = field(default_factory=dict)
    """Untracked items by (item type, holder): ``("str", "list")`` counts the strings held
    directly by lists (see ``census.holder_name``)."""
    containers: tuple[ContainerSample, ...] = ()
    """The largest containers, largest first (containers.py)."""

    def holders_of(self, name: str) -> dict[str, TypeTotal]:
        """How the untracked items of type ``name`` are held: {holder: totals}."""
        return {holder: total for (item, holder), total in self.held.items() if item == name}

    def summary(self) -> SummaryRows:
        """The snapshot as pympler summary rows (``pympler.summary.print_`` can show them)."""
        return [[total.type_name, total.count, total.size] for total in self.totals.values()]


@dataclass(frozen=True, slots=True)
class TypeDelta:
    """How one type changed between two snapshots.

    Example::

        TypeDelta("myapp.Session", count_delta=2000, size_delta=112_000)
    """

    type_name: str
    count_delta: int
    size_delta: int


@dataclass(frozen=True)
class SnapshotDiff:
    """The change from one snapshot to a later one, largest growth in bytes first.

    Example::

        diff = compare(before, after)
        diff.rows[0].type_name, diff.elapsed_s, diff.size_delta
    """

    rows: tuple[TypeDelta, ...]
    elapsed_s: float

    @property
    def size_delta(self) -> int:
        """Net change of the counted bytes."""
        return sum(row.size_delta for row in self.rows)

    @property
    def count_delta(self) -> int:
        """Net change of the counted objects."""
        return sum(row.count_delta for row in self.rows)


def take_census(chunk_size: int = DEFAULT_CHUNK_SIZE,
                pause: Callable[[float], None] = time.sleep,
                visit: ChunkVisitor | None = None,
                clock: Callable[[], float] = time.perf_counter) -> HeapSnapshot:
    """Count every tracked object, and the untracked ones they hold, by type, in chunks.

    ``pause(0)`` runs before the heap is listed and then between chunks (or slices of a huge
    container) once PAUSE_EVERY_S of ``clock`` passed since the last; it releases the GIL so
    other threads run. ``visit``, when given, sees each chunk and the types of its objects (the
    survival sampler uses it); it must not keep the chunk.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r}; expected a positive int")
    started = time.perf_counter()
    cpu_started = time.thread_time()
    tally = _Tally(chunk_size, _Pauses(pause, clock))
    forking.after_fork_in_child(_RUNNING)
    # A collection in the middle of the census would untrack tuples and dicts it already
    # counted as tracked, and they would be counted again as untracked items: automatic
    # collection waits until the census is done (an explicit gc.collect() still runs).
    was_enabled = gc.isenabled()
    objects: list[object] = []
    try:
        if was_enabled:
            _RUNNING.gc_held += 1
            gc.disable()
        pause(0)         # the one long step comes next: let other threads run just before it
        objects = gc.get_objects()
        _RUNNING.heaps[id(objects)] = objects
        tally.containers = ContainerTally(exclude=(objects, tally.pairs, *tally.held.values(),
                                                   *tally.sampled.values()))
        scanned = len(objects)
        while objects:
            tally.pause(0)
            chunk = objects[-chunk_size:]
            del objects[-chunk_size:]
            types = list(map(type, chunk))
            scanned += _count_chunk(chunk, types, tally, tally.pause)
            if visit is not None:
                visit(chunk, types)
            del chunk, types
    finally:
        _RUNNING.heaps.pop(id(objects), None)
        del objects
        if was_enabled:
            _RUNNING.gc_held -= 1
            gc.enable()
    totals = _totals(chain(tally.pairs.items(), *(held.items() for held in tally.held.values()),
                           *(held.items() for held in tally.sampled.values())))
    heap_bytes = sum(total.size for total in totals.values())
    return HeapSnapshot(
        taken_at=time.monotonic(), totals=totals, objects_scanned=scanned, heap_bytes=heap_bytes,
        duration_s=time.perf_counter() - started, cpu_s=time.thread_time() - cpu_started,
        held=_held(tally.held, tally.sampled),
        containers=tally.containers.largest())


PAUSE_EVERY_S = 0.004
"""A census lets other threads run (a pause between two chunks or slices) once this long has
passed since its last pause: often enough that a thread waits about one chunk, and no more
often, since each pause is a hand-over of the GIL (about 50 us alone; the 5 ms switch
interval when other threads want to run) and automatic collection is off meanwhile."""


class _Pauses:
    """``pause(0)`` once PAUSE_EVERY_S of ``clock`` passed since the last one."""

    __slots__ = ("clock", "pause", "since")

    def __init__(self, pause: Callable[[float], None], clock: Callable[[], float]) -> None:
        self.pause, self.clock = pause, clock
        self.since = clock()

    def __call__(self, seconds: float) -> None:
        if self.clock() - self.since >= PAUSE_EVERY_S:
            self.pause(seconds)
            self.since = self.clock()


class _Running:
    """The censuses under way in this process. A child forked in the middle of one has no
    thread to finish it: its hook lets go of the heap's object list (it would keep every object
    of the parent's heap alive) and turns automatic collection back on."""

    def __init__(self) -> None:
        self.heaps: dict[int, list[object]] = {}
        self.gc_held = 0     # censuses that turned automatic collection off

    def _after_fork_in_child(self) -> None:
        for objects in list(self.heaps.values()):
            objects.clear()
        self.heaps.clear()
        if self.gc_held:
            self.gc_held = 0
            gc.enable()


_RUNNING = _Running()


class _Tally:
    """What a census counts while it walks: (type, size) pairs, untracked items by holder,
    and the largest containers."""

    __slots__ = ("big", "chunks", "containers", "held", "pairs", "pause", "sampled")

    def __init__(self, chunk_size: int, pause: _Pauses) -> None:
        self.pause = pause
        self.pairs: Counter[tuple[type, int]] = Counter()     # (type, size) -> tracked objects
        # holder -> (type, size) -> untracked objects it holds ("" for holders not told apart)
        self.held: dict[str, Counter[tuple[type, int]]] = {
            holder: Counter() for holder in ("", *_HOLDERS.values(), "object")}
        # the same for the small holders of the chunks whose holders are sampled
        self.sampled: dict[str, Counter[tuple[type, int]]] = {
            holder: Counter() for holder in (*_HOLDERS.values(), "object")}
        self.containers = ContainerTally()
        self.chunks = 0
        self.big = 8 * chunk_size     # bytes of a container holding about chunk_size references


HOLDER_SAMPLE_EVERY = 8
"""The untracked items of large containers (``MIN_CONTAINER_BYTES``) are always counted under
their holder's type; those of the small objects of one chunk in this many, and scaled up. Telling
every small holder apart would cost a fifth more CPU per census."""


def _count_chunk(chunk: list[object], types: list[type], tally: _Tally,
                 pause: Callable[[float], None]) -> int:
    """Count a chunk and the untracked objects it holds; how many of those there were."""
    sizes = _sizes(chunk)
    # (type, size) pairs are counted in C; a type has few distinct sizes.
    tally.pairs.update(zip(types, sizes, strict=True))
    largest = max(sizes, default=0)
    if largest >= MIN_CONTAINER_BYTES:
        tally.containers.add(chunk, types, sizes)
    big = tally.big
    tally.chunks += 1
    sample = tally.chunks % HOLDER_SAMPLE_EVERY == 0
    if largest <= big:
        return _count_untracked_of_chunk(chunk, types, sizes, largest, tally, sample)
    # A huge container (a list of a million items) would make one get_referents() call as
    # long as the whole census: its references are read in slices, with pauses between.
    small = list(map(big.__ge__, sizes))
    scanned = _count_untracked_of_chunk(list(compress(chunk, small)), list(compress(types, small)),
                                        list(compress(sizes, small)), big, tally, sample)
    for container in compress(chunk, map(big.__lt__, sizes)):
        holder = holder_name(type(container))
        for part in _referents_in_slices(container, big // 8):
            scanned += _count_untracked(part, tally.held[holder], tally)
            pause(0)
    return scanned


def holder_name(kind: type) -> str:
    """The holder an untracked item is counted under: a builtin container's name, else
    ``object`` (the attributes of instances, closures, frames, ...)."""
    return _HOLDERS.get(kind, "object")


_HOLDERS: dict[type, str] = {list: "list", dict: "dict", tuple: "tuple", set: "set",
                             frozenset: "frozenset", deque: "collections.deque"}


def _count_untracked_of_chunk(chunk: list[object], types: list[type], sizes: list[int],
                              largest: int, tally: _Tally, sample: bool) -> int:
    """The untracked referents of a chunk, counted once each: under their holder's type for
    large containers always, for small holders in a sampled chunk; else under ``""``."""
    if sample:
        return _count_by_holder(chunk, types, tally, tally.sampled, {})
    if largest < MIN_CONTAINER_BYTES:
        return _count_untracked(gc.get_referents(*chunk), tally.held[""], tally)
    large = list(map(MIN_CONTAINER_BYTES.__le__, sizes))
    seen: dict[int, object] = {}
    scanned = _count_by_holder(list(compress(chunk, large)), list(compress(types, large)), tally,
                               tally.held, seen)
    small = gc.get_referents(*compress(chunk, map(not_, large)))
    return scanned + _count_untracked(small, tally.held[""], tally, seen)


def _count_by_holder(chunk: list[object], types: list[type], tally: _Tally,
                     counters: dict[str, Counter[tuple[type, int]]], seen: dict[int, object]) -> int:
    """Untracked referents of ``chunk`` counted per holder type (builtin containers one by one,
    everything else as ``object``); an item held by several kinds of holder counts once."""
    present = set(types)
    codes = list(map(_HOLDERS.get, types))     # the holder's name, or None for any other type
    scanned = 0
    for kind, holder in _HOLDERS.items():
        if kind in present:
            scanned += _count_untracked(
                gc.get_referents(*compress(chunk, map(is_, codes, repeat(holder)))),
                counters[holder], tally, seen)
    if not present <= _HOLDERS.keys():
        scanned += _count_untracked(gc.get_referents(*compress(chunk, map(is_, codes, repeat(None)))),
                                    counters["object"], tally, seen)
    return scanned


def _referents_in_slices(container: Any, size: int) -> Iterator[list[object]]:
    """The references of a big container, ``size`` at a time, read through its base type's
    own methods: a subclass's __len__, __getitem__ or values() (the application's code) never
    runs. A container that changes size meanwhile (another thread) or refuses is skipped."""
    kind = type(container)
    try:
        if issubclass(kind, (list, tuple)):
            base: Any = list if issubclass(kind, list) else tuple
            for start in range(0, base.__len__(container), size):
                yield list(base.__getitem__(container, slice(start, start + size)))
            return
        if issubclass(kind, dict):
            parts: list[list[object]] = [list(dict.keys(container)), list(dict.values(container))]
        elif issubclass(kind, (set, frozenset, deque)):
            base = next(base for base in (set, frozenset, deque) if issubclass(kind, base))
            parts = [list(base.__iter__(container))]
        else:
            parts = [gc.get_referents(container)]
    except Exception:  # noqa: BLE001 - changed size while being copied, or a broken object
        return
    for items in parts:
        for start in range(0, len(items), size):
            yield items[start:start + size]


def _count_untracked(referents: list[object], counter: Counter[tuple[type, int]], tally: _Tally,
                     seen: dict[int, object] | None = None) -> int:
    """Count the untracked objects among ``referents`` once each (and not again when already
    in ``seen``, the items of other holders of the same chunk) into ``counter``."""
    untracked = list(filterfalse(gc.is_tracked, referents))
    del referents
    by_id = dict(zip(map(id, untracked), untracked, strict=True))
    del untracked
    if seen is not None:
        if seen:
            for key in by_id.keys() & seen.keys():
                del by_id[key]
        seen.update(by_id)
    unique = list(by_id.values())
    del by_id
    kinds = list(map(type, unique))
    sizes = _sizes(unique)
    counter.update(zip(kinds, sizes, strict=True))
    scanned = len(unique)
    if max(sizes, default=0) >= MIN_CONTAINER_BYTES:
        large = list(map(MIN_CONTAINER_BYTES.__le__, sizes))
        # A big container the collector does not track (a dict of a million str -> int, a long
        # tuple of numbers): its items are counted too, and it can be a growing container.
        unique = list(compress(unique, large))
        kinds = list(compress(kinds, large))
        tally.containers.add(unique, kinds, list(compress(sizes, large)))
        for container in unique:
            inner = tally.held[holder_name(type(container))]
            for part in _referents_in_slices(container, tally.big // 8):
                scanned += _count_untracked(part, inner, tally)
                tally.pause(0)
    return scanned


def _sizes(objects: list[object]) -> list[int]:
    """sys.getsizeof of each object; 0 for one whose own __sizeof__ fails."""
    try:
        return list(map(sys.getsizeof, objects))
    except Exception:  # noqa: BLE001 - a user's __sizeof__ may raise anything
        return [_size_of(obj) for obj in objects]


def _size_of(obj: object) -> int:
    try:
        return sys.getsizeof(obj)
    except Exception:  # noqa: BLE001
        return 0


def _totals(pairs: Iterable[tuple[tuple[type, int], int]]) -> dict[str, TypeTotal]:
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    names: dict[type, str] = {}
    for (kind, size), count in pairs:
        name = names.get(kind)
        if name is None:
            name = names[kind] = type_name(kind)
        counts[name] = counts.get(name, 0) + count
        sizes[name] = sizes.get(name, 0) + size * count
    return {name: TypeTotal(name, counts[name], sizes[name]) for name in counts}


def _held(held: dict[str, Counter[tuple[type, int]]],
          sampled: dict[str, Counter[tuple[type, int]]]) -> dict[tuple[str, str], TypeTotal]:
    """Untracked items by (type name, holder): exact for large containers, plus the sampled
    small holders scaled up by HOLDER_SAMPLE_EVERY."""
    result: dict[tuple[str, str], TypeTotal] = {}
    for counters, scale in ((held, 1), (sampled, HOLDER_SAMPLE_EVERY)):
        for holder, pairs in counters.items():
            if not holder:
                continue
            for name, total in _totals(pairs.items()).items():
                before = result.get((name, holder), TypeTotal(name, 0, 0))
                result[(name, holder)] = TypeTotal(name, before.count + scale * total.count,
                                                   before.size + scale * total.size)
    return result


_OWN_SKIPPED = (type, types.ModuleType, types.FunctionType, types.MethodType,
                types.BuiltinFunctionType, types.CodeType, types.FrameType)


def own_objects(roots: Iterable[object], depth: int = 5) -> dict[str, TypeTotal]:
    """What a census counts of the objects ``roots`` hold (the detector's own bookkeeping), by
    type: so that the detector can leave its own histories, keys and samples out of what it
    ranks. Walks at most ``depth`` references deep and never into types, modules or code;
    singletons and cached small ints are left out (they are shared with the application)."""
    seen: set[int] = set()
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    level = [obj for obj in roots]
    for _ in range(depth):
        below: list[object] = []
        for obj in level:
            if id(obj) in seen or obj is None or isinstance(obj, (bool, *_OWN_SKIPPED)) or (
                    type(obj) is int and -5 <= obj <= 256):
                continue
            seen.add(id(obj))
            name = type_name(type(obj))
            counts[name] += 1
            sizes[name] += _size_of(obj)
            below += gc.get_referents(obj)
        level = below
    return {name: TypeTotal(name, counts[name], sizes[name]) for name in counts}


def subtract(snapshot: HeapSnapshot, own: dict[str, TypeTotal]) -> HeapSnapshot:
    """The snapshot less ``own`` (see own_objects), never below zero."""
    if not own:
        return snapshot
    totals = dict(snapshot.totals)
    for name, mine in own.items():
        total = totals.get(name)
        if total is not None:
            totals[name] = TypeTotal(name, max(0, total.count - mine.count),
                                     max(0, total.size - mine.size))
    return replace(snapshot, totals=totals)


def compare(before: HeapSnapshot, after: HeapSnapshot) -> SnapshotDiff:
    """What changed from ``before`` to ``after``, through pympler's ``summary.get_diff``."""
    for name, value in (("before", before), ("after", after)):
        if not isinstance(value, HeapSnapshot):
            raise TypeError(f"{name}={type(value).__name__}; expected a HeapSnapshot from snapshot()")
    from pympler import summary  # loaded by the first explicit diff, not by every detector

    rows = [TypeDelta(str(key), int(count), int(size))  # type: ignore[call-overload]
            for key, count, size in summary.get_diff(  # type: ignore[no-untyped-call]
                before.summary(), after.summary())]
    rows = [row for row in rows if row.count_delta or row.size_delta]
    rows.sort(key=lambda row: (-row.size_delta, -row.count_delta, row.type_name))
    return SnapshotDiff(tuple(rows), after.taken_at - before.taken_at)
