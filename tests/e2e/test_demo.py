"""The demo command: serves Prometheus metrics and prints its table, as a user would run it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from otel_memory import catalog

ROOT = Path(__file__).resolve().parents[2]


def test_demo_serves_metrics_and_prints_the_table() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_memory.cli", "demo", "--port", "0", "--interval", "1",
         "--duration", "6"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", banner)
        assert match, f"no metrics URL in the demo's first line: {banner!r}"
        wanted = {catalog.MEMORY_ALLOCATED.prometheus_name, catalog.MEMORY_PEAK.prometheus_name,
                  catalog.MEMORY_PRESSURE_LEVEL.prometheus_name,
                  catalog.MEMORY_ALLOCATION_COUNT.prometheus_name,
                  catalog.MEMORY_POOL_SIZE.prometheus_name, catalog.MEMORY_POOL_BORROWED.prometheus_name,
                  catalog.MEMORY_CACHE_REQUESTS.prometheus_name}
        deadline = time.monotonic() + 20
        names: set[str] = set()
        while time.monotonic() < deadline and not wanted <= names:
            time.sleep(0.5)
            body = urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/metrics", timeout=5).read()
            names = {line.split("{")[0].split(" ")[0] for line in body.decode().splitlines()
                     if line and not line.startswith("#")}
        assert wanted <= names, f"missing from the demo's /metrics: {sorted(wanted - names)}"
        output, errors = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, errors
    assert "pressure" in output and "cache hit ratio" in output, output
    rss_line = next(line for line in output.splitlines() if line.startswith("rss / peak"))
    rss_mb = float(rss_line.split()[3])
    assert 5 < rss_mb < 4096, rss_line


_RUN_IN_PROCESS = """
import io, socket, sys
from otel_memory.demo import DemoOptions, run
ports = []
run(DemoOptions(port=0, interval_s=0.3, duration_s=0.3, leak=False), io.StringIO(), ready=ports.append)
try:
    socket.create_connection(("127.0.0.1", ports[0]), timeout=2).close()
    print("still serving")
except OSError:
    print("closed")
"""


def test_run_closes_its_metrics_endpoint_when_it_returns() -> None:
    # run() is a library function too: returning must not leave the HTTP server behind.
    result = subprocess.run([sys.executable, "-c", _RUN_IN_PROCESS], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "closed"
