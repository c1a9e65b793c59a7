#!/usr/bin/env bash
# Runs a built unit-test binary for a target: natively, or under qemu-user for ARM.
#   tests/unit/run-unit.sh TARGET BINARY [FILTER...]
set -euo pipefail
target=$1 binary=$2
shift 2
case "$target" in
x86_64) runner=() ;;
arm64) runner=(qemu-aarch64-static) ;;
armhf) runner=(qemu-arm-static) ;;
armv6) runner=(qemu-arm-static -cpu arm1176) ;;
*) echo "run-unit: unknown target $target" >&2; exit 2 ;;
esac
if [ "$target" != x86_64 ] && [ "$(uname -m)" = x86_64 ] && ! command -v "${runner[0]}" >/dev/null; then
	echo "run-unit: ${runner[0]} is missing; run tools/setup.sh test as root" >&2
	exit 1
fi
[ "$target" = x86_64 ] && [ "$(uname -m)" != x86_64 ] && runner=(qemu-x86_64-static)
exec "${runner[@]}" "$binary" "$@"
