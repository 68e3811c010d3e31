"""Exporter down: OTLP over gRPC and over HTTP to a closed loopback port, beside a baseline.

Each pair runs two copies of ``exporter_app`` at the same time: the baseline exports nothing,
the other exports metrics and spans to a port nobody listens on. Both have a manager, a leak
detector, a pool and a cache, and count iterations of the same application work in the same
seconds. With two cores each copy is pinned to one of them and the two swap cores every second,
so neither gets the better core. Throughput is reported as the median of the per-second ratios,
the ratio of the totals and the ratio per CPU second; on a shared machine they wander by a few
percent from run to run. What the application loses is bounded by the CPU the exporting threads
take beyond the baseline's (on its core, holding its GIL): that share is what the long profile
holds under 2%. RSS is sampled every second, the warnings of each exporter are counted before
and after the rate limiter, and the end of the exporting copy is timed.

Example::

    row = exporter_down(SHORT)
    row.figures["grpc"]["ratio"], row.figures["http"]["passed"]
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .profile import Profile, Row

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
#: Seconds between two swaps of the cores of a pair.
SWAP_S = 1.0
#: Seconds a copy may take to end after its work with the collector down (the SDK alone waits
#: 7 to 30 s: its exporters retry their last export until their timeout).
EXIT_LIMIT_S = 5.0
#: RSS growth allowed between the first quarter of a run and its end.
RSS_GROWTH_LIMIT = 32 * MB


def closed_port() -> int:
    """A loopback port that was free a moment ago and that nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(mode: str, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "MEMORY_"))}
    env.update(PYTHONPATH=str(ROOT), OTEL_SERVICE_NAME=f"reliability-{mode}",
               OTEL_METRIC_EXPORT_INTERVAL="1000", OTEL_BSP_SCHEDULE_DELAY="1000")
    if mode != "none":
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
                   OTEL_EXPORTER_OTLP_PROTOCOL="grpc" if mode == "grpc" else "http/protobuf")
    return env


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        with contextlib.suppress(OSError):   # the process already ended
            os.sched_setaffinity(pid, {cpu})


