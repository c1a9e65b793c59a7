#!/usr/bin/env bash
# Images over the cluster, on real boards: `bramble image push` stores an image on the control
# plane; an agent board whose store lacks the image a pod needs pulls it (CoAP block-wise,
# sha256-verified) and runs the pod. A corrupted blob on the server is refused by the agent
# with its digest named; Never with a missing image is ErrImageNeverPull; an image for another
# architecture is refused with both named; a truncated archive is refused before anything is
# sent; nodes may read images but not push them.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/boards.sh

boards_lan || { echo "cannot create network namespaces"; exit 1; }
board_add cp server
board_add a1 agent
# The control plane keeps at most 4 MB of images.
sed -i 's/^\[server\]$/[server]\nimage-registry-limit = 4M/' "$cp_dir/bramble.conf"
# a1 starts with an empty image store: what its pods run must come from the control plane.
"$BRAMBLE" image rm busybox:1.36 --data-dir "$test_dir/a1" >/dev/null
board_start cp
check "the control plane answers" wait_until 10 b get namespaces
board_start a1
a1_ready() { b get nodes 2>/dev/null | grep -q '^a1 .* Ready '; }
check "a1 registers and is Ready" wait_until 15 a1_ready
images=$test_dir/images
registry=$cp_dir/registry
bb() { in_board cp "$BRAMBLE" --config "$cp_dir/admin.conf" "$@"; }
export -f bb in_board
export BRAMBLE cp_dir run_id

# --- push -------------------------------------------------------------------------------------
check_output "push stores the image and prints its reference, platform and manifest digest" \
	'^busybox:1\.36 amd64 sha256:[0-9a-f]{64} 1\.0MB$' b image push "$images/busybox-oci.tar"
check "in a pipe it shows no progress" bash -c "! bb image push '$images/busybox-oci.tar' 2>&1 | grep -q '%'"
on_terminal=$(script -qec "nsenter --net=/run/netns/brb-$run_id-cp '$BRAMBLE' --config '$cp_dir/admin.conf' image push '$images/busybox-oci.tar'" /dev/null 2>&1)
check_output "on a terminal: bytes and percent" 'pushing busybox:1\.36 \(amd64\): .* \(100%\)' echo "$on_terminal"
check_output "and a second push sends no blob again" 'sent 0 blobs \(0B\) .* 2 already there' echo "$on_terminal"
check_output "image ls lists it with platform, digest and size" 'busybox:1\.36 +amd64 +[0-9a-f]{12} +1\.0MB' b image ls
key=$(awk -F' = ' '$1 == "key" {print $2}' "$cp_dir/admin.conf")
check_output "the list is at /registry/v1/images for plain coap-client users, and discoverable" \
	'"reference":"docker.io/library/busybox:1.36".*</registry/v1/images>' bash -c \
	"nsenter --net=/run/netns/brb-$run_id-cp sh -c 'coap-client-openssl -m get -u admin -k $key coaps://$(board_ip cp):5684/registry/v1/images; coap-client-openssl -m get -u admin -k $key coaps://$(board_ip cp):5684/.well-known/core' | tr -d '\n'"
check_output "a docker save archive is pushed too" '^busybox:docker amd64 sha256:' b image push "$images/busybox-docker.tar"
check_output "and pushed under another name with --tag" '^web:v2 amd64 ' b image push "$images/busybox-docker-gz.tar" --tag web:v2
check "the server holds blobs as content-addressed files (no partial upload left)" \
	bash -c "[ -n \"\$(ls '$registry/blobs/sha256')\" ] && [ -z \"\$(ls -A '$registry/uploads')\" ]"

# A truncated archive: refused before anything is sent, nothing left on either side.
head -c 600000 "$images/busybox-docker-gz.tar" >"$test_dir/truncated.tar"
before=$(ls "$registry/blobs/sha256" | sort | tr '\n' ' ')
check_fails_output "a truncated archive is refused (exit 1) saying why" 'truncated.tar' b image push "$test_dir/truncated.tar" --tag broken:1
check "it left no blob, upload or reference on the server" \
	bash -c "[ \"\$(ls '$registry/blobs/sha256' | sort | tr '\n' ' ')\" = '$before' ] && [ -z \"\$(ls -A '$registry/uploads')\" ] && ! grep -q broken '$registry/index.json'"
check "and no scratch directory on the client" bash -c "! ls -d /tmp/bramble-push-* 2>/dev/null | grep -q ."
check_fails_output "a usage error exits 2" 'takes exactly one argument' b image push

# Beyond the registry's limit: refused (4.13) before any byte is stored.
mkdir -p "$test_dir/big/layer"
head -c 3000000 /dev/urandom >"$test_dir/big/layer/layer.tar"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	"$(sha256sum "$test_dir/big/layer/layer.tar" | cut -c1-64)" >"$test_dir/big/config.json"
echo '[{"Config":"config.json","RepoTags":["big:1"],"Layers":["layer/layer.tar"]}]' >"$test_dir/big/manifest.json"
tar -C "$test_dir/big" -cf "$test_dir/big.tar" .
before=$(ls "$registry/blobs/sha256" | sort | tr '\n' ' ')
check_fails_output "a push beyond image-registry-limit is refused naming the limit" \
	"RequestEntityTooLarge.*exceed the registry's limit of 4194304 bytes" b image push "$test_dir/big.tar"
check "and leaves no blob, upload or reference (what it had sent is removed)" \
	bash -c "[ \"\$(ls '$registry/blobs/sha256' | sort | tr '\n' ' ')\" = '$before' ] && [ -z \"\$(ls -A '$registry/uploads')\" ] && ! grep -q 'big:1' '$registry/index.json'"

