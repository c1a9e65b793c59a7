#!/usr/bin/env bash
# Edge autonomy on real boards: a control-plane board and an agent board (its own network
# namespace, data directory, state directory and cgroup parent). The agent's pods outlive it
# and are adopted by the next agent process (same pids, no restart); with the control plane
# gone, a restarted agent runs its pods from its local cache; when the control plane comes
# back nothing restarts and statuses are right; after a simulated reboot (everything killed,
# the state directory emptied) the pods start again from the cache alone. Static pods run
# with no control plane and show up as mirror pods once it is reachable. Secrets in the
# cache file are not readable.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/boards.sh

boards_lan || { echo "cannot create network namespaces"; exit 1; }
board_add cp server
board_add a1 agent
manifests=$test_dir/a1/manifests
mkdir -p "$manifests"
echo "static-pods = $manifests" >>"$test_dir/a1/bramble.conf"
cat >"$manifests/beacon.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: beacon
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "echo beacon up; exec sleep 4100"]
YAML
cat >"$manifests/broken.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: broken
spec:
  containers:
  - name: main
    command: ["true"]
YAML
a1_log=$test_dir/a1.log

board_start cp
check "the control plane answers" wait_until 10 b get namespaces
board_start a1
ready() { b get nodes 2>/dev/null | grep -q '^a1 .* Ready '; }
check "the agent board registers and is Ready" wait_until 15 ready

pod() { # pod NAME COMMAND [EXTRA-SPEC-JSON] [EXTRA-CONTAINER-JSON]
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"nodeName\":\"a1\",\"terminationGracePeriodSeconds\":1,${3:-}\"containers\":[{\"name\":\"main\",\"image\":\"busybox:1.36\",\"command\":[\"sh\",\"-c\",\"$2\"]${4:-}}]}}"
}
b apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: edge-settings
data:
  mode: cm-visible-value
---
apiVersion: v1
kind: Secret
metadata:
  name: edge-token
stringData:
  password: s3cr3t-autonomy-value
YAML
mkdir -p "$test_dir/flag" && touch "$test_dir/flag/ready" # keeper's readiness, set from outside
pod keeper "echo keeper up; exec sleep 4001" "\"volumes\":[{\"name\":\"flag\",\"hostPath\":{\"path\":\"$test_dir/flag\"}}]," \
	',"volumeMounts":[{"name":"flag","mountPath":"/flag"}],"readinessProbe":{"exec":{"command":["cat","/flag/ready"]},"periodSeconds":1}' |
	b apply -f - >/dev/null
pod victim "echo victim up; exec sleep 4002" | b apply -f - >/dev/null
pod doomed "echo doomed up; exec sleep 4003" | b apply -f - >/dev/null
pod ticker 'while true; do echo tick; sleep 0.3; done' | b apply -f - >/dev/null
pod configured 'echo MODE=$MODE PASSWORD=$PASSWORD; exec sleep 4004' "" \
	',"env":[{"name":"MODE","valueFrom":{"configMapKeyRef":{"name":"edge-settings","key":"mode"}}},{"name":"PASSWORD","valueFrom":{"secretKeyRef":{"name":"edge-token","key":"password"}}}]' |
	b apply -f - >/dev/null

phase_is() { pod_json "$1" | grep -q "\"phase\":\"$2\""; }
all_running() { for p in keeper victim doomed configured ticker; do phase_is $p Running || return 1; done; }
check "the pods bound to a1 run" wait_until 20 all_running
check "the static pod shows up as a mirror pod named <name>-<node>" wait_until 15 phase_is beacon-a1 Running
check_output "the mirror pod carries kubernetes.io/config.mirror" '"kubernetes.io/config.mirror":"[0-9a-f-]{36}"' pod_json beacon-a1
check_output "and is owned by its Node" '"ownerReferences":\[\{"apiVersion":"v1","kind":"Node","name":"a1"' pod_json beacon-a1
check_output "a bad static manifest is named with its file and field" "static pod $manifests/broken.yaml: document 1 .*spec.containers\[0\].image: Required value" cat "$a1_log"
check_fails "and does not run" b get pod broken-a1

# The pid of `sleep N` in one of a1's pod cgroups (other tests may run the same command).
pid_of() {
	local p
	for p in $(pgrep -xf "sleep $1"); do
		grep -qs "bramble-$run_id-a1/pod-" "/proc/$p/cgroup" && { echo "$p"; return; }
	done
}
keeper_pid=$(pid_of 4001)
victim_pid=$(pid_of 4002)
beacon_pid=$(pid_of 4100)
configured_pid=$(pid_of 4004)
check "the containers run (keeper $keeper_pid, beacon $beacon_pid)" test -n "$keeper_pid" -a -n "$victim_pid" -a -n "$beacon_pid" -a -n "$configured_pid"
logs_have() { grep -rqs -- "$3" "$test_dir/a1/pods/default_$1_"*/main/; }
check "the pod got its ConfigMap and Secret" wait_until 5 logs_have configured a1 "MODE=cm-visible-value PASSWORD=s3cr3t-autonomy-value"

