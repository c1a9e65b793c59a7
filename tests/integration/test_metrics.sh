#!/usr/bin/env bash
# Logs and usage metrics on real boards: a control-plane board and two agent boards. The
# agents report usage beside their heartbeats (kept in memory by the control plane) and
# serve their pods' logs through it: `top`, `logs` (-c, --tail, -f, errors), and an HPA
# that scales a cpu-burning Deployment up and back down when the load stops.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/boards.sh

boards_lan || { echo "cannot create network namespaces"; exit 1; }
board_add cp server
board_add a1 agent
board_add a2 agent
board_start cp
check "the control plane answers" wait_until 10 b get namespaces
board_start a1
board_start a2
ready_nodes() { [ "$(b get nodes 2>/dev/null | grep -c ' Ready ')" = 2 ]; }
check "both agent boards are Ready" wait_until 15 ready_nodes
phase_is() { pod_json "$1" | grep -q "\"phase\":\"$2\""; }

# A busy pod and a talkative one with two containers, on a1.
b apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: busy
spec:
  nodeName: a1
  terminationGracePeriodSeconds: 1
  containers:
  - name: burn
    image: busybox:1.36
    command: ["sh", "-c", "while :; do :; done"]
    resources:
      requests:
        cpu: 100m
---
apiVersion: v1
kind: Pod
metadata:
  name: talk
spec:
  nodeName: a1
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "for i in 1 2 3 4 5; do echo line-$i; done; i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.3; done"]
  - name: side
    image: busybox:1.36
    command: ["sh", "-c", "echo from-side; exec sleep 1000"]
YAML
check "the busy pod runs" wait_until 20 phase_is busy Running
check "the talkative pod runs" wait_until 20 phase_is talk Running

# Metrics.
busy_cpu() { b top pods --no-headers | awk '$1 == "busy" { sub("m", "", $2); found = $2 >= 20 } END { exit !found }'; }
check "top pods shows the busy pod using cpu (>= 20m: an idle one shows 0-3m; the machine may be loaded)" wait_until 30 busy_cpu
check_output "top pods has kubectl's columns" '^NAME +CPU\(cores\) +MEMORY\(bytes\)' b top pods
check_output "top pods --containers names the containers" '^talk +side +[0-9]+m +[0-9]+Mi' b top pods --containers
check_output "top pods -A has the namespace" '^default +busy +[0-9]+m' b top pods -A
check_output "top nodes has kubectl's columns" '^NAME +CPU\(cores\) +CPU% +MEMORY\(bytes\) +MEMORY%' b top nodes
check_output "top nodes shows both agent boards with usage" '^a2 +[0-9]+m +[0-9]+% +[0-9]+Mi +[0-9]+%' b top nodes
check_output "top node NAME" '^a1 +[0-9]+m' b top node a1

# The metrics API with plain coap-client: as the admin, and as a node.
# coap IDENTITY KEY METHOD PATH [coap-client options...]
coap() {
	local identity=$1 key=$2 method=$3 path=$4
	shift 4
	in_board cp timeout 20 coap-client-openssl -B 5 -m "$method" -u "$identity" -k "$key" "$@" "coaps://$cp_addr:5684$path"
}
admin_key=$(awk -F' = ' '$1 == "key" {print $2}' "$cp_dir/admin.conf")
a1_key=$(awk '{print $2}' "$test_dir/a1/node-credential")
m=/apis/metrics.k8s.io/v1beta1
check_output "GET nodes/NAME answers a NodeMetrics" '"kind":"NodeMetrics".*"window":"[0-9]+m?s","usage":\{"cpu":"[0-9]+m","memory":"[0-9]+(Ki|Mi|Gi)?"' \
	coap admin "$admin_key" get $m/nodes/a1
check_output "GET namespaces/NS/pods/NAME answers a PodMetrics with its containers" '"kind":"PodMetrics".*"containers":\[\{"name":"burn","usage":\{"cpu":"[0-9]+m"' \
	coap admin "$admin_key" get $m/namespaces/default/pods/busy
