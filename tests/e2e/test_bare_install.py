"""The bare wheel, installed as a new user would (``pip install otel-memory``, no extras).

The wheel is built from this tree into a temporary directory and installed into a fresh virtual
environment with its core dependencies from the package index. Then: the library works on the
OpenTelemetry API alone (no SDK), ``--version`` answers, and every command or name that needs an
extra says which one instead of ending in a ModuleNotFoundError. Skips when the index cannot be
reached, except under CI=true.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_memory import __version__
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

_OFFLINE = ("Temporary failure in name resolution", "Failed to establish a new connection",
            "Network is unreachable",
            "No matching distribution found", "Could not find a version", "ConnectTimeoutError", "ProxyError")


@dataclass(frozen=True)
class Bare:
    """The wheel and the environment it was installed into."""

    wheel: Path
    python: Path
    bin: Path


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def _unreachable(result: subprocess.CompletedProcess[str], what: str) -> None:
    output = result.stdout + result.stderr
    if result.returncode == 0:
        return
    if any(sign in output for sign in _OFFLINE) and os.environ.get("CI") != "true":
        pytest.skip(f"{what}: the package index cannot be reached ({output.strip().splitlines()[-1]})")
    pytest.fail(f"{what} failed:\n{output[-4000:]}")


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bare]:
    tmp = tmp_path_factory.mktemp("bare")
    # Built from a copy: setuptools leaves a build/ folder beside the sources and reuses it.
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "otel_memory", source / "otel_memory",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = _pip("wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(source), cwd=tmp)
    _unreachable(built, "building the wheel")
    [wheel] = (tmp / "dist").glob("otel_memory-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = _pip("--python", str(python), "install", "-q", str(wheel), cwd=tmp)
    _unreachable(installed, "installing the wheel")
    yield Bare(wheel=wheel, python=python, bin=venv / "bin")


def _run(bare: Bare, *command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OTEL_", "MEMORY_", "PYTHON"))}
    return subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_the_wheel_metadata_is_a_librarys(bare: Bare) -> None:
    with zipfile.ZipFile(bare.wheel) as wheel:
        [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_string(wheel.read(name).decode())
        licenses = [n for n in wheel.namelist() if n.endswith("licenses/LICENSE")]
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"] and licenses
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(urls)
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"sdk", "otlp", "prometheus", "dashboards", "db", "http", "demo"} <= extras
    assert "test" not in extras, "test tools are a dependency group, not a published extra"
    core = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("=")[0].strip().lower() for r in core) == [
        "opentelemetry-api", "opentelemetry-instrumentation", "psutil", "pympler"]


_LIBRARY = textwrap.dedent(
    """
    import importlib.util, sys
    assert importlib.util.find_spec("opentelemetry.sdk") is None, "the SDK came with the bare install"
    import otel_memory
    manager = otel_memory.instrument()           # no SDK configured: no-op meters, the manager works
    stats = manager.get_memory_stats()
    assert stats.allocated_bytes > 0 and manager.get_memory_pressure().name == "LOW"
    otel_memory.uninstrument()
    assert "opentelemetry.sdk" not in sys.modules
    print(otel_memory.__version__)
    """
)


def test_the_library_runs_on_the_api_alone(bare: Bare, tmp_path: Path) -> None:
    result = _run(bare, str(bare.python), "-c", _LIBRARY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__
    version = _run(bare, str(bare.bin / "otel-memory"), "--version", cwd=tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, f"otel-memory {__version__}")
    docs = _run(bare, str(bare.bin / "otel-memory"), "docs", "--out", "metrics.md", cwd=tmp_path)
    assert docs.returncode == 0, docs.stderr
    assert (tmp_path / "metrics.md").read_text() == (ROOT / "docs" / "metrics.md").read_text()


@pytest.mark.parametrize(("command", "extra"), [
    (["dashboards", "--out", "out"], "dashboards"),
    (["alerts", "--out", "out"], "dashboards"),
    (["demo", "--port", "0", "--duration", "1"], "demo"),
])
def test_commands_that_need_an_extra_say_which(bare: Bare, tmp_path: Path, command: list[str],
                                               extra: str) -> None:
    result = _run(bare, str(bare.bin / "otel-memory"), *command, cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"otel-memory: otel-memory {command[0]} needs ")
    assert line.endswith(f"which is not installed: pip install 'otel-memory[{extra}]'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("statement", "message"), [
    ("from otel_memory.integration import HttpClientPool",
     "otel_memory.integration.HttpClientPool needs httpx, which is not installed: "
     "pip install 'otel-memory[http]'"),
    ("import otel_memory.workers",
     "otel_memory.workers needs opentelemetry.sdk, which is not installed: pip install 'otel-memory[otlp]'"),
])
def test_a_name_that_needs_an_extra_says_which(bare: Bare, tmp_path: Path, statement: str,
                                              message: str) -> None:
    result = _run(bare, str(bare.python), "-c", statement, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"otel_memory._extras.MissingExtraError: {message}"
