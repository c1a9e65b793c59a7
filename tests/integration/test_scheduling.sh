#!/usr/bin/env bash
# The scheduler at work in a real control plane: pods created without a node are bound to
# a Node that fits; one that fits nowhere gets PodScheduled=False with Kubernetes' message
# and a FailedScheduling Event, and is bound once a Node it fits joins.
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
ready() { b get namespaces >/dev/null 2>&1; }
check "the control plane answers" wait_until 10 ready

node() { # node NAME ARCH CPU MEMORY
	cat <<JSON
{"apiVersion":"v1","kind":"Node","metadata":{"name":"$1","labels":{"kubernetes.io/arch":"$2","kubernetes.io/os":"linux","kubernetes.io/hostname":"$1"}},
 "status":{"capacity":{"cpu":"$3","memory":"$4","pods":"110"},"allocatable":{"cpu":"$3","memory":"$4","pods":"110"},
 "conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","lastHeartbeatTime":"2026-11-22T04:00:00Z","lastTransitionTime":"2026-11-22T04:00:00Z"}]}}
JSON
}
pod() { # pod NAME MEMORY [ARCH]
	local selector=""
	[ -n "${3:-}" ] && selector=",\"nodeSelector\":{\"kubernetes.io/arch\":\"$3\"}"
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"resources\":{\"requests\":{\"memory\":\"$2\"}}}]$selector}}"
}
node pi-1 arm64 4 1Gi | b apply -f - >/dev/null
node pi-2 arm64 4 1Gi | b apply -f - >/dev/null
node vm-1 amd64 2 2Gi | b apply -f - >/dev/null

pod small 100Mi | b apply -f - >/dev/null
bound() { b get pod "$1" -o json | tr -d " \n" | grep -q "\"nodeName\":\"$2"; }
check "a pending pod is bound to a node" wait_until 5 bound small ""
check_output "binding sets PodScheduled=True" '"type":"PodScheduled","status":"True"' \
	bash -c "'$BRAMBLE' --config '$data/admin.conf' get pod small -o json | tr -d ' \n'"
pod armed 100Mi arm64 | b apply -f - >/dev/null
check "a nodeSelector on kubernetes.io/arch picks an arm64 board" wait_until 5 bound armed pi-
pod huge 3Gi | b apply -f - >/dev/null
unschedulable() { b get pod huge -o json | tr -d '\n' | grep -q '0/3 nodes are available: 3 Insufficient memory'; }
check "a pod that fits nowhere says why, as Kubernetes does" wait_until 5 unschedulable
check_output "and a FailedScheduling event is recorded" "FailedScheduling" \
	bash -c "'$BRAMBLE' --config '$data/admin.conf' get events -o json"
node big-1 amd64 4 8Gi | b apply -f - >/dev/null
check "it is bound when a node it fits joins" wait_until 5 bound huge big-1
