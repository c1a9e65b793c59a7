#!/usr/bin/env bash
# Hollow nodes (`bramble hollow-nodes`): simulated Nodes register, stay Ready by their
# heartbeats, get pods scheduled onto them and report them Running without any container;
# a pod deleted from one is gone at once. Bad arguments are usage errors.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

port=$(free_udp_port)
data=$test_dir/cluster
"$BRAMBLE" init --data-dir "$data" --listen "127.0.0.1:$port" --node-name server-1 >/dev/null
sed -i "s/^roles = .*/roles = server/" "$data/bramble.conf" # the control plane alone: no kubelet
"$BRAMBLE" agent --config "$data/bramble.conf" >"$test_dir/agent.log" 2>&1 &
agent_pid=$!
on_exit "kill $agent_pid; wait $agent_pid"
b() { "$BRAMBLE" --config "$data/admin.conf" "$@"; }
check "the control plane answers" wait_until 10 b get namespaces

check_fails_output "a count is required" 'count N is required' b hollow-nodes
check_fails_output "a bad count is a usage error" 'count' b hollow-nodes --count lots

"$BRAMBLE" --config "$data/admin.conf" hollow-nodes --count 20 --prefix sim --heartbeat 2 --expect-pods 40 --report 1 \
	>"$test_dir/hollow.out" 2>"$test_dir/hollow.log" &
hollow_pid=$!
on_exit "kill $hollow_pid; wait $hollow_pid"
registered() { grep -q 'registered 20 nodes' "$test_dir/hollow.out"; }
check "20 hollow nodes register" wait_until 20 registered
ready20() { [ "$(b get nodes 2>/dev/null | grep -c '^sim-[0-9]* \+Ready ')" = 20 ]; }
check "and are Ready" wait_until 10 ready20
check_output "labelled as hollow, with the architecture" '"bramble.io/hollow":"true"' \
	bash -c "'$BRAMBLE' --config '$data/admin.conf' get node sim-00007 -o json | tr -d ' \n'"

b apply -f - >/dev/null <<'JSON'
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"many"},"spec":{"replicas":40,
 "selector":{"matchLabels":{"app":"many"}},"template":{"metadata":{"labels":{"app":"many"}},
 "spec":{"containers":[{"name":"main","image":"busybox:1.36"}]}}}}
JSON
running40() { grep -q 'running 40 pods' "$test_dir/hollow.out"; }
check "40 pods are bound to them and reported Running" wait_until 60 running40
available() { b get deployment many 2>/dev/null | grep -q '^many \+40/40 \+40 \+40 '; }
check "the Deployment counts 40 available" wait_until 20 available
spread() { [ "$(b get pods -o wide 2>/dev/null | awk 'NR > 1 {print $7}' | sort | uniq -c | awk '$1 != 2' | wc -l)" = 0 ]; }
check "two on each of the 20 nodes (spread)" spread

# Catching up in pieces: a replay of events with ?limit=N stops after N, at the last one's
# revision (what hollow-nodes does after a truncated notification).
key=$(awk -F' = ' '$1 == "key" {print $2}' "$data/admin.conf")
replay_events() {
	timeout 10 coap-client-openssl -B 10 -m get -u admin -k "$key" \
		"coaps://127.0.0.1:$port/api/v1/namespaces/default/pods?watch=1&resourceVersion=1&limit=3" |
		grep -oE '"type":"(ADDED|MODIFIED|DELETED)","object"' | wc -l
}
check_output "a replay with limit=3 answers 3 events" '^3$' replay_events
check_output "/metrics counts the 40 pods bound" '^scheduler_schedule_attempts_total\{result="scheduled"\} 40$' \
	timeout 10 coap-client-openssl -B 10 -m get -u admin -k "$key" "coaps://127.0.0.1:$port/metrics"
check_output "and no pod pending" '^scheduler_pending_pods 0$' \
	timeout 10 coap-client-openssl -B 10 -m get -u admin -k "$key" "coaps://127.0.0.1:$port/metrics"

b scale deployment many --replicas 10 >/dev/null
ten() { [ "$(b get pods 2>/dev/null | grep -c '^many-')" = 10 ]; }
check "pods deleted from hollow nodes are gone at once" wait_until 30 ten

sleep 5 # beyond two heartbeat intervals: still Ready
check "the nodes stay Ready by their heartbeats" ready20
kill "$hollow_pid"
wait "$hollow_pid"
check_output "it stops on SIGTERM with a tally" 'stopped: 20/20 nodes registered' cat "$test_dir/hollow.log"
