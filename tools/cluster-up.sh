#!/usr/bin/env bash
# Builds Bramble and runs a one-board cluster on this machine: this board is server and
# agent, listening on 127.0.0.1 (port $BRAMBLE_PORT, default 5684) with CoAP over DTLS.
#
#   tools/cluster-up.sh           build, then run the board in the foreground (Ctrl-C stops it)
#   tools/cluster-up.sh --smoke   build, start, query it once with coap-client, stop
#
# State lives in build/local/ (config, credentials, data). The configuration is the
# documented sample configs/bramble.conf with the few values a local board needs changed.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
port=${BRAMBLE_PORT:-5684}
dir=${BRAMBLE_LOCAL_DIR:-$PWD/build/local}

tools/setup.sh build
if ! command -v coap-client-openssl >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libcoap3-bin >&2
	else
		echo "note: install libcoap3-bin (as root) to talk to the board with coap-client" >&2
	fi
fi
make -s -j"$(nproc)" 2>&1 | grep -v 'statically linked\|in function' >&2 || true
case "$(uname -m)" in
aarch64) host=arm64 ;; armv7l) host=armhf ;; armv6l) host=armv6 ;; *) host=x86_64 ;;
esac
bramble=$PWD/build/$host/bramble
[ -x "$bramble" ] || { echo "cluster-up: build failed" >&2; exit 1; }

mkdir -p "$dir/data"
chmod 700 "$dir/data"
if [ ! -s "$dir/data/credentials" ]; then
	key=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
	(umask 077 && printf 'admin %s\n' "$key" >"$dir/data/credentials")
fi
key=$(awk '$1 == "admin" {print $2}' "$dir/data/credentials")
sed -e "s|^roles = .*|roles = server, agent|" \
	-e "s|^name =.*|name = local|" \
	-e "s|^data-dir = .*|data-dir = $dir/data|" \
	-e "s|^listen = .*|listen = 127.0.0.1:$port|" \
	configs/bramble.conf >"$dir/bramble.conf"
"$bramble" agent --check-config "$dir/bramble.conf" >&2

cat >&2 <<MSG

Bramble board 'local' on coaps://127.0.0.1:$port (identity admin, key in $dir/data/credentials)
Ask it from another terminal:
  coap-client-openssl -m get -u admin -k '$key' coaps://127.0.0.1:$port/version
  coap-client-openssl -m get -u admin -k '$key' coaps://127.0.0.1:$port/.well-known/core

MSG
if [ "$mode" != --smoke ]; then
	exec "$bramble" agent --config "$dir/bramble.conf"
fi

"$bramble" agent --config "$dir/bramble.conf" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 50); do
	if out=$(timeout 5 coap-client-openssl -B 2 -m get -u admin -k "$key" "coaps://127.0.0.1:$port/version" 2>/dev/null) &&
		[ -n "$out" ]; then
		echo "$out"
		exit 0
	fi
	sleep 0.1
done
echo "cluster-up: the board did not answer on 127.0.0.1:$port" >&2
exit 1
