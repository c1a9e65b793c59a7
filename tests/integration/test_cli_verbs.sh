#!/usr/bin/env bash
# The kubectl verbs beyond get/apply, against a real agent over DTLS: get -w (Observe),
# --show-labels, --field-selector, -A; describe with events; create; label and annotate;
# scale; patch; edit with a scripted $EDITOR (a stale edit refused); cordon, uncordon,
# taint, drain; delete by selector, --wait, --grace-period; version; and progress shown on
# a terminal (script(1) gives the command one) but not in a pipe.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

port=$(free_udp_port)
data=$test_dir/c
check_output "bramble init" "Created a cluster" "$BRAMBLE" init --data-dir "$data" --listen "127.0.0.1:$port" --node-name verbs-1
sed -i "s/^roles = .*/roles = server/" "$data/bramble.conf" # the control plane alone: no kubelet
"$BRAMBLE" agent --config "$data/bramble.conf" >"$test_dir/agent.log" 2>&1 &
agent_pid=$!
on_exit "kill $agent_pid; wait $agent_pid"
conf=$data/admin.conf
b() { "$BRAMBLE" --config "$conf" "$@"; }
ready() { b get ns default >/dev/null 2>&1; }
check "the API server answers" wait_until 15 ready
# check_exit WHAT CODE REGEX CMD...
check_exit() {
	local what=$1 code=$2 regex=$3 out rc=0
	shift 3
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq "$code" ] && grep -Eq -- "$regex" <<<"$out"; then
		_report 1 "$what" ""
	else
		_report 0 "$what" "exit $rc (expected $code), expected /$regex/ in: $out"
	fi
}
lacks() { # lacks REGEX CMD...: CMD succeeds and its output does not match
	local regex=$1 out
	shift
	out=$("$@" 2>&1) && ! grep -Eq -- "$regex" <<<"$out"
}
# on_tty CMD...: runs CMD with a terminal as its standard error (and output)
on_tty() { script -qec "$(printf '%q ' "$@")" /dev/null; }

# --- create ------------------------------------------------------------------------------------
check_output "create namespace" '^namespace/verbs created$' b create namespace verbs
printf 'LOG_LEVEL=debug\n# a comment\nWORKERS=4\n' >"$test_dir/app.env"
printf 'listen 8080;\n' >"$test_dir/app.conf"
check_output "create configmap from literals, a file and an env file" '^configmap/settings created$' \
	b create configmap settings -n verbs --from-literal=color=blue --from-file="$test_dir/app.conf" --from-env-file="$test_dir/app.env"
check_output "... its keys" '"WORKERS": "4"' b get cm settings -n verbs -o json
check_output "... the file under its name" '"app.conf": "listen 8080;\\n"' b get cm settings -n verbs -o json
check_output "create secret generic" '^secret/db created$' b create secret generic db -n verbs --from-literal=password=hunter2 --from-literal=user=shop
check_output "create deployment --dry-run=client -o yaml: what kubectl generates" '^      - image: nginx:1.25-alpine$' \
	b create deployment web --image=nginx:1.25-alpine --replicas=2 --port=80 -n verbs --dry-run=client -o yaml
check_fails "... and nothing written" b get deploy web -n verbs
check_output "create deployment" '^deployment.apps/web created$' b create deployment web --image=bramble.invalid/web:1 --replicas=2 -n verbs
check_output "... labelled and selected by app=web" '^web +[0-9]/2 ' b get deploy -l app=web -n verbs
check_output "create service clusterip" '^service/web created$' b create service clusterip web --tcp=80:8080 -n verbs
check_output "... its port named as kubectl names it" '"name": "80-8080"' b get svc web -n verbs -o json
check_exit "create what exists: AlreadyExists (1)" 1 'AlreadyExists' b create namespace verbs
check_exit "create secret without generic (2)" 2 'create secret generic NAME' b create secret db2
check_exit "a literal without a value (1)" 1 'invalid literal source nokey, expected key=value' b create cm bad -n verbs --from-literal=nokey
b apply -f tests/manifests/verbs/node.yaml -f tests/manifests/verbs/pods.yaml >/dev/null

