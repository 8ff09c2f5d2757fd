#!/usr/bin/env bash
# Debian packages the tests use, installed once (idempotent; as root, from Debian's apt):
#
#   scripts/debian.sh prometheus haproxy     install what is missing of these packages
#
# prometheus gives promtool (deploy/prometheus_test.go) and a server the replica test scrapes
# the gateways with; haproxy is the replica test's load balancer. Package services are not
# started: the tests run their own with their own config. Tests call this themselves in CI
# (CI=true); elsewhere they skip with a hint naming it.
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 PACKAGE..." >&2; exit 2; }

missing=()
for p in "$@"; do
	case "$p" in
	prometheus | haproxy) ;;
	*) echo "debian.sh: $p is not a package the tests use (prometheus, haproxy)" >&2; exit 2 ;;
	esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "debian.sh: ${missing[*]} not installed; run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Keep the packages' postinst scripts from starting their services (there may be no init here).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
	trap 'rm -f "$policy"' EXIT
fi
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
	{ apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
# Stop any server a package started anyway.
pkill -x prometheus 2>/dev/null || true
pkill -x haproxy 2>/dev/null || true
echo "debian.sh: installed ${missing[*]}"
