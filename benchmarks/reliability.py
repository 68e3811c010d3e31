"""Reliability and security suite, long profile: stress, faults, fork, bad input, secrets, surge.

Runs every case of ``tests/reliability`` with the LONG profile (16 threads x 100,000 borrows,
20 s of cache stress, 60 s per exporter-down pair, 5,000 hypothesis examples a property...)
and prints one table: case, count, time, result. The pytest suite runs the same cases with the
SHORT profile and asserts on them. A case whose promise broke says so in its result
("FAILED: ..."); the exit status is 1 then.

Run: ``.venv/bin/python benchmarks/reliability.py [--profile short|long] [--only pool,cache,...]
[--json figures.json]`` (several minutes for the long profile).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _initdb() -> str | None:
    """PostgreSQL's initdb from .tools or the system, or None (the bad-credentials case is left out)."""
    from tests.conftest import require_tool

    try:
        return require_tool("initdb")
    except BaseException:  # noqa: BLE001 - pytest's skip outside pytest: no PostgreSQL here
        return None


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.reliability.bad_input import bad_input
    from tests.reliability.caches import cache_stress
    from tests.reliability.exporters import exporter_down
    from tests.reliability.faults import contained_user_code, failing_probes
    from tests.reliability.forks import fork_storm
    from tests.reliability.pools import pool_stress_async, pool_stress_sync
    from tests.reliability.profile import LONG, SHORT, Profile, Row, format_table
    from tests.reliability.secret_scan import secrets
    from tests.reliability.surge import surge

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("short", "long"), default="long")
    parser.add_argument("--only", default="", help="comma-separated case keys (default: all)")
    parser.add_argument("--json", type=Path, help="also write every row's figures to this file")
    args = parser.parse_args()
    profile: Profile = LONG if args.profile == "long" else SHORT
    scratch = Path(tempfile.mkdtemp(prefix="otel-memory-reliability-"))
    cases: dict[str, Callable[[], Row]] = {
        "pool": lambda: pool_stress_sync(profile),
        "async-pool": lambda: pool_stress_async(profile),
        "cache": lambda: cache_stress(profile),
        "exporter": lambda: exporter_down(profile),
        "probes": lambda: failing_probes(profile, scratch / "probes"),
        "user-code": lambda: contained_user_code(profile, scratch / "user-code"),
        "fork": lambda: fork_storm(profile),
        "bad-input": lambda: bad_input(profile),
        "secrets": lambda: secrets(profile, _initdb()),
        "surge": lambda: surge(profile, scratch / "surge"),
    }
    chosen = [key for key in args.only.split(",") if key] or list(cases)
    rows: list[Row] = []
    began = time.perf_counter()
    for key in chosen:
        print(f"{key} ...", file=sys.stderr, flush=True)
        try:
            row = cases[key]()
        except Exception as error:  # noqa: BLE001 - one broken case must not hide the others
            row = Row(key, result=f"the case raised {type(error).__name__}: {error}")
            row.check("the case ran", False)
            traceback.print_exc()
        print(f"  {row.seconds:.1f} s: {row.verdict}", file=sys.stderr, flush=True)
        rows.append(row)
    print(f"\nReliability suite, {profile.name} profile, {time.perf_counter() - began:.0f} s in all:\n")
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps({row.case: {"count": row.count, "seconds": row.seconds,
                                                    "result": row.result, "checks": row.checks,
                                                    "figures": row.figures} for row in rows},
                                        indent=1, default=str))
    return 0 if all(not row.failed() for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
