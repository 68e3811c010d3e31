"""The package's public names (otel_memory/__init__.py): loaded on first use, and only what they need."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import otel_memory

INIT = Path(otel_memory.__file__)


def _type_checking_imports() -> dict[str, str]:
    """name -> module of the ``if TYPE_CHECKING:`` imports (what type checkers see)."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If)
                and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]
    return {alias.name: str(node.module) for node in block.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def test_all_is_sorted_and_every_name_has_one_home_that_type_checkers_see_too() -> None:
    public = list(otel_memory.__all__)
    assert public == sorted(public)
    assert set(public) == set(otel_memory._HOMES)
    assert _type_checking_imports() == otel_memory._HOMES


@pytest.mark.parametrize("name", otel_memory.__all__)
def test_every_public_name_is_the_object_its_module_defines(name: str) -> None:
    value = getattr(otel_memory, name)
    module = sys.modules[f"otel_memory.{otel_memory._HOMES[name]}"]
    assert value is getattr(module, name)
    assert name in dir(otel_memory)


def test_an_unknown_name_is_an_attribute_error_that_names_it() -> None:
    with pytest.raises(AttributeError, match="no attribute 'instrumnet'"):
        otel_memory.instrumnet  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError):
        exec("from otel_memory import MemoryManagr", {})


def test_a_submodule_is_imported_on_first_use_as_an_attribute() -> None:
    code = ("import otel_memory\nprint(otel_memory.pool.ObjectPool is otel_memory.ObjectPool, "
            "otel_memory.workers.__name__)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.split() == ["True", "otel_memory.workers"]


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(output.stdout.splitlines()[-1]))


def test_import_loads_nothing_and_instrument_loads_only_what_it_runs() -> None:
    bare = _modules_after("import otel_memory")
    assert {name for name in bare if name.startswith("otel_memory")} == {
        "otel_memory", "otel_memory._version"}
    running = _modules_after(
        "import otel_memory\nfrom opentelemetry.sdk.metrics import MeterProvider\n"
        "manager = otel_memory.instrument(meter_provider=MeterProvider())\nmanager.shutdown()")
    assert "otel_memory.leak.detector" in running and "otel_memory.runtime_metrics" in running
    # pools, caches, responses, auto-instrumentation and the opt-in leak tools stay unloaded
    for absent in ("otel_memory.pool", "otel_memory.cache", "otel_memory.response",
                   "otel_memory.instrumentor", "opentelemetry.instrumentation",
                   "otel_memory.leak.attribution", "pympler", "difflib"):
        assert absent not in running, absent
