#!/usr/bin/env bash
# The client verbs driven as the README walkthrough does: `bramble init`, an agent, then
# `bramble apply -f` on folders of manifests written for Kubernetes (tests/manifests and the
# shop in tests/manifests/shop: Namespace, ConfigMap, Secret, Deployments and Services in
# multi-document files), `get` in every output format, `delete`, and bad input (not a
# manifest, a tab, an unknown field or kind, a missing config, no server) with the messages
# and the exit codes scripts rely on: 0 done, 1 an error, 2 a usage error.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

port=$(free_udp_port)
data=$test_dir/c
check_output "bramble init" "Created a cluster" "$BRAMBLE" init --data-dir "$data" --listen "127.0.0.1:$port" --node-name cli-1
sed -i "s/^roles = .*/roles = server/" "$data/bramble.conf" # the control plane alone: no kubelet
"$BRAMBLE" agent --config "$data/bramble.conf" >"$test_dir/agent.log" 2>&1 &
agent_pid=$!
on_exit "kill $agent_pid; wait $agent_pid"

b() { "$BRAMBLE" --config "$data/admin.conf" "$@"; }
# check_exit WHAT CODE REGEX CMD...: passes when CMD exits with CODE and its output matches
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
ready() { b get ns default >/dev/null 2>&1; }
check "the API server answers bramble get" wait_until 15 ready

check_output "apply a folder: the Deployment is created" '^deployment.apps/web created$' b apply -f tests/manifests/
check_output "the ConfigMaps were created" '^web-config +4 ' b get cm
check_output "the Secret and the Service too" '^web-secret ' b get secrets
check_output "apply again: unchanged" '^deployment.apps/web unchanged$' b apply -f tests/manifests/
count_unchanged() { b apply -f tests/manifests/ | grep -c ' unchanged$'; }
check_output "apply again: all five objects unchanged" '^5$' count_unchanged
sed 's/replicas: 2$/replicas: 3/' tests/manifests/web.yaml >"$test_dir/web3.yaml"
check_output "apply a change: configured" '^deployment.apps/web configured$' b apply -f "$test_dir/web3.yaml"
check_output "--dry-run says so and writes nothing" 'deployment.apps/web unchanged \(dry run\)' b apply --dry-run -f "$test_dir/web3.yaml"
check_output "apply from stdin" '^configmap/redis-config unchanged$' bash -c "$(declare -f b); data='$data'; BRAMBLE='$BRAMBLE'; b apply -f - <tests/manifests/redis.json"

check_output "get deployments: kubectl's columns" '^NAME +READY +UP-TO-DATE +AVAILABLE +AGE' b get deployments
check_output "get deploy web: its row (the controller made its 3 pods; no board runs them)" '^web +0/3 +3 +0 +[0-9]+s$' b get deploy web
check_output "get cm: NAME DATA AGE" '^web-config +4 +[0-9]+s$' b get cm
check_output "get cm -o json: a List, indented" '^    "kind": "List"|"kind": "List"' b get cm -o json
check_output "get cm web-config -o json: the object" '"greeting": "Hello from a bramble"' b get cm web-config -o json
check_output "get svc -o yaml" '^kind: Service$' b get svc web -o yaml
check_output "get svc: a table" '^web +ClusterIP +' b get svc
check_output "get secrets -l app=web" '^web-secret +Opaque +2 ' b get secrets -l app=web
check_output "get cm -l app=redis leaves the others out" '^redis-config ' b get cm -l app=redis
redis_only() { ! b get cm -l app=redis | grep -q web-config; }
check "get cm -l app=redis leaves web-config out" redis_only
check_output "get cm --field-selector" '^web-config ' b get cm --field-selector metadata.name=web-config
check_output "get -o name" '^deployment.apps/web$' b get deploy -o name
check_output "get pods -A: the Deployment's pods, with their namespace" '^default +web-[a-z0-9]+-[a-z0-9]{5} +0/1 +Pending' b get pods -A
check_output "get pods in an empty namespace: the namespace is named" 'No resources found in kube-system namespace.' b get pods -n kube-system
check_output "get ns: the namespaces init made" '^kube-system +Active' b get ns
check_output "get ns -o yaml of one" '^  name: default$' b get ns default -o yaml
check_fails_output "get a missing object: kubectl's message" '^Error from server \(NotFound\): pods "x" not found$' b get pods x
check_fails_output "get an unknown kind" 'doesn.t have a resource type "widgets"' b get widgets

