#!/usr/bin/env bash
# Fetch the external tools the tests need (Prometheus, promtool, Alertmanager, amtool,
# PostgreSQL) from Debian's packages into .tools/ with `apt-get download` + `dpkg -x`:
# nothing is installed system-wide and no service starts. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.tools
debs=$tools/debs
root=$tools/root
mkdir -p "$debs" "$root"

packages=(
  prometheus prometheus-alertmanager
  postgresql-15 postgresql-client-15 libpq5
  libicu72 libxml2 libldap-2.5-0 libsasl2-2 libgssapi-krb5-2 libkrb5-3 libk5crypto3
  libkrb5support0 libkeyutils1 libllvm14 libz3-4
)

missing=()
for package in "${packages[@]}"; do
  compgen -G "$debs/${package}_*.deb" >/dev/null || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: apt-get is not available; tests that need ${missing[*]} will skip" >&2
    exit 0
  fi
  fetch() { (cd "$debs" && apt-get download -q "${missing[@]}" >/dev/null); }
  if ! fetch 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
    fetch
  fi
fi

for deb in "$debs"/*.deb; do
  stamp="$tools/.unpacked-$(basename "$deb")"
  if [ ! -e "$stamp" ]; then
    dpkg -x "$deb" "$root"
    touch "$stamp"
  fi
done
echo "install-tools: tools ready in $root"
