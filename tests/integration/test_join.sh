#!/usr/bin/env bash
# Joining boards with tokens (core/bootstrap.h): a control-plane board and agent boards in
# network namespaces. A good token joins (the Node registers Ready, the credential file is
# written 0600 and used after a restart without the token); an expired, revoked or forged
# token, a server whose cluster key does not match the token's hash and a node name that
# already has a credential are refused with a message that says which; a credential is
# rotated while the board runs, the old one accepted until the board switched.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/boards.sh

boards_lan || { echo "cannot create network namespaces"; exit 1; }
board_add cp server
board_start cp
check "the control plane answers" wait_until 10 b get namespaces

# bramble init makes the cluster key and prints its hash.
check_output "init prints the cluster hash" '^  cluster hash: +sha256:[0-9a-f]{64}$' "$BRAMBLE" init --data-dir "$test_dir/x" --node-name x
check_output "the cluster key is 0600" '^600$' stat -c %a "$test_dir/x/cluster.key"
check_fails_output "init refuses to replace a cluster" 'a cluster is already set up' "$BRAMBLE" init --data-dir "$test_dir/x"
first=$("$BRAMBLE" init --data-dir "$test_dir/y" --node-name y | grep 'cluster hash')
second=$("$BRAMBLE" init --data-dir "$test_dir/y" --force | grep 'cluster hash')
check "init --force makes a new cluster key (another hash)" test -n "$second" -a "$first" != "$second"
check_output "--help says what the cluster key is for" 'cluster key' "$BRAMBLE" init --help

check_output "token create prints the join string: token and cluster hash" \
	'^[a-z0-9]{6}\.[a-z0-9]{16}:sha256:[0-9a-f]{64}$' b token create --ttl 10m --description "board j1"
token=$(b token create --ttl 10m --description "board j1")
id=${token%%.*}
check_output "token ls shows it valid, with its description, without the secret" \
	"^$id +(9m[0-9]*s?|10m) +[0-9T:Z-]+ +valid +board j1" b token ls
ls_out=$(b token ls)
check "token ls never prints secrets" bash -c "! grep -qF '${token:7:16}' <<<'$ls_out'"
check_output "the hash is the one init printed and the server logs" "${token#*:}" grep -h 'cluster hash' "$test_dir/cp.log"

# A good token joins.
BOARD_TOKEN=$token board_add j1 agent
check "j1's configuration has only the server and the token" bash -c "! grep -q credential '$test_dir/j1/bramble.conf' && grep -q '^token = $token' '$test_dir/j1/bramble.conf'"
board_start j1
node_ready() { b get nodes 2>/dev/null | grep -Eq "^$1 +Ready "; }
check "the board joins and its Node registers Ready" wait_until 20 node_ready j1
check_output "its credential file is written, mode 0600" '^600$' stat -c %a "$test_dir/j1/node-credential"
check_output "with the identity the cluster issued" '^node:j1@1 [A-Za-z0-9]{32}$' grep -v '^#' "$test_dir/j1/node-credential"
check_output "the agent says it joined" 'joined as node:j1@1; credential stored' cat "$test_dir/j1.log"
check_output "the control plane stored the credential as a Secret of its own type" 'bramble.io/node-credential' \
	b get secret node-credential-j1 -n kube-system -o json

# A restart after the join works without the token.
board_stop j1
sed -i '/^token = /d' "$test_dir/j1/bramble.conf"
: >"$test_dir/j1.log"
board_start j1
connected() { grep -q "connected to the control plane" "$test_dir/j1.log"; }
check "restarted without the token, it connects with the stored credential" wait_until 15 connected
check_fails "and does not join again" grep -q 'joining the cluster' "$test_dir/j1.log"
check "its Node stays Ready" wait_until 15 node_ready j1

# Refusals, each saying which. The agent stops with the message (exit 1).
try_join() { # try_join NAME: runs the board's agent in the foreground until it stops
	in_board "$1" timeout 20 "$BRAMBLE" agent --config "$test_dir/$1/bramble.conf"
}
expired=$(b token create --ttl 1s)
BOARD_TOKEN=$expired board_add e1 agent
sleep 2
check_output "token ls marks an expired token" "^${expired%%.*} +<expired> .* expired " b token ls
check_fails_output "an expired token is refused as expired" "join token ${expired%%.*} expired at" try_join e1
check "and leaves no credential behind" test ! -e "$test_dir/e1/node-credential"