# Delete
check_output "delete by kind and name" '^configmap "redis-config" deleted$' b delete cm redis-config
check_fails_output "delete it again: NotFound" 'NotFound.*configmaps "redis-config" not found' b delete cm redis-config
check_output "delete -f a file" '^deployment.apps "web" deleted$' b delete -f tests/manifests/web.yaml
check_output "the Service went with it" 'No resources found' b get svc

# Bad input
printf 'just: a\nmap: of things\n' >"$test_dir/notk8s.yaml"
check_fails_output "YAML that is not a manifest" 'notk8s.yaml: document 1, line 1: not a Kubernetes object' b apply -f "$test_dir/notk8s.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: tabbed\n' >"$test_dir/tab.yaml"
check_fails_output "a tab: file, document and line" 'tab.yaml: document 2, line 9: .*a tab' b apply -f "$test_dir/tab.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata:\n  a: 1\n' >"$test_dir/invalid.yaml"
check_fails_output "an invalid field: file, document and field path" 'invalid.yaml" \(document 2\).*data' b apply -f "$test_dir/invalid.yaml"
check_output "the valid document before it was applied" '^good ' b get cm good
printf 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n' >"$test_dir/widget.yaml"
check_fails_output "an unknown kind in a manifest" 'widget.yaml: document 1: no matches for kind "Widget" in version "example.com/v1"' b apply -f "$test_dir/widget.yaml"
check_fails_output "a missing --config says how to get one" 'no client configuration.*bramble init' \
	"$BRAMBLE" --config "$test_dir/nope.conf" get pods
check_fails_output "no config at all (HOME without one)" '\.config/bramble/config' \
	env -u BRAMBLE_CONFIG HOME="$test_dir" "$BRAMBLE" get pods
dead=$(free_udp_port)
sed "s/:$port\$/:$dead/" "$data/admin.conf" >"$test_dir/dead.conf"
start=$SECONDS
check_fails_output "an unreachable server: the address and a timeout" "no answer from coaps://127.0.0.1:$dead within 5 s" \
	"$BRAMBLE" --config "$test_dir/dead.conf" get pods
check "... within a few seconds" test $((SECONDS - start)) -le 8
sed 's/^key = .*/key = wrong-key-0123456789abcdef/' "$data/admin.conf" >"$test_dir/wrongkey.conf"
check_fails_output "a wrong key: the handshake is refused" "DTLS handshake .* failed" "$BRAMBLE" get pods --config "$test_dir/wrongkey.conf"
check "the server is still running" kill -0 "$agent_pid"

