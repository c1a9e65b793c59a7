#!/usr/bin/env bash
# Container start latency: `bramble run --rm IMAGE true` against Debian's crun running the
# same root filesystem, each RUNS times (default 100), with and without a new network
# namespace; p50 and p99 of the wall time of each whole command, in one run.
#   tests/bench/start_latency.sh BRAMBLE
# crun refuses this machine's hybrid cgroup layout (v1 controllers + an empty cgroup2
# mount), so its loop runs in a private mount namespace without the cgroup2 mount, using
# the cgroupfs manager on the v1 hierarchies, as bramble does.
set -euo pipefail
cd "$(dirname "$0")/../.."
bramble=$(realpath "$1")
runs=${RUNS:-100}
dir=$(mktemp -d /tmp/bramble-start.XXXXXX)
parent=bramble-bench-$$
trap 'rm -rf "$dir"; find /sys/fs/cgroup -maxdepth 3 -depth -type d -name "$parent" -exec rmdir {} + 2>/dev/null' EXIT
bash tests/images/make-images.sh "$dir/images" >/dev/null
"$bramble" image import --data-dir "$dir/data" "$dir/images/busybox-oci.tar" >/dev/null
layer=$(find "$dir/data/images/layers" -mindepth 1 -maxdepth 1 -type d | head -n1)

percentiles() { sort -n | awk '{a[NR]=$1} END {i99=int(NR*0.99); if (i99<1) i99=1; printf "p50 %.1f ms, p99 %.1f ms", a[int((NR+1)/2)]/1e6, a[i99]/1e6}'; }
time_runs() { # time_runs COMMAND...: wall time of each of $runs runs, in ns, one per line
	for _ in $(seq 1 "$runs"); do
		local s e
		s=${EPOCHREALTIME/./} # microseconds, read without forking a date(1)
		"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
		e=${EPOCHREALTIME/./}
		echo $(((e - s) * 1000))
	done
}

bramble_new=$(time_runs "$bramble" run --rm --data-dir "$dir/data" --cgroup-parent "$parent" busybox:1.36 true | percentiles)
bramble_host=$(time_runs "$bramble" run --rm --net host --data-dir "$dir/data" --cgroup-parent "$parent" busybox:1.36 true | percentiles)

crun_line="crun: not installed (apt-get install crun)"
if command -v crun >/dev/null; then
	mkdir -p "$dir/bundle"
	(cd "$dir/bundle" && crun spec)
	for net in new host; do
		python3 - "$dir/bundle/config.json" "$layer" "$net" <<'PY'
import json, sys
path, root, net = sys.argv[1:]
c = json.load(open(path))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
c["root"] = {"path": root, "readonly": True}
if net == "host":
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
json.dump(c, open(path + "." + net, "w"))
PY
	done
	export -f time_runs
	crun_times() { # crun_times new|host
		cp "$dir/bundle/config.json.$1" "$dir/bundle/config.json"
		unshare -m bash -c "umount /sys/fs/cgroup/unified 2>/dev/null; runs=$runs; n=0; \
			time_runs_crun() { for _ in \$(seq 1 \$runs); do n=\$((n+1)); s=\${EPOCHREALTIME/./}; \
			crun --cgroup-manager=cgroupfs run -b '$dir/bundle' bench-\$\$-\$n >/dev/null 2>&1 || exit 1; \
			e=\${EPOCHREALTIME/./}; echo \$(((e - s) * 1000)); done; }; time_runs_crun"
	}
	crun_line="crun $(crun --version | head -n1 | awk '{print $3}'): new network namespace $(crun_times new | percentiles); board's network $(crun_times host | percentiles)"
fi
echo "bramble run --rm IMAGE true ($runs runs): new network namespace $bramble_new; board's network $bramble_host"
echo "$crun_line"
