"""Real servers on loopback: gunicorn (WSGI, 2 workers) and uvicorn (ASGI), real HTTP clients.

Each test starts its server as a subprocess, talks to it with httpx and raw sockets, receives
the workers' metrics with the OTLP receiver, and kills every process it started. The surge test
runs the same memory-hungry load twice, with admission control on and off, and prints both
peaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from otel_memory import catalog
from otel_memory.web import HEALTH_PATH, LEAKS_PATH

from .otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MB = 1024 * 1024
HEALTH_KEYS = {"status", "memory_mb", "peak_mb", "pressure", "limit_mb", "limit_source",
               "utilization_percent"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(receiver: OtlpReceiver | None, **memory: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OTEL_", "MEMORY_"))}
    env.update(PYTHONPATH=str(ROOT), MEMORY_ENABLE_LEAK_DETECTION="false",
               MEMORY_MONITORING_INTERVAL_MS="100", OTEL_METRIC_EXPORT_INTERVAL="500")
    if receiver is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.grpc_endpoint
    env.update(memory)
    return env


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command``; on exit stop it and every child it started (SIGTERM, then SIGKILL)."""
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        family: list[psutil.Process] = []     # stays empty when the server has already exited
        with contextlib.suppress(psutil.NoSuchProcess):
            family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()


