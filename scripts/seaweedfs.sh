#!/usr/bin/env bash
# A local SeaweedFS S3 server, for the S3 image store's integration tests and for trying
# IMAGEGW_IMAGES_URL=s3://… by hand.
#
#   scripts/seaweedfs.sh build   build `weed` once into .cache/weed/ and print its path (about
#                                5 minutes on 2 idle cores, seconds when Go's build cache has
#                                it; reused when the pinned version is there)
#   scripts/seaweedfs.sh start   build if needed, start `weed server -s3` (master, volume, filer
#                                and S3 on 127.0.0.1, data under .cache/weed/data), wait until S3
#                                takes a write and print its endpoint; does nothing but print it when
#                                it is already running
#   scripts/seaweedfs.sh stop    stop the server this script started (its data is kept; `stop
#                                --clean` deletes it too)
#   scripts/seaweedfs.sh status  print the endpoint and exit 0 when it is running, else exit 1
#   scripts/seaweedfs.sh env     print the setting that points the gateway at it
#
# The S3 API runs without authentication (any or no credentials are accepted), on
# IMAGEGW_WEED_S3_PORT (18333); the other listeners take the ports after it: master, volume and
# filer and their gRPC ports (gRPC would otherwise default to port+10000), and S3's gRPC port.
# The Iceberg and Lance listeners are off. IMAGEGW_WEED_CACHE overrides the cache directory.
#
# `go test ./internal/imagestore` (TestSeaweedFS*, TestTwoGatewaysShareS3) starts it this way and
# leaves it running; with CI=true it builds it too, elsewhere those tests skip until
# `scripts/seaweedfs.sh build` has run. .ci/run builds it before `make test`.
#
# `go install github.com/seaweedfs/seaweedfs/weed@…` is refused (its go.mod has replace
# directives), so the module is downloaded with `go mod download`, copied writable and built as
# the main module.
set -euo pipefail

SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${IMAGEGW_WEED_CACHE:-$root/.cache/weed}"
bin="$cache/weed"
stamp="$cache/weed.version"
data="$cache/data"
pidfile="$cache/weed.pid"
logfile="$cache/weed.log"

s3_port="${IMAGEGW_WEED_S3_PORT:-18333}"
master_port=$((s3_port + 1))
master_grpc=$((s3_port + 2))
volume_port=$((s3_port + 3))
volume_grpc=$((s3_port + 4))
filer_port=$((s3_port + 5))
filer_grpc=$((s3_port + 6))
s3_grpc=$((s3_port + 7))
endpoint="http://127.0.0.1:$s3_port"

log() { echo "seaweedfs: $*" >&2; }