revoked=$(b token create)
BOARD_TOKEN=$revoked board_add r1 agent
check_output "token rm revokes" "join token \"${revoked%%.*}\" revoked" b token rm "${revoked%%.*}"
check_output "token ls marks it revoked" "^${revoked%%.*} .* revoked " b token ls
check_fails_output "a revoked token is refused as revoked" "join token ${revoked%%.*} was revoked at" try_join r1

good=$(b token create)
other_hash=sha256:$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
BOARD_TOKEN="zzzzzz.0123456789abcdef:${good#*:}" board_add f1 agent
BOARD_TOKEN="${good%%.*}.0123456789abcdef:${good#*:}" board_add f2 agent
BOARD_TOKEN="${good%%:*}:$other_hash" board_add m1 agent
check_fails_output "an unknown token id is refused in the handshake as forged" \
	"refused join token zzzzzz in the DTLS handshake: it has no token with that id, or the secret is wrong \(a forged" \
	try_join f1
check_fails_output "a known id with a wrong secret is refused as forged too" \
	"refused join token ${good%%.*} in the DTLS handshake.*forged" try_join f2
check_fails_output "a server whose cluster key does not match the token's hash is refused, both hashes named" \
	"cluster key does not match the token: it holds ${good#*:}, the token was made for $other_hash" \
	try_join m1
check "the mismatched board asked for no credential" bash -c "! '$BRAMBLE' --config '$cp_dir/admin.conf' get secret node-credential-m1 -n kube-system"
BOARD_TOKEN=$good board_add j1x agent >/dev/null
sed -i 's/^name = j1x/name = j1/' "$test_dir/j1x/bramble.conf"
check_fails_output "a second board named j1 is refused as joined already, saying how to rejoin" \
	"node j1 has already joined with another credential \(node:j1@1\).*delete secret node-credential-j1" \
	in_board j1x timeout 20 "$BRAMBLE" agent --config "$test_dir/j1x/bramble.conf"
check_fails_output "a malformed token in bramble.conf is a config error with file and line" \
	"bramble.conf:[0-9]+: agent.token: join token abcdef has no cluster hash" \
	bash -c "sed -i 's/^token = .*/token = abcdef.0123456789abcdef/' '$test_dir/m1/bramble.conf' && '$BRAMBLE' agent --check-config '$test_dir/m1/bramble.conf'"

# Bad input: clear messages, exit codes scripts can test (1 an error, 2 a usage error).
check_exit() { # check_exit WHAT CODE REGEX CMD...
	local what=$1 code=$2 regex=$3 out rc=0
	shift 3
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq "$code" ] && grep -Eq -- "$regex" <<<"$out"; then _report 1 "$what" ""; else
		_report 0 "$what" "exit $rc (expected $code), expected /$regex/ in: $out"; fi
}
check_exit "token rm given the whole token, not its id (1)" 1 "is not a token id" b token rm "$good"
check_exit "token rm of an unknown id (1)" 1 'join token "zzzzzz" not found' b token rm zzzzzz
check_exit "token rm twice says so (0)" 0 'was revoked already' b token rm "${revoked%%.*}"
check_exit "token create --ttl that is not a duration (2)" 2 "--ttl" b token create --ttl soon
check_exit "token with an unknown subcommand (2)" 2 "unknown subcommand 'make'" b token make
check_exit "token ls --ttl (2)" 2 "go with create" b token ls --ttl 1h
check_exit "token create against an unreachable server: address and timeout (1)" 1 \
	"no answer from coaps://127.0.0.1:[0-9]+ within 5 s" bash -c "sed 's|^server = .*|server = coaps://127.0.0.1:$(free_udp_port)|' '$cp_dir/admin.conf' >'$test_dir/dead.conf'; '$BRAMBLE' --config '$test_dir/dead.conf' token create"
check_exit "rotate-credential on the server board: nothing to rotate (1)" 1 "only an agent board that joined" \
	"$BRAMBLE" agent --rotate-credential --config "$cp_dir/bramble.conf"
