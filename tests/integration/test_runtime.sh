#!/usr/bin/env bash
# The native runtime driver through `bramble run`, on real namespaces (needs root, as CI
# is): exit codes, environment, working directory, user; and the escape suite: only
# descriptors 0-2, no working directory outside the root, masked and read-only /proc paths,
# no_new_privs, seccomp, capabilities no wider than the default set, mount/unshare/keyctl/
# ptrace refused, volumes that cannot be redirected out of the root; exec into a running
# container (its namespaces, root, cgroup, confinement) and adoption: a container detached
# or left by a killed creator keeps running, and later processes exec into it, signal it
# and remove it, leaving no process, mount, cgroup or state.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

check "running as root (containers need it)" test "$(id -u)" = 0
rootfs=$test_dir/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,data}
cp /bin/busybox "$rootfs/bin/"
for c in sh ls cat id echo pwd hostname grep wc touch sleep; do ln -s busybox "$rootfs/bin/$c"; done
gcc -static -O1 -o "$rootfs/bin/probe" tests/runtime/probe.c
ln -s /etc "$rootfs/escape" # a symbolic link out of the root, for the volume test
run_id=$$
n=0
parent=bramble-test-$run_id
on_exit "find /sys/fs/cgroup -maxdepth 3 -depth -type d -name '$parent' -exec rmdir {} +"
run() { # run [OPTIONS] -- COMMAND...: a uniquely named, removed container
	n=$((n + 1))
	"$BRAMBLE" run --rm --name "t$run_id-$n" --rootfs "$rootfs" --cgroup-parent "$parent" "$@"
}
exit_code() { run "$@" >/dev/null 2>&1; echo $?; }

check_output "the command's output comes through" "^hello$" run -- echo hello
check_output "the exit code is the container's" "^3$" exit_code -- sh -c 'exit 3'
check_output "environment variables are set" "^bar$" run -e FOO=bar -- sh -c 'echo $FOO'
check_output "the working directory is set" "^/tmp$" run -w /tmp -- pwd
check_output "the user and group are set" "uid=1000 gid=2000" run -u 1000:2000 -- id
check_output "the hostname is the container's name" "^t$run_id-[0-9]+$" run -- hostname
check_fails_output "a missing command is a clear error" "exec \"nonexistent\": no such file in the container's PATH" \
	run -- nonexistent

# --- the escape suite ---
check_output "only descriptors 0-2 are open" "^0 1 2 $" run -- probe fds
exec 7</
check_fails_output "a working directory through an inherited descriptor is refused" "outside the container|No such file" \
	run -w /proc/self/fd/7 -- pwd
exec 7<&-
sum_before=$(sha256sum "$BRAMBLE" | cut -d' ' -f1)
run -- sh -c 'echo overwritten > /proc/self/exe; echo overwritten > /proc/1/exe' >/dev/null 2>&1
check_output "the runtime's binary cannot be written from inside" "^$sum_before$" \
	bash -c "sha256sum '$BRAMBLE' | cut -d' ' -f1"
check_output "/proc/kcore is masked" "^0$" run -- sh -c 'cat /proc/kcore 2>/dev/null | wc -c'
check_output "/proc/keys is masked" "^0$" run -- sh -c 'cat /proc/keys 2>/dev/null | wc -c'
check_output "/proc/timer_list is masked" "^0$" run -- sh -c 'cat /proc/timer_list 2>/dev/null | wc -c'
check_fails_output "/proc/sysrq-trigger cannot be written" "can't create /proc/sysrq-trigger" \
	run -- sh -c 'echo h > /proc/sysrq-trigger'
check_fails_output "/proc/sys is read-only" "Read-only file system" run -- sh -c 'echo 1 > /proc/sys/kernel/panic'
check_fails_output "/sys is read-only" "Read-only file system" run -- sh -c 'touch /sys/x'
check_output "no_new_privs is set" "NoNewPrivs:[[:space:]]+1" run -- cat /proc/self/status
check_output "a seccomp filter is on" "Seccomp:[[:space:]]+2" run -- cat /proc/self/status
check_output "effective capabilities are the default set" "CapEff:[[:space:]]+00000000800405fb" \
	run -- cat /proc/self/status
