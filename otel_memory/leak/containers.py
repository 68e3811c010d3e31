"""Single containers that keep growing: the census's largest containers, and who holds them.

A type census cannot see a cache without a bound: one dict gains thousands of keys per minute
while the number of dicts stays flat. So each census also keeps the largest containers it
walked past (lists, dicts, sets, deques, tuples and their subclasses; at least
``MIN_CONTAINER_BYTES`` by ``sys.getsizeof``), each as a ``ContainerSample``: its ``id()``
(to follow it from census to census; never dereferenced), its type, its length, its own size
and the type of its newest items. The ranker treats each as a series of (length, size), so a
container whose length keeps setting new peaks becomes a suspect.

Only a suspect is looked up by name: ``find_attribute()`` scans module globals, class
attributes and the attributes of module-level objects for an object with that ``id()`` and
returns a path such as ``myapp.cache:_SESSIONS`` or ``myapp.registry:Registry.handlers``, never
a value.

Example::

    tally = ContainerTally()
    tally.add(chunk, list(map(type, chunk)), list(map(sys.getsizeof, chunk)))
    for sample in tally.largest():
        print(sample.type_name, sample.length, sample.item_type)
"""

from __future__ import annotations

import functools
import heapq
import sys
import types
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import compress, islice
from typing import Any

from ._names import type_name

MIN_CONTAINER_BYTES = 4096
"""A list of about 500 items, a dict of about 170 keys."""
MAX_CONTAINERS = 256
ITEM_SAMPLE = 8
_BASES: tuple[type, ...] = (dict, list, deque, set, frozenset, tuple)
_SKIPPED = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, functools.partial)
# The namespaces of modules and classes, read through the base types' descriptors (no property
# or __getattr__ of the application's runs).
_MODULE_DICT: Callable[[object], dict[str, Any]] = vars(types.ModuleType)["__dict__"].__get__
_TYPE_DICT: Callable[[object], Mapping[str, Any]] = vars(type)["__dict__"].__get__


@dataclass(frozen=True, slots=True)
class ContainerSample:
    """One large container seen by a census: aggregates and its identity, never its items.

    Example::

        ContainerSample(ident=140_000_000, type_name="dict", length=120_000, size=5_243_000,
                        item_type="myapp.Session")
    """

    ident: int
    """``id()`` of the container: follows it across censuses (a reused id with another type is
    another container)."""
    type_name: str
    length: int
    size: int
    """``sys.getsizeof`` of the container itself (its table of references)."""
    item_type: str | None
    """The most common type among its newest items (values, for a mapping)."""


class ContainerTally:
    """Keeps the ``limit`` largest containers seen while a census walks the heap.

    Example::

        tally = ContainerTally(limit=64)
        tally.add(chunk, types, sizes)
        tally.largest()[0].type_name
    """

    def __init__(self, limit: int = MAX_CONTAINERS, min_bytes: int = MIN_CONTAINER_BYTES,
                 exclude: Iterable[object] = ()) -> None:
        self._limit = limit
        self._min_bytes = min_bytes
        self._heap: list[tuple[int, int, ContainerSample]] = []
        self._exclude = frozenset(map(id, exclude))    # the census's own bookkeeping

    def add(self, chunk: list[object], types: list[type], sizes: list[int]) -> None:
        """Look at the objects of one chunk that are large enough to matter."""
        if max(sizes, default=0) < self._min_bytes:
            return
        large = list(map(self._min_bytes.__le__, sizes))
        heap, limit = self._heap, self._limit
        for obj, kind, size in zip(compress(chunk, large), compress(types, large),
                                   compress(sizes, large), strict=True):
            if heap and len(heap) >= limit and size <= heap[0][0]:
                continue
            sample = _sample(obj, kind, size)
            if sample is None or sample.ident in self._exclude:
                continue
            entry = (size, sample.ident, sample)
            if len(heap) < limit:
                heapq.heappush(heap, entry)
            else:
                heapq.heapreplace(heap, entry)

    def largest(self) -> tuple[ContainerSample, ...]:
        """The containers kept, largest first."""
        return tuple(entry[2] for entry in sorted(self._heap, key=lambda e: (-e[0], e[1])))


def _sample(obj: object, kind: type, size: int) -> ContainerSample | None:
    base = next((b for b in _BASES if issubclass(kind, b)), None)
    if base is None:
        return None
    try:
        length: int = getattr(base, "__len__")(obj)  # noqa: B009 - the base's, not a subclass's
        newest = _newest_items(obj, base)
    except (RuntimeError, TypeError):     # changed size while read by another thread
        return None
    item_type = None
    if newest:
        item_type = type_name(Counter(map(type, newest)).most_common(1)[0][0])
    return ContainerSample(id(obj), type_name(kind), length, size, item_type)


def _newest_items(obj: Any, base: type) -> list[object]:
    """Up to ITEM_SAMPLE of the newest items, read through the base type (no user code)."""
    if base is dict:
        return list(islice(reversed(dict.values(obj)), ITEM_SAMPLE))
    if base is list:
        return list(list.__getitem__(obj, slice(-ITEM_SAMPLE, None)))
    if base is tuple:
        return list(tuple.__getitem__(obj, slice(-ITEM_SAMPLE, None)))
    if base is deque:
        return list(islice(deque.__reversed__(obj), ITEM_SAMPLE))
    iterate: Any = getattr(base, "__iter__")  # noqa: B009
    return list(islice(iterate(obj), ITEM_SAMPLE))


def find_attribute(ident: int, modules: Iterable[tuple[str, object]] | None = None) -> str | None:
    """Where a module-level name, a class attribute or an attribute of a module-level object
    holds the object whose ``id()`` is ``ident``: ``"module:NAME"``, ``"module:Class.attr"``
    or ``"module:obj.attr"``; None when not found that close to a module.

    ``modules`` defaults to ``sys.modules``; only names are returned, never values.
    """
    if modules is None:
        modules = list(sys.modules.items())
    deeper: list[tuple[str, str, object]] = []
    for module_name, module in modules:
        # Only through the base types' own slots: an isinstance() or getattr() would run the
        # application's code (a lazy proxy's __class__, a module's __getattr__ or property).
        if not issubclass(type(module), types.ModuleType):
            continue
        try:
            items = list(dict.items(_MODULE_DICT(module)))
        except Exception:  # noqa: BLE001 - changed size meanwhile, or an odd module
            continue
        for name, value in items:
            if id(value) == ident:
                return f"{module_name}:{name}"
            kind = type(value)
            if issubclass(kind, type):
                if _TYPE_DICT(value).get("__module__") == module_name:
                    deeper.append((module_name, name, value))
            elif not issubclass(kind, _SKIPPED) and kind.__dictoffset__:
                deeper.append((module_name, name, value))
    for module_name, name, value in deeper:
        try:
            namespace = (_TYPE_DICT(value) if issubclass(type(value), type)
                         else object.__getattribute__(value, "__dict__"))
            if type(namespace) is not dict and not issubclass(type(value), type):
                continue
            items = list(namespace.items())
        except Exception:  # noqa: BLE001 - a user object's __dict__ may refuse anything
            continue
        for attribute, held in items:
            if id(held) == ident:
                return f"{module_name}:{name}.{attribute}"
    return None
