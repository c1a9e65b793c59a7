#!/usr/bin/env bash
# A two-board cluster on this machine, for trying Bramble out (the README's walkthrough):
# board1 runs on this machine as server and agent; board2 lives in a network namespace
# joined to it by a veth pair (a stand-in for a second Raspberry Pi on the LAN) and joins the
# cluster with a token, as a new board with only `server` and `token` in its bramble.conf.
#
#   sudo tools/try-join.sh          build, init board1, start it, make a token, join board2
#   tools/try-join.sh env           the export lines for the client: eval "$(tools/try-join.sh env)"
#   sudo tools/try-join.sh down     stop both boards and remove everything it made
#
# Each step prints the command it runs. Settings (environment):
#   TRY_DIR     state of both boards, default build/try
#   TRY_NAME    prefix of the namespace, the veth and the cgroups, default bramble-try
#   TRY_SUBNET  the /24 between the boards (board1 .1, board2 .2), default 10.77.0
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-up}
dir=$(realpath -m "${TRY_DIR:-build/try}")
name=${TRY_NAME:-bramble-try}
subnet=${TRY_SUBNET:-10.77.0}
# `down` and `env` use the settings `up` ran with.
if [ "$mode" != up ] && [ -f "$dir/settings" ]; then
	. "$dir/settings"
fi
ns=$name-board2
veth=${name:0:10}0
bridge=${name:0:12}-br # board1's pod bridge (a link name has at most 15 characters)
case "$(uname -m)" in
aarch64) host=arm64 ;; armv7l) host=armhf ;; armv6l) host=armv6 ;; *) host=x86_64 ;;
esac
bin=$PWD/build/$host
bramble=$bin/bramble

say() { if [ -t 2 ]; then printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; else printf '\n$ %s\n' "$*" >&2; fi; }
run() { say "$*"; "$@"; }