# --- get ----------------------------------------------------------------------------------------
check_output "get nodes: kubectl's columns and roles" '^pi-1 +Ready +worker +[0-9a-z]+ +bramble-0.1.0$' b get nodes
check_output "get nodes -o wide" '^pi-1 .* 192.168.1.21 +<none> +Raspberry Pi OS \(bookworm\) +6.6.31' b get nodes -o wide
check_output "--show-labels: a LABELS column" '^web +ClusterIP .* +app=web$' b get svc -n verbs --show-labels
check_output "--field-selector spec.nodeName across namespaces" '^verbs +lone ' b get pods -A --field-selector spec.nodeName=pi-1
check_output "-A puts NAMESPACE first" '^NAMESPACE +NAME +READY +STATUS' b get pods -A
check_output "TYPE/NAME" '^svc|^web +ClusterIP' b get svc/web -n verbs
check_output "kinds listed together, named TYPE/NAME" '^deployment.apps/web ' b get deploy,svc -n verbs
check_output "-o name" '^pod/lone$' b get pods -n verbs -o name
check_output "--ignore-not-found" '^$' b get cm nothing-here -n verbs --ignore-not-found

# get -w: the list, then a row for every change (CoAP Observe), until interrupted.
b get cm -n verbs -w >"$test_dir/watch.out" 2>&1 &
watch_pid=$!
on_exit "kill $watch_pid"
b get cm settings -n verbs -w --output-watch-events >"$test_dir/events.out" 2>&1 &
events_pid=$!
on_exit "kill $events_pid"
listed() { grep -q '^settings ' "$test_dir/watch.out" && grep -q 'settings' "$test_dir/events.out"; }
check "get -w lists first" wait_until 10 listed
b create cm watched -n verbs --from-literal=a=1 >/dev/null
b label cm watched -n verbs stage=one >/dev/null
b delete cm watched -n verbs >/dev/null
b label cm settings -n verbs stage=two >/dev/null
three_rows() { [ "$(grep -c '^watched ' "$test_dir/watch.out")" -ge 3 ]; }
check "get -w: a row when created, labelled, deleted" wait_until 10 three_rows
modified() { grep -Eq '^MODIFIED +settings ' "$test_dir/events.out"; }
check "get NAME -w --output-watch-events: MODIFIED" wait_until 10 modified
check_output "... with kubectl's EVENT column first, the listed object ADDED" '^ADDED +settings ' cat "$test_dir/events.out"
check_output "... the header" '^EVENT +NAME +DATA +AGE' cat "$test_dir/events.out"
check_output "watched rows stay aligned with the header" '^NAME +DATA +AGE' cat "$test_dir/watch.out"
kill $watch_pid $events_pid 2>/dev/null

# --- describe -----------------------------------------------------------------------------------
uid=$(b get pod managed -n verbs -o yaml | sed -n 's/^  uid: //p')
cat >"$test_dir/events.yaml" <<EOF
apiVersion: v1
kind: Event
metadata: {name: managed.1, namespace: verbs}
involvedObject: {kind: Pod, name: managed, namespace: verbs, uid: "$uid"}
reason: Scheduled
message: Successfully assigned verbs/managed to pi-1
type: Normal
source: {component: default-scheduler}
firstTimestamp: "2024-01-01T00:00:00Z"
lastTimestamp: "2024-01-01T00:00:00Z"
count: 1
---
apiVersion: v1
kind: Event
metadata: {name: managed.2, namespace: verbs}
involvedObject: {kind: Pod, name: managed, namespace: verbs, uid: "an-earlier-pod"}
reason: Killing
message: about an earlier pod of that name
type: Normal
---
apiVersion: v1
kind: Event
metadata: {name: managed.3, namespace: verbs}
involvedObject: {kind: Pod, name: managed, namespace: verbs, uid: "$uid"}
reason: BackOff
message: Back-off pulling image
type: Warning
source: {component: kubelet, host: pi-1}
firstTimestamp: "2024-01-01T00:00:00Z"
lastTimestamp: "2024-01-01T00:05:00Z"
count: 5
EOF
b apply -f "$test_dir/events.yaml" >/dev/null
check_output "describe pod: kubectl's sections" '^Controlled By: +ReplicaSet/web-5d8f$' b describe pod managed -n verbs
check_output "... its containers" '^    Requests:$' b describe pod managed -n verbs
check_output "... its events" '^  Normal +Scheduled +[0-9a-z]+ +default-scheduler +Successfully assigned verbs/managed to pi-1$' b describe pod managed -n verbs
check_output "... counted ones as kubectl shows them" '^  Warning +BackOff +[0-9a-z]+ \(x5 over [0-9a-z]+\) +kubelet +Back-off pulling image$' b describe pod managed -n verbs
check "... not those of an earlier pod of that name (uid checked here)" lacks 'earlier pod' b describe pod managed -n verbs
check_output "describe node: capacity, its pods, what they ask" '^  cpu +250m \(6%\) +500m \(12%\)$' b describe node pi-1
check_output "... its system info" '^  OS Image: +Raspberry Pi OS \(bookworm\)$' b describe node/pi-1
check_output "describe secret: sizes" '^password: +7 bytes$' b describe secret db -n verbs
check "... never values" lacks 'hunter2' b describe secret db -n verbs
check_output "describe configmap: its data" '^WORKERS:$' b describe cm settings -n verbs
check_output "describe service" '^TargetPort: +8080/TCP$' b describe svc web -n verbs
check_output "describe namespace" '^Status: +Active$' b describe ns verbs
check_output "describe deployment" '^Replicas: +2 desired \| 0 updated \| 0 total \| 0 available \| 0 unavailable$|^Replicas: +2 desired' b describe deploy web -n verbs
check_output "describe by name prefix, as kubectl" '^Name: +static-web-pi-1$' b describe pods stat -n verbs
check_exit "describe what is not there (1)" 1 'pods "nothing" not found' b describe pod nothing -n verbs

