#!/usr/bin/env bash
# Container start latency: `bramble run --rm IMAGE true` against Debian's crun running the
# same root filesystem, each RUNS times (default 100), with and without a new network
# namespace, in one run: p50 and p99 of the wall time of each whole command, and the CPU
# time (user + system, of the command and every process it waited for) per start, which
# depends much less on what else the machine runs than wall time does. The load average
# before and after is printed with them: on a shared machine, read wall times against it.
#   tests/bench/start_latency.sh BRAMBLE
# crun refuses this machine's hybrid cgroup layout (v1 controllers + an empty cgroup2
# mount), so its loop runs in a private mount namespace without the cgroup2 mount, using
# the cgroupfs manager on the v1 hierarchies, as bramble does. crun runs the image's layer
# directory as a read-only root (no overlay, no writable layer); bramble mounts an overlay
# with a writable layer, as `docker run` does.
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

# Input: one wall time in ns per line, then "cpu SECONDS" (the CPU time of all the runs).
summary() {
	local input cpu
	input=$(cat)
	cpu=$(sed -n 's/^cpu //p' <<<"$input")
	grep -v '^cpu ' <<<"$input" | sort -n | awk -v cpu="$cpu" '{a[NR] = $1}
	END {
		i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
		printf "p50 %.1f ms, p99 %.1f ms, cpu %.2f ms/start", a[int((NR + 1) / 2)] / 1e6, a[i99] / 1e6, cpu * 1000 / NR
	}'
}
# The CPU time of a shell's waited-for children in seconds, from what bash's `times` wrote to
# FILE. `times` must run in the measuring shell itself, redirected (in a pipe or $(...) it
# would run in a subshell, whose children's times start at 0).
times_cpu() { tail -n1 "$1" | awk '{gsub(/s/, ""); split($1, u, "m"); split($2, s, "m"); print u[1] * 60 + u[2] + s[1] * 60 + s[2]}'; }
time_runs() { # time_runs COMMAND...: wall time of each of $runs runs in ns, then "cpu S"
	for _ in $(seq 1 "$runs"); do
		local s e
		s=${EPOCHREALTIME/./} # microseconds, read without forking a date(1)
		"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
		e=${EPOCHREALTIME/./}
		echo $(((e - s) * 1000))
	done
	times >"$dir/times"
	echo "cpu $(times_cpu "$dir/times")"
}
export -f times_cpu

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bramble_new=$( (time_runs "$bramble" run --rm --data-dir "$dir/data" --cgroup-parent "$parent" busybox:1.36 true) | summary)
bramble_host=$( (time_runs "$bramble" run --rm --net host --data-dir "$dir/data" --cgroup-parent "$parent" busybox:1.36 true) | summary)

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
	crun_times() { # crun_times new|host
		cp "$dir/bundle/config.json.$1" "$dir/bundle/config.json"
		unshare -m bash -c "umount /sys/fs/cgroup/unified 2>/dev/null; runs=$runs; n=0; \
			for _ in \$(seq 1 \$runs); do n=\$((n+1)); s=\${EPOCHREALTIME/./}; \
			crun --cgroup-manager=cgroupfs run -b '$dir/bundle' bench-\$\$-\$n >/dev/null 2>&1 || exit 1; \
			e=\${EPOCHREALTIME/./}; echo \$(((e - s) * 1000)); done; times >'$dir/times'; echo \"cpu \$(times_cpu '$dir/times')\""
	}
	crun_line="crun $(crun --version | head -n1 | awk '{print $3}'): new network namespace $(crun_times new | summary); board's network $(crun_times host | summary)"
fi
echo "bramble run --rm IMAGE true ($runs runs): new network namespace $bramble_new; board's network $bramble_host"
echo "$crun_line"
echo "load average (1, 5, 15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cpus)"
