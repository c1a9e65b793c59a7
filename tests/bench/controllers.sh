#!/usr/bin/env bash
# The scheduler and controllers at scale, end to end through the API server (`make bench`):
#   1. PODS pods (one ReplicaSet) onto NODES hollow nodes (`bramble hollow-nodes`, one
#      process, admin credential), counted from the ReplicaSet's creation: scheduling
#      throughput (to the moment the scheduler's count in /metrics says all are bound, as
#      kube-scheduler's benchmarks count), then end to end (the last pod seen bound by the
#      hollow nodes' watch, the last reported Running); server RSS.
#   2. a real agent board SIGKILLed (network namespaces, tests/integration/boards.sh):
#      seconds from the kill until its pods are Running on the other board, p50 over RUNS,
#      with the default settings (heartbeat 4 s, grace 12 s, eviction after 5 s). Root only.
# Figures only, nothing asserted. Environment: NODES (1000), PODS (10000), RUNS (3),
# PART (both, or 1 or 2), BRAMBLE (the binary: build/x86_64/bramble).
set -uo pipefail
cd "$(dirname "$0")/../.."
nodes=${NODES:-1000}
pods=${PODS:-10000}
runs=${RUNS:-3}
part=${PART:-both}
BRAMBLE=$(realpath "${BRAMBLE:-build/x86_64/bramble}")

now_ms() { date +%s%3N; }