check_output "the bounding set is the default set" "CapBnd:[[:space:]]+00000000800405fb" run -- cat /proc/self/status
check_output "--cap-drop removes one" "CapEff:[[:space:]]+00000000800405fa" run --cap-drop CHOWN -- cat /proc/self/status
check_output "--cap-add adds one" "CapEff:[[:space:]]+00000000800415fb" run --cap-add NET_ADMIN -- cat /proc/self/status
check_output "a non-root user has no capabilities" "CapEff:[[:space:]]+0000000000000000" \
	run -u 1000 -- cat /proc/self/status
for call in mount unshare keyctl ptrace setns bpf reboot swapon init_module clone_newuser; do
	check_output "$call fails with EPERM" "^$call EPERM$" bash -c "'$BRAMBLE' run --rm --name t$run_id-p$call --cgroup-parent '$parent' --rootfs '$rootfs' -- probe syscalls | grep '^$call '"
done
check_output "the container has its own network: only loopback" "^lo$" run -- ls /sys/class/net
check_fails_output "a read-only root refuses writes" "Read-only file system" run --read-only -- touch /x
echo "from the host" >"$test_dir/volume.txt"
check_output "a volume is mounted" "^from the host$" run -v "$test_dir/volume.txt:/data/v.txt:ro" -- cat /data/v.txt
check_fails_output "a read-only volume refuses writes" "Read-only file system" \
	run -v "$test_dir/volume.txt:/data/v.txt:ro" -- sh -c 'echo x > /data/v.txt'
check_fails_output "a volume target through a symbolic link out of the root is refused" \
	"a symbolic link is in the way" run -v "$test_dir/volume.txt:/escape/pwned" -- true
check "nothing was written through the link" test ! -e /etc/pwned
check "removed containers leave no state" bash -c "! ls /run/bramble/run/ 2>/dev/null | grep -q '^t$run_id-'"
# A --rm container's writable layer is a tmpfs of its own mount namespace: nothing on disk.
written_on_disk() {
	"$BRAMBLE" run --rm --name "t$run_id-mem" --rootfs "$rootfs" --cgroup-parent "$parent" -- \
		sh -c "echo x > /marker-$run_id; sleep 1" &
	local pid=$! found
	sleep 0.5
	found=$(find /run/bramble "$rootfs" -name "marker-$run_id" 2>/dev/null | head -n1)
	wait "$pid"
	[ -n "$found" ]
}
check_fails "a --rm container's writes never reach the disk" written_on_disk
"$BRAMBLE" run --rm --name "t$run_id-same" --rootfs "$rootfs" --cgroup-parent "$parent" -- sleep 1 &
same_pid=$!
sleep 0.3
check_fails_output "a running --rm container's name is taken" "a container named t$run_id-same exists" \
	"$BRAMBLE" run --rm --name "t$run_id-same" --rootfs "$rootfs" --cgroup-parent "$parent" -- true
wait "$same_pid"
check "removed containers leave no mounts" bash -c "! grep -q 't$run_id-' /proc/mounts"

# Detached containers: exec into them and adopt them from later processes.
d=t$run_id-detached
on_exit "'$BRAMBLE' container rm -f $d"
check_output "run --detach prints the name and returns" "^$d$" \
	"$BRAMBLE" run -d --name "$d" --rootfs "$rootfs" --cgroup-parent "$parent" -e FROM=run -- sleep 1000
