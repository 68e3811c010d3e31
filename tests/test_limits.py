"""Limit discovery against fixture trees of /proc/self/cgroup and /sys/fs/cgroup."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from otel_memory import limits
from otel_memory.limits import CgroupFiles, discover_limit

GB = 1 << 30
PHYSICAL = 16 * GB
V1_UNLIMITED = "9223372036854771712"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _proc(tmp_path: Path, cgroup_lines: str) -> Path:
    proc = tmp_path / "proc"
    _write(proc / "self" / "cgroup", cgroup_lines)
    return proc


def _v2(tmp_path: Path, relative: str = "", **files: str) -> Path:
    root = tmp_path / "cgroup"
    _write(root / "cgroup.controllers", "cpu memory pids\n")
    directory = root / relative
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        _write(directory / name.replace("_", ".", 1), text)
    return root


def _discover(tmp_path: Path, proc: Path, root: Path, **kwargs: int | None) -> limits.EffectiveLimit:
    kwargs.setdefault("physical_bytes", PHYSICAL)
    kwargs.setdefault("rlimit_as", None)
    return discover_limit(kwargs.pop("configured_bytes", None), proc_root=proc, cgroup_root=root,
                          **kwargs)  # type: ignore[arg-type]


def test_cgroup_v2_memory_max(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "0::/\n")
    root = _v2(tmp_path, memory_max=f"{GB}\n", memory_current="1000\n")
    limit = _discover(tmp_path, proc, root)
    assert (limit.bytes, limit.source) == (GB, "cgroup_v2")
    assert limit.cgroup == CgroupFiles(2, root)
    assert limit.cgroup.usage == root / "memory.current"
    assert limit.cgroup.pressure == root / "memory.pressure"


def test_cgroup_v2_max_means_no_limit_but_usage_is_still_read(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "0::/\n")
    root = _v2(tmp_path, memory_max="max\n", memory_current="1000\n")
    limit = _discover(tmp_path, proc, root)
    assert (limit.bytes, limit.source) == (PHYSICAL, "physical")
    assert limit.cgroup == CgroupFiles(2, root)


def test_cgroup_v2_nested_takes_the_smallest_ancestor(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "0::/kubepods/pod1/app\n")
    root = _v2(tmp_path)
    _write(root / "kubepods" / "memory.max", "max\n")
    _write(root / "kubepods" / "pod1" / "memory.max", f"{2 * GB}\n")
    _write(root / "kubepods" / "pod1" / "app" / "memory.max", f"{3 * GB}\n")
    _write(root / "kubepods" / "pod1" / "app" / "memory.current", "5\n")
    limit = _discover(tmp_path, proc, root)
    assert (limit.bytes, limit.source) == (2 * GB, "cgroup_v2")
    assert limit.cgroup is not None and limit.cgroup.directory == root / "kubepods" / "pod1"


def test_cgroup_v2_path_not_mounted_uses_the_mount_root(tmp_path: Path) -> None:
    # Inside a container /proc/self/cgroup names a host path that is not mounted.
    proc = _proc(tmp_path, "0::/system.slice/docker-abc.scope\n")
    root = _v2(tmp_path, memory_max=f"{GB // 2}\n")
    limit = _discover(tmp_path, proc, root)
    assert (limit.bytes, limit.source) == (GB // 2, "cgroup_v2")


def test_cgroup_v1_limit(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "12:pids:/\n4:cpu,cpuacct:/\n3:memory:/docker/abc\n")
    root = tmp_path / "cgroup"
    _write(root / "memory" / "docker" / "abc" / "memory.limit_in_bytes", f"{GB}\n")
    _write(root / "memory" / "docker" / "abc" / "memory.usage_in_bytes", "10\n")
    limit = _discover(tmp_path, proc, root)
    assert (limit.bytes, limit.source) == (GB, "cgroup_v1")
    assert limit.cgroup is not None and limit.cgroup.version == 1
    assert limit.cgroup.usage.name == "memory.usage_in_bytes"
    assert limit.cgroup.events.name == "memory.oom_control"
    assert limit.cgroup.pressure is None


def test_cgroup_v1_unlimited_falls_through(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "3:memory:/\n")
    root = tmp_path / "cgroup"
    _write(root / "memory" / "memory.limit_in_bytes", V1_UNLIMITED + "\n")
    _write(root / "memory" / "memory.usage_in_bytes", "10\n")
    limit = _discover(tmp_path, proc, root)
    assert (limit.bytes, limit.source) == (PHYSICAL, "physical")
    assert limit.cgroup == CgroupFiles(1, root / "memory")


def test_a_cgroup_limit_above_physical_memory_loses_to_ram(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "0::/\n")
    root = _v2(tmp_path, memory_max=f"{64 * GB}\n")
    assert _discover(tmp_path, proc, root).source == "physical"


def test_rlimit_as(tmp_path: Path) -> None:
    limit = _discover(tmp_path, tmp_path / "noproc", tmp_path / "nocgroup", rlimit_as=3 * GB)
    assert (limit.bytes, limit.source, limit.cgroup) == (3 * GB, "rlimit_as", None)


def test_the_cgroup_wins_over_rlimit(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "0::/\n")
    root = _v2(tmp_path, memory_max=f"{4 * GB}\n")
    assert _discover(tmp_path, proc, root, rlimit_as=GB).source == "cgroup_v2"


def test_physical_when_nothing_limits(tmp_path: Path) -> None:
    limit = _discover(tmp_path, tmp_path / "noproc", tmp_path / "nocgroup")
    assert (limit.bytes, limit.source, limit.cgroup) == (PHYSICAL, "physical", None)


def test_configured_limit_wins_and_keeps_the_cgroup_files(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "0::/\n")
    root = _v2(tmp_path, memory_max=f"{GB}\n")
    limit = _discover(tmp_path, proc, root, configured_bytes=512 * 1024 * 1024)
    assert (limit.bytes, limit.source) == (512 * 1024 * 1024, "config")
    assert limit.cgroup == CgroupFiles(2, root)


@pytest.mark.parametrize("content", ["garbage\n", "", "-1\n", "0\n"])
def test_unreadable_limit_files_are_ignored(tmp_path: Path, content: str) -> None:
    proc = _proc(tmp_path, "0::/\n")
    root = _v2(tmp_path, memory_max=content)
    assert _discover(tmp_path, proc, root).source == "physical"


def test_the_real_machine(tmp_path: Path) -> None:
    limit = discover_limit()
    assert limit.bytes > 0
    assert limit.source in {"cgroup_v2", "cgroup_v1", "rlimit_as", "physical"}
    assert limit.bytes <= limits.physical_memory()
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if limit.source == "physical":
        assert soft == resource.RLIM_INFINITY or soft >= limits.physical_memory()
