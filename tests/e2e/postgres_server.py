"""A real PostgreSQL for tests: initdb + postgres from .tools in a temp dir on a free port.

PostgreSQL refuses to run as root, so under root the data directory belongs to ``nobody`` and
both programs run through ``runuser -u nobody``. The server listens on 127.0.0.1 only, with
trust authentication, fsync off, and is stopped (fast shutdown) and deleted by ``stop()``.

Example::

    with PostgresServer.start(require_tool("initdb")) as server:
        psycopg.connect(server.dsn)
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.conftest import TOOLS

LIBRARIES = TOOLS / "usr" / "lib" / "x86_64-linux-gnu"
START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One running PostgreSQL cluster; ``dsn`` connects as the superuser ``postgres``."""

    def __init__(self, bin_dir: Path, root: Path, port: int, process: subprocess.Popen[bytes]) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.port = port
        self.process = process
        self.dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=5"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    @staticmethod
    def _command(*argv: str) -> list[str]:
        env = ["env", f"LD_LIBRARY_PATH={LIBRARIES}", "LC_ALL=C"]
        if os.geteuid() == 0:
            return ["runuser", "-u", "nobody", "--", *env, *argv]
        return [*env, *argv]

    @classmethod
    def start(cls, initdb: str) -> PostgresServer:
        bin_dir = Path(initdb).parent
        root = Path(tempfile.mkdtemp(prefix="otel-memory-pg-"))
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
        data = root / "data"
        subprocess.run(cls._command(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                                    "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"),
                       check=True, capture_output=True, timeout=120)
        port = _free_port()
        log = open(root / "server.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            cls._command(str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
                         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                         "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                         "-c", "max_connections=60", "-c", "shared_buffers=16MB"),
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        server = cls(bin_dir, root, port, process)
        server._wait_ready()
        return server

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log()}")
            try:
                psycopg.connect(self.dsn).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres did not start: {self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        """The server's log so far."""
        try:
            return (self.root / "server.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Fast shutdown, then remove the cluster."""
        if self.process.poll() is None:
            # Signal the postmaster itself (runuser does not pass SIGINT on): fast shutdown.
            try:
                pid = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGINT)
            except (OSError, ValueError, IndexError):
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
