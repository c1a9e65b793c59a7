#!/usr/bin/env bash
# Probes and lifecycle hooks on a real board: a control-plane board and one agent board, each
# in its own network namespace. Readiness (exec, httpGet) drives the container's ready flag,
# the pod's Ready condition and its Endpoints; a failing liveness probe (exec, tcpSocket)
# restarts the container; a startup probe holds readiness back; postStart runs after the
# start and a failing one restarts the container; preStop runs before SIGTERM. And the
# kubelet puts right a pod status someone else changed.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/boards.sh

boards_lan || { echo "cannot create network namespaces"; exit 1; }
board_add cp server
board_add a1 agent
board_start cp
check "the control plane answers" wait_until 10 b get namespaces
board_start a1
node_ready() { b get nodes 2>/dev/null | grep -q 'a1 .* Ready '; }
check "the agent board registers and is Ready" wait_until 15 node_ready

# The board's side of hostPath volumes: files the test writes for the pods, and the pods for
# the test.
hooks=$test_dir/hooks
mkdir -p "$hooks"

pod() { # pod NAME COMMAND [CONTAINER-EXTRA] [SPEC-EXTRA]: labelled app=NAME, the hooks directory at /hooks
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$1\",\"labels\":{\"app\":\"$1\"}},\"spec\":{\"nodeName\":\"a1\",\"terminationGracePeriodSeconds\":3,${4:-}\"volumes\":[{\"name\":\"hooks\",\"hostPath\":{\"path\":\"$hooks\"}}],\"containers\":[{\"name\":\"main\",\"image\":\"busybox:1.36\",\"command\":[\"sh\",\"-c\",\"$2\"],\"volumeMounts\":[{\"name\":\"hooks\",\"mountPath\":\"/hooks\"}]${3:-}}]}}"
}
exec_probe() { # exec_probe FIELD COMMAND [EXTRA]
	echo ",\"$1\":{\"exec\":{\"command\":[\"sh\",\"-c\",\"$2\"]},\"periodSeconds\":1${3:-}}"
}
has() { pod_json "$1" | grep -q -- "$2"; }
hasE() { pod_json "$1" | grep -qE -- "$2"; }
phase_is() { has "$1" "\"phase\":\"$2\""; }
pod_ready() { has "$1" '"type":"Ready","status":"True"'; }
pod_not_ready() { has "$1" '"type":"Ready","status":"False"'; }
# Pods that restart in a loop are deleted once checked: every restart is a status write and
# a watch notification, and the rest of the test needs neither.
done_with() { timeout 30 nsenter --net="/run/netns/brb-$run_id-cp" "$BRAMBLE" --config "$cp_dir/admin.conf" delete pod "$@" >/dev/null 2>&1 || true; }
restarts_at_least() { pod_json "$1" | grep -o '"restartCount":[0-9]*' | head -n1 | cut -d: -f2 | { read -r n; [ "${n:-0}" -ge "$2" ]; }; }

# --- readiness: exec probe, the Ready condition and the Endpoints --------------------------------
# hostNetwork: the pod's IP is the board's, so the Endpoints controller has an address for it.
pod ready 'while [ ! -e /hooks/go-ready ]; do sleep 0.2; done; touch /tmp/ready; exec sleep 1000' \
	"$(exec_probe readinessProbe 'cat /tmp/ready')" '"hostNetwork":true,' | b apply -f - >/dev/null
b apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: ready
spec:
  selector:
    app: ready
  ports:
  - port: 80
    targetPort: 8080
YAML
check "a pod whose readiness probe fails runs" wait_until 20 phase_is ready Running
sleep 2 # a few failed attempts
check "and, its probe failing, is not Ready" pod_not_ready ready
check_output "its container runs but is not ready" '"state":\{"running":.*"ready":false' pod_json ready
check_output "ContainersReady is False, reason ContainersNotReady, naming the container" \
	'"type":"ContainersReady","status":"False","reason":"ContainersNotReady",[^}]*"message":"containerswithunreadystatus:\[main\]"' pod_json ready