# Nodes read images; they may not push.
node_conf=$test_dir/node.conf
printf '[cluster]\nserver = coaps://%s:5684\n[user]\nidentity = node:a1\nkey = %s\n' "$(board_ip cp)" \
	"$(awk '{print $2}' "$test_dir/a1/node-credential")" >"$node_conf"
check_fails_output "a node may not push (4.03)" 'Forbidden.*nodes may only read images' \
	in_board cp "$BRAMBLE" --config "$node_conf" image push "$images/busybox-oci.tar" --tag sneaky:1
check_output "but may list them" 'busybox:1\.36' in_board cp "$BRAMBLE" --config "$node_conf" image ls

# --- pull ---------------------------------------------------------------------------------------
pod() { # pod NAME IMAGE [EXTRA-CONTAINER-JSON]
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"nodeName\":\"a1\",\"terminationGracePeriodSeconds\":1,\"containers\":[{\"name\":\"main\",\"image\":\"$2\",\"command\":[\"sh\",\"-c\",\"echo up; exec sleep 1000\"]${3:-}}]}}"
}
phase_is() { pod_json "$1" | grep -q "\"phase\":\"$2\""; }
waiting_is() { pod_json "$1" | grep -q "\"reason\":\"$2\""; }

pod web busybox:1.36 | b apply -f - >/dev/null
check "a pod whose image a1 lacks: the image is pulled and the pod runs" wait_until 30 phase_is web Running
check_output "a1's store now has the image" 'busybox:1\.36 ' "$BRAMBLE" image ls --data-dir "$test_dir/a1"
check_output "the agent logged the pull" 'image busybox:1\.36 \(amd64\): pulled [0-9]+ bytes' cat "$test_dir/a1.log"
check_output "the container reports the image's digest" '"imageID":"sha256:[0-9a-f]{64}"' pod_json web
check_output "an Event says the image is being pulled" 'Normal +Pulling +pod/web +Pulling image "busybox:1\.36"' b get events
check_output "and one that it was, with the time it took" \
	'Normal +Pulled +pod/web +Successfully pulled image "busybox:1\.36" in [0-9.]+s \([0-9]+ bytes\)' b get events

# Two pods needing one image: one pull.
{ echo ---; pod shared1 web:v2; echo ---; pod shared2 web:v2; } | b apply -f - >/dev/null
both_run() { phase_is shared1 Running && phase_is shared2 Running; }
check "two pods needing the same image both run" wait_until 30 both_run
check_output "after one pull" '^1$' bash -c "grep -c 'image web:v2 (amd64): pulling' '$test_dir/a1.log'"

# Never, with the image missing.
pod never busybox:docker ',"imagePullPolicy":"Never"' | b apply -f - >/dev/null
never_pull() { pod_json never | grep -q '"reason":"ErrImageNeverPull","message":"image\\"busybox:docker\\":Containerimage\\"busybox:docker\\"isnotpresentwithpullpolicyofNever'; }
check "imagePullPolicy Never with the image missing: ErrImageNeverPull" wait_until 15 never_pull
b delete pod never >/dev/null

# Present nowhere.
pod nowhere nosuch:1.0 | b apply -f - >/dev/null
nowhere() { pod_json nowhere | grep -qE '"reason":"(ErrImagePull|ImagePullBackOff)","message":"image\\"nosuch:1.0\\":(Back-offpullingimage\\"nosuch:1.0\\":)?noimagenosuch:1.0onthecontrolplane'; }
check "an image on no board and not on the control plane: ErrImagePull naming it" wait_until 15 nowhere
backoff() { pod_json nowhere | grep -q '"reason":"ImagePullBackOff"'; }
check "then ImagePullBackOff" wait_until 15 backoff
check_output "with a Warning Event, Failed" 'Warning +Failed +pod/nowhere +Failed to pull image "nosuch:1\.0": no image nosuch:1\.0 on the control plane' b get events

# Another architecture.
b image push "$images/busybox-foreign-oci.tar" >/dev/null
pod foreign busybox:foreign | b apply -f - >/dev/null
foreign() { pod_json foreign | grep -qE 'imagebusybox:foreignisforarm64;thisboardisamd64|imagebusybox:foreignisforamd64;thisboardisarm64'; }
check "an image for another architecture is refused, both named" wait_until 15 foreign

# A corrupted blob on the server: the agent refuses it, naming its digest.
layer=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['references']['docker.io/library/busybox:docker']['amd64']['blobs'][-1])" "$registry/index.json")
python3 - "$registry/blobs/sha256/${layer#sha256:}" <<'PY'
import sys
path = sys.argv[1]
with open(path, "r+b") as f:
    f.seek(4096)
    b = f.read(1)
    f.seek(4096)
    f.write(bytes([b[0] ^ 0xff]))
PY
pod corrupt busybox:docker | b apply -f - >/dev/null
corrupt() { pod_json corrupt | grep -qE "\"reason\":\"(ErrImagePull|ImagePullBackOff)\",\"message\":\"image.*blob${layer}fromthecontrolplaneiscorrupt"; }
check "a corrupted blob on the server is refused, its digest named" wait_until 20 corrupt
check "and nothing of it enters a1's store" bash -c "! '$BRAMBLE' image ls --data-dir '$test_dir/a1' | grep -q 'busybox:docker'"
check "nor is left in its pull directory" bash -c "[ -z \"\$(ls -A '$test_dir/a1/images/pulls' 2>/dev/null)\" ]"

# Removal on the cluster.
check_output "image rm removes a reference from the control plane" 'removed web:v2' b image rm web:v2
check "it is gone from image ls" bash -c "! bb image ls | grep -q 'web:v2'"
check_fails_output "removing it again says it is not there" 'NotFound' b image rm web:v2