pid=$("$BRAMBLE" container ls | awk -v n="$d" '$1 == n {print $2}')
alive() { grep -Eq '^State:[[:space:]]+[^ZX]' "/proc/$1/status" 2>/dev/null; } # a zombie is dead
check "the container outlives the bramble run that made it" alive "$pid"
check_output "container ls shows it running" "^$d +[0-9]+ +running$" "$BRAMBLE" container ls
cexec() { "$BRAMBLE" container exec "$@"; }
check_output "exec: the command's output comes through" "^hi$" cexec "$d" echo hi
check_output "exec: the exit code is the command's" "^4$" bash -c "'$BRAMBLE' container exec $d sh -c 'exit 4'; echo \$?"
check_output "exec: the container's hostname (its UTS namespace)" "^$d$" cexec "$d" hostname
check_output "exec: the container's PID namespace (pid 1 is its command)" "^sleep 1000$" \
	cexec "$d" sh -c 'tr "\0" " " </proc/1/cmdline | sed "s/ $//"'
check_output "exec: the container's network namespace (only loopback)" "^lo$" cexec "$d" ls /sys/class/net
echo "the test root" >"$rootfs/etc/marker-$run_id"
check_output "exec: the container's root" "^the test root$" cexec "$d" cat "/etc/marker-$run_id"
cexec "$d" sh -c 'echo inside > /tmp/written' >/dev/null 2>&1
check_output "exec: files written by one exec are seen by the next" "^inside$" cexec "$d" cat /tmp/written
check "exec: ... and not on the host" test ! -e /tmp/written
check_output "exec: the container's cgroup (and cgroup namespace)" ":memory:/$" cexec "$d" cat /proc/self/cgroup
two_in_cgroup() { # the exec'd process shows beside the command while it runs (polled: a loaded machine is slow)
	"$BRAMBLE" container exec "$d" sleep 3 &
	local pid=$! n=0
	for _ in $(seq 1 50); do
		n=$(wc -l <"/sys/fs/cgroup/pids/$parent/pod-$d/main/cgroup.procs")
		[ "$n" = 2 ] && break
		sleep 0.05
	done
	echo "$n"
	wait "$pid"
}
check_output "exec: the host sees it in the container's cgroup (beside the command)" "^2$" two_in_cgroup
check_output "exec: the container's environment, -e added" "^run exec$" cexec -e X=exec "$d" sh -c 'echo $FROM $X'
check_output "exec: the working directory" "^/tmp$" cexec -w /tmp "$d" pwd
check_output "exec: no_new_privs" "NoNewPrivs:[[:space:]]+1" cexec "$d" cat /proc/self/status
check_output "exec: seccomp" "Seccomp:[[:space:]]+2" cexec "$d" cat /proc/self/status
check_output "exec: the default capabilities" "CapEff:[[:space:]]+00000000800405fb" cexec "$d" cat /proc/self/status
check_output "exec: only descriptors 0-2" "^0 1 2 $" bash -c "exec 7</; '$BRAMBLE' container exec $d probe fds"
check_output "exec: mount, unshare, ptrace fail with EPERM" "^mount EPERM unshare EPERM keyctl EPERM ptrace EPERM" \
	bash -c "'$BRAMBLE' container exec $d probe syscalls | tr '\n' ' '"
check_fails_output "exec: a missing command is a clear error" "exec \"nonexistent\": no such file in the container's PATH" \
	cexec "$d" nonexistent
