#!/usr/bin/env bash
# The control plane's data path through a real `bramble agent` made by `bramble init`,
# driven with Debian's coap-client (OpenSSL and GnuTLS builds) exactly as the README shows:
# create, get, list with selectors, replace with a stale version, patch, delete, watch
# (Observe) with changes made by another client, node authorization, and bad input.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

port=$(free_udp_port)
data=$test_dir/cluster
check_output "bramble init creates a cluster" "Created a cluster in $data" \
	"$BRAMBLE" init --data-dir "$data" --listen "127.0.0.1:$port" --node-name server-1
check_output "admin.conf and credentials are private (0600)" "^600 600$" \
	bash -c "echo \$(stat -c %a '$data/admin.conf') \$(stat -c %a '$data/credentials')"
check_fails_output "bramble init refuses to overwrite a cluster" "already set up" \
	"$BRAMBLE" init --data-dir "$data" --listen "127.0.0.1:$port"
key=$(awk -F' = ' '$1 == "key" {print $2}' "$data/admin.conf")
server=$(awk -F' = ' '$1 == "server" {print $2}' "$data/admin.conf")
check_output "admin.conf names the server" "^coaps://127.0.0.1:$port$" echo "$server"

sed -i "s/^roles = .*/roles = server/" "$data/bramble.conf" # the control plane alone: no kubelet
"$BRAMBLE" agent --config "$data/bramble.conf" >"$test_dir/agent.log" 2>&1 &
agent_pid=$!
on_exit "kill $agent_pid; wait $agent_pid"

# coap METHOD PATH [coap-client options...]: as the admin; prints the payload.
client=coap-client-openssl
coap() {
	local method=$1 path=$2
	shift 2
	timeout 20 "$client" -B 5 -m "$method" -u admin -k "$key" "$@" "$server$path"
}
ready() { [ "$(coap get /healthz 2>/dev/null)" = ok ]; }
check "the API server answers" wait_until 10 ready

ns=/api/v1/namespaces/default
cm='{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web-config","labels":{"app":"web","tier":"front"}},"data":{"color":"blue"}}'
check_output "create a ConfigMap (POST)" '"name":"web-config".*"resourceVersion":"[0-9]+"' \
	coap post "$ns/configmaps" -t json -e "$cm"
check_output "get it back with uid, creationTimestamp, generation" \
	'"uid":"[0-9a-f-]{36}".*"creationTimestamp":"20[0-9-]+T[0-9:]+Z"' coap get "$ns/configmaps/web-config"
coap post "$ns/configmaps" -t json -e '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"db-config","labels":{"app":"db"}},"data":{"size":"10"}}' >/dev/null
check_output "list with a label selector returns only matches" '"items":\[\{[^]]*"name":"web-config"' \
	coap get "$ns/configmaps?labelSelector=app%3Dweb"
web_list_has_no_db() { ! coap get "$ns/configmaps?labelSelector=app%3Dweb" | grep -q db-config; }
check "list with a label selector leaves the others out" web_list_has_no_db
check_output "list with a field selector" '"name":"db-config"' \
	coap get "$ns/configmaps?fieldSelector=metadata.name%3Ddb-config"
check_output "a list page stops at limit and says where to continue" '"continue":"[^"]+".*"items":\[\{[^]]*"name":"db-config"' \
	coap get "$ns/configmaps?limit=1"
next_page() {
	local token
	token=$(coap get "$ns/configmaps?limit=1" | sed -nE 's/.*"continue":"([^"]+)".*/\1/p')
	coap get "$ns/configmaps?limit=1&continue=$token"
}
check_output "the next page continues after it" '"items":\[\{[^]]*"name":"web-config"' next_page
check_output "create of an existing name is refused (4.09)" 'AlreadyExists|already exists' \
	coap post "$ns/configmaps" -t json -e "$cm"