# Whatever a board left: its agent, processes in its cgroups, mounts under its directory.
board_down() {
	local board=$1 pid
	if [ -f "$dir/$board.pid" ]; then
		pid=$(cat "$dir/$board.pid")
		kill "$pid" 2>/dev/null && for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		rm -f "$dir/$board.pid"
	fi
	local pids
	pids=$(cat /sys/fs/cgroup/*/"$name-$board"/*/*/cgroup.procs /sys/fs/cgroup/"$name-$board"/*/*/cgroup.procs 2>/dev/null || true)
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
	sleep 0.2
	{ grep " $dir/$board/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
	for c in /sys/fs/cgroup/*/"$name-$board" /sys/fs/cgroup/"$name-$board"; do
		if [ -d "$c" ]; then find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
	done
	return 0
}

down() {
	board_down board2
	board_down board1
	ip netns del "$ns" 2>/dev/null || true
	ip link del "$veth" 2>/dev/null || true
	# board1's pod network lived in this machine's namespace: its bridge goes, and the
	# nftables tables too unless another Bramble agent runs here.
	ip link del "$bridge" 2>/dev/null || true
	if ! pgrep -f "bramble agent" >/dev/null; then
		nft delete table ip bramble_podnet 2>/dev/null || true
		nft delete table ip bramble_proxy 2>/dev/null || true
	fi
	echo "try-join: stopped both boards; their state is kept in $dir (rm -rf it to start over)" >&2
}

case "$mode" in
env)
	echo "export PATH=$bin:\$PATH"
	echo "export BRAMBLE_CONFIG=$dir/board1/admin.conf"
	exit 0
	;;
down)
	down
	exit 0
	;;
up) ;;
*)
	echo "usage: tools/try-join.sh [up|env|down]" >&2
	exit 2
	;;
esac

if [ "$(id -u)" != 0 ]; then
	echo "try-join: run as root (it makes a network namespace, cgroups and containers): sudo $0" >&2
	exit 1
fi
[ -x "$bramble" ] || { tools/setup.sh build && make -s -j"$(nproc)" >&2; }
if [ -f "$dir/board1.pid" ] && kill -0 "$(cat "$dir/board1.pid")" 2>/dev/null; then
	echo "try-join: already running (tools/try-join.sh down stops it)" >&2
	exit 1
fi
trap 'echo "try-join: failed; logs in $dir/*.log; cleaning up" >&2; down' ERR
mkdir -p "$dir"
printf 'name=%q\nsubnet=%q\n' "$name" "$subnet" >"$dir/settings"

# The LAN: a veth pair, board1's end here, board2's end in its namespace.
say "ip netns add $ns  (board2's network, linked to this machine by a veth pair)"
ip netns add "$ns"
ip link add "$veth" type veth peer name eth0 netns "$ns"
ip addr add "$subnet.1/24" dev "$veth"
ip link set "$veth" up
ip -n "$ns" addr add "$subnet.2/24" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set lo up

# board1: a new cluster.
if [ ! -f "$dir/board1/bramble.conf" ]; then
	run "$bramble" init --data-dir "$dir/board1" --listen "$subnet.1:5684" --node-name board1
	cat >>"$dir/board1/bramble.conf" <<CONF

[agent]
state-dir = $dir/board1/run
cgroup-parent = $name-board1
node-status-interval = 2

[network]
# board1 runs in this machine's own network namespace: a bridge of its own name
bridge = $bridge
CONF
fi
# Images come as files until boards pull them: a small busybox image on each board.
if [ ! -f "$dir/images/busybox-oci.tar" ]; then
	bash tests/images/make-images.sh "$dir/images" >/dev/null
fi
run "$bramble" image import --data-dir "$dir/board1" "$dir/images/busybox-oci.tar" >/dev/null
say "$bramble agent --config $dir/board1/bramble.conf &"
"$bramble" agent --config "$dir/board1/bramble.conf" >>"$dir/board1.log" 2>&1 &
echo $! >"$dir/board1.pid"
admin=(--config "$dir/board1/admin.conf")
for _ in $(seq 1 100); do "$bramble" "${admin[@]}" get namespaces >/dev/null 2>&1 && break; sleep 0.1; done

# board2: only the server and a token; it gets its own credential by joining.
mkdir -p "$dir/board2"
if [ ! -f "$dir/board2/node-credential" ]; then
	say "$bramble --config $dir/board1/admin.conf token create --ttl 1h --description board2"
	token=$("$bramble" "${admin[@]}" token create --ttl 1h --description board2)
	echo "$token" >&2
	cat >"$dir/board2/bramble.conf" <<CONF
[node]
name = board2
data-dir = $dir/board2

[agent]
server = coaps://$subnet.1:5684
token = $token
state-dir = $dir/board2/run
cgroup-parent = $name-board2
node-status-interval = 2
CONF
	say "cat $dir/board2/bramble.conf  (what goes on board2's SD card)"
	cat "$dir/board2/bramble.conf" >&2
fi
run "$bramble" image import --data-dir "$dir/board2" "$dir/images/busybox-oci.tar" >/dev/null
say "nsenter --net=/run/netns/$ns $bramble agent --config $dir/board2/bramble.conf &"
nsenter --net="/run/netns/$ns" "$bramble" agent --config "$dir/board2/bramble.conf" >>"$dir/board2.log" 2>&1 &
echo $! >"$dir/board2.pid"

ready() { [ "$("$bramble" "${admin[@]}" get nodes 2>/dev/null | grep -c ' Ready ')" = 2 ]; }
for _ in $(seq 1 300); do ready && break; sleep 0.1; done
trap - ERR
run "$bramble" "${admin[@]}" get nodes
cat >&2 <<MSG

Two boards are running (logs: $dir/board1.log, $dir/board2.log). Use the client with:
  eval "\$(tools/try-join.sh env)"
  bramble get nodes
Stop them with: sudo tools/try-join.sh down
MSG
ready
