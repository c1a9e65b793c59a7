#!/usr/bin/env bash
# Builds Bramble and runs a one-board cluster on this machine: `bramble init` makes the
# cluster (this board as server and agent, API on 127.0.0.1, port $BRAMBLE_PORT, default
# 5684), then the agent runs in the foreground (Ctrl-C stops it).
#
#   tools/cluster-up.sh           build, init (once), run the board
#   tools/cluster-up.sh --smoke   build, init, start, ask it a few questions, stop
#
# State lives in $BRAMBLE_LOCAL_DIR (default build/local): the store, keys, bramble.conf
# and admin.conf, the client configuration that `bramble --config` takes.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
port=${BRAMBLE_PORT:-5684}
dir=${BRAMBLE_LOCAL_DIR:-$PWD/build/local}

tools/setup.sh build
make -s -j"$(nproc)" >&2
case "$(uname -m)" in
aarch64) host=arm64 ;; armv7l) host=armhf ;; armv6l) host=armv6 ;; *) host=x86_64 ;;
esac
bramble=$PWD/build/$host/bramble
[ -x "$bramble" ] || { echo "cluster-up: build failed" >&2; exit 1; }

if [ ! -f "$dir/bramble.conf" ]; then
	"$bramble" init --data-dir "$dir" --listen "127.0.0.1:$port" --node-name local >&2
	# A smoke run (the tests) leaves this machine's own network alone: no pod bridge, routes
	# or nftables tables in its namespace.
	[ "$mode" = --smoke ] && printf '\n[network]\npod-network = off\n' >>"$dir/bramble.conf"
fi
"$bramble" agent --check-config "$dir/bramble.conf" >&2

cat >&2 <<MSG

Bramble board 'local' on $(awk -F' = ' '$1 == "server" {print $2}' "$dir/admin.conf")
From another terminal:
  $bramble --config $dir/admin.conf get namespaces
  $bramble --config $dir/admin.conf apply -f tests/manifests/
  $bramble --config $dir/admin.conf get deployments
(copy $dir/admin.conf to ~/.config/bramble/config to drop --config)

MSG
if [ "$mode" != --smoke ]; then
	exec "$bramble" agent --config "$dir/bramble.conf"
fi

"$bramble" agent --config "$dir/bramble.conf" 2>"$dir/agent.log" &
pid=$!
# An agent's pods outlive it (a restarted agent adopts them): the smoke run removes what it
# made before it stops the board, so nothing of it stays on the machine.
stop() {
	local b=("$bramble" --config "$dir/admin.conf")
	"${b[@]}" delete -f tests/manifests/ --wait=false >/dev/null 2>&1
	"${b[@]}" delete replicasets --all --timeout 20s >/dev/null 2>&1
	"${b[@]}" delete pods --all --timeout 20s >/dev/null 2>&1
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
}
trap stop EXIT
for _ in $(seq 1 50); do
	if "$bramble" --config "$dir/admin.conf" get namespaces 2>/dev/null; then
		"$bramble" --config "$dir/admin.conf" apply -f tests/manifests/
		"$bramble" --config "$dir/admin.conf" get deployments
		exit 0
	fi
	sleep 0.1
done
echo "cluster-up: the board did not answer on 127.0.0.1:$port (log: $dir/agent.log)" >&2
exit 1