stale='{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web-config","resourceVersion":"1"},"data":{"color":"red"}}'
check_output "replace with a stale resourceVersion is refused (4.12)" 'Conflict.*has been modified' \
	coap put "$ns/configmaps/web-config" -t json -e "$stale"
check_output "the stale replace changed nothing" '"color":"blue"' coap get "$ns/configmaps/web-config"
rv=$(coap get "$ns/configmaps/web-config" | sed -E 's/.*"resourceVersion":"([0-9]+)".*/\1/')
fresh="{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"web-config\",\"resourceVersion\":\"$rv\",\"labels\":{\"app\":\"web\"}},\"data\":{\"color\":\"green\"}}"
check_output "replace with the current resourceVersion" '"color":"green"' \
	coap put "$ns/configmaps/web-config" -t json -e "$fresh"
check_output "merge patch (PATCH)" '"color":"green".*"size":"large"|"size":"large".*"color":"green"' \
	coap patch "$ns/configmaps/web-config" -t json -e '{"data":{"size":"large"}}'
check_output "merge patch (iPATCH) removes a key with null" '"data":\{"color":"green"\}' \
	coap ipatch "$ns/configmaps/web-config" -t json -e '{"data":{"size":null}}'

# Watch: one client observes the collection while another makes changes.
watch_out=$test_dir/watch.out
timeout 30 $client -B 12 -s 10 -m get -u admin -k "$key" "$server$ns/configmaps" >"$watch_out" 2>&1 &
watch_pid=$!
on_exit "kill $watch_pid"
sleep 1
coap post "$ns/configmaps" -t json -e '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"watched"},"data":{"a":"1"}}' >/dev/null
coap patch "$ns/configmaps/watched" -t json -e '{"data":{"a":"2"}}' >/dev/null
coap delete "$ns/configmaps/watched" >/dev/null
saw() { grep -q "$1" "$watch_out"; }
check "the watch receives ADDED for a create by another client" wait_until 10 saw '"type":"ADDED","object":{[^}]*"name":"watched"'
check "the watch receives MODIFIED" wait_until 5 saw '"type":"MODIFIED","object":{[^}]*"name":"watched"'
check "the watch receives DELETED" wait_until 5 saw '"type":"DELETED","object":{[^}]*"name":"watched"'
check_output "the watch started with the list" '"kind":"ConfigMapList"' cat "$watch_out"
check_output "replay: events since a resourceVersion" '"kind":"WatchEvents".*"type":"ADDED"' \
	coap get "$ns/configmaps?watch=1&resourceVersion=$rv"

check_output "delete (DELETE)" '"name":"db-config"' coap delete "$ns/configmaps/db-config"
check_output "a deleted object is gone (4.04)" 'NotFound.*not found' coap get "$ns/configmaps/db-config"
check_output "a PUT to a deleted object is refused (4.04)" 'NotFound' \
	coap put "$ns/configmaps/db-config" -t json -e '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"db-config"}}'
check_output "/.well-known/core lists the API collections" '</api/v1/pods>.*</apis/apps/v1/deployments>|</apis/apps/v1/deployments>.*</api/v1/pods>' \
	coap get /.well-known/core

# Bad input: clear errors, nothing stored, the server stays up.
count_configmaps() { coap get "$ns/configmaps" | grep -o '"kind":"ConfigMap"' | wc -l; }
before=$(count_configmaps)
check_output "malformed JSON: 4.00 with the position" 'BadRequest.*invalid JSON' \
	coap post "$ns/configmaps" -t json -e '{"apiVersion":"v1",'
check_output "an unknown field is named" '"field":"spec.containers\[0\].imagePullPolicyy"' \
	coap post "$ns/pods" -t json -e '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox","imagePullPolicyy":"Always"}]}}'
check_output "a missing image is named" 'spec.containers\[0\].image' \
	coap post "$ns/pods" -t json -e '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}'
long=$(printf 'a%.0s' $(seq 1 300))
check_output "a 300-character name is refused" 'metadata.name' \
	coap post "$ns/configmaps" -t json -e "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"$long\"}}"
