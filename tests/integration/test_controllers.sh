#!/usr/bin/env bash
# The controllers on real boards: a control-plane board and three agent boards (network
# namespaces, tests/integration/boards.sh). A 3-replica Deployment spreads over the three;
# a template change rolls out without ever having fewer than replicas - maxUnavailable
# ready pods (sampled all along); `rollout undo` brings the previous template back; a
# SIGKILLed board's pods are replaced on the others; a DaemonSet follows a board joining
# and leaving; a Job whose command fails stops at its backoffLimit; bad workloads are
# refused with the field named.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/boards.sh

boards_lan || { echo "cannot create network namespaces"; exit 1; }
board_add cp server
board_add a1 agent
board_add a2 agent
board_add a3 agent
board_start cp
check "the control plane answers" wait_until 10 b get namespaces
board_start a1
board_start a2
board_start a3
ready_nodes() { [ "$(b get nodes 2>/dev/null | grep -c ' Ready ')" = "$1" ]; }
check "three agent boards are Ready" wait_until 20 ready_nodes 3

# pods_of APP: "name node status ready" per live pod (not Terminating), from the wide table.
pods_of() {
	b get pods -l "app=$1" -o wide 2>/dev/null |
		awk 'NR > 1 && $3 != "Terminating" {split($2, r, "/"); print $1, $7, $3, (r[1] == r[2] ? "ready" : "not-ready")}'
}
ready_count() { pods_of "$1" | grep -c ' Running ready$'; }
json_of() { b get "$@" -o json 2>/dev/null | tr -d ' \n'; }
boards_used() { pods_of "$1" | awk '{print $2}' | sort -u | wc -l; }

deployment() { # deployment VERSION
	cat <<JSON
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":3,"minReadySeconds":2,
 "selector":{"matchLabels":{"app":"web"}},
 "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":1}},
 "template":{"metadata":{"labels":{"app":"web"}},"spec":{"terminationGracePeriodSeconds":1,
  "containers":[{"name":"main","image":"busybox:1.36","command":["sleep","3600"],"env":[{"name":"VERSION","value":"$1"}]}]}}}}
JSON
}

# --- spreading -------------------------------------------------------------------------------
deployment v1 | b apply -f - >/dev/null
three_ready() { [ "$(ready_count web)" = 3 ]; }
check "a 3-replica Deployment's pods are Running and Ready" wait_until 60 three_ready
check_output "one on each board" '^3$' boards_used web

# --- a rolling update, sampled ---------------------------------------------------------------
on_version() { # on_version VERSION: all 3 live pods have it and are ready
	local json all wanted
	json=$(json_of pods -l app=web)
	all=$(grep -o '"name":"VERSION","value":"[^"]*"' <<<"$json" | wc -l)
	wanted=$(grep -o "\"name\":\"VERSION\",\"value\":\"$1\"" <<<"$json" | wc -l)
	[ "$(ready_count web)" = 3 ] && [ "$(pods_of web | wc -l)" = 3 ] && [ "$all" = 3 ] && [ "$wanted" = 3 ]
}
# A sampler counts the ready pods as fast as it can from before a change until after it.
start_sampler() {
	rm -f "$test_dir/stop-sampling"
	(while [ ! -e "$test_dir/stop-sampling" ]; do ready_count web; sleep 0.1; done) >"$test_dir/samples" &
	sampler_pid=$!
}
stop_sampler() {
	touch "$test_dir/stop-sampling"
	wait "$sampler_pid"
	least=$(sort -n "$test_dir/samples" | head -n1)
	count=$(wc -l <"$test_dir/samples")
}
start_sampler
deployment v2 | b apply -f - >/dev/null
check "the new template rolls out to all three pods" wait_until 90 on_version v2
stop_sampler
check "it was sampled all along ($count samples)" test "$count" -ge 5
check "never fewer than replicas - maxUnavailable = 2 ready pods (least seen: $least)" test "$least" -ge 2
check_output "the Deployment is at revision 2" '"deployment.kubernetes.io/revision":"2"' json_of deployment web

# --- rollout undo ---------------------------------------------------------------------------------
start_sampler
check "rollout undo is accepted" b rollout undo deployment/web
check "undo returns every pod to the previous template" wait_until 90 on_version v1
stop_sampler
check "and keeps 2 ready pods on the way ($count samples, least seen: $least)" test "$least" -ge 2
check_output "as revision 3" '"deployment.kubernetes.io/revision":"3"' json_of deployment web

