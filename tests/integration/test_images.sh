#!/usr/bin/env bash
# The image store through `bramble image`: OCI layouts (directory and tar) and docker archives
# (plain and gzip layers) built from busybox-static by tests/images/make-images.sh; references;
# layers unpacked runnable; refusals (another architecture, corrupt, truncated, digest mismatch,
# missing file, disk limit, disk full, layers escaping) leave nothing behind; rm and gc.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

images=$test_dir/images
data=$test_dir/data
store=$data/images
bash tests/images/make-images.sh "$images" >/dev/null
check "tests/images/make-images.sh builds the test images" test -s "$images/busybox-docker.tar"
img() { "$BRAMBLE" image "$@" --data-dir "$data"; }
blobs() { find "$1/blobs/sha256" -type f 2>/dev/null | wc -l; }
# Nothing of a failed import: no temporary directory left, blobs and layers as before.
unchanged() { # unchanged STORE BLOBS LAYERS
	[ "$(ls -A "$1/tmp" 2>/dev/null)" = "" ] && [ "$(blobs "$1")" = "$2" ] &&
		[ "$(ls -A "$1/layers" 2>/dev/null | wc -l)" = "$3" ]
}

# --- imports -------------------------------------------------------------------------------------
check_output "import an OCI layout directory" "busybox:1.36 +[0-9a-f]{12} +[0-9.]+[kM]B +amd64|busybox:1.36 .* (arm64|arm)$" \
	img import "$images/busybox-oci"
check_output "ls lists it like docker images" "^REFERENCE +DIGEST +SIZE +ARCH" img ls
layer=$(ls -d "$store"/layers/*/ | head -n 1)
check "the layer is unpacked once, a sha256 name" bash -c "[ \$(ls '$store/layers' | wc -l) = 1 ] && basename '$layer' | grep -Eq '^[0-9a-f]{64}$'"
check_output "the unpacked layer runs (chroot into it)" "^hello from the layer$" \
	chroot "$layer" /bin/busybox echo hello from the layer
check "manifest, config and layer blobs are stored by digest" test "$(blobs "$store")" = 3
check "no temporary directory is left" test -z "$(ls -A "$store/tmp")"

check_output "import the OCI layout as a tar" "busybox:1.36" img import "$images/busybox-oci.tar"
check_output "import a docker save archive (plain layer)" "busybox:docker" img import "$images/busybox-docker.tar"
check_output "import a docker save archive (gzip layer)" "busybox:gz" img import "$images/busybox-docker-gz.tar"
check "the same layer is shared by all of them" test "$(ls "$store/layers" | wc -l)" = 1
check_output "ls shows the three references" "busybox:1.36.*busybox:docker.*busybox:gz" bash -c "'$BRAMBLE' image ls --data-dir '$data' | tr '\n' ' '"
digest=$(img ls | awk '$1 == "busybox:1.36" {print $2}')

# --- refusals ---------------------------------------------------------------------------------------
n_blobs=$(blobs "$store")
n_layers=$(ls "$store/layers" | wc -l)
case $(uname -m) in x86_64) other=arm64 board=amd64 ;; *) other=amd64 board=$(uname -m) ;; esac
check_fails_output "an image for another architecture is refused naming both" \
	"image busybox:foreign is for $other; this board is" img import "$images/busybox-foreign-oci.tar"
check "nothing of it is left" unchanged "$store" "$n_blobs" "$n_layers"

head -c 1500000 "$images/busybox-docker.tar" >"$test_dir/truncated.tar"
check_fails_output "a truncated archive is refused, naming it" "truncated.tar" img import "$test_dir/truncated.tar"
check "nothing of it is left" unchanged "$store" "$n_blobs" "$n_layers"

head -c 100000 /dev/urandom >"$test_dir/corrupt.tar"
check_fails_output "a corrupt archive is refused, naming it" "corrupt.tar" img import "$test_dir/corrupt.tar"

check_fails_output "a missing file is named" "no-such.tar.*No such file" img import "$test_dir/no-such.tar"

fresh=$test_dir/fresh
cp -r "$images/busybox-oci" "$test_dir/tampered"
layer_blob=$(ls -S "$test_dir/tampered/blobs/sha256" | head -n 1)
printf 'X' | dd of="$test_dir/tampered/blobs/sha256/$layer_blob" bs=1 seek=5000 conv=notrunc status=none
check_fails_output "a digest mismatch is refused, naming the blob" "digest mismatch.*$layer_blob" \
	"$BRAMBLE" image import "$test_dir/tampered" --data-dir "$fresh"
check "nothing of it is left" unchanged "$fresh/images" 0 0

check_fails_output "an import over the disk limit names limit and usage" \
	"disk limit of 1048576 bytes \(0 in use" "$BRAMBLE" image import "$images/busybox-docker.tar" --data-dir "$fresh" --limit 1M
check "nothing of it is left" unchanged "$fresh/images" 0 0

if [ "$(id -u)" = 0 ] && mkdir -p "$test_dir/small" && mount -t tmpfs -o size=2m tmpfs "$test_dir/small"; then
	on_exit "umount -l '$test_dir/small'"
	check_fails_output "disk full during unpack is a clear error" "No space left on device" \
		"$BRAMBLE" image import "$images/busybox-oci.tar" --data-dir "$test_dir/small"
	check "nothing of it is left on the full disk" unchanged "$test_dir/small/images" 0 0
	umount "$test_dir/small"
else
	echo "skip disk full: mounting a tmpfs needs root"
fi

for kind in dotdot absolute symlink; do
	[ -e "$images/escape-$kind.tar" ] || continue
	target=$(cat "$images/escape-$kind.target")
	on_exit "rm -f '$target'"
	check_fails_output "a layer escaping with $kind is refused" "refused|symlink|Path contains" \
		img import "$images/escape-$kind.tar"
	check "nothing was written outside the layer ($kind)" test ! -e "$target"
	check "nothing of it is left ($kind)" unchanged "$store" "$n_blobs" "$n_layers"
done

# --- rm and gc ---------------------------------------------------------------------------------------
check_fails_output "rm of an unknown name says so" "no image nothing:latest" img rm nothing
check_output "rm a name" "removed busybox:docker" img rm busybox:docker
check_fails_output "the name is gone" "no image busybox:docker" img rm busybox:docker
check_output "other names stay" "busybox:gz" img ls
check_output "rm docker.io/library/busybox:gz (the full form)" "removed" img rm docker.io/library/busybox:gz
check_output "busybox:1.36 stays" "busybox:1.36" img ls
check "its blobs stay" test "$(blobs "$store")" -ge 3
img import "$images/busybox-docker.tar" >/dev/null
check_output "rm by digest prefix" "removed $digest" img rm "$digest"
check_fails_output "removes the image with all its names" "no image busybox:docker" img rm busybox:docker
check "every blob and layer is gone" unchanged "$store" 0 0
check_output "ls is empty but for the header" "^REFERENCE[^\n]*$" img ls
mkdir -p "$store/tmp/import-dead"
check "gc removes what a dead import left" bash -c "'$BRAMBLE' image gc --data-dir '$data' && [ -z \"\$(ls -A '$store/tmp')\" ]"
check_fails_output "an unknown subcommand prints usage" "usage: bramble image" "$BRAMBLE" image frob
