"""Every example runs to completion as a user would run it, so none rots.

examples/database_pooling.py needs a database and runs in tests/e2e/test_database_pools.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(path for path in (ROOT / "examples").glob("*.py") if path.name != "database_pooling.py")


def test_every_example_is_covered() -> None:
    names = {path.name for path in EXAMPLES}
    assert {"comprehensive_usage.py", "memory_aware_caching.py", "pressure_response.py"} <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(example: Path) -> None:
    result = subprocess.run([sys.executable, str(example)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{example.name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{example.name} printed nothing"
    assert "Traceback" not in result.stderr, result.stderr
