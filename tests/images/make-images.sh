#!/usr/bin/env bash
# Builds small container images from Debian's busybox-static, with no network, into DIR:
#
#   busybox-oci/              OCI image layout, gzip layer, docker.io/library/busybox:1.36
#   busybox-oci.tar           the same layout as a tar
#   busybox-docker.tar        `docker save` archive, plain layer.tar, busybox:docker
#   busybox-docker-gz.tar     `docker save` archive, gzip layer, busybox:gz
#   busybox-foreign-oci.tar   the same layer, config for another architecture, busybox:foreign
#   escape-*.tar              docker archives with a layer that tries to write outside itself
#                             (`..`, an absolute path, a symlink then a file through it); made
#                             with python3's tarfile, skipped when python3 is missing;
#                             escape-*.target names the file each would create
#
# usage: tests/images/make-images.sh DIR      (busybox: apt-get install busybox-static)
set -euo pipefail
out=${1:?usage: make-images.sh DIR}
busybox=${BUSYBOX:-/bin/busybox}
if ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
	echo "make-images.sh: $busybox is not a static busybox; run: apt-get install -y busybox-static" >&2
	exit 1
fi
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/bramble-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The board's architecture in Go's names (those of image configs), and another one.
case $(uname -m) in
x86_64) arch=amd64 variant="" foreign=arm64 ;;
aarch64) arch=arm64 variant="" foreign=amd64 ;;
armv7l) arch=arm variant=v7 foreign=amd64 ;;
armv6l) arch=arm variant=v6 foreign=amd64 ;;
*) echo "make-images.sh: unknown machine $(uname -m)" >&2; exit 1 ;;
esac

# --- the layer: busybox, a few applet links, /etc/passwd --------------------------------------
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in sh ls cat echo env id pwd true false sleep; do ln -s busybox "$root/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"
tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@1700000000 -C "$root" -cf "$work/layer.tar" .
gzip -9n <"$work/layer.tar" >"$work/layer.tar.gz"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
diff_id=$(sha "$work/layer.tar")

config() { # config ARCH VARIANT -> JSON on stdout
	local v=""
	[ -n "$2" ] && v="\"variant\":\"$2\","
	printf '{"architecture":"%s",%s"os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"tests/images/make-images.sh"}]}' \
		"$1" "$v" "$diff_id"
}

blob() { # blob LAYOUT FILE -> copies FILE to LAYOUT/blobs/sha256/<sha256>, prints the sha256
	local h
	h=$(sha "$2")
	mkdir -p "$1/blobs/sha256"
	cp "$2" "$1/blobs/sha256/$h"
	echo "$h"
}

oci_layout() { # oci_layout DIR ARCH VARIANT REFERENCE
	local dir=$1 layer config_hex manifest_hex
	rm -rf "$dir"
	mkdir -p "$dir"
	config "$2" "$3" >"$work/config.json"
	layer=$(blob "$dir" "$work/layer.tar.gz")
	config_hex=$(blob "$dir" "$work/config.json")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
		"$config_hex" "$(size "$work/config.json")" "$layer" "$(size "$work/layer.tar.gz")" >"$work/manifest.json"
	manifest_hex=$(blob "$dir" "$work/manifest.json")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
		"$manifest_hex" "$(size "$work/manifest.json")" "$4" "${4##*:}" >"$dir/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
}

docker_archive() { # docker_archive OUT LAYERFILE NAME-IN-ARCHIVE TAG
	local dir=$work/docker config_hex
	rm -rf "$dir"
	mkdir -p "$dir/$diff_id"
	config "$arch" "$variant" >"$work/config.json"
	config_hex=$(sha "$work/config.json")
	cp "$work/config.json" "$dir/$config_hex.json"
	cp "$2" "$dir/$diff_id/$3"
	printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/%s"]}]\n' "$config_hex" "$4" "$diff_id" "$3" \
		>"$dir/manifest.json"
	tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf "$1" .
}

oci_layout "$out/busybox-oci" "$arch" "$variant" docker.io/library/busybox:1.36
tar --numeric-owner --owner=0 --group=0 -C "$out/busybox-oci" -cf "$out/busybox-oci.tar" .
docker_archive "$out/busybox-docker.tar" "$work/layer.tar" layer.tar busybox:docker
docker_archive "$out/busybox-docker-gz.tar" "$work/layer.tar.gz" layer.tar.gz busybox:gz
oci_layout "$work/foreign" "$foreign" "" docker.io/library/busybox:foreign
tar --numeric-owner --owner=0 --group=0 -C "$work/foreign" -cf "$out/busybox-foreign-oci.tar" .

# --- layers that try to escape -------------------------------------------------------------------
command -v python3 >/dev/null || exit 0
for kind in dotdot absolute symlink; do
	target=/tmp/bramble-escape-$kind-$(basename "$work")
	echo "$target" >"$out/escape-$kind.target"
	python3 - "$work/evil.tar" "$kind" "${target#/tmp/}" <<'PY'
import io, sys, tarfile
path, kind, name = sys.argv[1], sys.argv[2], sys.argv[3]
with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
    def add(name, data=b"pwned\n", **kw):
        info = tarfile.TarInfo(name)
        for k, v in kw.items():
            setattr(info, k, v)
        info.size = len(data) if info.type == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    if kind == "dotdot":
        add("../../../../../../../../tmp/" + name)
    elif kind == "absolute":
        add("/tmp/" + name)
    else:
        add("out", type=tarfile.SYMTYPE, linkname="/tmp")
        add("out/" + name)
PY
	diff_id=$(sha "$work/evil.tar")
	docker_archive "$out/escape-$kind.tar" "$work/evil.tar" layer.tar "escape:$kind"
done
