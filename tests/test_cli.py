"""The otel-memory command: its subcommands write what the generators make, bad input is refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from otel_memory import __version__
from otel_memory.cli import main
from otel_memory.docs import render_metrics_markdown
from tests.conftest import ROOT


def test_docs_writes_the_metrics_reference(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "metrics.md"
    assert main(["docs", "--out", str(out)]) == 0
    assert out.read_text() == render_metrics_markdown() == (ROOT / "docs" / "metrics.md").read_text()


def test_dashboards_and_alerts_write_what_is_committed(tmp_path: Path) -> None:
    assert main(["dashboards", "--out", str(tmp_path / "dashboards")]) == 0
    assert main(["alerts", "--out", str(tmp_path / "alerts")]) == 0
    for name in ("memory-overview.json", "memory-pools.json", "memory-caches.json", "memory-leaks.json"):
        assert (tmp_path / "dashboards" / name).read_text() == (ROOT / "dashboards" / name).read_text()
    rules = "otel-memory.rules.yml"
    assert (tmp_path / "alerts" / rules).read_text() == (ROOT / "alerts" / rules).read_text()


@pytest.mark.parametrize(("argv", "expected"), [
    (["demo", "--interval", "soon"], "'soon' is not a number"),
    (["demo", "--duration", "-3"], "is negative"),
    (["alerts", "--out", "x", "--for-scale", "2"], "for_scale=2.0 is out of range"),
    (["alerts", "--out", "x", "--runbook-url", "runbook.md"], "expected an http:// or https:// URL"),
    (["launch"], "invalid choice: 'launch'"),
])
def test_bad_arguments_exit_2_with_a_message_naming_them(
        argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"otel-memory {__version__}"
    assert __version__ == "0.1.0"


_WITHOUT = """
import sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r} or name.startswith({module!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
from otel_memory.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize(("argv", "module", "extra"), [
    (["dashboards", "--out", "x"], "grafanalib", "dashboards"),
    (["alerts", "--out", "x"], "yaml", "dashboards"),
    (["demo", "--port", "0", "--duration", "1"], "opentelemetry.sdk", "demo"),
    (["demo", "--port", "0", "--duration", "1"], "prometheus_client", "demo"),
])
def test_a_missing_extra_is_one_line_naming_it(argv: list[str], module: str, extra: str,
                                               tmp_path: Path) -> None:
    # In a fresh interpreter where ``module`` cannot be imported, as if it were not installed.
    result = subprocess.run([sys.executable, "-c", _WITHOUT.format(module=module, argv=argv)], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr == (f"otel-memory: otel-memory {argv[0]} needs {module}, which is not installed: "
                             f"pip install 'otel-memory[{extra}]'\n")
    assert not (tmp_path / "x").exists()


def test_a_busy_demo_port_is_one_line_suggesting_port_0(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--port", str(port), "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert err == (f"otel-memory demo: 127.0.0.1:{port} is already in use; run it with --port 0 for any "
                   "free port (or --port N)\n")
