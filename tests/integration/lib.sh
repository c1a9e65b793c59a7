# Shared by the integration tests: checks that count, cleanups that always run.
#
#   check "what" CMD...               passes when CMD exits 0
#   check_fails "what" CMD...         passes when CMD exits non-zero
#   check_output "what" REGEX CMD...  passes when CMD exits 0 and its output matches REGEX
#   check_fails_output "what" REGEX CMD...
#   on_exit CMD...                    runs at exit, last registered first, even after a failure
#
# The script's last line is "<name>: N passed, N failed".
set -u
BRAMBLE=$(realpath "${BRAMBLE:-build/x86_64/bramble}")
test_name=$(basename "$0" .sh)
test_dir=$(mktemp -d "${TMPDIR:-/tmp}/bramble-$test_name.XXXXXX")
passed=0
failed=0
exit_actions=()

on_exit() { exit_actions=("$*" "${exit_actions[@]}"); }

finish() {
	for action in "${exit_actions[@]}"; do eval "$action" >/dev/null 2>&1 || true; done
	rm -rf "$test_dir"
	echo "$test_name: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
trap 'finish' EXIT

_report() { # _report OK WHAT OUTPUT
	if [ "$1" = 1 ]; then
		passed=$((passed + 1))
		echo "ok   $2"
	else
		failed=$((failed + 1))
		echo "FAIL $2"
		sed 's/^/    /' <<<"$3" | head -n 20
	fi
}

check() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then _report 1 "$what" ""; else _report 0 "$what" "exit $?: $out"; fi
}

check_fails() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then _report 0 "$what" "expected failure, got success: $out"; else _report 1 "$what" ""; fi
}

check_output() {
	local what=$1 regex=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	if [ $rc -eq 0 ] && grep -Eq -- "$regex" <<<"$out"; then
		_report 1 "$what" ""
	else
		_report 0 "$what" "exit $rc, expected /$regex/ in: $out"
	fi
}

check_fails_output() {
	local what=$1 regex=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	if [ $rc -ne 0 ] && grep -Eq -- "$regex" <<<"$out"; then
		_report 1 "$what" ""
	else
		_report 0 "$what" "exit $rc, expected failure with /$regex/ in: $out"
	fi
}

# A UDP port on 127.0.0.1 that nothing listens on right now.
free_udp_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 40000))
		ss -Hlun "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
	done
	echo "no free UDP port found" >&2
	return 1
}

# wait_until SECONDS CMD...: retries CMD every 0.1 s
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt $deadline ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