check_fails_output "rm refuses a running container" "is running" "$BRAMBLE" container rm "$d"
check "kill signals it through its pidfd" "$BRAMBLE" container kill "$d"
gone() { for _ in $(seq 1 100); do alive "$pid" || return 0; sleep 0.05; done; return 1; }
check "the container's process is gone" gone
check_output "container ls shows it exited" "^$d +[0-9]+ +exited$" "$BRAMBLE" container ls
check_fails_output "exec into an exited container is refused" "is not running" cexec "$d" true
check "rm removes an exited container" "$BRAMBLE" container rm "$d"
check "rm leaves no state" test ! -e "/run/bramble/run/$d"
check "rm leaves no mounts (pinned namespaces)" bash -c "! grep -q '$d' /proc/mounts"
check "rm leaves no cgroups" bash -c "! find /sys/fs/cgroup -path '*$parent/pod-$d*' | grep -q ."
d2=t$run_id-detached2
on_exit "'$BRAMBLE' container rm -f $d2"
"$BRAMBLE" run -d --name "$d2" --net host --rootfs "$rootfs" --cgroup-parent "$parent" -- sleep 1000 >/dev/null
pid2=$("$BRAMBLE" container ls | awk -v n="$d2" '$1 == n {print $2}')
check_output "exec into a container on the board's network" "^$(hostname)$" cexec "$d2" hostname
check "rm -f kills and removes a running container" "$BRAMBLE" container rm -f "$d2"
pid=$pid2
check "... its process is gone" gone
check "... and nothing is left" bash -c "! grep -q '$d2' /proc/mounts && ! find /sys/fs/cgroup -path '*pod-$d2*' | grep -q . && test ! -e /run/bramble/run/$d2"
check_fails_output "a detached command that cannot run is an error, nothing left" "no such file" \
	"$BRAMBLE" run -d --name "t$run_id-dfail" --rootfs "$rootfs" --cgroup-parent "$parent" -- nonexistent
check "... nothing left of it" bash -c "test ! -e /run/bramble/run/t$run_id-dfail && ! find /sys/fs/cgroup -path '*pod-t$run_id-dfail*' | grep -q ."
# A creator killed outright (an agent's SIGKILL) leaves a started container running.
k=t$run_id-killed
"$BRAMBLE" run --name "$k" --rootfs "$rootfs" --cgroup-parent "$parent" -- sleep 1000 &
creator=$!
procs=/sys/fs/cgroup/pids/$parent/pod-$k/main/cgroup.procs
for _ in $(seq 1 100); do [ -s "$procs" ] && break; sleep 0.05; done
kpid=$(head -n1 "$procs" 2>/dev/null)
clean_killed() { kill -9 "$kpid"; for _ in $(seq 1 100); do [ -e "/proc/$kpid" ] || break; sleep 0.05; done; rmdir /sys/fs/cgroup/*/"$parent/pod-$k/main" /sys/fs/cgroup/*/"$parent/pod-$k"; rm -rf "/run/bramble/run/$k"; }
on_exit clean_killed
kill -9 "$creator"
wait "$creator" 2>/dev/null
sleep 0.2
check "a started container outlives its creator's SIGKILL" alive "$kpid"
clean_killed 2>/dev/null
check_fails_output "--detach and --rm do not go together" "does not go with --rm" \
	"$BRAMBLE" run -d --rm --rootfs "$rootfs" -- true
check_fails_output "container exec names a container that is not there" "no detached container nosuch" \
	"$BRAMBLE" container exec nosuch true

# Limits through cgroups.
check_output "a container sees its own cgroup as the root (cgroup namespace)" ":memory:/$" run -- cat /proc/1/cgroup
oom() { run --memory 32M -- probe hog 128 2>&1 | tr '\n' ' '; echo "exit ${PIPESTATUS[0]}"; }
check_output "exceeding the memory limit is OOMKilled (exit 137)" "OOMKilled.*exit 137" oom
check_output "within the memory limit it runs" "^survived$" run --memory 64M -- probe hog 16
check_output "the pids limit stops a fork bomb" "^[1-9]$" run --pids-limit 10 -- probe forks
cpu_share() { run --cpus 0.2 -- probe burn 1000; }
throttled() { [ "$(cpu_share)" -lt 50 ]; }
check "a cpu limit of 0.2 cores visibly throttles (under half of a core used)" throttled
check "no pod cgroup is left behind" bash -c "! find /sys/fs/cgroup -path '*$parent/pod-*' | grep -q ."