# --- a board dies -------------------------------------------------------------------------------
victim=$(pods_of web | awk 'NR == 1 {print $2}')
board_kill "$victim"
killed_at=$SECONDS
moved() {
	local on
	on=$(pods_of web | grep ' Running ready$')
	[ "$(wc -l <<<"$on")" = 3 ] && ! grep -q " $victim " <<<"$on"
}
check "the pods of a SIGKILLed board ($victim) are Running on the others" wait_until 60 moved
echo "     (replaced $((SECONDS - killed_at)) s after the kill)"
check_output "its Node is marked unreachable" "$victim +NotReady" b get nodes
check_output "and tainted" '"key":"node.kubernetes.io/unreachable","effect":"NoExecute"' \
	json_of node $victim
# The dead board is taken out of the cluster, as an administrator would.
b delete node "$victim" >/dev/null
board_cleanup "$victim"

# --- a DaemonSet follows boards -----------------------------------------------------------------
b apply -f - >/dev/null <<'JSON'
{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},"spec":{
 "selector":{"matchLabels":{"app":"agent"}},
 "template":{"metadata":{"labels":{"app":"agent"}},"spec":{"terminationGracePeriodSeconds":1,
  "containers":[{"name":"main","image":"busybox:1.36","command":["sleep","3600"]}]}}}}
JSON
daemons() { [ "$(ready_count agent)" = "$1" ] && [ "$(pods_of agent | wc -l)" = "$1" ]; }
check "a DaemonSet runs one pod on each of the two boards left" wait_until 30 daemons 2
board_add a4 agent
board_start a4
check "a board joining gets its daemon pod" wait_until 40 daemons 3
check_output "on the new board" ' a4 Running ready$' pods_of agent
check_output "the DaemonSet counts three" '"desiredNumberScheduled":3' \
	json_of ds agent
board_stop a4
b delete node a4 >/dev/null
check "a board leaving takes its daemon pod with it" wait_until 30 daemons 2
check_output "and the DaemonSet counts two" '"desiredNumberScheduled":2' \
	json_of ds agent

# --- a failing Job ------------------------------------------------------------------------------
b apply -f - >/dev/null <<'JSON'
{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"flaky"},"spec":{"backoffLimit":2,
 "template":{"spec":{"restartPolicy":"Never","terminationGracePeriodSeconds":1,
  "containers":[{"name":"main","image":"busybox:1.36","command":["sh","-c","echo trying; exit 3"]}]}}}}
JSON
job_failed() { b get job flaky -o json 2>/dev/null | tr -d ' \n' | grep -q '"type":"Failed","status":"True"'; }
check "a Job whose command fails ends Failed" wait_until 60 job_failed
check_output "with reason BackoffLimitExceeded" '"reason":"BackoffLimitExceeded"' \
	json_of job flaky
check_output "after 1 + backoffLimit = 3 failed pods" '"failed":3' \
	json_of job flaky
job_pods() { b get pods -l "job-name=$1" -o name 2>/dev/null | wc -l; }
check_output "and no more pods than that" '^3$' job_pods flaky
b apply -f - >/dev/null <<'JSON'
{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"twice"},"spec":{"completions":2,"parallelism":2,
 "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"main","image":"busybox:1.36","command":["true"]}]}}}}
JSON
job_complete() { b get job twice -o json 2>/dev/null | tr -d ' \n' | grep -q '"type":"Complete","status":"True"'; }
check "a Job of two completions completes" wait_until 60 job_complete
check_output "with succeeded 2" '"succeeded":2' json_of job twice

# --- bad input -------------------------------------------------------------------------------------
check_fails_output "a Deployment whose selector does not match its template is refused, field named" \
	'spec.template.metadata.labels' b apply -f - <<'JSON'
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad"},"spec":{"selector":{"matchLabels":{"app":"a"}},
 "template":{"metadata":{"labels":{"app":"b"}},"spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}}}}
JSON
check_fails_output "negative replicas are refused" 'spec.replicas' b apply -f - <<'JSON'
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad"},"spec":{"replicas":-1,"selector":{"matchLabels":{"app":"a"}},
 "template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}}}}
JSON
check_fails_output "maxSurge and maxUnavailable both 0 are refused" 'spec.strategy.rollingUpdate.maxUnavailable' \
	b apply -f - <<'JSON'
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad"},"spec":{"selector":{"matchLabels":{"app":"a"}},
 "strategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":0}},
 "template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}}}}
JSON
check_fails_output "a toleration with an unknown operator is refused" 'spec.template.spec.tolerations\[0\].operator' \
	b apply -f - <<'JSON'
{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"bad"},"spec":{"selector":{"matchLabels":{"app":"a"}},
 "template":{"metadata":{"labels":{"app":"a"}},"spec":{"tolerations":[{"key":"k","operator":"Near"}],
 "containers":[{"name":"c","image":"busybox:1.36"}]}}}}
JSON
check_fails "and nothing of them was stored" b get deployment bad
