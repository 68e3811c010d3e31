#!/usr/bin/env bash
# Create .venv with Python >= 3.10 and install the project for a purpose (default: test).
# "test": every extra and the `test` dependency group of pyproject.toml (the test tools are a
# dependency group, not an extra, so they are not published); anything else: that extra.
# Run (not sourced) by scripts/test and scripts/demo from the project root.
set -euo pipefail
extras="${1:-test}"
case "$extras" in
  test) install=(-e ".[sdk,otlp,prometheus,dashboards,db,http]" --group test) ;;
  *) install=(-e ".[$extras]") ;;
esac
python="${PYTHON:-python3}"
"$python" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' || {
  echo "otel-memory needs Python 3.10 or newer; set PYTHON=python3.x" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "venv: python3-venv is missing; installing it with apt-get" >&2
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv
    else sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv; fi
    "$python" -m venv .venv
  fi
fi
stamp=".venv/.installed-$extras"
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip   # >= 25.1 reads dependency groups
  .venv/bin/python -m pip install -q "${install[@]}"
  touch "$stamp"
fi
