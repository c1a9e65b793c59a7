#!/usr/bin/env bash
# `make bench`: figures, printed, never asserted (timing on a shared machine is not a test).
#   1. binary size per target
#   2. server memory (VmRSS) with 1,000 and 10,000 pods stored
#   3. the API server over DTLS: GET/s and durable creates/s with concurrent clients, p50/p99
#   4. the idle control plane: bytes written to disk and CPU used over IDLE_SECONDS
#   5. container start latency, bramble run against crun (tests/bench/start_latency.sh)
#   6. scheduling throughput: 10,000 pods onto 1,000 hollow nodes (tests/bench/bench_scheduler.c)
#   7. the prober's CPU per probe attempt: HTTP, TCP and exec (tests/bench/bench_prober.c)
#   8. the kubelet: pod start latency, agent RSS idle and with 20 pods, agent idle CPU
#   9. images over the cluster: push and pull MB/s of a ~10 MB image (tests/bench/image_pull.sh)
#  10. the network: ClusterIP against direct pod IP, throughput (iperf3) and request/response
#      latency, nftables and userspace proxies side by side (tests/bench/network.sh)
# Environment: IDLE_SECONDS (default 60), LOAD_SECONDS (default 10), CLIENTS (default 4).
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup.sh bench
idle=${IDLE_SECONDS:-60}
load=${LOAD_SECONDS:-10}
clients=${CLIENTS:-4}
targets="x86_64 arm64 armhf armv6"

echo "== binary sizes (make sizes)"
for t in $targets; do make -s --no-print-directory ARCH=$t >/dev/null 2>&1 || echo "build for $t failed"; done
tests/bench/sizes.sh $targets
make -s --no-print-directory build/x86_64/bench-api build/x86_64/bench-scheduler build/x86_64/bench-prober >/dev/null

dir=$(mktemp -d /tmp/bramble-bench.XXXXXX)
port=$((20000 + RANDOM % 40000))
build/x86_64/bramble init --data-dir "$dir" --listen "127.0.0.1:$port" --node-name bench >/dev/null
sed -i "s/^roles = .*/roles = server/" "$dir/bramble.conf" # the control plane alone: no kubelet
key=$(awk -F' = ' '$1 == "key" {print $2}' "$dir/admin.conf")
build/x86_64/bramble agent --config "$dir/bramble.conf" 2>"$dir/agent.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
rss() { awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status"; }
for _ in $(seq 1 50); do
	timeout 5 coap-client-openssl -B 2 -m get -u admin -k "$key" "coaps://127.0.0.1:$port/healthz" 2>/dev/null | grep -q ok && break
	sleep 0.1
done
timeout 5 coap-client-openssl -m post -u admin -k "$key" -t json \
	-e '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bench-0"},"data":{"k":"v"}}' \
	"coaps://127.0.0.1:$port/api/v1/namespaces/default/configmaps" >/dev/null

echo
echo "== server memory with pods stored (each pod ~1.2 KB of JSON)"
count_pods() {
	local n=0 cont="" page
	while :; do
		page=$(timeout 30 coap-client-openssl -B 20 -m get -u admin -k "$key" \
			"coaps://127.0.0.1:$port/api/v1/namespaces/default/pods?limit=500${cont:+&continue=$cont}")
		n=$((n + $(grep -o '"kind":"Pod"' <<<"$page" | wc -l)))
		cont=$(sed -nE 's/.*"continue":"([^"]+)".*/\1/p' <<<"$page" | head -n1)
		[ -n "$cont" ] || break
	done
	echo "$n"
}
for want in 1000 10000; do
	have=$(count_pods)
	if [ "$have" -lt "$want" ]; then
		build/x86_64/bench-api "127.0.0.1:$port" admin "$key" create "$clients" 600 /unused $((want - have)) >/dev/null
	fi
	printf '%s pods stored: server RSS %s kB\n' "$(count_pods)" "$(rss)"
done

echo
echo "== API server over DTLS, $clients concurrent clients, ${load}s each (store-sync = full)"
echo "(server and load generator share this machine's $(nproc) cores)"
printf 'RSS at start: %s kB\n' "$(rss)"
build/x86_64/bench-api "127.0.0.1:$port" admin "$key" get "$clients" "$load"
build/x86_64/bench-api "127.0.0.1:$port" admin "$key" create "$clients" "$load"

echo
echo "== idle control plane, ${idle}s"
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
wbytes() { awk '$1 == "write_bytes:" {print $2}' "/proc/$pid/io"; }
t0=$(ticks) w0=$(wbytes)
sleep "$idle"
t1=$(ticks) w1=$(wbytes)
hz=$(getconf CLK_TCK)
printf 'bytes written to disk while idle: %d (write_bytes of /proc/%s/io)\n' $((w1 - w0)) "$pid"
printf 'CPU while idle: %d ticks in %ds = %.3f%% of a core\n' $((t1 - t0)) "$idle" \
	"$(echo "($t1 - $t0) / $hz / $idle * 100" | bc -l)"
printf 'RSS: %s kB\n' "$(rss)"

echo
echo "== container start latency (tests/bench/start_latency.sh, RUNS=${RUNS:-100})"
tests/bench/start_latency.sh build/x86_64/bramble

echo
echo "== scheduling throughput (tests/bench/bench_scheduler.c)"
build/x86_64/bench-scheduler

echo
echo "== probe cost (tests/bench/bench_prober.c: 40 HTTP, 40 TCP, 10 exec probers, 100 ms periods)"
build/x86_64/bench-prober 40 "$load"

echo
echo "== the kubelet: pod start latency, agent RSS and idle CPU (tests/bench/kubelet.sh)"
IDLE_SECONDS=$idle tests/bench/kubelet.sh build/x86_64/bramble

echo
echo "== images over the cluster: push and pull of a ~10 MB image on loopback (tests/bench/image_pull.sh)"
tests/bench/image_pull.sh build/x86_64/bramble
echo "== network: ClusterIP vs direct pod IP, nftables and userspace proxy (tests/bench/network.sh)"
tests/bench/network.sh build/x86_64/bramble
