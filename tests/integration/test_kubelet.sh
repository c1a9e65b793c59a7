#!/usr/bin/env bash
# The kubelet on real boards: a control-plane board and two agent boards, each in its own
# network namespace with its own data directory and cgroup parent. Pods created through the
# API run, report Running/Ready, restart on crash with back-off, get their ConfigMap and
# Secret data, are scheduled when not bound, and stop when deleted.
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
check "both agent boards register their Nodes and are Ready" wait_until 15 ready_nodes
check_output "a Node carries architecture, OS and hostname labels" '"kubernetes.io/arch":"amd64".*"kubernetes.io/hostname":"a1"' \
	bash -c "nsenter --net=/run/netns/brb-$run_id-cp '$BRAMBLE' --config '$cp_dir/admin.conf' get node a1 -o json | tr -d ' \n'"
check_output "and its address on the LAN" "\"address\":\"$(board_ip a1)\"" \
	bash -c "nsenter --net=/run/netns/brb-$run_id-cp '$BRAMBLE' --config '$cp_dir/admin.conf' get node a1 -o json | tr -d ' \n'"

pod() { # pod NAME NODE COMMAND [EXTRA-SPEC-JSON]
	local node=""
	[ -n "$2" ] && node="\"nodeName\":\"$2\","
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$1\"},\"spec\":{$node\"terminationGracePeriodSeconds\":2,${4:-}\"containers\":[{\"name\":\"main\",\"image\":\"busybox:1.36\",\"command\":[\"sh\",\"-c\",\"$3\"]${5:-}}]}}"
}
phase_is() { pod_json "$1" | grep -q "\"phase\":\"$2\""; }
log_has() { grep -rqs -- "$3" "$test_dir/$2/pods/default_$1_"*/main/; }

# Running and Ready.
web_sleep=$((100000 + RANDOM)) # a command line no other test's container has
pod web a1 "echo serving; exec sleep $web_sleep" | b apply -f - >/dev/null
check "a pod bound to a1 runs there" wait_until 15 phase_is web Running
check_output "and is Ready" '"type":"Ready","status":"True"' pod_json web
check_output "its container is running with a start time" '"state":{"running":{"startedAt":"' pod_json web
check_output "hostIP is the board's address" "\"hostIP\":\"$(board_ip a1)\"" pod_json web
check "its output is in the board's container log" wait_until 5 log_has web a1 serving
check_output "the table shows it Running on a1" 'web +1/1 +Running +0 .* a1' b get pods -o wide
web_pid=$(pgrep -f "sleep $web_sleep" | head -n1)
check "the container process lives in the pod's cgroup under the board's parent" \
	grep -q "bramble-$run_id-a1/pod-" "/proc/$web_pid/cgroup"

# Restarts with back-off.
pod crash a2 "echo crashing; exit 3" | b apply -f - >/dev/null
restarted() { pod_json crash | grep -qE '"restartCount":([2-9]|[1-9][0-9])'; }
check "a crashing container is restarted" wait_until 20 restarted
crashloop() { pod_json crash | grep -q '"reason":"CrashLoopBackOff"'; }
check "and backs off (CrashLoopBackOff) with the last exit code kept" wait_until 20 crashloop
check_output "lastState says how it ended" '"lastState":{"terminated":{"exitCode":3,"reason":"Error"' pod_json crash

# restartPolicy Never / OnFailure: a pod that completes.
pod done a1 "echo finished" '"restartPolicy":"Never",' | b apply -f - >/dev/null
check "a pod with restartPolicy Never that exits 0 Succeeds" wait_until 15 phase_is done Succeeded
check_output "its container terminated with reason Completed" '"terminated":{"exitCode":0,"reason":"Completed"' pod_json done
pod failed a2 "exit 7" '"restartPolicy":"Never",' | b apply -f - >/dev/null
check "one that exits 7 Fails" wait_until 15 phase_is failed Failed

# ConfigMaps and Secrets into the pod.
b apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello-from-configmap
  app.conf: |
    mode=edge
---
apiVersion: v1
kind: Secret
metadata:
  name: token
stringData:
  password: s3cr3t-value
YAML
pod configured a2 'echo GREETING=$GREETING PASSWORD=$PASSWORD; cat /etc/app/app.conf /etc/secret/password; echo; exec sleep 1000' \
	'"volumes":[{"name":"conf","configMap":{"name":"settings"}},{"name":"sec","secret":{"secretName":"token"}}],' \
	',"env":[{"name":"GREETING","valueFrom":{"configMapKeyRef":{"name":"settings","key":"greeting"}}},{"name":"PASSWORD","valueFrom":{"secretKeyRef":{"name":"token","key":"password"}}}],"volumeMounts":[{"name":"conf","mountPath":"/etc/app"},{"name":"sec","mountPath":"/etc/secret"}]' |
	b apply -f - >/dev/null
