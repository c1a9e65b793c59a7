#!/usr/bin/env bash
# The foundation: static binaries for four targets, `bramble version`, configuration
# checking, the build's refusals, and a CoAP-over-DTLS round trip between `bramble agent`
# and Debian's libcoap clients (OpenSSL and GnuTLS backends) using a PSK.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

# --- binaries ---------------------------------------------------------------------------
declare -A runner=([x86_64]="" [arm64]="qemu-aarch64-static" [armhf]="qemu-arm-static"
	[armv6]="qemu-arm-static -cpu arm1176")
for t in x86_64 arm64 armhf armv6; do
	bin=build/$t/bramble
	check_output "$t: binary is statically linked" "statically linked" file -L "$bin"
	check_output "$t: bramble version names target and libraries" \
		"^Bramble [0-9.]+ \($t\).*libcoap 4\.3\..*DTLS backend: Mbed TLS.*Mbed TLS 3\.6\..*SQLite 3\..*libcgroup 3\." \
		bash -c "${runner[$t]} $bin version | tr '\n' ' '"
done

# The versions reported are those pinned in deps.lock (upstream part of the Debian version).
pinned() { awk -v n="$1" '$1 == n {print $3; exit}' tools/deps/deps.lock | sed -E 's/^[0-9]+://; s/-[^-]*$//; s/\.dfsg.*really/-/; s/^[0-9.]+-//'; }
for lib in mbedtls:"Mbed TLS" libcoap:libcoap sqlite:SQLite libcgroup:libcgroup; do
	name=${lib%%:*} label=${lib#*:}
	check_output "version of $name matches deps.lock ($(pinned "$name"))" "$label $(pinned "$name")" "$BRAMBLE" version
done

check_fails_output "unknown verb is refused with usage" "unknown verb 'frobnicate'" "$BRAMBLE" frobnicate

# --- the build refuses clearly -----------------------------------------------------------
check_fails_output "make ARCH=<unknown> says which targets exist" \
	"unknown ARCH 'sparc': choose one of x86_64 arm64 armhf armv6" make -s ARCH=sparc
check_fails_output "a missing cross-compiler is one clear line" \
	"the arm64 compiler nonexistent-gcc is not installed; run tools/setup.sh" \
	make -s ARCH=arm64 CROSS_arm64=nonexistent- toolchain

# A pin whose sha256 does not match what the mirror serves is refused, not built.
bad_cache=$test_dir/cache
mkdir -p "$bad_cache"
real_cache=${BRAMBLE_CACHE:-/var/cache/bramble}
[ "$(id -u)" = 0 ] || real_cache=${BRAMBLE_CACHE:-$HOME/.cache/bramble}
# Reuse the source index when there is one (it is 30 MB); else the test makes its own.
[ -e "$real_cache/apt/updated" ] && ln -s "$real_cache/apt" "$bad_cache/apt"
grep -v '^inih' tools/deps/deps.lock >"$test_dir/deps.lock"
awk '$1 == "inih" && $5 ~ /orig/ {$4 = "0000000000000000000000000000000000000000000000000000000000000000"; print}' \
	tools/deps/deps.lock >>"$test_dir/deps.lock"
check_fails_output "a tarball whose sha256 does not match is refused" "sha256 is [0-9a-f]{64}.*refusing to build it" \
	env BRAMBLE_CACHE="$bad_cache" DEPS_LOCK="$test_dir/deps.lock" tools/deps/deps.sh build x86_64 "$test_dir/deps.mk"
check "nothing was built from the refused tarball" test ! -e "$bad_cache/deps/x86_64"

check "the sources are clang-formatted (make format-check)" make -s format-check
# clang refuses a goto that skips a cleanup variable's initialisation (gcc only may warn).
check "the sources compile with clang too" make -s clang-check

# --- configuration -------------------------------------------------------------------------
check_output "configs/bramble.conf passes --check-config" "configuration OK" \
	"$BRAMBLE" agent --check-config configs/bramble.conf
check "configs/bramble.conf documents every option (matches --print-sample-config)" \
	diff -u configs/bramble.conf <("$BRAMBLE" agent --print-sample-config)
printf '[node]\nroles = server, kubelet\nnmae = pi\n[log]\nlevel = loud\n' >"$test_dir/typo.conf"
check_fails_output "a config with typos names each file:line" \
	"typo.conf:2: node.roles: unknown role 'kubelet'.*typo.conf:3: unknown key 'nmae' in \[node\].*typo.conf:5: log.level" \
	bash -c "'$BRAMBLE' agent --check-config '$test_dir/typo.conf' 2>&1 | tr '\n' ' '; exit \${PIPESTATUS[0]}"

# --- a DTLS round trip with real outside clients ------------------------------------------
port=$(free_udp_port)
key=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
mkdir -p "$test_dir/data"
printf 'admin %s\n' "$key" >"$test_dir/data/credentials"
chmod 600 "$test_dir/data/credentials"
run_id=$$
cat >"$test_dir/bramble.conf" <<CONF
[node]
name = test-board
roles = server, agent
data-dir = $test_dir/data
[server]
listen = 127.0.0.1:$port
[agent]
# a cgroup of this run's own, removed at the end
cgroup-parent = bramble-$run_id-foundation
[network]
# this board runs in the machine's own network namespace: leave its network alone
pod-network = off
CONF
on_exit "rmdir /sys/fs/cgroup/*/bramble-$run_id-foundation /sys/fs/cgroup/bramble-$run_id-foundation 2>/dev/null; true"
"$BRAMBLE" agent --config "$test_dir/bramble.conf" >"$test_dir/agent.log" 2>&1 &
agent_pid=$!
on_exit "kill $agent_pid; wait $agent_pid"

get() { # get CLIENT IDENTITY KEY PATH
	timeout 10 "$1" -B 3 -m get -u "$2" -k "$3" "coaps://127.0.0.1:$port/$4"
}
healthz_ok() { [ "$(get coap-client-openssl admin "$key" healthz 2>/dev/null)" = ok ]; }
wrong_key_refused() { ! get "$1" admin wrong-key-0123456789 version 2>&1 | grep -q '"bramble"'; }
check "agent answers /healthz over DTLS (coap-client-openssl)" wait_until 10 healthz_ok
for client in coap-client-openssl coap-client-gnutls; do
	check_output "$client: GET /version over DTLS with a PSK" '"bramble":"[0-9.]+".*"tls":"Mbed TLS 3\.6' \
		get "$client" admin "$key" version
	check_output "$client: /.well-known/core lists the resources" '</version>.*</healthz>|</healthz>.*</version>' \
		get "$client" admin "$key" .well-known/core
	check "$client: a wrong key gets no answer" wrong_key_refused "$client"
done
check_output "plain CoAP to the DTLS port gets no answer" "^$" \
	bash -c "timeout 10 coap-client-openssl -B 2 -m get coap://127.0.0.1:$port/version 2>/dev/null; true"
check "agent is still running after bad clients" kill -0 "$agent_pid"
check_output "agent logged the refused handshake" "refused|Bad Record MAC|MAC" cat "$test_dir/agent.log"

kill -TERM "$agent_pid"
check "agent stops cleanly on SIGTERM" wait_until 5 bash -c "! kill -0 $agent_pid"
check_output "agent logged its stop" "stopping" cat "$test_dir/agent.log"

# --- running as a service: the plain init script (configs/bramble.init) ----------------------
service() { BRAMBLE_BIN="$BRAMBLE" BRAMBLE_CONFIG="$test_dir/bramble.conf" BRAMBLE_PIDFILE="$test_dir/bramble.pid" \
	sh configs/bramble.init "$@"; }
check "the init script starts the agent" service start
on_exit "BRAMBLE_PIDFILE='$test_dir/bramble.pid' sh configs/bramble.init stop"
check "the agent started by the init script answers" wait_until 10 healthz_ok
check_output "the init script reports it running" "^running$" service status
check "reload sends SIGHUP" service reload
check "the agent survived the reload" wait_until 5 healthz_ok
check "the init script stops it" service stop
check_fails_output "then it reports it stopped" "^stopped$" service status
check "the systemd unit names the agent and reloads with SIGHUP" \
	grep -q '^ExecStart=/usr/local/bin/bramble agent --config' configs/bramble.service
