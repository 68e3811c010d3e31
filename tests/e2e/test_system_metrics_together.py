"""Beside opentelemetry-instrumentation-system-metrics under ``opentelemetry-instrument``: one HELP
line per family in the Prometheus exposition, and ``promtool check metrics`` finds nothing of ours.

Both instrumentors are installed in the test environment and loaded through their entry points,
as a service that already runs system-metrics would load them; the app is scraped from the real
Prometheus exporter and the scrape is linted by the real promtool.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from otel_memory import catalog
from tests.conftest import ROOT, require_tool

pytestmark = pytest.mark.e2e

INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
APP = textwrap.dedent(
    """
    import logging, sys, time
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    kept = []
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        kept.append([{"n": i} for i in range(500)])
        del kept[:-20]
        time.sleep(0.02)
    """
)
SHARED = {spec.prometheus_name for spec in catalog.ALL if spec.shared_with == catalog.SYSTEM_METRICS}
OURS = {spec.prometheus_name for spec in catalog.ALL}
_HELP = re.compile(r"^# HELP (\S+) ", re.MULTILINE)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{[^}]*otel_scope_name=\"([^\"]+)\"", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape_app(tmp_path: Path, **extra: str) -> tuple[str, str]:
    """Run the app under opentelemetry-instrument with the Prometheus exporter; (scrape, stderr)."""
    script = tmp_path / "app.py"
    script.write_text(APP)
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "MEMORY_"))}
    env.update({"OTEL_SERVICE_NAME": "otel-memory-peer", "OTEL_TRACES_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "prometheus",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
                "MEMORY_ENABLE_LEAK_DETECTION": "false", "MEMORY_MONITORING_INTERVAL_MS": "200", **extra})
    process = subprocess.Popen([str(INSTRUMENT), sys.executable, str(script), "30"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    text = ""
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
            except (urllib.error.URLError, ConnectionError):
                continue
            # Two scrapes a little apart: what is left to the peer stays left to it.
            if catalog.MEMORY_ALLOCATED.prometheus_name in text:
                time.sleep(1.0)
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
                break
    finally:
        process.terminate()
        _out, errors = process.communicate(timeout=20)
    assert catalog.MEMORY_ALLOCATED.prometheus_name in text, f"no scrape with our metrics:\n{errors[-3000:]}"
    return text, errors


def _promtool(text: str) -> tuple[int, list[str]]:
    """promtool check metrics of ``text``: its exit code and the names of the metrics it faults."""
    promtool = require_tool("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                            timeout=60, check=False)
    output = (result.stdout + result.stderr).strip()
    assert "error while linting" not in output, output   # a parse error, e.g. a second HELP line
    return result.returncode, [line.split()[0] for line in output.splitlines() if line.strip()]


def test_beside_system_metrics_each_family_has_one_help_line_and_promtool_parses_it(tmp_path: Path) -> None:
    text, errors = _scrape_app(tmp_path)
    helps = _HELP.findall(text)
    twice = sorted({name for name in helps if helps.count(name) > 1})
    assert not twice, f"families with two HELP lines: {twice}"
    scopes: dict[str, set[str]] = {}
    for name, scope in _SAMPLE.findall(text):
        scopes.setdefault(name, set()).add(scope)
    # Both ran: the shared families come from the peer, everything else of ours from us.
    for name in SHARED:
        assert scopes.get(name) == {"opentelemetry.instrumentation.system_metrics"}, (name, scopes.get(name))
    assert scopes[catalog.MEMORY_ALLOCATED.prometheus_name] == {"otel_memory"}
    assert scopes[catalog.PROCESS_PAGING_FAULTS.prometheus_name] == {"otel_memory"}
    _code, faulted = _promtool(text)
    assert not set(faulted) & OURS, f"promtool faults our metrics: {sorted(set(faulted) & OURS)}"
    # What it does fault is the peer's own naming (process_thread_count and the like).
    assert all(name.endswith("_count") and name not in OURS for name in faulted), faulted
    said = [line for line in errors.splitlines() if "left to it" in line]
    assert len(said) == 1 and said[0].startswith("otel_memory INFO "), errors[-3000:]


def test_with_semconv_signals_off_the_shared_families_are_left_out_and_the_scrape_is_lint_clean(
        tmp_path: Path) -> None:
    text, errors = _scrape_app(tmp_path, MEMORY_SEMCONV_SIGNALS="off",
                               OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="system_metrics")
    assert not SHARED & set(_HELP.findall(text)), "the shared families were reported with =off"
    assert catalog.MEMORY_ALLOCATED.prometheus_name in _HELP.findall(text)
    code, faulted = _promtool(text)
    assert (code, faulted) == (0, []), faulted
    assert "MEMORY_SEMCONV_SIGNALS=off" in errors
