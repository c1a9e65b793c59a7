#!/usr/bin/env bash
# Installs the Debian packages Bramble needs, or says exactly which are missing.
#
#   tools/setup.sh build   compilers (native and the three ARM cross-compilers) and the
#                          tools that build the dependencies from Debian source packages
#   tools/setup.sh test    build + what the tests drive: qemu-user, coap-client, busybox
#   tools/setup.sh fuzz    build + clang with libFuzzer (make fuzz)
#   tools/setup.sh bench   test + crun, to compare container start times (make bench)
#
# As root it runs apt-get; otherwise it prints the apt-get line to run and fails.
set -euo pipefail

build_packages=(make gcc libc6-dev binutils pkg-config autoconf automake libtool cmake python3 tcl
	bison flex gperf patch xz-utils bzip2 file apt dpkg-dev
	gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-arm-linux-gnueabi)
fuzz_packages=(clang libclang-rt-14-dev)
test_packages=(qemu-user-static libcoap3-bin busybox-static iproute2 procps clang-format clang bc python3 nftables)

case "${1:-build}" in
build) wanted=("${build_packages[@]}") ;;
test) wanted=("${build_packages[@]}" "${test_packages[@]}") ;;
fuzz) wanted=("${build_packages[@]}" "${fuzz_packages[@]}") ;;
bench) wanted=("${build_packages[@]}" "${test_packages[@]}" crun iperf3) ;;
*) echo "usage: $0 [build|test|fuzz|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "bramble: missing Debian packages: ${missing[*]}" >&2
	echo "bramble: install them as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "bramble: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
