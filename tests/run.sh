#!/usr/bin/env bash
# The whole test run (`make test`, and what CI runs):
#   1. unit tests built and run natively,
#   2. the same unit tests cross-built for arm64, armhf and armv6 and run under qemu-user,
#   3. the unit tests again under AddressSanitizer + UBSan + LeakSanitizer (make check),
#      and each fuzz target's seed corpus replayed under them,
#   4. the integration tests in tests/integration (real processes, real DTLS, real clients).
# Every stage prints its own tally; the last line is the total: "N passed, N failed".
#
# TARGETS="x86_64 arm64" limits stage 2; INTEGRATION=0 skips stage 3 (and says so).
set -uo pipefail
cd "$(dirname "$0")/.."
export JOBS=${JOBS:-$(nproc)}
targets=${TARGETS:-"arm64 armhf armv6"}
case "$(uname -m)" in
aarch64) host=arm64 ;; armv7l) host=armhf ;; armv6l) host=armv6 ;; *) host=x86_64 ;;
esac
mkdir -p build/logs
passed=0 failed=0

tally() { # adds the "N passed, N failed" of a log to the totals
	local line
	line=$(grep -E '^[a-z0-9 :()_-]*[0-9]+ passed, [0-9]+ failed' "$1" | tail -n1)
	if [ -z "$line" ]; then
		echo "  (no tally in $1: counted as 1 failure)"
		failed=$((failed + 1))
		return
	fi
	local p f
	p=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
	passed=$((passed + p))
	failed=$((failed + f))
}

build() { # build TARGET LOG: make the unit tests and the binary, log kept for failures
	if ! make -j"$JOBS" ARCH="$1" unit-tests >"$2" 2>&1; then
		tail -n 30 "$2"
		echo "build for $1 failed (full log: $2)"
		failed=$((failed + 1))
		return 1
	fi
}

tools/setup.sh test || exit 1

echo "== unit tests ($host)"
if build "$host" build/logs/build-$host.log; then
	tests/unit/run-unit.sh "$host" "build/$host/unit-tests" >build/logs/unit-$host.log 2>&1
	grep -E '^(FAIL|    )' build/logs/unit-$host.log
	tail -n1 build/logs/unit-$host.log
	tally build/logs/unit-$host.log
fi

for t in $targets; do
	[ "$t" = "$host" ] && continue
	echo "== unit tests ($t, under qemu-user)"
	build "$t" "build/logs/build-$t.log" || continue
	# qemu-user translates no NETLINK_NETFILTER messages: podnet's tests (bridge, veth and its
	# nftables masquerade table) run natively, in stages 1 and 3, only.
	echo "   (podnet runs natively only: qemu-user has no nf_tables netlink)"
	# Nor does it implement clone3: the native driver then falls back to clone, which every
	# other runtime test exercises; cloning into a cgroup v2 group is tested natively.
	echo "   (runtime:a_process_is_cloned_straight_into_a_cgroup_v2_group runs natively only: qemu-user has no clone3)"
	tests/unit/run-unit.sh "$t" "build/$t/unit-tests" -podnet -runtime:a_process_is_cloned_straight_into_a_cgroup_v2_group \
		>"build/logs/unit-$t.log" 2>&1
	grep -E '^(FAIL|    )' "build/logs/unit-$t.log"
	tail -n1 "build/logs/unit-$t.log"
	tally "build/logs/unit-$t.log"
done

echo "== unit tests under AddressSanitizer + UBSan + LeakSanitizer ($host, make check)"
if make -j"$JOBS" ARCH="$host" SANITIZE=1 unit-tests >build/logs/build-sanitize.log 2>&1; then
	tests/unit/run-unit.sh "$host" "build/$host-sanitize/unit-tests" >build/logs/unit-sanitize.log 2>&1
	grep -E '^(FAIL|    )' build/logs/unit-sanitize.log
	tail -n1 build/logs/unit-sanitize.log
	tally build/logs/unit-sanitize.log
else
	tail -n 30 build/logs/build-sanitize.log
	echo "sanitizer build failed"
	failed=$((failed + 1))
fi

echo "== fuzz corpora replayed under AddressSanitizer + UBSan"
if make -j"$JOBS" ARCH="$host" SANITIZE=1 fuzz-replay >build/logs/build-fuzz.log 2>&1; then
	for corpus in tests/fuzz/corpus/*/; do
		name=$(basename "$corpus")
		"build/$host-sanitize/fuzz-replay-$name" "$corpus" >"build/logs/fuzz-$name.log" 2>&1
		grep -E 'ERROR|SUMMARY' "build/logs/fuzz-$name.log" | head -n 5
		echo "$name: $(tail -n1 "build/logs/fuzz-$name.log")"
		tally "build/logs/fuzz-$name.log"
	done
else
	tail -n 30 build/logs/build-fuzz.log
	echo "fuzz replay build failed"
	failed=$((failed + 1))
fi

if [ "${INTEGRATION:-1}" = 0 ]; then
	echo "== integration tests skipped (INTEGRATION=0)"
else
	for script in tests/integration/test_*.sh; do
		name=$(basename "$script" .sh)
		echo "== integration: $name"
		log="build/logs/$name.log"
		BRAMBLE="build/$host/bramble" ARCH="$host" bash "$script" >"$log" 2>&1
		grep -E '^(FAIL|    )' "$log"
		tail -n1 "$log"
		tally "$log"
	done
fi

echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