not_ready_endpoint() { b get endpoints ready -o json 2>/dev/null | tr -d ' \n' | grep -q "\"notReadyAddresses\":\[{\"ip\":\"$(board_ip a1)\""; }
check "its address is among the Endpoints' notReadyAddresses" wait_until 10 not_ready_endpoint
touch "$hooks/go-ready"
check "once the probe's file exists the pod becomes Ready" wait_until 10 pod_ready ready
check_output "and its container ready" '"ready":true' pod_json ready
ready_endpoint() { b get endpoints ready -o json 2>/dev/null | tr -d ' \n' | grep -q "\"addresses\":\[{\"ip\":\"$(board_ip a1)\""; }
check "and its address moves to the Endpoints' addresses" wait_until 10 ready_endpoint

# --- the kubelet puts right a status changed behind its back --------------------------------------
check "someone else marks the Ready pod not Ready (as the node lifecycle controller does)" \
	b patch pod ready --subresource status -p '{"status":{"conditions":[{"type":"Ready","status":"False","reason":"NodeNotReady"}]}}'
check "the kubelet writes its status back: Ready again" wait_until 10 pod_ready ready
check_output "with all its conditions" '"type":"Initialized","status":"True".*"type":"PodScheduled","status":"True"' pod_json ready

# --- liveness: an exec probe that starts failing restarts the container -------------------------
pod live 'touch /tmp/alive; (sleep 2; rm /tmp/alive) & exec sleep 1000' \
	"$(exec_probe livenessProbe 'cat /tmp/alive' ',"failureThreshold":2')" | b apply -f - >/dev/null
check "a pod with a liveness probe runs" wait_until 20 phase_is live Running
check "when the probe fails, the container is restarted (restartCount grows)" wait_until 30 restarts_at_least live 1
check_output "lastState says it was killed for its liveness probe" \
	'"lastState":\{"terminated":\{"exitCode":1(37|43),"signal":(9|15),"reason":"Error","message":"Containermainfailedlivenessprobe,willberestarted:Livenessprobefailed:cat:can.topen./tmp/alive.' \
	pod_json live
check "and it goes on: restarted again" wait_until 40 restarts_at_least live 2
check_output "a Warning Event, Unhealthy, says the probe failed" \
	'Warning +Unhealthy +pod/live +Liveness probe failed: cat: can.t open ./tmp/alive.' b get events
check_output "a Normal Event, Killing, says the container is restarted for it" \
	'Normal +Killing +pod/live +Container main failed liveness probe, will be restarted$' b get events
done_with live

# --- httpGet and tcpSocket against a busybox httpd in the pod -----------------------------------
web_container=',"readinessProbe":{"httpGet":{"path":"/index.html","port":"http"},"periodSeconds":1},"livenessProbe":{"tcpSocket":{"port":8080},"periodSeconds":1,"failureThreshold":2},"ports":[{"name":"http","containerPort":8080}]'
pod web 'mkdir -p /www; echo ok >/www/index.html; exec busybox httpd -f -p 8080 -h /www' "$web_container" |
	b apply -f - >/dev/null
check "an HTTP readiness probe (named port) against httpd in the pod's own network makes it Ready" wait_until 20 pod_ready web
rv_of() { pod_json "$1" | grep -o '"resourceVersion":"[0-9]*"'; }
web_rv=$(rv_of web)
sleep 3
check_output "a TCP liveness probe on the same port keeps it alive (no restart)" '"restartCount":0' pod_json web
check_output "probes that keep passing write nothing: the pod's resourceVersion stays" "^$web_rv\$" rv_of web

host_port=$((20000 + RANDOM % 20000))
pod hostweb "mkdir -p /www; echo ok >/www/index.html; exec busybox httpd -f -p $host_port -h /www" \
	",\"readinessProbe\":{\"httpGet\":{\"path\":\"/\",\"port\":$host_port},\"periodSeconds\":1}" '"hostNetwork":true,' |
	b apply -f - >/dev/null