check_exit "an agent whose --config file is missing (1)" 1 "nope.conf: cannot open" "$BRAMBLE" agent --config "$test_dir/nope.conf"
check_exit "an agent with neither credential nor token says how to get one (1)" 1 \
	"credential .* does not exist: set \[agent\] token" bash -c "sed '/^token = /d' '$test_dir/m1/bramble.conf' >'$test_dir/notoken.conf'; in_board() { :; }; timeout 10 '$BRAMBLE' agent --config '$test_dir/notoken.conf'"
# A board joining a server that does not answer says where and keeps trying; SIGTERM stops it.
BOARD_TOKEN=$good board_add u1 agent
sed -i "s|^server = .*|server = coaps://$lan_prefix.250:5684|" "$test_dir/u1/bramble.conf"
# nsenter execs the agent itself: $! is the agent, not a subshell around it.
nsenter --net="/run/netns/brb-$run_id-u1" "$BRAMBLE" agent --config "$test_dir/u1/bramble.conf" >"$test_dir/u1.log" 2>&1 &
u1_pid=$!
waiting() { grep -q "no answer from coaps://$lan_prefix.250:5684 within 5 s.*trying again" "$test_dir/u1.log"; }
check "joining an unreachable server names it and the timeout, then retries" wait_until 15 waiting
kill "$u1_pid"
stopped_at=$SECONDS
wait "$u1_pid"
check "SIGTERM stops a joining agent within a few seconds" test $((SECONDS - stopped_at)) -le 6
check "and the agent process is gone" bash -c "! kill -0 $u1_pid 2>/dev/null"

# A token identity may only join.
cat >"$test_dir/token.conf" <<CONF
[cluster]
server = coaps://$cp_addr:5684
[user]
identity = token:${good%%.*}
key = $(printf 'bramble join token %s' "${good%%.*}" | openssl dgst -sha256 -hmac "$(echo "${good%%:*}" | cut -d. -f2)" -r | cut -c1-32)
CONF
check_fails_output "a join token cannot use the API" "may not list pods.*a join token may only join" \
	in_board cp "$BRAMBLE" --config "$test_dir/token.conf" get pods

# Rotation while j1 runs: the old credential works until the board switched.
old_identity=$(grep -v '^#' "$test_dir/j1/node-credential" | cut -d' ' -f1)
old_key=$(grep -v '^#' "$test_dir/j1/node-credential" | cut -d' ' -f2)
node_conf() { printf '[cluster]\nserver = coaps://%s:5684\n[user]\nidentity = %s\nkey = %s\n' "$cp_addr" "$1" "$2" >"$test_dir/$3"; }
node_conf "$old_identity" "$old_key" old.conf
check_output "rotate-credential stores the next generation" "node:j1@2 stored in $test_dir/j1/node-credential; node:j1@1 stays accepted" \
	in_board j1 "$BRAMBLE" agent --rotate-credential --config "$test_dir/j1/bramble.conf"
check_output "the new file is 0600 too" '^600$' stat -c %a "$test_dir/j1/node-credential"
check "the old credential is still accepted before the board switched" in_board cp "$BRAMBLE" --config "$test_dir/old.conf" get node j1
kill -HUP "${board_pid[j1]}"
switched() { grep -q "node j1 switched to credential generation 2: generation 1 no longer accepted" "$test_dir/cp.log"; }
check "on SIGHUP the agent switches and the control plane retires generation 1" wait_until 15 switched
check_output "the agent logs the switch" 'reload: switched to credential node:j1@2' cat "$test_dir/j1.log"
check_fails_output "the old credential is refused afterwards" "DTLS handshake .* failed" \
	in_board cp "$BRAMBLE" --config "$test_dir/old.conf" get node j1
node_conf "$(grep -v '^#' "$test_dir/j1/node-credential" | cut -d' ' -f1)" "$(grep -v '^#' "$test_dir/j1/node-credential" | cut -d' ' -f2)" new.conf
check "the new one works" in_board cp "$BRAMBLE" --config "$test_dir/new.conf" get node j1
sleep 3
check "j1 stayed Ready throughout" node_ready j1
# A restart with the rotated credential: the pod cache stays readable (its key does not come
# from the credential on a joined board).
board_stop j1
: >"$test_dir/j1.log"
board_start j1
check "restarted with generation 2, it connects" wait_until 15 connected
check_fails "its pod cache is still readable" grep -q 'starting with an empty pod cache' "$test_dir/j1.log"
check_output "the cache key is the board's own, 0600" '^600$' stat -c %a "$test_dir/j1/podcache.key"
