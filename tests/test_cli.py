"""The otel-memory command: its subcommands write what the generators make, bad input is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_memory.cli import main
from otel_memory.docs import render_metrics_markdown
from tests.conftest import ROOT


def test_docs_writes_the_metrics_reference(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "metrics.md"
    assert main(["docs", "--out", str(out)]) == 0
    assert out.read_text() == render_metrics_markdown() == (ROOT / "docs" / "metrics.md").read_text()


def test_dashboards_and_alerts_write_what_is_committed(tmp_path: Path) -> None:
    assert main(["dashboards", "--out", str(tmp_path / "dashboards")]) == 0
    assert main(["alerts", "--out", str(tmp_path / "alerts")]) == 0
    for name in ("memory-overview.json", "memory-pools.json", "memory-caches.json", "memory-leaks.json"):
        assert (tmp_path / "dashboards" / name).read_text() == (ROOT / "dashboards" / name).read_text()
    rules = "otel-memory.rules.yml"
    assert (tmp_path / "alerts" / rules).read_text() == (ROOT / "alerts" / rules).read_text()


@pytest.mark.parametrize(("argv", "expected"), [
    (["demo", "--interval", "soon"], "'soon' is not a number"),
    (["demo", "--duration", "-3"], "is negative"),
    (["alerts", "--out", "x", "--for-scale", "2"], "for_scale=2.0 is out of range"),
    (["alerts", "--out", "x", "--runbook-url", "runbook.md"], "expected an http:// or https:// URL"),
    (["launch"], "invalid choice: 'launch'"),
])
def test_bad_arguments_exit_2_with_a_message_naming_them(
        argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