check "an HTTP readiness probe of a hostNetwork pod goes to the board's address and makes it Ready" wait_until 20 pod_ready hostweb
done_with hostweb

pod web404 'mkdir -p /www; exec busybox httpd -f -p 8080 -h /www' \
	',"readinessProbe":{"httpGet":{"path":"/missing","port":8080},"periodSeconds":1}' | b apply -f - >/dev/null
check "an HTTP readiness probe answered 404 keeps the pod not Ready" wait_until 20 phase_is web404 Running
sleep 1
web404_rv=$(rv_of web404)
sleep 3
check_output "(still not Ready after several attempts)" '"type":"Ready","status":"False"' pod_json web404
check_output "and failures that change nothing write nothing" "^$web404_rv\$" rv_of web404

pod closed 'exec sleep 1000' ',"livenessProbe":{"tcpSocket":{"port":9},"periodSeconds":1,"failureThreshold":2}' |
	b apply -f - >/dev/null
check "a TCP liveness probe to a closed port restarts the container" wait_until 30 restarts_at_least closed 1
check_output "saying why" '"message":"Containermainfailedlivenessprobe,willberestarted:Livenessprobefailed:dialtcp[0-9.]+:9:connect:connectionrefused"' pod_json closed
closed_ip=$(pod_json closed | grep -o '"podIP":"[0-9.]*"' | cut -d'"' -f4)
check_output "to the pod's IP ($closed_ip)" "dialtcp${closed_ip:-127.0.0.1}:9:" pod_json closed
done_with closed

# --- startup probe: readiness held back until it succeeds --------------------------------------
pod slow '(while [ ! -e /hooks/go-startup ]; do sleep 0.2; done; touch /tmp/started) & exec sleep 1000' \
	"$(exec_probe startupProbe 'cat /tmp/started' ',"failureThreshold":120')" | b apply -f - >/dev/null
check "a pod with a startup probe runs" wait_until 20 phase_is slow Running
sleep 2
check_output "while the startup probe fails it is neither started nor ready" '"ready":false,.*"started":false' pod_json slow
check_output "and the pod is not Ready" '"type":"Ready","status":"False"' pod_json slow
touch "$hooks/go-startup"
check "once the startup probe succeeds the pod is Ready" wait_until 10 pod_ready slow
check_output "and its container started" '"ready":true,.*"started":true' pod_json slow

pod never 'exec sleep 1000' "$(exec_probe startupProbe 'false' ',"failureThreshold":2')" | b apply -f - >/dev/null
check "a startup probe that never succeeds restarts the container" wait_until 30 restarts_at_least never 1
check_output "saying why" '"message":"Containermainfailedstartupprobe,willberestarted:Startupprobefailed:' pod_json never
done_with never

# --- lifecycle hooks ------------------------------------------------------------------------
hook_container=',"lifecycle":{"postStart":{"exec":{"command":["sh","-c","echo poststart >>/hooks/order"]}},"preStop":{"exec":{"command":["sh","-c","echo prestop >>/hooks/order; sleep 1; echo prestop-done >>/hooks/order"]}}}'
pod hooked "trap 'echo sigterm >>/hooks/order; exit 0' TERM; echo started >>/hooks/order; while true; do sleep 0.2; done" \
	"$hook_container" '"terminationGracePeriodSeconds":10,' | sed 's/"terminationGracePeriodSeconds":3,//' | b apply -f - >/dev/null
check "a pod with postStart and preStop hooks runs" wait_until 20 phase_is hooked Running
check "its postStart hook ran in the container" wait_until 10 grep -q poststart "$hooks/order"
check "it is Ready once postStart is done" wait_until 10 pod_ready hooked
check "deleting it is accepted" timeout 30 nsenter --net="/run/netns/brb-$run_id-cp" "$BRAMBLE" --config "$cp_dir/admin.conf" delete pod hooked
hooked_gone() { ! b get pod hooked >/dev/null 2>&1; }
check "it stops and is gone" wait_until 20 hooked_gone
check_output "preStop ran to its end before SIGTERM" 'prestop,prestop-done,sigterm' bash -c "grep -v -e started -e poststart '$hooks/order' | paste -sd,"

