"""Discovery of the effective memory limit: configuration, cgroup v2, cgroup v1, RLIMIT_AS, RAM.

Paths are parameters so tests point the discovery at fixture trees.

Example::

    limit = discover_limit()
    limit.bytes, limit.source          # (536870912, 'cgroup_v2')
"""

from __future__ import annotations

import logging
import os
import resource
from dataclasses import dataclass
from pathlib import Path

_log = logging.getLogger("otel_memory")

# cgroup v1 reports "no limit" as a huge page-aligned number near 2**63.
_V1_UNLIMITED = 1 << 62

SOURCE_CONFIG = "config"
SOURCE_CGROUP_V2 = "cgroup_v2"
SOURCE_CGROUP_V1 = "cgroup_v1"
SOURCE_RLIMIT_AS = "rlimit_as"
SOURCE_PHYSICAL = "physical"


@dataclass(frozen=True)
class CgroupFiles:
    """Where the cgroup that sets the limit keeps its usage, stat, events and pressure files.

    Example::

        CgroupFiles(version=2, directory=Path("/sys/fs/cgroup"))
    """

    version: int
    directory: Path

    @property
    def usage(self) -> Path:
        """memory.current (v2) or memory.usage_in_bytes (v1)."""
        return self.directory / ("memory.current" if self.version == 2 else "memory.usage_in_bytes")

    @property
    def stat(self) -> Path:
        """memory.stat, for inactive_file."""
        return self.directory / "memory.stat"

    @property
    def events(self) -> Path:
        """memory.events (v2) or memory.oom_control (v1), for oom_kill."""
        return self.directory / ("memory.events" if self.version == 2 else "memory.oom_control")

    @property
    def pressure(self) -> Path | None:
        """memory.pressure, the cgroup's own PSI file (v2 only)."""
        return self.directory / "memory.pressure" if self.version == 2 else None


@dataclass(frozen=True)
class EffectiveLimit:
    """The limit the process runs against and where it came from.

    Example::

        EffectiveLimit(bytes=1 << 30, source="cgroup_v2", cgroup=CgroupFiles(2, Path("/sys/fs/cgroup")))
    """

    bytes: int
    source: str
    cgroup: CgroupFiles | None = None


def _read_int(path: Path) -> int | None:
    """The integer in ``path``; None when absent or "max". An unreadable or malformed file is
    ignored with one warning: the limit it would set is lost, nothing else."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        _log.warning("otel_memory: %s is unreadable (%s); the memory limit it sets is ignored",
                     path, type(error).__name__)
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        _log.warning("otel_memory: %s holds %r, not a number of bytes; the memory limit it sets is "
                     "ignored", path, text[:40])
        return None


def _own_cgroups(proc_root: Path) -> dict[str, str]:
    """Map of controller ('' for the unified v2 hierarchy) to this process's cgroup path."""
    result: dict[str, str] = {}
    path = proc_root / "self" / "cgroup"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:   # no procfs (macOS): no cgroup, nothing to say
        return result
    except (OSError, UnicodeDecodeError) as error:
        _log.warning("otel_memory: %s is unreadable (%s); the container's limit and usage are not "
                     "reported", path, type(error).__name__)
        return result
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            result[controller] = parts[2]
    return result


def _walk_up(root: Path, relative: str) -> list[Path]:
    """The cgroup directory of the process and its ancestors up to the mount root, leaf first.

    Inside a container the host path in /proc/self/cgroup is often not mounted; then the
    mount root itself is the container's cgroup.
    """
    start = root / relative.lstrip("/")
    if not start.is_dir():
        start = root
    chain = [start]
    while chain[-1] != root and root in chain[-1].parents:
        chain.append(chain[-1].parent)
    return chain


def _smallest_limit(chain: list[Path], filename: str, unlimited: int | None) -> tuple[int, Path] | None:
    best: tuple[int, Path] | None = None
    for directory in chain:
        value = _read_int(directory / filename)
        if value is None or value <= 0 or (unlimited is not None and value >= unlimited):
            continue
        if best is None or value < best[0]:
            best = (value, directory)
    return best


def physical_memory() -> int:
    """Total RAM of the machine in bytes."""
    return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))


def discover_limit(
    configured_bytes: int | None = None,
    *,
    proc_root: str | Path = "/proc",
    cgroup_root: str | Path = "/sys/fs/cgroup",
    rlimit_as: int | None = None,
    physical_bytes: int | None = None,
) -> EffectiveLimit:
    """Find the limit: configured, else cgroup v2 memory.max, cgroup v1, RLIMIT_AS, physical.

    A cgroup limit above physical memory cannot be reached, so RAM wins then. The cgroup files
    are returned with a configured limit too, so container usage can still be reported.
    """
    proc, root = Path(proc_root), Path(cgroup_root)
    physical = physical_bytes if physical_bytes is not None else physical_memory()
    cgroups = _own_cgroups(proc)
    found: tuple[int, CgroupFiles] | None = None
    if "" in cgroups and (root / "cgroup.controllers").exists():
        chain = _walk_up(root, cgroups[""])
        hit = _smallest_limit(chain, "memory.max", None)
        if hit is not None:
            found = (hit[0], CgroupFiles(2, hit[1]))
        elif (chain[0] / "memory.current").exists():
            found = (0, CgroupFiles(2, chain[0]))
    if (found is None or found[0] == 0) and "memory" in cgroups and (root / "memory").is_dir():
        chain = _walk_up(root / "memory", cgroups["memory"])
        hit = _smallest_limit(chain, "memory.limit_in_bytes", _V1_UNLIMITED)
        if hit is not None:
            found = (hit[0], CgroupFiles(1, hit[1]))
        elif found is None and (chain[0] / "memory.usage_in_bytes").exists():
            found = (0, CgroupFiles(1, chain[0]))
    cgroup_files = found[1] if found else None
    if configured_bytes is not None:
        return EffectiveLimit(int(configured_bytes), SOURCE_CONFIG, cgroup_files)
    if found is not None and 0 < found[0] < physical:
        source = SOURCE_CGROUP_V2 if found[1].version == 2 else SOURCE_CGROUP_V1
        return EffectiveLimit(found[0], source, found[1])
    if rlimit_as is None:
        try:
            soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        except (OSError, ValueError):  # pragma: no cover - platform without RLIMIT_AS
            soft = resource.RLIM_INFINITY
        rlimit_as = None if soft == resource.RLIM_INFINITY else int(soft)
    if rlimit_as is not None and 0 < rlimit_as < physical:
        return EffectiveLimit(rlimit_as, SOURCE_RLIMIT_AS, cgroup_files)
    return EffectiveLimit(physical, SOURCE_PHYSICAL, cgroup_files)
