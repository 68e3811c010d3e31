"""Fork (short profile): children of a busy process, some forked while every lock was held."""

from __future__ import annotations

import os

from otel_memory import global_manager, workers

from .forks import collect_child, fork_storm, held_by_another_thread
from .profile import SHORT


def test_twenty_forks_in_a_row_each_child_its_own_numbers_no_deadlock() -> None:
    row = fork_storm(SHORT)
    assert row.failed() == [], (row.failed(), row.figures)
    children = row.figures["children"]
    assert len(children) == SHORT.forks
    assert sum(1 for child in children if child["locks_held"]) == SHORT.forks // 2
    assert len({child["instance_id"] for child in children}) == SHORT.forks


def test_init_worker_in_a_child_forked_while_another_thread_instruments() -> None:
    read_fd, write_fd = os.pipe()
    with held_by_another_thread(lambda: [global_manager._lock]):
        pid = os.fork()
        if pid == 0:   # the child: set up the worker, report, exit
            try:
                telemetry = workers.init_worker(readers=list)
                os.write(write_fd, f'{{"instance_id": "{telemetry.instance_id}"}}\n'.encode())
            finally:
                os._exit(0)
    os.close(write_fd)
    try:
        report, _took = collect_child(pid, read_fd, timeout_s=5.0)
    finally:
        os.close(read_fd)
    assert "error" not in report, report