# --- label, annotate ------------------------------------------------------------------------------
check_output "label" '^configmap/settings labeled$' b label cm settings -n verbs tier=backend
check_exit "label over a value without --overwrite (1)" 1 "'tier' already has a value \(backend\), and --overwrite is false" b label cm settings -n verbs tier=frontend
check_output "... with --overwrite" '^configmap/settings labeled$' b label cm settings -n verbs tier=frontend --overwrite
check_output "remove a label" '^configmap/settings unlabeled$' b label cm settings -n verbs tier-
check_output "remove it again: not found, not labeled" 'label "tier" not found' b label cm settings -n verbs tier-
check_exit "an invalid label value (1)" 1 'invalid label value' b label cm settings -n verbs 'tier=two words'
check_exit "no change given (2)" 2 'at least one label update is required' b label cm settings -n verbs
check_output "label by selector" '^pod/managed labeled$' b label pods -l app=web -n verbs checked=yes
check_output "annotate" '^configmap/settings annotated$' b annotate cm/settings -n verbs 'description=settings of the web app'
check_exit "annotate over a value without --overwrite (1)" 1 "found the following declared annotation\(s\): 'description' already has a value" b annotate cm/settings -n verbs description=other
check_output "annotate, then shown by describe" '^Annotations: +description: settings of the web app$' b describe cm settings -n verbs

# --- scale, patch ---------------------------------------------------------------------------------
check_output "scale" '^deployment.apps/web scaled$' b scale deploy web -n verbs --replicas=5
check_output "... spec.replicas" '^  replicas: 5$' b get deploy web -n verbs -o yaml
check_exit "--current-replicas that do not match (1)" 1 'Expected replicas to be 2, was 5' b scale deploy/web -n verbs --replicas=1 --current-replicas=2
check_exit "scale a pod (1)" 1 'only deployments and replicasets' b scale pod lone -n verbs --replicas=2
check_output "patch (JSON merge)" '^deployment.apps/web patched$' b patch deploy web -n verbs -p '{"spec":{"replicas":3}}'
check_output "patch again: no change" '^deployment.apps/web patched \(no change\)$' b patch deploy web -n verbs -p 'spec: {replicas: 3}'
check_exit "patch with a strategic merge type (2)" 2 'JSON merge patches' b patch deploy web -n verbs --type strategic -p '{}'

