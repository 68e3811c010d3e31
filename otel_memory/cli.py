"""The ``otel-memory`` command: ``demo``, ``docs``, ``dashboards`` and ``alerts``.

``docs`` works with the core install; ``dashboards`` and ``alerts`` need the ``dashboards``
extra and ``demo`` the ``demo`` extra: without them the command says which to install.

Example::

    otel-memory --version
    otel-memory demo --port 9464
    otel-memory docs --out docs/metrics.md
    otel-memory dashboards --out dashboards/
    otel-memory alerts --out alerts/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._extras import missing_extra
from ._version import __version__

#: The extra each command needs beyond the core install.
EXTRAS = {"demo": "demo", "dashboards": "dashboards", "alerts": "dashboards"}


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; expected a number >= 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-memory", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run an instrumented demo workload")
    demo.add_argument("--host", default="127.0.0.1", help="Prometheus listen address")
    demo.add_argument("--port", type=int, default=9464, help="Prometheus port (0: any free port)")
    demo.add_argument("--interval", type=_positive, default=5.0, help="seconds between tables")
    demo.add_argument("--duration", type=_positive, default=0.0, help="stop after N seconds (0: never)")
    demo.add_argument("--limit-mb", type=_positive, default=None, help="configured memory limit in MB")
    demo.add_argument("--no-leak", action="store_true", help="run without the deliberate leak")
    docs = commands.add_parser("docs", help="write docs/metrics.md from the catalogue")
    docs.add_argument("--out", type=Path, default=Path("docs/metrics.md"))
    dashboards = commands.add_parser("dashboards", help="write the Grafana dashboards")
    dashboards.add_argument("--out", type=Path, default=Path("dashboards"))
    dashboards.add_argument("--datasource-uid", default="prometheus",
                            help="default uid of the Prometheus datasource variable")
    dashboards.add_argument("--prefix", default="", help="prefix added to every metric name")
    alerts = commands.add_parser("alerts", help="write the Prometheus alert rules and their promtool tests")
    alerts.add_argument("--out", type=Path, default=Path("alerts"))
    alerts.add_argument("--prefix", default="", help="prefix added to every metric name")
    alerts.add_argument("--for-scale", type=float, default=1.0,
                        help="multiply every 'for' duration (0 < x <= 1, for tests; unit tests only at 1)")
    alerts.add_argument("--runbook-url", default=None,
                        help="where your copy of docs/runbook.md is published (http(s) URL)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otel-memory`` command."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ModuleNotFoundError as error:
        extra = EXTRAS.get(args.command)
        problem = missing_extra(error, extra, f"otel-memory {args.command}")
        if problem is error:
            raise
        print(f"otel-memory: {problem}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo import DemoOptions, PortInUse, run

        try:
            run(DemoOptions(host=args.host, port=args.port, interval_s=args.interval or 5.0,
                            duration_s=args.duration, limit_mb=args.limit_mb, leak=not args.no_leak),
                sys.stdout)
        except PortInUse as busy:
            print(f"otel-memory demo: {busy}; run it with --port 0 for any free port "
                  "(or --port N)", file=sys.stderr)
            return 1
    elif args.command == "docs":
        from .docs import render_metrics_markdown

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_metrics_markdown())
        print(f"wrote {args.out}")
    elif args.command == "dashboards":
        from .dashboards import write_dashboards

        try:
            written = write_dashboards(args.out, datasource_uid=args.datasource_uid, prefix=args.prefix)
        except ValueError as error:
            _parser().error(str(error))
        for path in written:
            print(f"wrote {path}")
    elif args.command == "alerts":
        from .alerts import write_alert_rules

        try:
            runbook = {"runbook_base": args.runbook_url} if args.runbook_url else {}
            written = write_alert_rules(args.out, prefix=args.prefix, for_scale=args.for_scale, **runbook)
        except ValueError as error:
            _parser().error(str(error))
        for path in written:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
