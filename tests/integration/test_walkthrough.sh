#!/usr/bin/env bash
# The README's walkthrough, run as a newcomer pastes it: the lines of its code block, read
# from README.md and run one after the other in one shell (so `eval "$(...env)"` holds for
# the lines after it), and what each prints checked. Then the plain coap-client lines of
# the next section against the same cluster. tools/try-join.sh gets a directory, names and
# a subnet of this run only (TRY_DIR, TRY_NAME, TRY_SUBNET).
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

export TRY_DIR=$test_dir/try TRY_NAME=bwt-$(printf '%04x' $((RANDOM % 65536)))
export TRY_SUBNET=10.$((100 + RANDOM % 100)).$((RANDOM % 250))
export PATH=$(dirname "$BRAMBLE"):$PATH
on_exit "tools/try-join.sh down"

# The code block after the walkthrough's marker, comments at the ends of lines removed.
block() { # block MARKER-REGEX
	awk -v marker="$1" '$0 ~ marker {found = 1; next} found && /^```sh/ {inside = 1; next}
		inside && /^```/ {exit} inside {print}' README.md | sed -E 's/[[:space:]]{2,}#.*$//'
}
mapfile -t lines < <(block 'test_walkthrough.sh runs these lines')
check "the README has the walkthrough (at least 10 lines)" test "${#lines[@]}" -ge 10

sudo() { "$@"; } # the tests run as root
out=$test_dir/out
step=0
for line in "${lines[@]}"; do
	step=$((step + 1))
	rc=0
	eval "$line" >"$out.$step" 2>&1 || rc=$?
	# The agents start serving logs a few seconds after their Nodes are Ready ("node ... is
	# not connected" until then): the logs line is tried again for up to 15 s.
	for _ in $(seq 1 30); do
		[[ $line == "bramble logs "* ]] && [ $rc != 0 ] && grep -q 'is not connected' "$out.$step" || break
		sleep 0.5
		rc=0
		eval "$line" >"$out.$step" 2>&1 || rc=$?
	done
	text=$(cat "$out.$step")
	_report $([ $rc = 0 ] && echo 1 || echo 0) "walkthrough: $line" "exit $rc: $text"
	case "$line" in
	"sudo tools/try-join.sh")
		check_output "... it shows bramble init" 'bramble init --data-dir .*/board1 --listen' echo "$text"
		check_output "... and the token it made" 'token create --ttl 1h' echo "$text"
		check_output "... and board2's bramble.conf with the token" '^token = [a-z0-9]{6}\.[a-z0-9]{16}:sha256:[0-9a-f]{64}$' echo "$text"
		check_output "... and both boards Ready" 'board2 +Ready' echo "$text"
		;;
	"bramble get nodes")
		check_output "... board1 Ready" '^board1 +Ready ' echo "$text"
		check_output "... board2 Ready" '^board2 +Ready ' echo "$text"
		;;
	"bramble apply -f configs/examples/hello.yaml")
		check_output "... the Deployment created" '^deployment.apps/hello created$' echo "$text"
		check_output "... the Service created" '^service/hello created$' echo "$text"
		;;
	"bramble rollout status deployment/hello")
		check_output "... rolled out" '^deployment "hello" successfully rolled out$' echo "$text"
		;;
	"bramble get pods -o wide")
		check_output "... a pod Running on board1" 'Running .* board1 ' echo "$text"
		check_output "... a pod Running on board2" 'Running .* board2 ' echo "$text"
		;;
	"bramble logs "*)
		check_output "... the container's output" 'hello version 1 from ' echo "$text"
		;;
	sed*)
		check_output "... a new revision applied" '^deployment.apps/hello configured$' echo "$text"
		;;
	"bramble scale deployment/hello --replicas 4")
		check_output "... scaled" '^deployment.apps/hello scaled$' echo "$text"
		four() { bramble get deploy hello | grep -Eq '^hello +4/4 '; }
		check "... four replicas become ready" wait_until 60 four
		;;
	"bramble rollout history deployment/hello")
		check_output "... revisions 1 and 2" '^1 .*'$'\n''2 ' echo "$text"
		;;
	"bramble rollout undo deployment/hello")
		check_output "... rolled back" '^deployment.apps/hello rolled back$' echo "$text"
		;;
	esac
	if [[ $line == "bramble rollout status deployment/hello" ]] && grep -q 'rolled back' "$out.$((step - 1))" 2>/dev/null; then
		check_output "... the Deployment runs version 1 again" '"value": "1"' bramble get deploy hello -o json
		check_output "... still with 4 replicas" '"replicas": 4' bramble get deploy hello -o json
		# The plain coap-client lines of the README, against this cluster, before it stops.
		mapfile -t coap < <(block '^### The same with plain `coap-client`' |
			sed -e "s|10\.77\.0\.1|$TRY_SUBNET.1|g" -e "s|build/try/|$TRY_DIR/|g")
		for c in "${coap[@]}"; do
			case "$c" in
			*"/log\""* | *"-s 30"* | *"-m post"*) continue ;; # the log line names a placeholder POD; a watch runs 30 s; hello exists
			esac
			crc=0
			eval "$c" >"$out.coap" 2>&1 || crc=$?
			_report $([ $crc = 0 ] && echo 1 || echo 0) "coap-client: $c" "exit $crc: $(cat "$out.coap")"
			case "$c" in
			*api/v1/nodes) check_output "... both Nodes" '"name":"board2"' cat "$out.coap" ;;
			*labelSelector=app%3Dhello\") check_output "... the list" '"kind":"(Pod|ReplicaSet)List"' cat "$out.coap" ;;
			esac
		done
	fi
	if [[ $line == "sudo tools/try-join.sh down" ]]; then
		check "... board2's namespace is gone" bash -c "! ip netns | grep -q '^$TRY_NAME-board2'"
		check "... no cgroup of the boards is left" bash -c "! ls -d /sys/fs/cgroup/*/$TRY_NAME-* /sys/fs/cgroup/$TRY_NAME-* 2>/dev/null | grep -q ."
		check "... no agent of the run is left" bash -c "! pgrep -f '[a]gent --config $TRY_DIR/'"
		check "... board1's pod bridge is gone" bash -c "! ip link show '${TRY_NAME:0:12}-br' 2>/dev/null"
	fi
done
