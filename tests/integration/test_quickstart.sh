#!/usr/bin/env bash
# The README's first command, as a newcomer runs it: tools/cluster-up.sh builds Bramble,
# makes a one-board cluster with `bramble init` and answers the client (--smoke stops it
# again after a few questions).
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

port=$(free_udp_port)
out=$test_dir/cluster-up.out
# The board runs with the default cgroup parent, bramble: removed afterwards unless it was
# there before (rmdir leaves a parent that holds anything).
if ! ls -d /sys/fs/cgroup/*/bramble /sys/fs/cgroup/bramble >/dev/null 2>&1; then
	on_exit "rmdir /sys/fs/cgroup/*/bramble /sys/fs/cgroup/bramble 2>/dev/null; true"
fi
BRAMBLE_PORT=$port BRAMBLE_LOCAL_DIR=$test_dir/local tools/cluster-up.sh --smoke >"$out" 2>&1
check_output "tools/cluster-up.sh --smoke succeeds" "^0$" echo $?
check_output "the cluster was made by bramble init" "Created a cluster in $test_dir/local" cat "$out"
check_output "it lists the cluster's namespaces" "^default +Active" cat "$out"
check_output "it applies the sample manifests" "deployment.apps/web created" cat "$out"
check_output "it says how to use the client" "--config $test_dir/local/admin.conf get namespaces" cat "$out"
check "the board was stopped afterwards" bash -c "! pgrep -f '[a]gent --config $test_dir/local/bramble.conf'"