# A preStop hook that outlasts the grace period: cut short, then SIGTERM, then SIGKILL.
pod slowstop "trap 'echo slow-sigterm >>/hooks/slow' TERM; while true; do sleep 0.2; done" \
	',"lifecycle":{"preStop":{"exec":{"command":["sh","-c","echo slow-prestop >>/hooks/slow; sleep 60"]}}}' \
	'"terminationGracePeriodSeconds":2,' | sed 's/"terminationGracePeriodSeconds":3,//' | b apply -f - >/dev/null
check "a pod whose preStop hook takes longer than its grace period runs" wait_until 20 pod_ready slowstop
done_with slowstop
slowstop_gone() { ! b get pod slowstop >/dev/null 2>&1; }
start=$SECONDS
check "it is gone well within a minute: the hook is cut at the grace period (2 s), SIGKILL 2 s later" wait_until 15 slowstop_gone
check "(in $((SECONDS - start)) s)" test $((SECONDS - start)) -le 10
check_output "its preStop hook started, then SIGTERM came (and SIGKILL after it was ignored)" 'slow-prestop,slow-sigterm' \
	bash -c "paste -sd, '$hooks/slow'"

pod badhook 'exec sleep 1000' ',"lifecycle":{"postStart":{"exec":{"command":["sh","-c","echo no; exit 3"]}}}' |
	b apply -f - >/dev/null
check "a failing postStart hook kills and restarts the container" wait_until 30 restarts_at_least badhook 1
check_output "saying which hook failed and how" '"message":"ExeclifecyclehookforContainer\\"main\\"inPod\\"badhook_default\([^)]*\)\\"failed-error:command.sh-cechono;exit3.exitedwith3:no"' pod_json badhook
done_with badhook

# --- a spec the agent cannot follow ---------------------------------------------------------
pod badprobe 'exec sleep 1000' ',"readinessProbe":{"httpGet":{"port":"nosuch"}}' | b apply -f - >/dev/null
bad_probe() { has badprobe '"reason":"CreateContainerConfigError","message":"spec.containers\[0\].readinessProbe.httpGet.port:nocontainerportnamed'; }
check "a probe naming a port the container lacks holds it in CreateContainerConfigError" wait_until 15 bad_probe

# --- the kubelet puts right a status changed while the board was cut off, once it is back ----
# (last, when no pod restarts in a loop any more)
in_board a1 ip link set eth0 down
on_exit "in_board a1 ip link set eth0 up"
check "while the board is unreachable its pod is marked not Ready" \
	b patch pod ready --subresource status -p '{"status":{"conditions":[{"type":"Ready","status":"False","reason":"NodeNotReady"}]}}'
sleep 4
in_board a1 ip link set eth0 up
check "when the board is back the kubelet marks it Ready again" wait_until 40 pod_ready ready

# --- an agent restart: adopted containers are probed again ---------------------------------
pod guarded 'exec sleep 1000' "$(exec_probe livenessProbe '! test -e /hooks/kill-guarded' ',"failureThreshold":2')" |
	b apply -f - >/dev/null
check "a pod with an exec liveness probe runs" wait_until 20 pod_ready guarded
board_stop a1
board_start a1
adopted() { grep -q 'pod default/guarded: container main adopted' "$test_dir/a1.log"; }
check "after an agent restart its container is adopted" wait_until 15 adopted
check "the adopted pod with HTTP and TCP probes is Ready, not restarted" wait_until 15 bash -c \
	"nsenter --net=/run/netns/brb-$run_id-cp '$BRAMBLE' --config '$cp_dir/admin.conf' get pod web -o json | tr -d ' \n' | grep -q '\"ready\":true,\"restartCount\":0'"
touch "$hooks/kill-guarded"
check "the adopted container's liveness probe still runs: failing, it restarts the container" wait_until 20 restarts_at_least guarded 1

check "the agent is still running" kill -0 "${board_pid[a1]}"