def wait_until_serving(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code in (200, 503):
                return
        time.sleep(0.1)
    pytest.fail(f"the server did not answer {url} within {timeout} s:\n{log.read_text()}")


def raw_status(port: int, request: bytes) -> str:
    """The status line a server answers to ``request`` sent as raw bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        data = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while b"\r\n" not in data:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def check_health_and_bad_input(base: str, port: int) -> None:
    health = httpx.get(base + HEALTH_PATH, timeout=5)
    assert health.status_code == 200, health.text
    document = health.json()
    assert set(document) == HEALTH_KEYS
    assert document["status"] == "healthy" and document["pressure"] == "Low"
    assert document["limit_source"] == "config" and document["limit_mb"] == 2048
    leaks = httpx.get(base + LEAKS_PATH, timeout=5)
    assert leaks.status_code == 200 and leaks.json() == {"status": "no report yet", "report": None}
    assert httpx.get(base + "/health/nothing-here", timeout=5).status_code == 404
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        answer = httpx.request(method, base + HEALTH_PATH, content=b"\xff\x00 not json", timeout=5)
        assert answer.status_code == 405, (method, answer.text)
        assert answer.headers["allow"] == "GET, HEAD"
    for malformed in (b"GARBAGE\r\n\r\n", b"GET /health/memory HTTP/1.1\r\nHost: \x00\x01\r\n\r\n",
                      b"GET /health/memory HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                      b"GET /health/memory HTTP/1.1\r\nBroken header line\r\n\r\n"):
        status = raw_status(port, malformed)
        assert re.match(r"HTTP/1\.[01] 4\d\d", status), (malformed, status)


def no_errors_logged(log: Path) -> None:
    text = log.read_text()
    assert "[ERROR]" not in text and "ERROR:" not in text and "Traceback" not in text, text


def worker_identities(receiver: OtlpReceiver, service: str) -> dict[str, int]:
    """{service.instance.id: process.pid} of every worker that exported its memory metrics."""
    return {resource["service.instance.id"]: resource["process.pid"]
            for resource in receiver.resources()
            if resource.get("service.name") == service and "service.instance.id" in resource}


def test_gunicorn_two_workers_each_report_their_own_memory(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with OtlpReceiver() as receiver, running(
            [str(BIN / "gunicorn"), "-c", "tests/e2e/servers/gunicorn_conf.py", "-w", "2",
             "-b", f"127.0.0.1:{port}", "--log-level", "info", "tests.e2e.servers.wsgi_app:application"],
            server_env(receiver, OTEL_SERVICE_NAME="e2e-gunicorn", MEMORY_MAX_HEAP_MB="2048"),
            log) as master:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(master, base + HEALTH_PATH, log)
        check_health_and_bad_input(base, port)
        assert receiver.wait_for(lambda rx: len(worker_identities(rx, "e2e-gunicorn")) >= 2, timeout=20), \
            receiver.resources()
        identities = worker_identities(receiver, "e2e-gunicorn")
        workers = {child.pid for child in psutil.Process(master.pid).children()}
        assert len(workers) == 2
        assert set(identities.values()) == workers  # one identity per worker, none for the master
        assert len(set(identities)) == 2
        assert catalog.MEMORY_PRESSURE_LEVEL.name in receiver.metric_names()
        seen = {httpx.get(base + "/whoami", timeout=5).json()["instance_id"] for _ in range(20)}
        assert seen <= set(identities)
    no_errors_logged(log)


def test_uvicorn_workers_each_report_their_own_memory(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "uvicorn.log"
    with OtlpReceiver() as receiver, running(
            [sys.executable, "-m", "uvicorn", "tests.e2e.servers.asgi_app:app", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2"],
            server_env(receiver, OTEL_SERVICE_NAME="e2e-uvicorn", MEMORY_MAX_HEAP_MB="2048"),
            log) as supervisor:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(supervisor, base + HEALTH_PATH, log)
        check_health_and_bad_input(base, port)
        assert receiver.wait_for(lambda rx: len(worker_identities(rx, "e2e-uvicorn")) >= 2, timeout=30), \
            receiver.resources()
        identities = worker_identities(receiver, "e2e-uvicorn")
        workers = {child.pid for child in psutil.Process(supervisor.pid).children(recursive=True)
                   if "multiprocessing.resource_tracker" not in " ".join(child.cmdline())}
        assert set(identities.values()) <= workers and len(set(identities.values())) == 2
        assert len(set(identities)) == 2
    no_errors_logged(log)


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


async def surge(base: str, requests: int, hold_mb: int, hold_s: float,
                gap_s: float) -> tuple[list[httpx.Response], list[int]]:
    """``requests`` memory-hungry requests started ``gap_s`` apart, with the health endpoint
    polled throughout; returns the answers and the health status codes."""
    health_codes: list[int] = []
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 limits=httpx.Limits(max_connections=100)) as client:
        async def one(delay: float) -> httpx.Response:
            await asyncio.sleep(delay)
            return await client.get("/hold", params={"mb": hold_mb, "seconds": hold_s})

        async def poll_health() -> None:
            for _ in range(int((requests * gap_s + hold_s) / 0.1)):
                answer = await client.get(HEALTH_PATH)
                assert answer.json()["status"] in ("healthy", "degraded", "unhealthy")
                health_codes.append(answer.status_code)
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll_health())
        answers = await asyncio.gather(*(one(i * gap_s) for i in range(requests)))
        await poller
    return list(answers), health_codes


def run_surge(tmp_path: Path, admission: bool) -> dict[str, Any]:
    port = free_port()
    log = tmp_path / f"surge-{admission}.log"
    env = server_env(None, MEMORY_MAX_HEAP_MB="320", MEMORY_WARNING_THRESHOLD_MB="140",
                     MEMORY_GC_PRESSURE_THRESHOLD_MB="160", MEMORY_CRITICAL_THRESHOLD_MB="180",
                     MEMORY_MONITORING_INTERVAL_MS="20",
                     MEMORY_ENABLE_ADMISSION_CONTROL="true" if admission else "false")
    with running([sys.executable, "-m", "uvicorn", "tests.e2e.servers.asgi_app:app", "--host",
                  "127.0.0.1", "--port", str(port), "--log-level", "warning"], env, log) as server:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(server, base + HEALTH_PATH, log)
        answers, health_codes = asyncio.run(surge(base, requests=30, hold_mb=35, hold_s=0.5, gap_s=0.04))
        peak = vm_hwm(server.pid)
        deadline = time.monotonic() + 5
        after = httpx.get(base + HEALTH_PATH, timeout=5)
        while after.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            after = httpx.get(base + HEALTH_PATH, timeout=5)
    no_errors_logged(log)
    codes = [answer.status_code for answer in answers]
    return {"peak": peak, "codes": codes, "health": health_codes, "after": after,
            "retry_after": {answer.headers.get("retry-after") for answer in answers
                            if answer.status_code == 503}}


def test_surge_admission_keeps_the_server_under_its_limit(tmp_path: Path) -> None:
    limit = 320 * MB
    guarded = run_surge(tmp_path, admission=True)
    unguarded = run_surge(tmp_path, admission=False)
    print(f"\nsurge peak RSS with admission control: {guarded['peak'] / MB:.0f} MB "
          f"({guarded['codes'].count(503)} of 30 refused with 503); without: "
          f"{unguarded['peak'] / MB:.0f} MB; limit {limit / MB:.0f} MB")
    assert guarded["peak"] < limit
    assert 0 < guarded["codes"].count(503) < 30 and guarded["codes"].count(200) > 0
    assert set(guarded["codes"]) == {200, 503}
    assert guarded["retry_after"] == {"5"}
    assert guarded["after"].status_code == 200  # it kept answering and recovered
    assert set(guarded["health"]) <= {200, 503} and 200 in guarded["health"]
    assert unguarded["peak"] > limit
    assert set(unguarded["codes"]) == {200}
