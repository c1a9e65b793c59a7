# A cluster of real boards on this machine, for the integration tests (source after lib.sh):
# each board is a network namespace with its own data directory, state directory and cgroup
# parent, joined to the others by a bridge in a "lan" namespace (a stand-in for the boards'
# LAN). The control-plane board "cp" runs the API server; agent boards run the kubelet.
#
#   boards_lan                       the LAN: namespace + bridge (10.X.Y.0/24, X.Y from the run)
#   board_add NAME ROLES             a board: namespace, veth on the LAN, config, credential
#                                    (BOARD_TOKEN=JOIN-STRING board_add: it joins with the token)
#   board_start NAME / board_stop NAME / board_kill NAME (SIGKILL: its containers stay)
#   in_board NAME CMD...             runs CMD in the board's network namespace
#   b ARGS...                        the CLI as the admin, against cp
#   board_ip NAME                    the board's LAN address
#
# Everything is removed at exit (on_exit): agents, containers, namespaces, cgroups, mounts.
run_id=$(printf '%04x' $((RANDOM % 65536)))
lan_ns=brl-$run_id
lan_prefix=10.$((100 + RANDOM % 100)).$((RANDOM % 250))
boards=()
board_index=1
declare -A board_addr board_pid

boards_lan() {
	ip netns add "$lan_ns" || return 1
	on_exit "ip netns del $lan_ns"
	ip -n "$lan_ns" link add br0 type bridge &&
		ip -n "$lan_ns" link set br0 up &&
		ip -n "$lan_ns" link set lo up
	bash tests/images/make-images.sh "$test_dir/images" >/dev/null
}

board_ip() { echo "${board_addr[$1]}"; }
# nsenter, not `ip netns exec`: that one mounts a fresh /sys, hiding the cgroup hierarchies.
in_board() { local name=$1; shift; nsenter --net="/run/netns/brb-$run_id-$name" "$@"; }

board_add() { # board_add NAME ROLES
	local name=$1 roles=$2 ns=brb-$run_id-$1 dir=$test_dir/$1
	board_index=$((board_index + 1))
	local addr=$lan_prefix.$board_index
	board_addr[$name]=$addr
	boards+=("$name")
	ip netns add "$ns" || return 1
	on_exit "ip netns del $ns"
	ip link add "v$run_id$board_index" type veth peer name eth0 netns "$ns"
	ip link set "v$run_id$board_index" netns "$lan_ns"
	ip -n "$lan_ns" link set "v$run_id$board_index" master br0 up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	mkdir -p "$dir"
	if [[ $roles == *server* ]]; then
		"$BRAMBLE" init --data-dir "$dir" --listen "$addr:5684" --node-name "$name" >/dev/null || return 1
		sed -i "s/^roles = .*/roles = $roles/" "$dir/bramble.conf"
		cp_dir=$dir
		cp_addr=$addr
	elif [ -n "${BOARD_TOKEN:-}" ]; then
		# Joins with a token at its first start (no credential made here).
		cat >"$dir/bramble.conf" <<CONF
[node]
name = $name
roles = $roles
data-dir = $dir
CONF
	else
		local key
		key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
		echo "node:$name $key" >>"$cp_dir/credentials"
		echo "node:$name $key" >"$dir/node-credential"
		chmod 600 "$dir/node-credential"
		cat >"$dir/bramble.conf" <<CONF
[node]
name = $name
roles = $roles
data-dir = $dir
CONF
	fi
	cat >>"$dir/bramble.conf" <<CONF
[agent]
server = coaps://$cp_addr:5684
state-dir = $dir/run
cgroup-parent = bramble-$run_id-$name
node-status-interval = 2
restart-backoff = ${BOARD_RESTART_BACKOFF:-1}
CONF
	[ -n "${BOARD_TOKEN:-}" ] && [[ $roles != *server* ]] && echo "token = $BOARD_TOKEN" >>"$dir/bramble.conf"
	"$BRAMBLE" image import --data-dir "$dir" "$test_dir/images/busybox-oci.tar" >/dev/null
	on_exit "board_cleanup $name"
}

board_start() {
	local name=$1
	# nsenter execs the agent: $! is the agent itself.
	nsenter --net="/run/netns/brb-$run_id-$name" "$BRAMBLE" agent --config "$test_dir/$name/bramble.conf" \
		>>"$test_dir/$name.log" 2>&1 &
	board_pid[$name]=$!
	# The server's credentials are read at start; a reload picks up boards added later.
	[ "$name" != cp ] && [ -n "${board_pid[cp]:-}" ] && kill -HUP "${board_pid[cp]}" 2>/dev/null
	return 0
}

board_stop() {
	local pid=${board_pid[$1]:-}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	board_pid[$1]=
}

board_kill() {
	local pid=${board_pid[$1]:-}
	[ -n "$pid" ] || return 0
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	board_pid[$1]=
}

# Whatever a board left: its agent, processes in its cgroups, mounts under its directory.
board_cleanup() {
	local name=$1 dir=$test_dir/$1 parent=bramble-$run_id-$1
	board_kill "$name"
	local pids
	pids=$(cat /sys/fs/cgroup/*/"$parent"/*/*/cgroup.procs /sys/fs/cgroup/"$parent"/*/*/cgroup.procs 2>/dev/null)
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	sleep 0.2
	grep " $dir/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
	for c in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent"; do
		[ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	return 0
}

b() { in_board cp "$BRAMBLE" --config "$cp_dir/admin.conf" "$@"; }

# pod_json NAME NODE: the pod as JSON, compact, for grep.
pod_json() { b get pod "$1" -o json 2>/dev/null | tr -d ' \n'; }
