#!/usr/bin/env bash
# bramble rollout status|history|undo|restart|pause|resume against the API alone: the test
# writes the ReplicaSets of earlier revisions (as the Deployment controller leaves them)
# and the Deployment's status. It is written to pass with a Deployment controller running
# too: the Deployment starts paused (a controller makes no new ReplicaSet for a paused
# Deployment), only revisions that a controller keeps are asked for after it resumes, and
# status is only written where a controller would write the same.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

port=$(free_udp_port)
data=$test_dir/c
check_output "bramble init" "Created a cluster" "$BRAMBLE" init --data-dir "$data" --listen "127.0.0.1:$port" --node-name roll-1
sed -i "s/^roles = .*/roles = server/" "$data/bramble.conf" # the control plane alone: no kubelet
"$BRAMBLE" agent --config "$data/bramble.conf" >"$test_dir/agent.log" 2>&1 &
agent_pid=$!
on_exit "kill $agent_pid; wait $agent_pid"
conf=$data/admin.conf
b() { "$BRAMBLE" --config "$conf" "$@"; }
ready() { b get ns default >/dev/null 2>&1; }
check "the API server answers" wait_until 15 ready
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
on_tty() { script -qec "$(printf '%q ' "$@")" /dev/null; }
image() { b get deploy "$1" -n roll -o yaml | sed -n 's/^ *image: //p'; }

b create namespace roll >/dev/null
deployment() { # deployment NAME REPLICAS IMAGE: a paused Deployment at revision 2
	cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
  namespace: roll
  labels: {app: $1}
  annotations:
    deployment.kubernetes.io/revision: "2"
    kubernetes.io/change-cause: image v2
spec:
  paused: true
  replicas: $2
  selector:
    matchLabels: {app: $1}
  template:
    metadata:
      labels: {app: $1}
    spec:
      containers:
        - {name: web, image: $3}
EOF
}
replicaset() { # replicaset DEPLOYMENT UID REVISION IMAGE HASH
	cat <<EOF
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: $1-$5
  namespace: roll
  labels: {app: $1, pod-template-hash: $5}
  annotations:
    deployment.kubernetes.io/revision: "$3"
    kubernetes.io/change-cause: image v$3
  ownerReferences:
    - {apiVersion: apps/v1, kind: Deployment, name: $1, uid: $2, controller: true, blockOwnerDeletion: true}
spec:
  replicas: 0
  selector:
    matchLabels: {app: $1, pod-template-hash: $5}
  template:
    metadata:
      labels: {app: $1, pod-template-hash: $5}
    spec:
      containers:
        - {name: web, image: $4}
EOF
}
deployment web 2 bramble.invalid/web:v2 | b apply -f - >/dev/null
uid=$(b get deploy web -n roll -o yaml | sed -n 's/^  uid: //p')
{ replicaset web "$uid" 1 bramble.invalid/web:v1 6f7b9c5d4; echo ---; replicaset web "$uid" 2 bramble.invalid/web:v2 84d6c8f9b; } | b apply -f - >/dev/null

# --- history -----------------------------------------------------------------------------------------
check_output "history: the Deployment, as kubectl names it" '^deployment.apps/web $' b rollout history deploy/web -n roll
check_output "... REVISION and CHANGE-CAUSE" '^REVISION +CHANGE-CAUSE$' b rollout history deploy/web -n roll
check_output "... revision 1" '^1 +image v1$' b rollout history deployment web -n roll
check_output "... revision 2" '^2 +image v2$' b rollout history deployment web -n roll
check_output "history --revision: that revision's template" '^deployment.apps/web with revision #1$' b rollout history deploy/web -n roll --revision 1
check_output "... its image" '^    Image: +bramble.invalid/web:v1$' b rollout history deploy/web -n roll --revision=1
check_output "... its change cause" '^  Annotations: +kubernetes.io/change-cause: image v1$' b rollout history deploy/web -n roll --revision=1
check_exit "history of a revision that is not there (1)" 1 'unable to find the specified revision' b rollout history deploy/web -n roll --revision 7
check_output "describe shows the ReplicaSets" '^NewReplicaSet: +web-84d6c8f9b \(0/0 replicas created\)$' b describe deploy web -n roll

