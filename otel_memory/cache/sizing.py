"""How many bytes a cache entry takes: its key, its value and the cache's own bookkeeping.

``estimate_size`` (the default) is ``sys.getsizeof`` of an object plus its elements two levels
deep for the common containers (dict, list, tuple, set, frozenset, deque, and instances with
a ``__dict__`` or ``__slots__``); containers of more than ``SAMPLE`` elements are measured on about ``SAMPLE``
elements spread evenly over them and extrapolated. Objects the interpreter shares everywhere
(None, booleans, small ints, the empty and one-character strings) cost nothing. For the exact
built-in types it calls their own ``__sizeof__`` (~6 ns) rather than ``sys.getsizeof`` (~100 ns),
with the same result. An object referenced from
several entries is counted in each of them: the error is an over-count, never an under-count.
``deep_size`` uses pympler's ``asizeof`` (exact for any object graph, 10-100x slower).

``ENTRY_OVERHEAD`` (+ ``EXPIRY_OVERHEAD`` with a TTL) is what SmartCache itself allocates per
entry: its tuple, the OrderedDict slot and node, the expiry float and heap item. The figures
are CPython 3.11's, checked against tracemalloc by the tests.

Example::

    estimate_size({"id": "u1", "tags": ["a", "bc"]})     # dict + keys + values + list elements
    sizer = resolve_sizer("deep")                         # pympler asizeof
    sizer = resolve_sizer(len)                            # any callable returning bytes
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any

from ..errors import ConfigError, SizerError

Sizer = Callable[[Any], int]

#: Elements measured per container before extrapolating.
SAMPLE = 64
#: Levels of containment measured below the object itself.
DEPTH = 2

#: Bytes SmartCache allocates per entry besides key and value: the entry tuple (64), the size
#: int (32), the OrderedDict node (32) and its amortised share of the hash table (~47 at
#: CPython's 2/3 fill and doubling). Measured with tracemalloc: 162-184 bytes.
ENTRY_OVERHEAD = 64 + 32 + 32 + 47
#: Extra bytes per entry with a finite TTL: the expiry float (24), the expiry-heap item (64),
#: its sequence int (32) and list slot (~9). Measured with tracemalloc: 120-128 bytes.
EXPIRY_OVERHEAD = 24 + 64 + 32 + 9

_getsizeof = sys.getsizeof
_SEQUENCES = (list, tuple, set, frozenset, deque)
_NOT_ATTRIBUTES = frozenset({"__dict__", "__weakref__"})
_MAX_SLOT_TYPES = 4096
# The attribute names of each slotted type seen (a type's __slots__ lists only its own).
_slot_names_by_type: dict[type, tuple[str, ...]] = {}
# sys.getsizeof costs ~100 ns (a generic method lookup); the exact types' own __sizeof__ ~6 ns.
# getsizeof adds the garbage collector's header for container types, so the table does too.
_GC_HEADER = sys.getsizeof([]) - [].__sizeof__()
_LEAF_SIZEOF: dict[type, Callable[[Any], int]] = {
    kind: kind.__sizeof__ for kind in (str, bytes, bytearray, int, float, complex)}
_CONTAINER_SIZEOF: dict[type, Callable[[Any], int]] = {
    kind: kind.__sizeof__ for kind in (dict, list, tuple, set, frozenset)}


def _shared_objects() -> tuple[object, ...]:
    shared: list[object] = [None, True, False, Ellipsis, NotImplemented, (), "", b""]
    shared.extend(range(-5, 257))
    shared.extend(chr(code) for code in range(128))
    shared.extend(bytes([code]) for code in range(256))
    return tuple(shared)


# Objects CPython keeps once for the whole process (cached singletons), held here so that their
# ids stay theirs; an element that is one of them costs nothing.
_SHARED_OBJECTS = _shared_objects()
_SHARED: frozenset[int] = frozenset(id(obj) for obj in _SHARED_OBJECTS)


def estimate_size(obj: Any, depth: int = DEPTH) -> int:
    """Bytes of ``obj`` and of its elements ``depth`` levels deep (see the module docstring)."""
    if id(obj) in _SHARED:
        return 0
    kind = type(obj)
    leaf = _LEAF_SIZEOF.get(kind)
    if leaf is not None:
        return leaf(obj)
    container = _CONTAINER_SIZEOF.get(kind)
    size: int = container(obj) + _GC_HEADER if container is not None else _getsizeof(obj)
    if depth <= 0:
        return size
    if isinstance(obj, dict):
        return size + _items_size(obj, depth - 1)
    if isinstance(obj, _SEQUENCES):
        return size + _elements_size(obj, len(obj), depth - 1)
    if isinstance(obj, type):
        return size
    attributes = getattr(obj, "__dict__", None)
    if type(attributes) is dict:
        size += _getsizeof(attributes) + _items_size(attributes, depth - 1)
    slots = _slot_names(kind)
    if slots:
        size += _sum_sizes([getattr(obj, name, None) for name in slots], depth - 1)
    return size


def _slot_names(kind: type) -> tuple[str, ...]:
    """The slot attributes of ``kind`` and its bases, private names mangled (cached per type)."""
    names = _slot_names_by_type.get(kind)
    if names is not None:
        return names
    found: list[str] = []
    for klass in kind.__mro__:
        declared = klass.__dict__.get("__slots__", ())
        for name in (declared,) if isinstance(declared, str) else declared:
            if name in _NOT_ATTRIBUTES:
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"
            found.append(name)
    names = tuple(dict.fromkeys(found))
    if len(_slot_names_by_type) < _MAX_SLOT_TYPES:   # bounded: classes made at run time
        _slot_names_by_type[kind] = names
    return names


def _sum_sizes(elements: Any, depth: int) -> int:
    total = 0
    shared, leaves = _SHARED, _LEAF_SIZEOF
    for element in elements:
        if id(element) in shared:
            continue
        leaf = leaves.get(type(element))
        total += leaf(element) if leaf is not None else estimate_size(element, depth)
    return total


def _spread(elements: Any, count: int) -> list[Any]:
    """About SAMPLE elements spread evenly over the container (not just its first ones)."""
    step = count // SAMPLE
    if isinstance(elements, (list, tuple)):
        return list(elements[::step])
    return list(islice(elements, 0, None, step))


def _elements_size(elements: Any, count: int, depth: int) -> int:
    if count <= SAMPLE:
        return _sum_sizes(elements, depth)
    sample = _spread(elements, count)
    return _sum_sizes(sample, depth) * count // len(sample)


def _items_size(mapping: dict[Any, Any], depth: int) -> int:
    count = len(mapping)
    if count <= SAMPLE:
        return _sum_sizes(mapping, depth) + _sum_sizes(mapping.values(), depth)
    keys = _spread(mapping, count)
    values = _spread(mapping.values(), count)
    return (_sum_sizes(keys, depth) + _sum_sizes(values, depth)) * count // len(keys)


def deep_size(obj: Any) -> int:
    """Bytes of the whole object graph reachable from ``obj`` (pympler ``asizeof``)."""
    from pympler.asizeof import asizeof

    return int(asizeof(obj))  # type: ignore[no-untyped-call]


def resolve_sizer(sizer: Sizer | str | None) -> Sizer:
    """The value sizer for ``sizer``: None (estimate_size), "deep" (deep_size) or a callable."""
    if sizer is None or sizer == "estimate":
        return estimate_size
    if sizer == "deep":
        return deep_size
    if callable(sizer) and not isinstance(sizer, str):
        return sizer
    raise ConfigError(f"sizer={sizer!r} is not a sizer; expected None, 'deep' or a callable "
                      "returning the size of a value in bytes")


def checked_size(sizer: Sizer, value: Any) -> int:
    """``sizer(value)``, with a clear error naming the value's type when the sizer misbehaves."""
    try:
        size = sizer(value)
    except Exception as error:
        raise SizerError(f"the cache sizer {_sizer_name(sizer)} failed on a value "
                         f"of type {type(value).__name__}: {type(error).__name__}") from error
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise SizerError(f"the cache sizer {_sizer_name(sizer)} returned "
                         f"{type(size).__name__} {size if isinstance(size, int) else ''} for a value "
                         f"of type {type(value).__name__}; expected an int >= 0 (bytes)")
    return size


def _sizer_name(sizer: Sizer) -> str:
    """The sizer's name for a message (its qualified name, never its repr)."""
    name = getattr(sizer, "__qualname__", None) or getattr(sizer, "__name__", None)
    return repr(name if isinstance(name, str) else type(sizer).__name__)