check "a pod using a ConfigMap and a Secret runs" wait_until 15 phase_is configured Running
check "env from a ConfigMap key and a Secret key" wait_until 5 log_has configured a2 "GREETING=hello-from-configmap PASSWORD=s3cr3t-value"
check "files from configMap and secret volumes" log_has configured a2 "mode=edge"
check "the secret's file holds the decoded value" log_has configured a2 "s3cr3t-value"
# A ConfigMap changed under a running pod: its volume's files follow (read again every 6th
# heartbeat, 24 s by default), swapped at once through ..data; the container is not restarted.
b get configmap settings -o json | sed 's/mode=edge/mode=changed/' | b apply -f - >/dev/null
volume_changed() { grep -qs "mode=changed" $(find "$test_dir/a2" -path '*/volumes/conf/app.conf' 2>/dev/null) /dev/null; }
check "a changed ConfigMap reaches the running pod's volume" wait_until 45 volume_changed
check_output "without a restart" '"restartCount":0' pod_json configured

# emptyDir in memory: a tmpfs of its own, sizeLimit enforced; detached with the pod.
pod scratch a1 'grep -w /cache /proc/mounts; dd if=/dev/zero of=/cache/fill bs=1024 count=4096 2>&1; exec sleep 1000' \
	'"volumes":[{"name":"cache","emptyDir":{"medium":"Memory","sizeLimit":"1Mi"}}],' \
	',"volumeMounts":[{"name":"cache","mountPath":"/cache"}]' | b apply -f - >/dev/null
check "an emptyDir with medium Memory runs" wait_until 15 phase_is scratch Running
check "it is a tmpfs inside the container" wait_until 5 log_has scratch a1 "^tmpfs /cache tmpfs"
check "writing beyond its sizeLimit fails with no space" wait_until 5 log_has scratch a1 "No space left on device"
scratch_uid=$(pod_json scratch | grep -o '"uid":"[^"]*"' | head -n1 | cut -d'"' -f4)
check "the board holds it as a mount" grep -q "$scratch_uid/volumes/cache tmpfs" /proc/mounts
b delete pod scratch >/dev/null
scratch_gone() { ! grep -q "$scratch_uid" /proc/mounts && ! b get pod scratch >/dev/null 2>&1; }
check "deleting the pod detaches the tmpfs" wait_until 20 scratch_gone

# emptyDir on disk beyond its sizeLimit: the pod is evicted (checked every 6th heartbeat).
pod hoarder a2 'dd if=/dev/zero of=/data/fill bs=1024 count=3072; exec sleep 1000' \
	'"volumes":[{"name":"data","emptyDir":{"sizeLimit":"1Mi"}}],' \
	',"volumeMounts":[{"name":"data","mountPath":"/data"}]' | b apply -f - >/dev/null
evicted() {
	local json
	json=$(pod_json hoarder)
	grep -q '"phase":"Failed"' <<<"$json" && grep -q '"reason":"Evicted","message":"UsageofEmptyDirvolume\\"data\\"exceedsthelimit\\"1Mi\\".' <<<"$json"
}
check "a disk emptyDir filled beyond its sizeLimit gets its pod evicted, as Kubernetes words it" wait_until 60 evicted
stopped() { pod_json hoarder | grep -q '"state":{"terminated":{'; }
check "the evicted pod's container is stopped" wait_until 10 stopped
b delete pod hoarder >/dev/null
hoarder_gone() { ! b get pod hoarder >/dev/null 2>&1; }
check "an evicted pod deleted through the API goes" wait_until 20 hoarder_gone

pod broken a1 "true" "" ',"env":[{"name":"X","valueFrom":{"configMapKeyRef":{"name":"absent","key":"k"}}}]' | b apply -f - >/dev/null
config_error() { pod_json broken | grep -q '"reason":"CreateContainerConfigError","message":"spec.containers\[0\].env\[0\].valueFrom.configMapKeyRef:configmap\\"absent\\"notfound'; }
check "a missing ConfigMap holds the container with CreateContainerConfigError naming it" wait_until 15 config_error

pod noimage a2 "true" "" | sed 's/busybox:1.36/nosuch:1.0/' | b apply -f - >/dev/null
image_missing() { pod_json noimage | grep -qE '"reason":"(ErrImagePull|ImagePullBackOff)","message":"image\\"nosuch:1.0\\":(Back-offpullingimage\\"nosuch:1.0\\":)?noimage'; }
check "an image present nowhere is reported as such" wait_until 15 image_missing

# Scheduling onto the boards.
pod placed "" "echo placed; exec sleep 1000" | b apply -f - >/dev/null
check "a pod without a node is scheduled onto a board and runs" wait_until 15 phase_is placed Running
check_output "bound to one of the agent boards" '"nodeName":"a[12]"' pod_json placed

# Deletion: graceful stop, then gone from the API and from the board.
web_uid=$(pod_json web | grep -o '"uid":"[^"]*"' | head -n1 | cut -d'"' -f4)
check "deleting a pod is accepted" b delete pod web
gone() { ! b get pod web >/dev/null 2>&1; }
check "the kubelet stops it and removes it from the API" wait_until 15 gone
check "its container process is gone" bash -c "! kill -0 $web_pid 2>/dev/null"
no_pod_cgroup() { ! ls -d /sys/fs/cgroup/*/bramble-$run_id-a1/pod-$web_uid /sys/fs/cgroup/bramble-$run_id-a1/pod-$web_uid 2>/dev/null | grep -q .; }
check "and its cgroup and state" wait_until 5 no_pod_cgroup
check "and its root filesystem mounts" bash -c "! grep -q '$web_uid' /proc/mounts"

# An agent restart while the control plane stays up: pods seen again, statuses kept.
board_stop a2
board_start a2
check "after an agent restart its pods run again" wait_until 20 phase_is configured Running