# --- pause, resume, and what a paused Deployment refuses -------------------------------------------------
check_exit "pause a paused Deployment (1)" 1 'deployments.apps "web" is already paused' b rollout pause deploy/web -n roll
check_exit "undo a paused Deployment (1)" 1 'you cannot rollback a paused deployment' b rollout undo deploy/web -n roll
check_exit "restart a paused Deployment (1)" 1 "can't restart paused deployment \(run rollout resume first\)" b rollout restart deploy/web -n roll
check_output "resume" '^deployment.apps/web resumed$' b rollout resume deploy/web -n roll
check_exit "resume again (1)" 1 'deployments.apps "web" is not paused' b rollout resume deploy/web -n roll
check_output "pause" '^deployment.apps/web paused$' b rollout pause deploy/web -n roll
check_output "... spec.paused" '^  paused: true$' b get deploy web -n roll -o yaml
b rollout resume deploy/web -n roll >/dev/null

# --- undo --------------------------------------------------------------------------------------------------
check_output "undo to the revision in use: skipped" '^deployment.apps/web skipped rollback \(current template already matches revision 2\)$' \
	b rollout undo deploy/web -n roll --to-revision=2
check_output "undo: back to the revision before" '^deployment.apps/web rolled back$' b rollout undo deploy/web -n roll
check_output "... the template of revision 1" '^bramble.invalid/web:v1$' image web
check "... without the ReplicaSet's pod-template-hash" bash -c "! $(printf '%q ' "$BRAMBLE") --config '$conf' get deploy web -n roll -o yaml | grep -q pod-template-hash"
check_output "... the change cause of revision 1" 'kubernetes.io/change-cause: image v1' b get deploy web -n roll -o yaml
check_output "undo --to-revision" '^deployment.apps/web rolled back$' b rollout undo deploy/web -n roll --to-revision=2
check_output "... the template of revision 2" '^bramble.invalid/web:v2$' image web
check_exit "undo to a revision that is not there (1)" 1 'unable to find specified revision 9 in history' b rollout undo deploy/web -n roll --to-revision=9
deployment quiet 0 bramble.invalid/web:v1 | b apply -f - >/dev/null
check_output "history without ReplicaSets" '^No rollout history found.$' b rollout history deploy/quiet -n roll
check_exit "undo without history (1)" 1 'no rollout history found for deployment "quiet"' b rollout undo deploy/quiet -n roll

# --- restart -----------------------------------------------------------------------------------------------
check_output "restart" '^deployment.apps/web restarted$' b rollout restart deploy/web -n roll
check_output "... the restartedAt annotation of the template" '^        kubectl.kubernetes.io/restartedAt: "?20[0-9-]+T[0-9:]+' b get deploy web -n roll -o yaml

# --- status --------------------------------------------------------------------------------------------------
check_output "status --watch=false: where the rollout is" '^Waiting for deployment' b rollout status deploy/web -n roll --watch=false
check_exit "status --timeout: a rollout that does not finish (1)" 1 'timed out waiting for the condition on deployments.apps/web' \
	b rollout status deploy/web -n roll --timeout 1s
check_exit "status shows progress on a terminal" 1 'Waiting for deployment' on_tty "$BRAMBLE" --config "$conf" rollout status deploy/web -n roll --timeout 1s
check "... not in a pipe" lacks 'Waiting for' bash -c "$(printf '%q ' "$BRAMBLE") --config '$conf' rollout status deploy/web -n roll --timeout 1s 2>&1 | cat"
check_exit "status of another revision (1)" 1 'desired revision \(99\) is different from the running revision' b rollout status deploy/web -n roll --revision 99
check_exit "status of a ReplicaSet (1)" 1 'no status viewer has been implemented for replicasets.apps' b rollout status rs/web-6f7b9c5d4 -n roll
# A Deployment of no replicas is rolled out once its status says the generation was seen;
# the test writes the status a Deployment controller would write (or has written).
deployment zero 0 bramble.invalid/web:v1 | sed 's/paused: true/paused: false/' | b apply -f - >/dev/null
b rollout status deploy/zero -n roll --timeout 20s >"$test_dir/status.out" 2>&1 &
follower=$!
on_exit "kill $follower"
generation=$(b get deploy zero -n roll -o yaml | sed -n 's/^  generation: //p')
b patch deploy zero -n roll --subresource status \
	-p "{\"status\":{\"observedGeneration\":$generation,\"replicas\":0,\"updatedReplicas\":0,\"availableReplicas\":0}}" >/dev/null
rc=0
wait "$follower" || rc=$?
check_output "status follows the Deployment (Observe) and ends with 0 once it is rolled out" '^0$' echo "$rc"
check_output "... saying so" '^deployment "zero" successfully rolled out$' cat "$test_dir/status.out"
check_output "status of a rolled out Deployment" '^deployment "zero" successfully rolled out$' b rollout status deployment zero -n roll
check_exit "an unknown subcommand (2)" 2 "unknown rollout subcommand 'rewind'" b rollout rewind deploy/web -n roll
check "the server is still running" kill -0 "$agent_pid"
