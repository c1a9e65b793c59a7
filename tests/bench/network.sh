#!/usr/bin/env bash
# The network's figures (issue #7): throughput (Debian's iperf3) and request/response
# latency (tests/bench/bench_rr.c: one connection, and a new connection per request) from a
# pod on one board to a pod on another, directly by pod IP and through the Service's
# ClusterIP, for the nftables proxy and then the userspace one. Two boards in network
# namespaces on the test LAN (tests/integration/boards.sh); the servers run in the server
# pod's network namespace, the clients in the client pod's.
#   tests/bench/network.sh [BRAMBLE]     (root; SECONDS_EACH=5 per iperf3 run, RR_COUNT=2000)
set -euo pipefail
cd "$(dirname "$0")/../.."
export BRAMBLE=$(realpath "${1:-build/x86_64/bramble}")
each=${SECONDS_EACH:-5}
count=${RR_COUNT:-2000}
command -v iperf3 >/dev/null || { echo "network bench: iperf3 is missing; run tools/setup.sh bench as root" >&2; exit 1; }
make -s --no-print-directory build/x86_64/bench-rr >/dev/null
rr=$(realpath build/x86_64/bench-rr)
set +e
. tests/integration/lib.sh >/dev/null
. tests/integration/boards.sh
# lib.sh's exit tally is for tests: here only its clean-up runs
finish() {
	for action in "${exit_actions[@]}"; do eval "$action" >/dev/null 2>&1 || true; done
	rm -rf "$test_dir"
}
boards_lan >/dev/null || { echo "network bench: cannot create network namespaces" >&2; exit 1; }
board_add cp "server, agent" >/dev/null
board_add b agent >/dev/null
servers=()
# $! of `in_pod ... &` is the subshell around nsenter: the server is its child.
stop_servers() {
	for p in "${servers[@]}"; do
		pkill -P "$p" 2>/dev/null || true
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	servers=()
}
on_exit stop_servers

pod() { # pod NAME NODE [LABELS-JSON]
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$1\",\"labels\":${3:-{\}}},\"spec\":{\"nodeName\":\"$2\",\"terminationGracePeriodSeconds\":1,\"containers\":[{\"name\":\"main\",\"image\":\"busybox:1.36\",\"command\":[\"sleep\",\"100000\"]}]}}"
}
pod_uid() { pod_json "$1" | grep -o '"uid":"[^"]*"' | head -n1 | cut -d'"' -f4; }
pod_ip() { pod_json "$1" | grep -o '"podIP":"[^"]*"' | cut -d'"' -f4; }
in_pod() { local board=$1 uid; uid=$(pod_uid "$2"); shift 2; nsenter --net="$test_dir/$board/run/pods/$uid/ns/net" "$@"; }
running() { pod_json "$1" | grep -q '"phase":"Running"'; }
both_running() { running server && running client; }
served() { in_pod cp client "$rr" rr "$svc_ip" 7000 1 >/dev/null 2>&1; }

start_servers() {
	server_ip=$(pod_ip server)
	in_pod b server iperf3 -s -p 5201 >/dev/null 2>&1 &
	servers+=($!)
	in_pod b server "$rr" serve 7000 >/dev/null 2>&1 &
	servers+=($!)
}

start_boards() { # start_boards MODE
	for n in cp b; do
		sed -i '/^\[network\]/,$d' "$test_dir/$n/bramble.conf"
		printf '[network]\nproxy-mode = %s\n' "$1" >>"$test_dir/$n/bramble.conf"
	done
	board_start cp
	wait_until 10 b get namespaces || { echo "network bench: the control plane did not start" >&2; exit 1; }
	board_start b
}

gbits() { # gbits ADDRESS: iperf3's received rate in Gbit/s
	in_pod cp client iperf3 -c "$1" -p 5201 -t "$each" -J 2>/dev/null |
		python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # measure MODE: direct and ClusterIP, alternating, RUNS times; medians
	local runs=${RUNS:-3} d=() v=() i
	for i in $(seq 1 "$runs"); do
		d+=("$(gbits "$server_ip")")
		v+=("$(gbits "$svc_ip")")
	done
	local gd gv
	gd=$(printf '%s\n' "${d[@]}" | median)
	gv=$(printf '%s\n' "${v[@]}" | median)
	printf '%-10s %-10s %6s Gbit/s (median of %s)   rr %-26s crr %s\n' "$1" direct "$gd" "$runs" \
		"$(in_pod cp client "$rr" rr "$server_ip" 7000 "$count")" "$(in_pod cp client "$rr" crr "$server_ip" 7000 "$count")"
	printf '%-10s %-10s %6s Gbit/s (median of %s)   rr %-26s crr %s\n' "$1" clusterIP "$gv" "$runs" \
		"$(in_pod cp client "$rr" rr "$svc_ip" 7000 "$count")" "$(in_pod cp client "$rr" crr "$svc_ip" 7000 "$count")"
	printf '%-10s clusterIP throughput = %s%% of direct\n' "$1" \
		"$(python3 -c "print('%.1f' % (100 * $gv / $gd if $gd else 0))")"
}

start_boards nftables
pod server b '{"app":"bench"}' | b apply -f - >/dev/null
pod client cp | b apply -f - >/dev/null
b apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: bench
spec:
  selector:
    app: bench
  ports:
  - name: iperf
    port: 5201
  - name: rr
    port: 7000
YAML
svc_ip=$(b get service bench -o json | tr -d ' \n' | grep -o '"clusterIP":"[^"]*"' | cut -d'"' -f4)

echo "pod on board cp -> pod on board b ($(nproc) cores shared with whatever else runs here; iperf3 ${each}s, $count round trips)"
for mode in nftables userspace; do
	if [ "$mode" = userspace ]; then
		stop_servers
		board_stop b
		board_stop cp
		start_boards userspace
	fi
	wait_until 30 both_running || { echo "network bench: the pods did not run" >&2; exit 1; }
	start_servers
	wait_until 30 served || { echo "network bench: the Service does not answer ($mode)" >&2; exit 1; }
	measure "$mode"
done
stop_servers
b delete pods --all >/dev/null 2>&1
no_pods() { ! b get pods 2>/dev/null | grep -q .; }
wait_until 20 no_pods
