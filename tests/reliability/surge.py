"""Surge: the admission test of tests/e2e/test_servers.py, reported as a row of the table.

A uvicorn server with a 320 MB limit gets 30 requests that each hold 35 MB, with admission
control on and then off; the peak RSS, the refused requests and the health endpoint's answers
are the figures (the pytest suite runs the same test in tests/e2e/test_servers.py).

Example::

    row = surge(LONG, Path("/tmp/surge"))
    row.figures["peak_with_mb"], row.figures["refused"]
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .profile import Profile, Row

MB = 1024 * 1024
LIMIT_MB = 320


def surge(profile: Profile, root: Path) -> Row:
    """Both runs of the admission test; see the module docstring."""
    from tests.e2e.test_servers import run_surge

    row = Row("Surge: admission control (uvicorn, 320 MB limit)", "30 requests x 35 MB, twice")
    root.mkdir(parents=True, exist_ok=True)
    with row.timed():
        guarded = run_surge(root, admission=True)
        unguarded = run_surge(root, admission=False)
    codes = Counter(guarded["codes"])
    health = Counter(guarded["health"])
    figures = {"peak_with_mb": guarded["peak"] / MB, "peak_without_mb": unguarded["peak"] / MB,
               "refused": codes[503], "served": codes[200], "health": dict(health),
               "retry_after": sorted(v for v in guarded["retry_after"] if v),
               "recovered": guarded["after"].status_code,
               "unguarded_codes": dict(Counter(unguarded["codes"]))}
    row.figures.update(figures)
    row.check("with admission the peak stays under the limit", guarded["peak"] < LIMIT_MB * MB)
    row.check("some requests refused with 503 + Retry-After, some served",
              0 < codes[503] < 30 and codes[200] > 0 and figures["retry_after"] == ["5"])
    row.check("the health endpoint kept answering and the server recovered",
              set(health) <= {200, 503} and health[200] > 0 and figures["recovered"] == 200)
    row.check("without admission the peak passes the limit", unguarded["peak"] > LIMIT_MB * MB)
    row.result = (f"peak {figures['peak_with_mb']:.0f} MB with admission, "
                  f"{figures['peak_without_mb']:.0f} MB without (limit {LIMIT_MB} MB); "
                  f"{codes[503]} of 30 refused (503, Retry-After 5); "
                  f"health answered {sum(health.values())} times ({health[200]} x 200, {health[503]} x 503)")
    return row