check_output "a wrong type is refused" 'replicas' \
	coap post /apis/apps/v1/namespaces/default/deployments -t json -e '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":"three","selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}'
check_output "an unknown kind in the path is 4.04" 'NotFound.*does not serve' coap get /api/v1/widgets
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$test_dir/big.json"
check_output "a 10 MB body gets 4.13" 'RequestEntityTooLarge|4\.13' \
	coap post "$ns/configmaps" -t json -f "$test_dir/big.json"
check_output "an unknown field selector is refused" 'BadRequest.*spec.colour' \
	coap get "$ns/pods?fieldSelector=spec.colour%3Dred"
check_output "an unknown query parameter is refused" "unknown query parameter 'sortBy'" \
	coap get "$ns/pods?sortBy=name"
check "a wrong PSK gets no answer" bash -c "! timeout 20 $client -B 3 -m get -u admin -k wrong-key-0123456789 '$server/healthz' 2>/dev/null | grep -q ok"
check_output "the store is unchanged by all of it" "^$before$" count_configmaps
check "the server is still running" kill -0 "$agent_pid"

# Node authorization over the wire: node:pi-1 sees its own pod and the Secret it uses,
# not another node's.
printf 'node:pi-1 pi1-key-0123456789abcdef\nnode:pi-2 pi2-key-0123456789abcdef\n' >>"$data/credentials"
kill -HUP "$agent_pid"
sleep 1
pod() { # pod NAME NODE SECRET
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"nodeName\":\"$2\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"env\":[{\"name\":\"X\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"$3\",\"key\":\"k\"}}}]}]}}"
}
for s in s1 s2; do
	coap post "$ns/secrets" -t json -e "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"$s\"},\"data\":{\"k\":\"c2VjcmV0\"}}" >/dev/null
done
coap post "$ns/pods" -t json -e "$(pod p1 pi-1 s1)" >/dev/null
coap post "$ns/pods" -t json -e "$(pod p2 pi-2 s2)" >/dev/null
as_node() { local n=$1 path=$2; timeout 20 $client -B 5 -m get -u "node:$n" -k "${n//-/}-key-0123456789abcdef" "$server$path"; }
check_output "node:pi-1 reads its own pod" '"name":"p1"' as_node pi-1 "$ns/pods/p1"
check_output "node:pi-1 may not read pi-2's pod (4.03)" 'Forbidden.*not bound to this node' as_node pi-1 "$ns/pods/p2"
check_output "node:pi-1 reads the Secret its pod uses" '"name":"s1"' as_node pi-1 "$ns/secrets/s1"
check_output "node:pi-1 may not read pi-2's Secret (4.03)" 'Forbidden.*no pod bound to this node uses it' as_node pi-1 "$ns/secrets/s2"
check_output "node:pi-1 lists only with its own field selector" 'Forbidden' as_node pi-1 "$ns/pods"
check_output "node:pi-1 lists its pods" '"name":"p1"' as_node pi-1 "$ns/pods?fieldSelector=spec.nodeName%3Dpi-1"
check "Secrets are not stored in plain text" bash -c "! cat '$data'/store.db* | grep -qa c2VjcmV0"

# Heartbeats stay in memory: renewing a Lease changes what readers see, not the store.
lease=/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases
check_output "create a node Lease" '"holderIdentity":"pi-1"' coap post "$lease" -t json \
	-e '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"pi-1"},"spec":{"holderIdentity":"pi-1","leaseDurationSeconds":40,"renewTime":"2026-11-22T04:00:00.000000Z"}}'
global_revision() { coap get "$ns/configmaps?limit=1" | sed -E 's/.*"metadata":\{"resourceVersion":"([0-9]+)".*/\1/'; }
revision_before=$(global_revision)
wal_before=$(stat -c %Y.%s "$data/store.db-wal")
for second in 10 20 30; do
	coap patch "$lease/pi-1" -t json -e "{\"spec\":{\"renewTime\":\"2026-11-22T04:00:$second.000000Z\"}}" >/dev/null