# The cache: pods, ConfigMaps, Secrets; the Secret not in plain text.
check "the cache file holds the ConfigMap" bash -c "cat '$test_dir/a1'/podcache.db* | grep -aq cm-visible-value"
check_fails "but the Secret is not readable in it" bash -c "cat '$test_dir/a1'/podcache.db* | grep -aq -e s3cr3t-autonomy-value -e czNjcjN0LWF1dG9ub215LXZhbHVl"

# 1. An agent stop (SIGTERM) leaves the pods running; the next agent adopts them.
board_stop a1
check "after the agent stops, its containers keep running" kill -0 "$keeper_pid"
board_start a1
adopted() { [ "$(grep -c 'container main adopted' "$a1_log")" -ge 6 ]; }
check "a new agent adopts the running containers" wait_until 10 adopted
check "same pid for keeper" test "$(pid_of 4001)" = "$keeper_pid"
check_output "restartCount stays 0" '"restartCount":0' pod_json keeper

# 2. Autonomy: the control plane goes, the agent is killed and started again.
board_stop cp
board_kill a1
check "with the agent killed (SIGKILL), its containers keep running" kill -0 "$keeper_pid"
cp "$a1_log" "$a1_log.before"
board_start a1
start=$SECONDS
start_ns=$(date +%s%N)
new_log() { tail -n +"$(($(wc -l <"$a1_log.before") + 1))" "$a1_log"; }
adopted_again() { [ "$(new_log | grep -c 'container main adopted')" -ge 6 ]; }
check "with no control plane, the restarted agent has its pods running again within 10 s" wait_until 10 adopted_again
echo "     (figure: all 6 containers adopted $((($(date +%s%N) - start_ns) / 1000000)) ms after the agent started, no control plane)"
check_output "it started them from its cache" 'pod cache: [0-9]+ pods started from the cache' new_log
check "keeper's container is the same process (adopted, not restarted)" test "$(pid_of 4001)" = "$keeper_pid"
ticks() { cat "$test_dir"/a1/pods/default_ticker_*/main/0.log | wc -l; }
ticks_before=$(ticks)
more_ticks() { [ "$(ticks)" -gt "$ticks_before" ]; }
check "an adopted container's output still goes to its log file" wait_until 5 more_ticks
check "the same file (no new log for a restart)" bash -c "! ls '$test_dir'/a1/pods/default_ticker_*/main/1.log"
check "so is the static pod's" test "$(pid_of 4100)" = "$beacon_pid"
check "the container is still in its pod's cgroup" grep -q "bramble-$run_id-a1/pod-" "/proc/$keeper_pid/cgroup"
kill -9 "$victim_pid"
victim_back() { p=$(pid_of 4002); [ -n "$p" ] && [ "$p" != "$victim_pid" ]; }
check "an adopted container's exit is seen and it is restarted (restartPolicy Always)" wait_until 10 victim_back

# 3. The control plane comes back: nothing restarts, statuses are right.
board_start cp
check "the control plane answers again" wait_until 10 b get namespaces
ready_keeper() { pod_json keeper | grep -q '"type":"Ready","status":"True"'; }
check "keeper is reported Ready (its readiness probe runs again on the adopted container)" wait_until 20 ready_keeper
check_output "with 0 container restarts" '"restartCount":0' pod_json keeper
check_output "and Running" '"phase":"Running"' pod_json keeper
check "keeper's container never restarted" test "$(pid_of 4001)" = "$keeper_pid"
rm "$test_dir/flag/ready"
unready_keeper() { pod_json keeper | grep -q '"type":"Ready","status":"False"'; }
check "the adopted container's readiness probe runs: failing, it makes keeper not Ready" wait_until 15 unready_keeper
touch "$test_dir/flag/ready"
check "and passing again, Ready" wait_until 15 ready_keeper
victim_restarted() { pod_json victim | grep -q '"restartCount":1'; }
check "the victim's one restart is reported" wait_until 15 victim_restarted
check_fails "the agent resumed its watch rather than listing again" grep -q 'listing again' "$a1_log"
check_output "the static pod's mirror is there, Running" '"phase":"Running"' pod_json beacon-a1

cache_state() { stat -c '%n %Y %s' "$test_dir/a1"/podcache.db* && cat "$test_dir/a1"/podcache.db* | md5sum; }
sleep 2
before=$(cache_state)
sleep 6 # three heartbeats, pods running
check "an idle agent writes nothing to its cache" test "$(cache_state)" = "$before"