scale() {
	local dir port key pid hollow
	dir=$(mktemp -d /tmp/bramble-bench-controllers.XXXXXX)
	port=$((20000 + RANDOM % 40000))
	"$BRAMBLE" init --data-dir "$dir" --listen "127.0.0.1:$port" --node-name bench >/dev/null
	sed -i "s/^roles = .*/roles = server/" "$dir/bramble.conf" # the control plane alone
	# A throughput test, not a failure test: Kubernetes' grace period, so that heartbeats
	# delayed by a loaded machine do not turn into NotReady nodes.
	sed -i "/^\[server\]/a node-monitor-grace = 40" "$dir/bramble.conf"
	"$BRAMBLE" agent --config "$dir/bramble.conf" 2>"$dir/agent.log" &
	pid=$!
	trap 'kill $pid $hollow 2>/dev/null; wait $pid $hollow 2>/dev/null; rm -rf "$dir"' RETURN
	for _ in $(seq 1 50); do
		"$BRAMBLE" --config "$dir/admin.conf" get namespaces >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$BRAMBLE" --config "$dir/admin.conf" hollow-nodes --count "$nodes" --expect-pods "$pods" --report 5 \
		>"$dir/hollow.out" 2>"$dir/hollow.log" &
	hollow=$!
	for _ in $(seq 1 600); do
		grep -q "registered $nodes nodes" "$dir/hollow.out" && break
		sleep 0.1
	done
	if ! grep -q "registered $nodes nodes" "$dir/hollow.out"; then
		echo "hollow nodes did not register:"; tail -5 "$dir/hollow.log"; return 1
	fi
	printf '%s hollow nodes registered: server RSS %s kB\n' "$nodes" "$(awk '$1 == "VmRSS:" {print $2}' /proc/$pid/status)"
	local start
	start=$(now_ms)
	"$BRAMBLE" --config "$dir/admin.conf" apply -f - >/dev/null <<JSON
{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"scale"},"spec":{"replicas":$pods,
 "selector":{"matchLabels":{"app":"scale"}},"template":{"metadata":{"labels":{"app":"scale"}},
 "spec":{"containers":[{"name":"main","image":"busybox:1.36","resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}]}}}}
JSON
	for _ in $(seq 1 1200); do
		grep -q "running $pods pods" "$dir/hollow.out" && break
		sleep 0.25
	done
	local scheduled bound running
	scheduled=$(sed -nE "s/.*scheduled $pods pods at_ms=([0-9]+).*/\1/p" "$dir/hollow.out")
	bound=$(sed -nE "s/.*bound $pods pods first_ms=([0-9]+) last_ms=([0-9]+).*/\2/p" "$dir/hollow.out")
	running=$(sed -nE "s/.*running $pods pods first_ms=([0-9]+) last_ms=([0-9]+).*/\2/p" "$dir/hollow.out")
	if [ -z "$scheduled" ] || [ -z "$bound" ] || [ -z "$running" ]; then
		echo "not all $pods pods were bound and Running within 5 minutes:"; tail -3 "$dir/hollow.log"
		return 1
	fi
	awk -v n="$pods" -v s="$start" -v c="$scheduled" -v b="$bound" -v r="$running" 'BEGIN {
		printf "scheduling throughput: %d pods created by the ReplicaSet and bound by the scheduler in %.2f s: %.0f pods/s (the scheduler'"'"'s count in /metrics)\n",
			n, (c - s) / 1000, n * 1000 / (c - s)
		printf "end to end: the hollow nodes saw them bound in %.2f s: %.0f pods/s; Running (status written by the hollow nodes) in %.2f s: %.0f pods/s\n",
			(b - s) / 1000, n * 1000 / (b - s), (r - s) / 1000, n * 1000 / (r - s) }'
	printf 'server RSS with %s nodes and %s pods: %s kB\n' "$nodes" "$pods" \
		"$(awk '$1 == "VmRSS:" {print $2}' /proc/$pid/status)"
}

reschedule() {
	if [ "$(id -u)" != 0 ]; then
		echo "(rescheduling after a board's death needs root for network namespaces: skipped)"
		return 0
	fi
	(
		. tests/integration/lib.sh >/dev/null
		. tests/integration/boards.sh
		boards_lan || exit 1
		board_add cp server
		board_add a1 agent
		board_add a2 agent
		# The defaults, not the test harness's quicker heartbeat.
		sed -i '/^node-status-interval = /d' "$test_dir/a1/bramble.conf" "$test_dir/a2/bramble.conf"
		board_start cp
		wait_until 10 b get namespaces >/dev/null
		board_start a1
		board_start a2
		ready2() { [ "$(b get nodes 2>/dev/null | grep -c ' Ready ')" = 2 ]; }
		wait_until 20 ready2 || { echo "boards not Ready"; exit 1; }
		results=()
		for run in $(seq 1 "$runs"); do
			b apply -f - >/dev/null <<JSON
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"victim-$run"},"spec":{"replicas":4,
 "selector":{"matchLabels":{"app":"victim-$run"}},"template":{"metadata":{"labels":{"app":"victim-$run"}},
 "spec":{"terminationGracePeriodSeconds":1,"containers":[{"name":"main","image":"busybox:1.36","command":["sleep","3600"]}]}}}}
JSON
			running_on() { # running_on APP: the node of each Running pod (not Terminating), one a line
				b get pods -l "app=$1" -o wide 2>/dev/null | awk 'NR > 1 && $3 == "Running" {print $7}'
			}
			all4() { [ "$(running_on "victim-$run" | wc -l)" = 4 ]; }
			wait_until 60 all4 || { echo "run $run: pods not Running"; continue; }
			victim=$(running_on "victim-$run" | sort | uniq -c | sort -rn | awk 'NR == 1 {print $2}')
			t0=$(now_ms)
			board_kill "$victim"
			moved() {
				local on
				on=$(running_on "victim-$run")
				[ "$(wc -l <<<"$on")" = 4 ] && ! grep -qx "$victim" <<<"$on"
			}
			if wait_until 120 moved; then
				t1=$(now_ms)
				results+=($((t1 - t0)))
				echo "run $run: $victim killed; its pods Running elsewhere after $(((t1 - t0) / 1000)).$(((t1 - t0) % 1000 / 100)) s"
			else
				echo "run $run: pods not moved within 120 s"
			fi
			b delete deployment "victim-$run" >/dev/null
			board_cleanup "$victim"
			board_start "$victim"
			wait_until 30 ready2 >/dev/null
			sleep 2
		done
		if [ "${#results[@]}" -gt 0 ]; then
			p50=$(printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
			echo "a board's death to its pods Running elsewhere: p50 $((p50 / 1000)).$((p50 % 1000 / 100)) s over ${#results[@]} runs"
		fi
		passed=0 failed=0
	) 2>&1 | grep -v ': 0 passed, 0 failed$'
}

echo "(the machine is shared: figures vary with its load)"
if [ "$part" = both ] || [ "$part" = 1 ]; then
	echo "-- $pods pods onto $nodes hollow nodes (one ReplicaSet; server and hollow nodes on this machine)"
	scale
fi
if [ "$part" = both ] || [ "$part" = 2 ]; then
	echo "-- an agent board SIGKILLed: its pods Running elsewhere (default timings)"
	reschedule
fi