check_output "a node may not read metrics" 'Forbidden|4\.03' coap "node:a1" "$a1_key" get $m/nodes
report='{"timestamp":"2026-01-01T00:00:00Z","window":10000,"usage":{"cpu":1,"memory":1},"pods":[]}'
check_output "a node may not report another node's metrics" 'only its own|4\.03' \
	coap "node:a1" "$a1_key" put $m/nodes/a2 -t json -e "$report"
stolen='{"timestamp":"2026-01-01T00:00:00Z","window":10000,"usage":{"cpu":1,"memory":1},"pods":[{"namespace":"default","name":"talk","containers":[]}]}'
check_output "nor metrics of a pod bound elsewhere" 'not bound to it|4\.03' \
	in_board cp timeout 20 coap-client-openssl -B 5 -m put -u "node:a2" -k "$(awk '{print $2}' "$test_dir/a2/node-credential")" \
	-t json -e "$stolen" "coaps://$cp_addr:5684$m/nodes/a2"
check_output "GET /metrics: the control plane's own figures for Prometheus (these pods came bound)" \
	'^scheduler_schedule_attempts_total\{result="scheduled"\} [0-9]+$' coap admin "$admin_key" get /metrics
check_output "with the store's revision and the process's memory" '^process_resident_memory_bytes [1-9][0-9]+$' \
	coap admin "$admin_key" get /metrics
check_output "a node may not read them" 'for the administrator|4\.03' coap "node:a1" "$a1_key" get /metrics

# Logs, from the agent board through the control plane.
check_output "logs -c CONTAINER prints its output" '^line-1$' b logs talk -c main
check_output "the other container's" '^from-side$' b logs talk -c side
check_fails_output "a pod with several containers needs -c (kubectl's message)" \
	'a container name must be specified for pod talk, choose one of: \[main side\]' b logs talk
check_fails_output "an unknown container is named" 'container nope is not valid for pod talk' b logs talk -c nope
check_fails_output "an unknown pod is NotFound" 'NotFound.*pods "ghost" not found' b logs ghost
check_output "a node identity may not read pods' logs" 'only admins may|4\.03' \
	coap "node:a1" "$a1_key" get /api/v1/namespaces/default/pods/talk/log?container=main
check_output "nor take another node's log requests" 'own identity|4\.03' \
	coap "node:a1" "$a1_key" get /api/v1/nodes/a2/logrequests -s 1
check_output "the log API answers plain coap-client too" '^tick-[0-9]+' \
	coap admin "$admin_key" get "/api/v1/namespaces/default/pods/talk/log?container=main&tailLines=1"
tail_two() { [ "$(b logs talk -c main --tail 2 | wc -l)" = 2 ]; }
check "--tail 2 prints two lines" tail_two
check_output "--tail keeps the last lines" '^tick-[0-9]+$' b logs talk -c main --tail 1
check_output "--timestamps puts the time in front" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z line-1$|^line-1$' b logs talk -c main --timestamps
check "a single-container pod needs no -c" b logs busy

b apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  nodeName: a2
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "echo run-$(cat /proc/uptime); sleep 1; exit 1"]
YAML
restarted() { pod_json crash | grep -qE '"restartCount":[1-9]'; }
check "a crashing pod on a2 restarts" wait_until 30 restarted
previous_differs() {
	local now prev
	now=$(b logs crash) prev=$(b logs crash -p) || return 1
	grep -q '^run-' <<<"$prev" && [ "$now" != "$prev" ]
}
check "logs -p shows the previous container's output (from a2)" wait_until 10 previous_differs
check_output "logs -f of a crash-looping container ends by itself" '^run-' timeout 20 \
	nsenter --net="/run/netns/brb-$run_id-cp" "$BRAMBLE" --config "$cp_dir/admin.conf" logs -f crash
b apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: once
spec:
  nodeName: a2
  restartPolicy: Never
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "echo first; sleep 4; echo last"]
YAML
check "a pod that runs once starts" wait_until 20 phase_is once Running
follow_once() {
	local out
	out=$(timeout 20 nsenter --net="/run/netns/brb-$run_id-cp" "$BRAMBLE" --config "$cp_dir/admin.conf" logs -f once) &&
		[ "$(printf '%s\n' "$out" | tr '\n' ' ')" = "first last " ]
}
check "logs -f follows it to its last line and ends with it" follow_once
check_fails_output "-p of a container that never restarted says so" 'previous terminated container "main" in pod "talk" not found' \
	b logs talk -c main -p

follow_log=$test_dir/follow.out
# nsenter execs the client: $! is the client itself.
nsenter --net="/run/netns/brb-$run_id-cp" "$BRAMBLE" --config "$cp_dir/admin.conf" logs -f talk -c main --tail 1 >"$follow_log" 2>&1 &
follow_pid=$!
on_exit "kill $follow_pid"
new_ticks() { [ "$(grep -c '^tick-' "$follow_log")" -ge 4 ]; }
check "logs -f shows new lines as they are written" wait_until 15 new_ticks
check "logs -f keeps running until stopped" kill -0 $follow_pid
kill $follow_pid 2>/dev/null
wait $follow_pid 2>/dev/null
stopped_lines=$(wc -l <"$follow_log")
check_output "and stops when killed" "^$stopped_lines\$" bash -c "sleep 1; wc -l <'$follow_log'"

# An HPA scales a cpu-burning Deployment up, and back down once the load stops. The load is
# switched with a file on the boards' shared disk (a hostPath): the pods spin while it exists.
mkdir -p "$test_dir/load"
touch "$test_dir/load/on"
b apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: burner
spec:
  replicas: 1
  selector:
    matchLabels:
      app: burner
  template:
    metadata:
      labels:
        app: burner
    spec:
      terminationGracePeriodSeconds: 1
      volumes:
      - name: load
        hostPath:
          path: $test_dir/load
          type: Directory
      containers:
      - name: burn
        image: busybox:1.36
        command: ["sh", "-c", "while :; do if [ -f /load/on ]; then :; else sleep 0.5; fi; done"]
        volumeMounts:
        - name: load
          mountPath: /load
        resources:
          requests:
            cpu: 100m
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: burner
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: burner
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 50
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 10
YAML
# READY is ready/replicas: the denominator is spec.replicas.
deployment_replicas() { [ "$(b get deployment burner | awk 'NR == 2 { split($2, r, "/"); print r[2] }')" = "$1" ]; }
check "the HPA scales the burning Deployment up to maxReplicas" wait_until 120 deployment_replicas 3
only_burners() { out=$(b top pods -l app=burner --no-headers) && grep -q '^burner-' <<<"$out" && ! grep -qv '^burner-' <<<"$out"; }
check "top pods -l shows the selected pods only" wait_until 10 only_burners
hpa_json() { b get hpa burner -o json | tr -d ' \n'; }
check_output "its status says why" '"currentMetrics":\[\{"type":"Resource","resource":\{"name":"cpu","current":\{"averageUtilization":[0-9]+' hpa_json
check_output "and that it is limited by maxReplicas" '"reason":"TooManyReplicas"' hpa_json
check_output "get hpa shows kubectl's columns with the utilisation against its target" \
	'^burner +Deployment/burner +cpu: [0-9]+%/50% +1 +3 +[0-9]+ ' b get hpa
check_output "a SuccessfulRescale event is recorded" 'SuccessfulRescale' b get events
rm -f "$test_dir/load/on"
check "when the load stops it scales back down to minReplicas" wait_until 150 deployment_replicas 1
check_output "the HPA reports the smaller size" '"desiredReplicas":1' hpa_json