def run_pair(mode: str, seconds: float, exit_by: str = "exit") -> dict[str, Any]:
    """Baseline and ``mode`` side by side for ``seconds``; their reports, the throughput and how
    long the ``mode`` copy took to end after its work (``exit_by`` "exit" or "shutdown_worker")."""
    port = closed_port()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores: list[int | None] = [cpus[0], cpus[1]] if len(cpus) >= 2 else [None, None]
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "tests.reliability.exporter_app", name, str(seconds),
                                exit_by],
                               cwd=ROOT, env=_environment(name, port), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        for name in ("none", mode)}
    # Swap the cores every SWAP_S: a neighbour's load on one core, now and then, falls on both.
    swaps, ended = 0, {name: 0.0 for name in processes}
    next_swap = time.monotonic()
    while not all(ended.values()):
        if time.monotonic() >= next_swap:
            order = cores if swaps % 2 == 0 else cores[::-1]
            for process, core in zip(processes.values(), order, strict=True):
                _pin(process.pid, core)
            swaps += 1
            next_swap += SWAP_S
        for name, process in processes.items():
            if not ended[name] and process.poll() is not None:
                ended[name] = time.monotonic()
        time.sleep(0.05)
    reports: dict[str, Any] = {}
    for name, process in processes.items():
        try:
            out, err = process.communicate(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        report: dict[str, Any] = {"returncode": process.returncode, "stderr": err[-3000:]}
        for line in lines:
            report.update(line)
        reports[name] = report
    baseline, down = reports["none"], reports[mode]
    exit_s = ended[mode] - down["work_ended_at"] if "work_ended_at" in down else None
    return {"baseline": baseline, "down": down, "port": port, "exit_by": exit_by, "exit_s": exit_s,
            **_throughput(baseline, down)}


def _throughput(baseline: dict[str, Any], down: dict[str, Any]) -> dict[str, float]:
    """Throughput of ``down`` against ``baseline`` over the seconds both ran in full: the ratio
    of the totals, the median of the per-second ratios (robust to a neighbour's burst), and the
    share of a core the non-application threads took beyond the baseline's."""
    mine = {int(second): count for second, count in down.get("per_second", {}).items()}
    theirs = {int(second): count for second, count in baseline.get("per_second", {}).items()}
    common = sorted(set(mine) & set(theirs))[1:-1]   # the first and last seconds are partial
    if not common:
        return {"ratio": 0.0, "median_ratio": 0.0, "per_cpu_ratio": 0.0, "extra_cpu_share": 1.0}
    ratios = sorted(mine[s] / max(1, theirs[s]) for s in common)

    def others(report: dict[str, Any]) -> float:
        return float(report["cpu_total_s"] - report["cpu_main_s"]) / max(1e-9, float(report["elapsed_s"]))

    per_cpu = ((down["iterations"] / max(1e-9, down["cpu_total_s"]))
               / max(1e-9, baseline["iterations"] / max(1e-9, baseline["cpu_total_s"])))
    return {"ratio": sum(mine[s] for s in common) / max(1, sum(theirs[s] for s in common)),
            "median_ratio": ratios[len(ratios) // 2], "per_cpu_ratio": per_cpu,
            "extra_cpu_share": others(down) - others(baseline)}


def _rss_growth(report: dict[str, Any]) -> int:
    rss: list[int] = report.get("rss") or [0]
    start = rss[len(rss) // 4]
    return max(rss[len(rss) // 4:]) - start


def exporter_down(profile: Profile) -> Row:
    """A gRPC pair, then an HTTP pair, each for ``profile.exporter_seconds``."""
    seconds = profile.exporter_seconds
    row = Row("Exporter down: OTLP gRPC and HTTP to a closed port",
              f"2 x {seconds:g} s, export every 1 s, beside a baseline")
    minutes = max(1, math.ceil(seconds / 60))
    with row.timed():
        # the gRPC copy ends with a plain exit (the interpreter's exit hooks), the HTTP copy
        # through shutdown_worker() (gunicorn's worker_exit): both with the collector down
        pairs = {"grpc": run_pair("grpc", seconds, "exit"),
                 "http": run_pair("http", seconds, "shutdown_worker")}
    for mode, pair in pairs.items():
        baseline, down = pair["baseline"], pair["down"]
        attempted, passed = down.get("attempted", {}), down.get("passed", {})
        growth = _rss_growth(down)
        row.check(f"{mode}: both runs completed", baseline.get("iterations", 0) > 0
                  and down.get("iterations", 0) > 0)
        row.check(f"{mode}: the exporters really failed (warnings attempted)",
                  sum(attempted.values()) >= 2)
        row.check(f"{mode}: at most one warning per exporter per minute",
                  bool(passed) and all(count <= minutes for count in passed.values())
                  and set(passed) <= set(attempted))
        row.check(f"{mode}: RSS bounded (grows < {RSS_GROWTH_LIMIT // MB} MB after warm-up)",
                  growth < RSS_GROWTH_LIMIT)
        row.check(f"{mode}: the end ({pair['exit_by']}) is not held by the dead collector "
                  f"(< {EXIT_LIMIT_S:g} s)",
                  pair["exit_s"] is not None and pair["exit_s"] < EXIT_LIMIT_S)
        if profile.check_throughput:
            # On a shared machine the wall-clock ratios wander by a few percent from run to run
            # (a neighbour's load); the CPU the exporting threads take from the application's
            # core and GIL does not, and bounds what the application loses.
            row.check(f"{mode}: the application loses < 2% (the exporting threads' extra CPU)",
                      pair["extra_cpu_share"] < 0.02)
        pair.update(rss_growth=growth, attempted=attempted, passed=passed)
    row.figures.update(pairs)
    row.result = "; ".join(
        f"{mode}: exporting threads +{100 * pair['extra_cpu_share']:.1f}% of a core; throughput "
        f"{pair['median_ratio']:.3f} of no export (median per second; total {pair['ratio']:.3f}, "
        f"per CPU second {pair['per_cpu_ratio']:.3f}), "
        f"RSS +{pair['rss_growth'] / MB:.1f} MB, "
        f"{sum(pair['passed'].values())} warnings let through of {sum(pair['attempted'].values())} "
        f"({len(pair['passed'])} exporters), {pair['exit_by']} {pair['exit_s'] or -1:.1f} s"
        for mode, pair in pairs.items())
    return row