# --- edit -----------------------------------------------------------------------------------------
check_output "edit: a change is saved" '^configmap/settings edited$' env BRAMBLE_EDITOR="sed -i s/color:\ blue/color:\ red/" "$BRAMBLE" --config "$conf" edit cm settings -n verbs
check_output "... the object changed" '"color": "red"' b get cm settings -n verbs -o json
check_output "edit without a change: cancelled (0)" 'Edit cancelled, no changes made.' env BRAMBLE_EDITOR=true "$BRAMBLE" --config "$conf" edit cm settings -n verbs
check_output "edit to an empty file: cancelled (0)" 'Edit cancelled, saved file was empty.' env BRAMBLE_EDITOR="truncate -s 0" "$BRAMBLE" --config "$conf" edit cm/settings -n verbs
cat >"$test_dir/stale-editor" <<EOF
#!/bin/sh
# Someone else changes the object while it is being edited.
"$BRAMBLE" --config "$conf" label cm settings -n verbs --overwrite touched=\$(date +%s%N) >/dev/null
sed -i 's/color: red/color: green/' "\$1"
EOF
chmod +x "$test_dir/stale-editor"
check_exit "a stale edit: refused with a clear message (1)" 1 'configmaps "settings" was changed on the server while it was being edited' \
	env BRAMBLE_EDITOR="$test_dir/stale-editor" TMPDIR="$test_dir" "$BRAMBLE" --config "$conf" edit cm settings -n verbs
check_exit "... the edited copy is kept" 1 'A copy of your changes has been stored to ".*bramble-edit-.*\.yaml"' \
	env BRAMBLE_EDITOR="$test_dir/stale-editor" TMPDIR="$test_dir" "$BRAMBLE" --config "$conf" edit cm settings -n verbs
check_output "... and holds the change" 'color: green' sh -c "cat '$test_dir'/bramble-edit-*.yaml"
check_output "... the other change is not overwritten" '"color": "red"' b get cm settings -n verbs -o json
cat >"$test_dir/retry-editor" <<EOF
#!/bin/sh
# First an invalid change (a number where a string must be), then, shown why, a valid one.
if [ ! -e "$test_dir/edited-once" ]; then
	touch "$test_dir/edited-once"
	sed -i 's/color: [a-z]*/color: 7/' "\$1"
else
	cp "\$1" "$test_dir/reopened.yaml"
	sed -i 's/color: 7/color: purple/' "\$1"
fi
EOF
chmod +x "$test_dir/retry-editor"
check_output "an invalid edit reopens the editor; fixed, it is saved" '^configmap/settings edited$' \
	env BRAMBLE_EDITOR="$test_dir/retry-editor" "$BRAMBLE" --config "$conf" edit cm settings -n verbs
check_output "... the reopened file said why" '^# configmaps "settings" was not valid:' cat "$test_dir/reopened.yaml"
check_exit "an editor that fails (1)" 1 'there was a problem with the editor "false"' env BRAMBLE_EDITOR=false "$BRAMBLE" --config "$conf" edit cm settings -n verbs

# --- nodes: cordon, taint, drain ------------------------------------------------------------------------
check_output "cordon" '^node/pi-1 cordoned$' b cordon pi-1
check_output "... the node says so" '^pi-1 +Ready,SchedulingDisabled ' b get nodes
check_output "cordon again" '^node/pi-1 already cordoned$' b cordon pi-1
check_output "uncordon" '^node/pi-1 uncordoned$' b uncordon node/pi-1
check_output "taint" '^node/pi-1 tainted$' b taint nodes pi-1 dedicated=gpu:NoSchedule
check_exit "the same taint again without --overwrite (1)" 1 'node pi-1 already has dedicated taint\(s\) with same effect\(s\) and --overwrite is false' b taint nodes pi-1 dedicated=ml:NoSchedule
check_output "... with --overwrite" '^node/pi-1 modified$' b taint nodes pi-1 dedicated=ml:NoSchedule --overwrite
check_output "... shown by describe" '^Taints: +dedicated=ml:NoSchedule$' b describe node pi-1
check_exit "an unknown effect (1)" 1 'invalid taint effect: Sometimes, unsupported taint effect' b taint node pi-1 a=b:Sometimes
check_output "remove a taint" '^node/pi-1 untainted$' b taint nodes pi-1 dedicated:NoSchedule-
check_exit "remove it again: not found (1)" 1 'taint "dedicated" not found' b taint nodes pi-1 dedicated-
check_exit "drain: pods it may not delete are named (1)" 1 \
	'cannot delete DaemonSet-managed Pods \(use --ignore-daemonsets to ignore\): (verbs/agents-[a-z0-9]+, )?verbs/agents-x1.*cannot delete Pods declare no controller \(use --force to override\): verbs/lone' \
	b drain pi-1
