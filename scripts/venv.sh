#!/usr/bin/env bash
# Create .venv with Python >= 3.10 and install the project with the given extras (default: test).
# Run (not sourced) by scripts/test and scripts/demo from the project root.
set -euo pipefail
extras="${1:-test}"
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
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
