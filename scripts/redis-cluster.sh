#!/usr/bin/env bash
# A local 3-master Redis Cluster (no replicas) for the rate limiter's cluster tests and for trying
# IMAGEGW_REDIS_URL against a cluster. Needs only redis-server and redis-cli (7.x).
#
#   scripts/redis-cluster.sh [start]   start every node that is not running (a node started before
#                                      keeps its nodes-<port>.conf, so it rejoins with its slots),
#                                      create the cluster if it was never created, and wait until
#                                      every node reports cluster_state:ok; a no-op if it is up
#   scripts/redis-cluster.sh stop      shut the nodes down and delete their directory
#   scripts/redis-cluster.sh status    print each node's cluster_state; exit 1 unless all are ok
#   scripts/redis-cluster.sh url       print the gateway URL of the cluster
#
# The gateway then takes IMAGEGW_REDIS_URL=redis://127.0.0.1:7101 (cluster mode is detected) or
# the explicit redis://127.0.0.1:7101?addr=127.0.0.1:7102&addr=127.0.0.1:7103.
#
# Environment: REDIS_CLUSTER_PORTS (default "7101 7102 7103"), REDIS_CLUSTER_DIR (default
# ${TMPDIR:-/tmp}/imagegw-redis-cluster). Nodes listen on 127.0.0.1 only and keep no data on disk.
# stop shuts down only nodes whose working directory is REDIS_CLUSTER_DIR.
set -euo pipefail

read -r -a ports <<<"${REDIS_CLUSTER_PORTS:-7101 7102 7103}"
dir="${REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/imagegw-redis-cluster}"
host=127.0.0.1

die() {
	echo "redis-cluster: $*" >&2
	exit 1
}

cli() {
	local port=$1
	shift
	redis-cli -h "$host" -p "$port" --no-auth-warning "$@"
}

up() { [ "$(cli "$1" ping 2>/dev/null)" = PONG ]; }

# field PORT SECTION NAME prints NAME's value from INFO SECTION (or CLUSTER INFO when SECTION is
# "cluster-info").
field() {
	local out
	if [ "$2" = cluster-info ]; then
		out="$(cli "$1" cluster info 2>/dev/null)" || return 0
	else
		out="$(cli "$1" info "$2" 2>/dev/null)" || return 0
	fi
	printf '%s\n' "$out" | tr -d '\r' | sed -n "s/^$3://p"
}

ours() { [ "$(cli "$1" config get dir 2>/dev/null | sed -n 2p)" = "$dir" ]; }

start_node() {
	local port=$1
	if up "$port"; then
		[ "$(field "$port" cluster cluster_enabled)" = 1 ] ||
			die "port $port answers but is not a cluster node; stop it or set REDIS_CLUSTER_PORTS"
		return 0
	fi
	mkdir -p "$dir"
	redis-server --port "$port" --bind "$host" --cluster-enabled yes \
		--cluster-config-file "nodes-$port.conf" --dir "$dir" --save "" --appendonly no \
		--daemonize yes --pidfile "$dir/redis-$port.pid" --logfile "$dir/redis-$port.log" \
		--loglevel warning
	for _ in $(seq 1 50); do
		up "$port" && return 0
		sleep 0.1
	done
	die "node $port did not start; see $dir/redis-$port.log"
}

all_ok() {
	local port
	for port in "${ports[@]}"; do
		[ "$(field "$port" cluster-info cluster_state)" = ok ] || return 1
		[ "$(field "$port" cluster-info cluster_known_nodes)" = "${#ports[@]}" ] || return 1
	done
}

start() {
	command -v redis-server >/dev/null || die "redis-server is not installed"
	command -v redis-cli >/dev/null || die "redis-cli is not installed"
	local port
	for port in "${ports[@]}"; do
		start_node "$port"
	done
	all_ok && return 0
	# Never created: every node knows only itself and serves no slot. Otherwise (a node came
	# back, or the cluster is still converging) wait for it.
	local fresh=1
	for port in "${ports[@]}"; do
		if [ "$(field "$port" cluster-info cluster_known_nodes)" != 1 ] ||
			[ "$(field "$port" cluster-info cluster_slots_assigned)" != 0 ]; then
			fresh=0
		fi
	done
	if [ "$fresh" = 1 ]; then
		local addrs=()
		for port in "${ports[@]}"; do
			addrs+=("$host:$port")
		done
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 ||
			die "redis-cli --cluster create failed; see $dir/create.log"
	fi
	for _ in $(seq 1 300); do
		all_ok && return 0
		sleep 0.1
	done
	status >&2 || true
	die "the cluster did not reach cluster_state:ok in 30 s; '$0 stop' then '$0' starts afresh"
}

stop() {
	local port pid
	for port in "${ports[@]}"; do
		if up "$port"; then
			if ours "$port"; then
				cli "$port" shutdown nosave >/dev/null 2>&1 || true
			else
				echo "redis-cluster: port $port is not a node of $dir; left alone" >&2
			fi
		fi
	done
	for port in "${ports[@]}"; do
		for _ in $(seq 1 50); do
			up "$port" && ours "$port" || break
			sleep 0.1
		done
		pid="$(cat "$dir/redis-$port.pid" 2>/dev/null || true)"
		[ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null || die "node $port (pid $pid) did not stop"
	done
	rm -rf "$dir"
}

status() {
	local port rc=0 state
	for port in "${ports[@]}"; do
		if up "$port"; then
			state="$(field "$port" cluster-info cluster_state)"
		else
			state=down
		fi
		echo "$host:$port ${state:-unknown}"
		[ "$state" = ok ] || rc=1
	done
	return $rc
}

url() {
	local first=1 out="" port
	for port in "${ports[@]}"; do
		if [ "$first" = 1 ]; then
			out="redis://$host:$port"
			first=0
		elif [ "$out" = "${out%%\?*}" ]; then
			out="$out?addr=$host:$port"
		else
			out="$out&addr=$host:$port"
		fi
	done
	echo "$out"
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
status) status ;;
url) url ;;
*) die "usage: $0 [start|stop|status|url]" ;;
esac
