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
. tests/bench/loopback_cluster.sh
cluster_make "$(mktemp -d /tmp/bramble-kubelet-bench.XXXXXX)" "bramble-bench-$$"
trap cluster_cleanup EXIT
bash tests/images/make-images.sh "$dir/images" >/dev/null
"$bramble" image import --data-dir "$dir/board" "$dir/images/busybox-oci.tar" >/dev/null
cluster_start
admin_key=$(awk -F' = ' '$1 == "key" {print $2}' "$dir/cp/admin.conf")
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