# A folder of manifests as people keep them in git for Kubernetes, applied unchanged.
count() { "$@" 2>&1 | grep -c "$pattern"; }
first_line() { "$@" | head -n 1; }
check_output "--dry-run=client: the Namespace first (00-namespace.yaml)" '^namespace/shop created \(dry run\)$' first_line b apply -f tests/manifests/shop/ --dry-run=client
check_fails "... and nothing was written" b get ns shop
pattern=' created$'
check_output "apply the shop: seven objects created" '^7$' count b apply -f tests/manifests/shop/
pattern=' unchanged$'
check_output "apply the shop again: all unchanged" '^7$' count b apply -f tests/manifests/shop/
check_output "its Deployments" '^redis +[0-9]/1 ' b get deploy -n shop
check_output "its Services, the headless one too" '^redis +ClusterIP +None ' b get svc -n shop
check_output "its Secret" '^storefront-secrets +Opaque +2 ' b get secrets -n shop
check_output "kinds listed together" '^deployment.apps/storefront ' b get deploy,svc,cm -n shop
check_output "describe shows the manifest's environment" 'storefront-config +ConfigMap +Optional: false' b describe deploy storefront -n shop
check_output "... and the secret reference, not its value" "REDIS_PASSWORD: +<set to the key 'REDIS_PASSWORD' in secret 'storefront-secrets'>" b describe deploy storefront -n shop
sed 's/replicas: 3/replicas: 4/' tests/manifests/shop/20-storefront.yaml >"$test_dir/storefront4.yaml"
check_output "--dry-run=server: the server checks the change" '^deployment.apps/storefront configured \(server dry run\)$' b apply --dry-run=server -f "$test_dir/storefront4.yaml"
check_output "... and stores nothing" '^storefront +[0-9]/3 ' b get deploy storefront -n shop
sed 's/imagePullPolicy: IfNotPresent/imagePulPolicy: IfNotPresent/' "$test_dir/storefront4.yaml" >"$test_dir/typo.yaml"
check_exit "an unknown field: file, document and field path (1)" 1 \
	'typo.yaml" \(document 1\): deployments.apps "storefront": spec.template.spec.containers\[0\].imagePulPolicy: unknown field' \
	b apply -f "$test_dir/typo.yaml"
check_exit "... found by --dry-run=client too, before anything is sent" 1 \
	'typo.yaml: document 1: deployments.apps "storefront": spec.template.spec.containers\[0\].imagePulPolicy: unknown field' \
	b apply --dry-run=client -f "$test_dir/typo.yaml"
sed 's#apiVersion: apps/v1#apiVersion: extensions/v1beta1#' tests/manifests/shop/30-redis.yaml >"$test_dir/old.yaml"
check_exit "an old apiVersion: what Bramble serves instead" 1 \
	'old.yaml: document 1: no matches for kind "Deployment" in version "extensions/v1beta1" \(Bramble serves Deployment as apps/v1\)' \
	b apply -f "$test_dir/old.yaml"
pattern=' deleted$'
check_output "delete -f the shop: seven objects deleted" '^7$' count b delete -f tests/manifests/shop/
check_fails "... the Namespace too" b get ns shop

# Exit codes: 2 for a usage error, 1 for any other error.
check_exit "no kind: a usage error (2)" 2 'you must specify the type of resource' b get
check_exit "an unknown flag (2)" 2 'usage: bramble get' b get pods --frobnicate
check_exit "an unknown verb (2)" 2 "unknown verb 'frobnicate'" "$BRAMBLE" frobnicate
check_exit "delete with a kind and no name (2)" 2 'no name was specified' b delete pods
check_exit "scale without --replicas (2)" 2 'required flag\(s\) "replicas" not set' b scale deploy web
check_exit "rollout without a subcommand (2)" 2 'usage: bramble rollout' b rollout
check_exit "--config without a file (2)" 2 '--config needs a FILE' "$BRAMBLE" --config
check_exit "an invalid --dry-run (2)" 2 'Invalid dry-run value \(sometimes\)' b apply -f tests/manifests --dry-run=sometimes
check_exit "an unknown kind (1)" 1 'the server doesn.t have a resource type "widgets"' b get widgets
check_exit "an object that is not there (1)" 1 'NotFound' b get pods x
check_exit "YAML that is not a manifest (1)" 1 'not a Kubernetes object' b apply -f "$test_dir/notk8s.yaml"
check_exit "a tab (1)" 1 'a tab' b apply -f "$test_dir/tab.yaml"
check_exit "a missing --config (1)" 1 'no client configuration' "$BRAMBLE" --config "$test_dir/nope.conf" get pods
check_exit "an unreachable server (1)" 1 "no answer from coaps://127.0.0.1:$dead within 5 s" "$BRAMBLE" --config "$test_dir/dead.conf" get ns