done
check_output "a renewed Lease reads back with its new renewTime" '"renewTime":"2026-11-22T04:00:30.000000Z"' \
	coap get "$lease/pi-1"
check_output "lists show the renewal too" '"renewTime":"2026-11-22T04:00:30.000000Z"' coap get "$lease"
check_output "renewals took no revision" "^$revision_before$" global_revision
check_output "renewals wrote nothing to the store" "^$wal_before$" stat -c %Y.%s "$data/store.db-wal"
check_output "a real change to the Lease is written, renewal included" \
	'"holderIdentity":"pi-9".*"renewTime":"2026-11-22T04:00:30.000000Z"|"renewTime":"2026-11-22T04:00:30.000000Z".*"holderIdentity":"pi-9"' \
	bash -c "$(declare -f coap); client=$client key='$key' server='$server'; coap patch '$lease/pi-1' -t json -e '{\"spec\":{\"holderIdentity\":\"pi-9\"}}' >/dev/null; coap get '$lease/pi-1'"
check "the real change took a revision" test "$(global_revision)" -gt "$revision_before"
node_status() { # node_status HEARTBEAT READY
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"pi-1\"},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"$2\",\"lastHeartbeatTime\":\"$1\",\"lastTransitionTime\":\"2026-11-22T04:00:00Z\"}]}}"
}
coap post /api/v1/nodes -t json -e "$(node_status 2026-11-22T04:00:00Z True)" >/dev/null
revision_before=$(global_revision)
coap put /api/v1/nodes/pi-1/status -t json -e "$(node_status 2026-11-22T04:00:10Z True)" >/dev/null
check_output "a Node status heartbeat reads back" '"lastHeartbeatTime":"2026-11-22T04:00:10Z"' coap get /api/v1/nodes/pi-1
check_output "a Node status heartbeat takes no revision" "^$revision_before$" global_revision
coap put /api/v1/nodes/pi-1/status -t json -e "$(node_status 2026-11-22T04:00:20Z False)" >/dev/null
check "a Node condition change is written" test "$(global_revision)" -gt "$revision_before"

# The GnuTLS client speaks to the mbedTLS server too.
client=coap-client-gnutls
check_output "coap-client-gnutls: get over DTLS" '"name":"web-config"' coap get "$ns/configmaps/web-config"

# Crash safety: kill -9 the server in the middle of a stream of creates; after a restart
# every create that was acknowledged is there and SQLite finds the file intact.
client=coap-client-openssl
acked=$test_dir/acked
: >"$acked"
(
	for i in $(seq 1 100000); do
		out=$(coap post "$ns/configmaps" -t json -e "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"crash-$i\"}}" 2>/dev/null) || continue
		grep -q "\"name\":\"crash-$i\"" <<<"$out" && echo "crash-$i" >>"$acked"
	done
) &
writer=$!
on_exit "kill $writer"
sleep 4
{ kill -9 "$agent_pid" && wait "$agent_pid"; } 2>/dev/null
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
check_output "creates were acknowledged before the crash" "^[1-9][0-9]*$" bash -c "wc -l <'$acked'"
check_output "the store passes PRAGMA integrity_check" "^ok$" \
	python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])" "$data/store.db"
"$BRAMBLE" agent --config "$data/bramble.conf" >>"$test_dir/agent.log" 2>&1 &
agent_pid=$!
on_exit "kill $agent_pid; wait $agent_pid"
check "the server restarts" wait_until 10 ready
all_acked_present() {
	local have name
	have=$(coap get "$ns/configmaps?limit=100000")
	while read -r name; do
		grep -q "\"name\":\"$name\"" <<<"$have" || { echo "missing after restart: $name"; return 1; }
	done <"$acked"
}
check "every acknowledged create survived kill -9" all_acked_present
