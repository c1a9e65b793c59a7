#!/usr/bin/env bash
# `make bench`: figures, printed, never asserted (timing on a shared machine is not a test).
#   1. binary size per target
#   2. the idle agent: resident memory, CPU time and bytes written over an idle minute
#   3. DTLS request latency to the agent with Debian's coap-client (new handshake per request)
# IDLE_SECONDS (default 60) and REQUESTS (default 50) shorten the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
idle=${IDLE_SECONDS:-60}
requests=${REQUESTS:-50}
targets="x86_64 arm64 armhf armv6"

echo "== binary sizes (make sizes)"
for t in $targets; do make -s --no-print-directory ARCH=$t >/dev/null 2>&1 || echo "build for $t failed"; done
tests/bench/sizes.sh $targets

echo
echo "== idle agent (server + agent roles, ${idle}s)"
dir=$(mktemp -d /tmp/bramble-bench.XXXXXX)
port=$((20000 + RANDOM % 40000))
key=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
mkdir -p "$dir/data"
(umask 077 && printf 'admin %s\n' "$key" >"$dir/data/credentials")
printf '[node]\nname = bench\nroles = server, agent\ndata-dir = %s/data\n[server]\nlisten = 127.0.0.1:%s\n' \
	"$dir" "$port" >"$dir/bramble.conf"
build/x86_64/bramble agent --config "$dir/bramble.conf" 2>"$dir/agent.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
wbytes() { awk '$1 == "write_bytes:" {print $2}' "/proc/$pid/io"; }
t0=$(ticks) w0=$(wbytes)
sleep "$idle"
t1=$(ticks) w1=$(wbytes)
hz=$(getconf CLK_TCK)
printf 'RSS: %s kB (VmRSS from /proc/%s/status)\n' "$(awk '$1 == "VmRSS:" {print $2}' /proc/$pid/status)" "$pid"
printf 'CPU while idle: %d ticks in %ds = %.3f%% of a core\n' $((t1 - t0)) "$idle" \
	"$(echo "($t1 - $t0) / $hz / $idle * 100" | bc -l)"
printf 'bytes written while idle: %d (write_bytes from /proc/%s/io)\n' $((w1 - w0)) "$pid"

echo
echo "== DTLS GET /version with coap-client-openssl, $requests sequential requests (handshake each)"
lat=()
for _ in $(seq 1 "$requests"); do
	s=$(date +%s%N)
	timeout 10 coap-client-openssl -B 3 -m get -u admin -k "$key" "coaps://127.0.0.1:$port/version" >/dev/null
	e=$(date +%s%N)
	lat+=($(((e - s) / 1000)))
done
printf '%s\n' "${lat[@]}" | sort -n | awk '{a[NR]=$1} END {printf "p50 %.1f ms, p99 %.1f ms (includes starting coap-client and a full DTLS handshake)\n", a[int(NR*0.5)+1]/1000, a[int(NR*0.99)+1 > NR ? NR : int(NR*0.99)+1]/1000}'
printf 'RSS after the requests: %s kB\n' "$(awk '$1 == "VmRSS:" {print $2}' /proc/$pid/status)"