check_output "... the node stays cordoned" '^pi-1 +Ready,SchedulingDisabled ' b get nodes
check_output "drain --ignore-daemonsets --force --grace-period=0" '^node/pi-1 drained$' b drain pi-1 --ignore-daemonsets --force --grace-period=0
check_output "... the pods it may delete are gone" '^static-web-pi-1 ' b get pods -n verbs
check "... managed and lone" lacks '^(managed|lone) ' b get pods -n verbs
check_output "... the DaemonSet's pod is left" '^agents-x1 ' b get pods -n verbs
slow_pod() { printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: verbs\n  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f, uid: 7f1d1c3e-0000-4000-8000-000000000001, controller: true}]\nspec:\n  nodeName: pi-1\n  containers: [{name: web, image: bramble.invalid/web:1}]\n' "$1" | b apply -f - >/dev/null; }
slow_pod slow-1
check_exit "a drain whose pods do not terminate: --timeout (1)" 1 'unable to drain node "pi-1": pod verbs/slow-1 did not terminate within the timeout of 1s' \
	b drain pi-1 --ignore-daemonsets --timeout 1s
slow_pod slow-2
check_exit "drain shows progress on a terminal" 1 'waiting for [0-9]+ of [0-9]+ pods on node pi-1 to terminate' on_tty "$BRAMBLE" --config "$conf" drain pi-1 --ignore-daemonsets --timeout 1s
slow_pod slow-3
check "... not in a pipe" lacks 'waiting for [0-9]' bash -c "$(printf '%q ' "$BRAMBLE") --config '$conf' drain pi-1 --ignore-daemonsets --timeout 1s 2>&1 | cat"
b uncordon pi-1 >/dev/null

# --- delete ---------------------------------------------------------------------------------------------
b create cm group-a1 -n verbs --from-literal=x=1 >/dev/null && b label cm group-a1 -n verbs group=a >/dev/null
b create cm group-a2 -n verbs --from-literal=x=1 >/dev/null && b label cm group-a2 -n verbs group=a >/dev/null
b create cm group-b -n verbs --from-literal=x=1 >/dev/null && b label cm group-b -n verbs group=b >/dev/null
check_output "delete -l" '^configmap "group-a2" deleted$' b delete cm -l group=a -n verbs
check_output "... only those" '^group-b ' b get cm -n verbs -l group
check_output "delete -l with nothing to delete" 'No resources found' b delete cm -l group=z -n verbs
slow_pod slow-4
check_exit "delete waits until a pod is gone; --timeout (1)" 1 'timed out waiting for the condition on pods/slow-4' b delete pod slow-4 -n verbs --timeout 1s
check_output "... it is still Terminating" '^slow-4 +0/1 +Terminating ' b get pod slow-4 -n verbs
check_output "delete --wait=false returns at once" '^pod "slow-4" deleted$' b delete pod slow-4 -n verbs --wait=false
slow_pod slow-5
b delete pod slow-5 -n verbs >"$test_dir/waiting.out" 2>&1 &
waiter=$!
on_exit "kill $waiter"
marked() { b get pod slow-5 -n verbs | grep -q Terminating; }
check "a delete that waits" wait_until 10 marked
check_output "--grace-period=0 --force: gone at once" 'Warning: Immediate deletion does not wait' b delete pod slow-5 -n verbs --grace-period=0 --force
rc=0
wait "$waiter" || rc=$?
check_output "... and the waiting delete sees it go (Observe) and ends with 0" '^0$' echo "$rc"
check_output "... having said so" '^pod "slow-5" deleted$' cat "$test_dir/waiting.out"
slow_pod slow-6
check_exit "delete shows progress on a terminal" 1 'waiting for pod/slow-6 to be gone' on_tty "$BRAMBLE" --config "$conf" delete pod slow-6 -n verbs --timeout 1s
check "... not in a pipe" lacks 'waiting for pod/' bash -c "$(printf '%q ' "$BRAMBLE") --config '$conf' delete pod slow-6 -n verbs --timeout 1s 2>&1 | cat"
check_exit "--now with --grace-period (2)" 2 'cannot be specified together' b delete pod slow-6 -n verbs --now --grace-period=3

# --- version --------------------------------------------------------------------------------------------
check_output "version: the client" '^Bramble [0-9.]+ \(' b version
check_output "... and the server" '^Server Version: Bramble [0-9.]+ \([a-z0-9_]+\) at coaps://127.0.0.1:'"$port"'$' b version
check "--client: not the server" lacks 'Server Version' b version --client
check_output "-o json: both" '"serverVersion": \{' b version -o json
check "the server is still running" kill -0 "$agent_pid"