# 4. A pod deleted while the agent is away is stopped when it comes back.
board_kill a1
doomed_pid=$(pid_of 4003)
check "a pod is deleted while its agent is away" b delete pod doomed --wait=false
board_start a1
doomed_gone() { ! kill -0 "$doomed_pid" 2>/dev/null && ! b get pod doomed >/dev/null 2>&1; }
check "a pod deleted while the agent was away is stopped and removed" wait_until 20 doomed_gone
check "the others still run untouched" test "$(pid_of 4001)" = "$keeper_pid"

# 5. Static pods follow their directory (SIGHUP).
cat >"$manifests/lamp.json" <<'JSON'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"lamp"},"spec":{"terminationGracePeriodSeconds":1,"containers":[{"name":"main","image":"busybox:1.36","command":["sleep","4200"]}]}}
JSON
lamp_runs() { [ -n "$(pid_of 4200)" ]; }
check "a static manifest added is run (the directory is watched, no signal needed)" wait_until 10 lamp_runs
check "and appears as a mirror pod" wait_until 15 phase_is lamp-a1 Running
node_uid=$(b get node a1 -o json | tr -d ' \n' | grep -o '"uid":"[^"]*"' | head -n1)
own_uid() { pod_json "$1" | grep -o '"uid":"[^"]*"' | grep -vF "$node_uid" | head -n1; } # not its owner's
lamp_uid=$(own_uid lamp-a1)
lamp_pid=$(pid_of 4200)
b delete pod lamp-a1 --wait=false >/dev/null
mirror_back() { u=$(own_uid lamp-a1); [ -n "$u" ] && [ "$u" != "$lamp_uid" ]; }
check "a mirror pod deleted through the API is made again" wait_until 15 mirror_back
check "and the static pod kept running meanwhile" test "$(pid_of 4200)" = "$lamp_pid"
rm "$manifests/beacon.yaml"
kill -HUP "${board_pid[a1]}" # as an operator would; the watch may have seen it first
beacon_stopped() { ! kill -0 "$beacon_pid" 2>/dev/null && ! b get pod beacon-a1 >/dev/null 2>&1; }
check "a static manifest removed stops its pod and its mirror pod" wait_until 15 beacon_stopped

# 6. A reboot: no control plane, every process gone, the state directory (a tmpfs) empty.
board_stop cp
board_cleanup a1
rm -rf "$test_dir/a1/run"
check "after the simulated reboot nothing of a1's pods runs" test -z "$(pid_of 4001)"
cp "$a1_log" "$a1_log.before"
board_start a1
start_ns=$(date +%s%N)
running_again() { [ -n "$(pid_of 4001)" ] && [ -n "$(pid_of 4004)" ] && [ -n "$(pid_of 4200)" ]; }
check "with no control plane, the pods start again from the cache within 10 s" wait_until 10 running_again
echo "     (figure: containers running again $((($(date +%s%N) - start_ns) / 1000000)) ms after the agent started, from the cache)"
configured_twice() { [ "$(cat "$test_dir"/a1/pods/default_configured_*/main/*.log | grep -c 'PASSWORD=s3cr3t-autonomy-value')" -ge 2 ]; }
check "with the Secret from the cache (decrypted)" wait_until 5 configured_twice
check "the doomed pod stays gone" test -z "$(pid_of 4003)"
new_pid=$(pid_of 4001)
check "the new keeper process is in its pod's cgroup" grep -q "bramble-$run_id-a1/pod-" "/proc/$new_pid/cgroup"
board_start cp
check "the control plane answers after the reboot" wait_until 10 b get namespaces
check "and sees keeper Ready again" wait_until 20 ready_keeper
check "the mirror pod of the static pod is there" wait_until 15 phase_is lamp-a1 Running

# 7. A pod cache that cannot be read is put aside; with the control plane up, the pods are
# adopted from what the API lists.
board_stop a1
keeper_pid=$(pid_of 4001)
echo "this is not a database, it is a broken SD card block" >"$test_dir/a1/podcache.db"
rm -f "$test_dir/a1/podcache.db-wal"
cp "$a1_log" "$a1_log.before"
board_start a1
check_output "a broken cache is named and moved aside" 'podcache.db: .*moved to .*podcache.db.broken' \
	bash -c "sleep 1; tail -n +$(($(wc -l <"$a1_log.before") + 1)) '$a1_log'"
keeper_adopted() { new_log | grep -q 'pod default/keeper: container main adopted'; }
check "the running pods are adopted from the API's list" wait_until 15 keeper_adopted
check "keeper is still the same process" test "$(pid_of 4001)" = "$keeper_pid"