built() { [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$SEAWEEDFS_VERSION" ]; }

# lock serialises builds and starts (two test processes, or a test and a shell).
lock() {
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock 9
}

build() {
	if built; then
		return 0
	fi
	command -v go >/dev/null || { log "go is not installed"; return 1; }
	local mod tmp start
	start=$(date +%s)
	log "building weed $SEAWEEDFS_VERSION into $bin (once; about 5 minutes on 2 idle cores)"
	mod="$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	if [ -z "$mod" ] || [ ! -d "$mod/weed" ]; then
		log "go mod download github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION failed"
		return 1
	fi
	tmp="$(mktemp -d "$cache/.build.XXXXXX")"
	# The module cache is read-only; the build wants a writable main module.
	cp -R "$mod/." "$tmp/src"
	chmod -R u+w "$tmp/src"
	if ! (cd "$tmp/src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags '-s -w' -o "$tmp/weed" ./weed); then
		rm -rf "$tmp"
		log "go build ./weed failed"
		return 1
	fi
	mv -f "$tmp/weed" "$bin"
	echo "$SEAWEEDFS_VERSION" >"$stamp"
	rm -rf "$tmp"
	log "built $bin in $(($(date +%s) - start))s"
}

running() {
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# answers: S3 is up when an anonymous ListBuckets gets an S3 answer (XML), not a refused
# connection or a gateway still starting.
answers() {
	curl -s -m 2 -o /dev/null -w '%{http_code}' "$endpoint/" 2>/dev/null | grep -q '^200$'
}

start() {
	if running && answers; then
		echo "$endpoint"
		return 0
	fi
	if running; then
		# Started but not answering yet (another start is waiting, or it is stuck): give it the
		# same time a fresh start gets, then start over.
		wait_s3 && { echo "$endpoint"; return 0; }
		stop_server
	fi
	if answers; then
		# Not ours (no live pid file here): a server another checkout of the repo started. Use it
		# only if it takes a write: one whose checkout (and data directory) was deleted can still
		# answer ListBuckets and then hang every upload.
		if writable; then
			log "S3 already answers on $endpoint (a server this checkout did not start); using it"
			echo "$endpoint"
			return 0
		fi
		log "S3 answers on $endpoint but does not take a write (a server another checkout started, its data perhaps deleted); stop it (pkill -f 'weed server') or set IMAGEGW_WEED_S3_PORT"
		return 1
	fi
	build
	mkdir -p "$data"
	log "starting weed server -s3 on $endpoint (log: $logfile)"
	# setsid: the server outlives this script and the test that started it, in its own session.
	setsid "$bin" server \
		-ip=127.0.0.1 -ip.bind=127.0.0.1 \
		-dir="$data" \
		-master.port="$master_port" -master.port.grpc="$master_grpc" \
		-volume.port="$volume_port" -volume.port.grpc="$volume_grpc" \
		-filer.port="$filer_port" -filer.port.grpc="$filer_grpc" \
		-s3 -s3.port="$s3_port" -s3.port.grpc="$s3_grpc" \
		-s3.port.iceberg=0 -s3.port.lance=0 \
		-master.volumeSizeLimitMB=64 -volume.max=0 -master.telemetry=false \
		</dev/null >"$logfile" 2>&1 9>&- &
	echo $! >"$pidfile"
	if ! wait_s3; then
		log "S3 on $endpoint did not take a write within 120s; the end of $logfile:"
		tail -n 30 "$logfile" >&2 || true
		stop_server
		return 1
	fi
	echo "$endpoint"
}

# writable: S3 answers before its filer and volume server are ready (the first object write
# allocates a volume, seconds after start): create a bucket and write, read and delete an
# object, so the tests start on a warm server.
writable() {
	local b="$endpoint/imagegw-ready"
	curl -s -m 30 -o /dev/null -w '%{http_code}' -X PUT "$b" 2>/dev/null | grep -q '^\(200\|409\)$' &&
		curl -s -m 60 -o /dev/null -w '%{http_code}' -X PUT --data-binary ok "$b/probe" 2>/dev/null | grep -q '^200$' &&
		[ "$(curl -s -m 10 "$b/probe" 2>/dev/null)" = ok ] &&
		curl -s -m 10 -o /dev/null -X DELETE "$b/probe" 2>/dev/null
}

wait_s3() {
	local deadline=$(($(date +%s) + 120))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		running || return 1
		answers && writable && return 0
		sleep 0.5
	done
	return 1
}

stop_server() {
	if ! running; then
		rm -f "$pidfile"
		return 0
	fi
	local pid
	pid="$(cat "$pidfile")"
	# The server runs in its own session (setsid): end that process group only.
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$pidfile"
	log "stopped"
}

case "${1:-start}" in
build)
	lock
	build
	echo "$bin"
	;;
start)
	lock
	start
	;;
stop)
	lock
	stop_server
	if [ "${2:-}" = "--clean" ]; then
		rm -rf "$data" "$logfile"
	fi
	;;
status)
	# Exit 0 (printing the endpoint) when this script's server is running and answers.
	running && answers && echo "$endpoint"
	;;
env)
	echo "IMAGEGW_IMAGES_URL=s3://imagegw/images?endpoint=$endpoint"
	;;
*)
	echo "usage: $0 [build|start|stop [--clean]|status|env]" >&2
	exit 2
	;;
esac
