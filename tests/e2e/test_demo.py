"""The demo command: serves Prometheus metrics and prints its table, as a user would run it."""

from __future__ import annotations

import re
import socket
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
                  catalog.MEMORY_ALLOCATED_BLOCKS.prometheus_name,
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
    headings = [line for line in output.splitlines() if line.startswith("--- ")]
    heading = re.compile(r"--- \d\d:\d\d:\d\d \(\+\d+ s\) ---")
    assert len(headings) >= 3 and all(heading.fullmatch(h) for h in headings), headings
    # From the second table on, the rss row ends in its change since the last one.
    rss_rows = [line for line in output.splitlines() if line.startswith("rss / peak")]
    assert all(re.search(r" [+-]\d+\.\d MB$", row) for row in rss_rows[1:]), rss_rows


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


_CLIMB = """
import sys
from otel_memory.demo import DemoOptions, run
from otel_memory.probes import read_statm
rss_mb = read_statm("/proc/self/statm")[0] / 2**20
run(DemoOptions(port=0, interval_s=1, duration_s=7, limit_mb=rss_mb + 80, ramp_s=3), sys.stdout)
"""


def test_with_a_limit_the_leak_takes_pressure_to_critical_within_the_ramp() -> None:
    # The leak follows the limit: from the start to past the critical threshold in ramp_s (3 s
    # here, 90 s by default), held below the limit itself.
    result = subprocess.run([sys.executable, "-c", _CLIMB], cwd=ROOT, capture_output=True, text=True,
                            timeout=90)
    assert result.returncode == 0, result.stderr
    output = result.stdout
    levels = [line.split()[1] for line in output.splitlines() if line.startswith("pressure ")]
    assert levels and levels[-1] == "CRITICAL", output
    changes = re.findall(r"Memory pressure changed to (\w+)", output)
    assert changes[-1] == "Critical", changes
    seconds = [int(s) for s in re.findall(r"^--- \S+ \(\+(\d+) s\) ---$", output, re.MULTILINE)]
    first_critical = seconds[levels.index("CRITICAL")]
    assert first_critical <= 6, f"CRITICAL only after {first_critical} s of a 3 s ramp"
    utilization = [float(line.split("/")[2].split("%")[0]) for line in output.splitlines()
                   if line.startswith("limit / utilization")]
    assert max(utilization) < 100, utilization
    # Critical, but the limit itself is not exceeded: the log says which.
    assert "Memory pressure critical:" in output
    assert "Memory limit exceeded" not in output + result.stderr


def test_a_busy_port_gives_one_line_suggesting_port_0() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "otel_memory.cli", "demo", "--port", str(port)],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"otel-memory demo: 127.0.0.1:{port} is already in use; run it with --port 0 for any free port "
        "(or --port N)"]
