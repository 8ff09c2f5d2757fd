#!/usr/bin/env bash
# The gateway checked with the official `openai` npm package (the Node SDK).
#
#   scripts/node-sdk-check.sh install   install openai@OPENAI_NODE_VERSION into .cache/node once
#                                       (skipped when that version is there) and print the
#                                       node_modules directory it is in
#   scripts/node-sdk-check.sh           install if needed, then run internal/frontdoor/testdata/node/check.mjs
#                                       against IMAGEGW_BASE_URL (ending in /v1) with IMAGEGW_KEY and
#                                       IMAGEGW_LIMITED_KEY (a key with ipm 5)
#
# `go test ./internal/frontdoor` (TestNodeSDK, part of `make test`) starts a gateway and does the
# same. IMAGEGW_NODE_CACHE overrides the cache directory.
set -euo pipefail

OPENAI_NODE_VERSION=6.49.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${IMAGEGW_NODE_CACHE:-$root/.cache/node}"
dir="$cache/openai@$OPENAI_NODE_VERSION"

installed() {
	[ -f "$dir/node_modules/openai/package.json" ] &&
		[ "$(node -p "require(process.argv[1]).version" "$dir/node_modules/openai/package.json" 2>/dev/null)" = "$OPENAI_NODE_VERSION" ]
}

install() {
	if installed; then
		return 0
	fi
	command -v node >/dev/null || { echo "node-sdk-check: node is not installed" >&2; return 1; }
	command -v npm >/dev/null || { echo "node-sdk-check: npm is not installed" >&2; return 1; }
	mkdir -p "$cache"
	local tmp
	tmp="$(mktemp -d "$cache/.install.XXXXXX")"
	echo '{"private": true}' >"$tmp/package.json"
	if ! npm install --prefix "$tmp" --no-audit --no-fund --no-package-lock --ignore-scripts --loglevel=error \
		"openai@$OPENAI_NODE_VERSION" >&2; then
		rm -rf "$tmp"
		echo "node-sdk-check: npm could not install openai@$OPENAI_NODE_VERSION" >&2
		return 1
	fi
	# Move into place in one step; a concurrent install that won the race is as good.
	rm -rf "$dir.broken"
	if [ -e "$dir" ] && ! installed; then mv "$dir" "$dir.broken" && rm -rf "$dir.broken"; fi
	mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
	installed
}

install
case "${1:-run}" in
install)
	echo "$dir/node_modules"
	;;
run)
	OPENAI_NODE_MODULES="$dir/node_modules" exec node "$root/internal/frontdoor/testdata/node/check.mjs"
	;;
*)
	echo "usage: $0 [install|run]" >&2
	exit 2
	;;
esac
