#!/usr/bin/env bash
# The kubelet's figures (issue #5): pod start latency from API create to Running in status
# (p50/p99 over PODS pods, image present), agent RSS idle and with 20 pods, agent CPU at
# idle over IDLE_SECONDS. A control-plane board and an agent-only board on loopback.
#   tests/bench/kubelet.sh [BRAMBLE]     (root: containers need namespaces and cgroups)
set -euo pipefail
cd "$(dirname "$0")/../.."
bramble=$(realpath "${1:-build/x86_64/bramble}")
pods=${PODS:-100}
idle=${IDLE_SECONDS:-60}
make -s --no-print-directory build/x86_64/bench-podstart >/dev/null
dir=$(mktemp -d /tmp/bramble-kubelet-bench.XXXXXX)
port=$((20000 + RANDOM % 40000))
parent=bramble-bench-$$
"$bramble" init --data-dir "$dir/cp" --listen "127.0.0.1:$port" --node-name cp >/dev/null
sed -i "s/^roles = .*/roles = server/" "$dir/cp/bramble.conf"
key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
echo "node:board $key" >>"$dir/cp/credentials"
mkdir -p "$dir/board"
echo "node:board $key" >"$dir/board/node-credential"
chmod 600 "$dir/board/node-credential"
cat >"$dir/board/bramble.conf" <<CONF
[node]
name = board
roles = agent
data-dir = $dir/board
[agent]
server = coaps://127.0.0.1:$port
state-dir = $dir/board/run
cgroup-parent = $parent
[network]
pod-network = off
CONF
bash tests/images/make-images.sh "$dir/images" >/dev/null
"$bramble" image import --data-dir "$dir/board" "$dir/images/busybox-oci.tar" >/dev/null
"$bramble" agent --config "$dir/cp/bramble.conf" 2>"$dir/cp.log" &
cp_pid=$!
"$bramble" agent --config "$dir/board/bramble.conf" 2>"$dir/board.log" &
agent_pid=$!
cleanup() {
	"$bramble" --config "$dir/cp/admin.conf" delete pods --all >/dev/null 2>&1 || true
	kill "$agent_pid" "$cp_pid" 2>/dev/null || true
	wait "$agent_pid" "$cp_pid" 2>/dev/null || true
	# Containers may outlive their agent: kill what is left in the bench's cgroups first.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		left=$(cat /sys/fs/cgroup/*/"$parent"/cgroup.procs /sys/fs/cgroup/*/"$parent"/*/cgroup.procs \
			/sys/fs/cgroup/*/"$parent"/*/*/cgroup.procs /sys/fs/cgroup/"$parent"/*/*/cgroup.procs 2>/dev/null | sort -u)
		[ -z "$left" ] && break
		kill -9 $left 2>/dev/null || true
		sleep 0.2
	done
	for c in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent"; do
		[ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	grep " $dir/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$dir" || { sleep 1; rm -rf "$dir"; }
}
trap cleanup EXIT
admin_key=$(awk -F' = ' '$1 == "key" {print $2}' "$dir/cp/admin.conf")
b() { "$bramble" --config "$dir/cp/admin.conf" "$@"; }
for _ in $(seq 1 100); do b get nodes 2>/dev/null | grep -q 'board  *Ready' && break; sleep 0.1; done
rss() { awk '$1 == "VmRSS:" {print $2}' "/proc/$agent_pid/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
sleep 3
echo "agent RSS idle, no pods: $(rss) kB"
before=$(ticks)
sleep "$idle"
after=$(ticks)
hz=$(getconf CLK_TCK)
echo "agent CPU at idle over ${idle} s: $((after - before)) ticks = $(echo "scale=3; 100 * ($after - $before) / ($hz * $idle)" | bc)% of a core"
build/x86_64/bench-podstart "127.0.0.1:$port" admin "$admin_key" board busybox:1.36 "$pods" || tail -n 20 "$dir/board.log"
for i in $(seq 1 20); do
	echo "---"
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"idle-$i\"},\"spec\":{\"nodeName\":\"board\",\"terminationGracePeriodSeconds\":0,\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1.36\",\"command\":[\"sleep\",\"3600\"]}]}}"
done | b apply -f - >/dev/null
for _ in $(seq 1 300); do [ "$(b get pods 2>/dev/null | grep -c Running)" -ge 20 ] && break; sleep 0.2; done
sleep 2
echo "agent RSS with $(b get pods 2>/dev/null | grep -c Running) pods running: $(rss) kB"
