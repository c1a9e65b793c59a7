# Sourced by the benches that need a cluster of two boards on loopback, both in this
# machine's network namespace: a control plane board "cp" (server only) and an agent board
# "board" (no pod network: it would be the machine's own). After sourcing:
#   cluster_make DIR PARENT    init both boards under DIR; board's pods under cgroup PARENT
#   cluster_start              start both agents (cp_pid, agent_pid), wait for board Ready
#   cluster_cleanup            delete the pods, stop both agents, kill what the pods left in
#                              PARENT, unmount and remove DIR (pods outlive their agent)
#   b ARGS...                  the client as the cluster's admin
# Needs $bramble (the binary). Sets dir, port, parent.

cluster_make() {
	dir=$1 parent=$2
	port=$((20000 + RANDOM % 40000))
	"$bramble" init --data-dir "$dir/cp" --listen "127.0.0.1:$port" --node-name cp >/dev/null
	sed -i "s/^roles = .*/roles = server/" "$dir/cp/bramble.conf"
	local key
	key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
	echo "node:board $key" >>"$dir/cp/credentials"
	mkdir -p "$dir/board"
	echo "node:board $key" >"$dir/board/node-credential"
	chmod 600 "$dir/board/node-credential"
	cat >"$dir/board/bramble.conf" <<CONF
[node]
name = board
roles = agent
data-dir = $dir/board
[agent]
server = coaps://127.0.0.1:$port
state-dir = $dir/board/run
cgroup-parent = $parent
[network]
# this board runs in the machine's own network namespace: leave its network alone
pod-network = off
CONF
}

b() { "$bramble" --config "$dir/cp/admin.conf" "$@"; }

cluster_start() {
	"$bramble" agent --config "$dir/cp/bramble.conf" 2>"$dir/cp.log" &
	cp_pid=$!
	"$bramble" agent --config "$dir/board/bramble.conf" 2>"$dir/board.log" &
	agent_pid=$!
	for _ in $(seq 1 100); do b get nodes 2>/dev/null | grep -q 'board  *Ready' && break; sleep 0.1; done
}

cluster_cleanup() {
	b delete pods --all >/dev/null 2>&1 || true
	kill "${agent_pid:-}" "${cp_pid:-}" 2>/dev/null || true
	wait "${agent_pid:-}" "${cp_pid:-}" 2>/dev/null || true
	local left c
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		left=$(find /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)
		[ -z "$left" ] && break
		kill -9 $left 2>/dev/null || true
		sleep 0.2
	done
	for c in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent"; do
		if [ -d "$c" ]; then find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
	done
	{ grep " $dir/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$dir" || { sleep 1; rm -rf "$dir"; }
}
