"""The largest containers of a census, their newest items' type, and who holds them by name."""

from __future__ import annotations

import collections
import gc
import sys
import types

from otel_memory.leak.census import take_census, type_name
from otel_memory.leak.containers import ContainerTally, find_attribute


class Session:
    pass


class Registry:
    handlers: dict[str, object] = {}


_SESSIONS: dict[int, Session] = {}


def test_the_largest_containers_are_kept_with_length_size_and_newest_item_type() -> None:
    sessions = {i: Session() for i in range(3000)}
    queue = collections.deque(float(i) for i in range(2000))
    small = [1, 2, 3]
    tally = ContainerTally(limit=2)
    objects: list[object] = [small, queue, sessions]
    tally.add(objects, list(map(type, objects)), list(map(sys.getsizeof, objects)))
    largest = tally.largest()
    assert [(s.type_name, s.length, s.item_type) for s in largest] == [
        ("dict", 3000, type_name(Session)), ("collections.deque", 2000, "float")]
    assert largest[0].ident == id(sessions) and largest[0].size == sys.getsizeof(sessions)


def test_a_census_follows_a_growing_module_dict_even_when_the_collector_does_not_track_it() -> None:
    atoms = {i: f"v{i}" for i in range(5000)}     # ints to strs: untracked by the collector
    gc.collect()
    assert not gc.is_tracked(atoms)
    holder = [atoms]
    snapshot = take_census()
    found = [s for s in snapshot.containers if s.ident == id(atoms)]
    assert found and found[0].length == 5000 and found[0].item_type == "str"
    # its 5000 strings are counted, held by a dict
    assert snapshot.holders_of("str")["dict"].count >= 5000
    del holder


def test_a_census_never_lists_its_own_bookkeeping_as_a_container() -> None:
    snapshot = take_census(chunk_size=500)
    assert all(s.type_name != "collections.Counter" for s in snapshot.containers)
    assert all(s.length < snapshot.objects_scanned // 2 for s in snapshot.containers)


def test_the_attribute_holding_a_container_is_found_by_name_only() -> None:
    module = types.ModuleType("myapp.cache")
    secret_cache: dict[str, str] = {"token": "sk-do-not-print"}
    module.__dict__.update(_SESSIONS=secret_cache, Registry=Registry, settings=types.SimpleNamespace())
    Registry.__module__ = "myapp.cache"
    module.settings.overrides = []
    modules = [("myapp.cache", module)]
    try:
        assert find_attribute(id(secret_cache), modules) == "myapp.cache:_SESSIONS"
        assert find_attribute(id(Registry.handlers), modules) == "myapp.cache:Registry.handlers"
        assert find_attribute(id(module.settings.overrides), modules) == "myapp.cache:settings.overrides"
        assert find_attribute(id(object()), modules) is None
    finally:
        Registry.__module__ = __name__
    assert find_attribute(id(_SESSIONS)) == f"{__name__}:_SESSIONS"      # sys.modules by default


def test_a_container_whose_iteration_would_run_user_code_is_read_through_its_base_type() -> None:
    class Loud(list[int]):
        def __iter__(self) -> collections.abc.Iterator[int]:
            raise AssertionError("user code ran")

        def __len__(self) -> int:
            raise AssertionError("user code ran")

        def __getitem__(self, index: object) -> int:  # type: ignore[override]
            raise AssertionError("user code ran")

    loud = Loud(range(2000))
    tally = ContainerTally()
    tally.add([loud], [Loud], [sys.getsizeof(loud)])
    (sample,) = tally.largest()
    assert sample.length == 2000 and sample.item_type == "int"


class _LazyProxy:
    """Like a lazy object of a web framework: asking for its class builds its target."""

    built: list[bool] = []

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        _LazyProxy.built.append(True)
        return dict


def test_naming_a_container_runs_none_of_the_applications_code() -> None:
    module = types.ModuleType("app_settings")
    module.lazy_user = _LazyProxy()     # type: ignore[attr-defined]
    module.SESSIONS = {}                # type: ignore[attr-defined]
    found = find_attribute(id(module.SESSIONS), [("app_settings", module)])  # type: ignore[attr-defined]
    assert found == "app_settings:SESSIONS"
    assert _LazyProxy.built == [], "the proxy was not asked for its class"
