#!/usr/bin/env bash
# Images over the cluster (issue #5 item 6): `bramble image push` of a ~10 MB image to a control
# plane on loopback, then an agent board pulling it for a pod (CoAP over DTLS, block-wise, in
# REGISTRY_CHUNK pieces, sha256-verified, imported in a child). Prints MB/s for both.
#   tests/bench/image_pull.sh [BRAMBLE]     (root: the pod's container needs namespaces, cgroups)
# MB = 10^6 bytes. The push figure includes reading and verifying the archive on the client.
set -euo pipefail
cd "$(dirname "$0")/../.."
bramble=$(realpath "${1:-build/x86_64/bramble}")
megabytes=${IMAGE_MB:-10}
. tests/bench/loopback_cluster.sh
cluster_make "$(mktemp -d /tmp/bramble-image-bench.XXXXXX)" "bramble-imgbench-$$"
trap cluster_cleanup EXIT

# The image: busybox and ~10 MB of random bytes in one uncompressed layer, as `docker save` writes.
root=$dir/rootfs
mkdir -p "$root/bin" "$root/data" "$dir/archive"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
ln -s busybox "$root/bin/sleep"
head -c $((megabytes * 1000 * 1000)) /dev/urandom >"$root/data/random"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$dir/layer.tar" .
diff_id=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
layer_bytes=$(stat -c %s "$dir/layer.tar")
arch=$(case $(uname -m) in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) echo arm ;; esac)
printf '{"architecture":"%s","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	"$arch" "$diff_id" >"$dir/config.json"
config=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
mkdir -p "$dir/archive/$diff_id"
cp "$dir/config.json" "$dir/archive/$config.json"
mv "$dir/layer.tar" "$dir/archive/$diff_id/layer.tar"
printf '[{"Config":"%s.json","RepoTags":["bench:big"],"Layers":["%s/layer.tar"]}]' "$config" "$diff_id" >"$dir/archive/manifest.json"
tar -C "$dir/archive" -cf "$dir/big.tar" .
rm -rf "$dir/archive" "$root"
bytes=$(($(stat -c %s "$dir/config.json") + layer_bytes))

cluster_start

echo "image: $(stat -c %s "$dir/big.tar") bytes archive, ${megabytes} MB of random data in one layer"
start=$(date +%s%N)
b image push "$dir/big.tar" >/dev/null
end=$(date +%s%N)
ms=$(((end - start) / 1000000))
echo "push: $bytes bytes in $ms ms = $(echo "scale=2; $bytes / 1000 / $ms" | bc) MB/s (client reads and verifies the archive, then uploads)"

start=$(date +%s%N)
echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"big\"},\"spec\":{\"nodeName\":\"board\",\"terminationGracePeriodSeconds\":0,\"containers\":[{\"name\":\"c\",\"image\":\"bench:big\",\"command\":[\"sleep\",\"3600\"]}]}}" |
	b apply -f - >/dev/null
for _ in $(seq 1 600); do b get pod big 2>/dev/null | grep -q Running && break; sleep 0.1; done
end=$(date +%s%N)
line=$(grep -o 'pulled [0-9]* bytes in [0-9]* ms' "$dir/board.log" | tail -n1)
if [ -z "$line" ]; then
	echo "pull: the agent did not pull the image"
	tail -n 20 "$dir/board.log"
	exit 1
fi
pulled=$(awk '{print $2}' <<<"$line")
pull_ms=$(awk '{print $5}' <<<"$line")
echo "pull: $pulled bytes in $pull_ms ms = $(echo "scale=2; $pulled / 1000 / $pull_ms" | bc) MB/s (fetch, verify, import with unpack)"
echo "pod create to Running with the pull: $(((end - start) / 1000000)) ms"
echo "(control plane, agent and client share this machine's $(nproc) cores with other work)"
