#!/usr/bin/env bash
# Fetch the external tools the tests need (Prometheus, promtool, Alertmanager, amtool,
# PostgreSQL) from Debian's packages into .tools/ with `apt-get download` + `dpkg -x`:
# nothing is installed system-wide and no service starts. Safe to run again.
#
# The PostgreSQL major version and the shared libraries the tools need are read from the apt
# lists (the newest postgresql-N; every lib* package they depend on that this machine lacks),
# so the script works on any Debian release rather than on one set of library names. When the
# tools cannot be fetched (no apt-get, offline), the tests that need them skip with a reason;
# under CI=true that is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.tools
debs=$tools/debs
root=$tools/root
mkdir -p "$debs" "$root"

give_up() {
  echo "install-tools: $1; tests that need Prometheus, Alertmanager or PostgreSQL will skip" >&2
  if [ "${CI:-}" = true ]; then exit 1; fi
  exit 0
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "install-tools: '$*' needs root and sudo is not available" >&2; return 1; fi
}

ready() {
  for tool in prometheus promtool prometheus-alertmanager amtool; do
    [ -x "$root/usr/bin/$tool" ] || return 1
  done
  compgen -G "$root/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

unpack() {
  for deb in "$debs"/*.deb; do
    [ -e "$deb" ] || continue
    stamp="$tools/.unpacked-$(basename "$deb")"
    if [ ! -e "$stamp" ]; then
      dpkg -x "$deb" "$root"
      touch "$stamp"
    fi
  done
}

unpack
if ready; then
  echo "install-tools: tools ready in $root"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || give_up "apt-get is not available"

postgres_version() {
  { apt-cache pkgnames postgresql- 2>/dev/null || true; } \
    | sed -n 's/^postgresql-\([0-9][0-9]*\)$/\1/p' | sort -n | tail -n 1
}
version=$(postgres_version)
if [ -z "$version" ]; then   # a fresh machine has no apt lists yet
  as_root apt-get update -qq || give_up "apt-get update failed"
  version=$(postgres_version)
fi
[ -n "$version" ] || give_up "the apt lists hold no postgresql-N package"

tool_packages=(prometheus prometheus-alertmanager "postgresql-$version" "postgresql-client-$version")
# dpkg -x resolves no dependencies: fetch every shared library the tools need that is not
# installed here (libjs-* and perl modules belong to web pages and scripts the tests do not use).
libraries=$(
  { apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "${tool_packages[@]}" 2>/dev/null || true; } \
    | { grep -E '^lib[a-z0-9.+-]+$' || true; } | { grep -vE '^libjs-|-perl$' || true; } | sort -u \
    | while read -r package; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null | grep -q '^ii' \
          || echo "$package"
      done
)

missing=()
for package in "${tool_packages[@]}" $libraries; do
  compgen -G "$debs/${package}_*.deb" >/dev/null || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
  fetch() { (cd "$debs" && apt-get download -q "${missing[@]}" >/dev/null); }
  if ! fetch 2>/dev/null; then   # stale lists: refresh once and try again
    as_root apt-get update -qq || give_up "apt-get update failed"
    fetch || give_up "apt-get download ${missing[*]} failed"
  fi
fi
unpack
ready || give_up "the unpacked packages lack a tool"
echo "install-tools: tools ready in $root"