# Logs: captured in CRI format, size-capped and rotated.
log=$test_dir/logs/c.log
mkdir -p "$test_dir/logs"
run --log-file "$log" -- sh -c 'echo to stdout; echo to stderr >&2; printf "no newline"' >/dev/null
check_output "stdout is logged as CRI records" "^20[0-9-]+T[0-9:.]+Z stdout F to stdout$" cat "$log"
check_output "stderr is logged as its own stream" "^20[0-9-]+T[0-9:.]+Z stderr F to stderr$" cat "$log"
check_output "a last line without newline is kept" " stdout F no newline$" cat "$log"
rm -f "$log"*
run --log-file "$log" --log-max-size 4K --log-max-files 3 -- sh -c 'i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done'
check_output "the log rotates and keeps the newest lines" " stdout F line 1999$" tail -n1 "$log"
check "no log file passes its size cap" bash -c "for f in '$log' '$log.1' '$log.2'; do [ \$(stat -c %s \"\$f\") -le 4096 ] || exit 1; done"
check "only --log-max-files files are kept" test ! -e "$log.3"

# Images: bramble run IMAGE takes its layers and its configuration as defaults.
images=$test_dir/images
data=$test_dir/data
bash tests/images/make-images.sh "$images" >/dev/null
"$BRAMBLE" image import --data-dir "$data" "$images/busybox-oci.tar" >/dev/null
check_output "an imported image runs" "^hello from an image$" \
	"$BRAMBLE" run --rm --data-dir "$data" --cgroup-parent "$parent" busybox:1.36 echo hello from an image
check_output "the image's Env is the default environment" "^/usr/sbin:/usr/bin:/sbin:/bin$" \
	"$BRAMBLE" run --rm --data-dir "$data" --cgroup-parent "$parent" busybox:1.36 sh -c 'echo $PATH'
check_output "-e overrides the image's Env" "^/bin$" \
	"$BRAMBLE" run --rm --data-dir "$data" --cgroup-parent "$parent" -e PATH=/bin busybox:1.36 sh -c 'echo $PATH'
check "the image's Cmd runs when no command is given" \
	"$BRAMBLE" run --rm --data-dir "$data" --cgroup-parent "$parent" busybox:1.36
writes_stay_in_the_container() {
	"$BRAMBLE" run --rm --data-dir "$data" --cgroup-parent "$parent" busybox:1.36 sh -c 'echo x > /bin/written' &&
		! find "$data/images" -name written | grep -q .
}
check "writes go to the container's layer, not the image's" writes_stay_in_the_container
check_fails_output "an image that is not there is named" "no image nosuch:latest in the store" \
	"$BRAMBLE" run --rm --data-dir "$data" --cgroup-parent "$parent" nosuch

# The process driver: a host process with the same create/start protocol.
check_output "process driver: output, environment, working directory" "^1 /tmp$" \
	"$BRAMBLE" run --rm --cgroup-parent "$parent" --driver process -e X=1 -w /tmp -- sh -c 'echo $X $(pwd)'
check_output "process driver: the exit code is the process's" "^5$" \
	bash -c "'$BRAMBLE' run --rm --cgroup-parent '$parent' --driver process -- sh -c 'exit 5'; echo \$?"
check_output "process driver: only descriptors 0-2 (and ls's own)" "^0 1 2 3 $" \
	bash -c "exec 9</; '$BRAMBLE' run --rm --cgroup-parent '$parent' --driver process -- ls /proc/self/fd | tr '\n' ' '"
check_output "process driver: no_new_privs" "NoNewPrivs:[[:space:]]+1" \
	"$BRAMBLE" run --rm --cgroup-parent "$parent" --driver process -- cat /proc/self/status
check_output "a command that cannot run exits 127 with the reason" "^127 .*exec \"nonexistent\": no such file" \
	bash -c "out=\$('$BRAMBLE' run --rm --cgroup-parent '$parent' --driver process -- nonexistent 2>&1); echo \"\$? \$out\""
check_fails_output "process driver refuses an image" "no image, volumes or added capabilities" \
	"$BRAMBLE" run --rm --cgroup-parent "$parent" --driver process --rootfs "$rootfs" -- true
