#!/usr/bin/env bash
# The cluster network on three real boards (network namespaces joined by the test LAN):
# pod CIDRs per node, pod-to-pod across boards by pod IP, a Service reached by name through
# cluster DNS and the proxy with traffic on both backends, NodePorts from the LAN on every
# board, a deleted backend out of rotation, an agent restart that keeps addresses and rules,
# and nothing (nft table, route, bridge, veth) left once the boards stop.
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/boards.sh

# Overlapping CIDRs in bramble.conf: file:line: from --check-config.
printf '[node]\nname = x\n[network]\ncluster-cidr = 10.42.0.0/16\nservice-cidr = 10.42.128.0/20\n' >"$test_dir/overlap.conf"
check_fails_output "--check-config: overlapping cluster and service CIDRs, at file:line" \
	"overlap.conf:5: network: service-cidr 10.42.128.0/20 overlaps cluster-cidr 10.42.0.0/16" \
	"$BRAMBLE" agent --check-config "$test_dir/overlap.conf"

boards_lan || { echo "cannot create network namespaces"; exit 1; }
board_add cp "server, agent"
board_add b agent
board_add c agent
# The test runner's own address on the LAN, to reach NodePorts from outside the boards.
ip -n "$lan_ns" addr add "$lan_prefix.250/24" dev br0
in_lan() { nsenter --net="/run/netns/$lan_ns" "$@"; }
board_start cp
check "the control plane answers" wait_until 10 b get namespaces
board_start b
board_start c

ready_nodes() { [ "$(b get nodes 2>/dev/null | grep -c ' Ready ')" = 3 ]; }
check "the three boards are Ready" wait_until 20 ready_nodes
node_cidr() { b get node "$1" -o json 2>/dev/null | tr -d ' \n' | grep -o '"podCIDR":"[^"]*"' | cut -d'"' -f4; }
has_cidr() { [ -n "$(node_cidr "$1")" ]; }
all_cidrs() { has_cidr cp && has_cidr b && has_cidr c; }
check "each Node is given a pod CIDR" wait_until 10 all_cidrs
cidrs=$(for n in cp b c; do node_cidr $n; done | sort -u | wc -l)
check_output "three different /24s of 10.42.0.0/16" '^3$' echo "$cidrs"
check_output "in the cluster CIDR" '^10\.42\.[0-9]+\.0/24$' node_cidr c
cidr_b=$(node_cidr b)

pod() { # pod NAME NODE COMMAND [LABELS-JSON]
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$1\",\"labels\":${4:-{\}}},\"spec\":{\"nodeName\":\"$2\",\"terminationGracePeriodSeconds\":1,\"containers\":[{\"name\":\"main\",\"image\":\"busybox:1.36\",\"command\":[\"sh\",\"-c\",\"$3\"]}]}}"
}
serve='mkdir -p /www && hostname > /www/index.html && exec busybox httpd -f -p 8080 -h /www'
pod web-b b "$serve" '{"app":"web"}' | b apply -f - >/dev/null
pod web-c c "$serve" '{"app":"web"}' | b apply -f - >/dev/null
pod client cp "exec sleep 100000" | b apply -f - >/dev/null
running() { pod_json "$1" | grep -q '"phase":"Running"'; }
all_running() { running web-b && running web-c && running client; }
check "pods of the pod network run on cp, b and c" wait_until 30 all_running
pod_ip() { pod_json "$1" | grep -o '"podIP":"[^"]*"' | cut -d'"' -f4; }
ip_c=$(pod_ip web-c) ip_b=$(pod_ip web-b) ip_client=$(pod_ip client)
check_output "a pod's IP is in its node's pod CIDR" "^${ip_c%.*}\.0/24$" node_cidr c
check_output "podIPs lists it too" "\"podIPs\":\\[\\{\"ip\":\"$ip_c\"\\}\\]" pod_json web-c

# Inside a pod: its network namespace, pinned by the agent.
pod_uid() { pod_json "$1" | grep -o '"uid":"[^"]*"' | head -n1 | cut -d'"' -f4; }
in_pod() { # in_pod BOARD POD CMD...
	local board=$1 uid
	uid=$(pod_uid "$2")
	shift 2
	nsenter --net="$test_dir/$board/run/pods/$uid/ns/net" "$@"
}
# busybox's nc as the HTTP client (its wget crashes in Debian's static build); the body is
# the last line of the answer.
http_get() { (echo 'GET / HTTP/1.0'; echo) | timeout 5 busybox nc -w 3 "$1" "$2" 2>&1 | tail -n1; }
fetch() { in_pod cp client bash -c "$(declare -f http_get); http_get $1 $2"; }
answers() { fetch "$1" "$2" | grep -q "^$3$"; }
if [ -n "${NETWORK_DEBUG:-}" ] && ! wait_until 10 answers "$ip_c" 8080 web-c; then
	for n in cp b c; do echo "== $n"; ip -n "brb-$run_id-$n" route; in_board "$n" nft list ruleset; done
	fetch "$ip_c" 8080
	tail -n 30 "$test_dir"/*.log
fi
check "a pod on cp reaches a pod on c by pod IP (host-gw route across the LAN)" wait_until 10 answers "$ip_c" 8080 web-c
check "and one on b" wait_until 10 answers "$ip_b" 8080 web-b
check_output "the pod has eth0 with its address and a default route via its bridge" "default via ${ip_client%.*}\.1 dev eth0" \
	in_pod cp client ip route

# Egress leaving the cluster is masqueraded: the LAN sees the board's address.
in_lan python3 -c "import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$lan_prefix.250', 9999)); s.listen(1); s.settimeout(20)
c, peer = s.accept(); c.sendall((peer[0] + '\\n').encode()); c.close()" &
lan_server=$!
lan_listening() { in_lan ss -Hltn "sport = :9999" | grep -q .; }
wait_until 10 lan_listening
check_output "a pod's traffic to the LAN leaves with its board's address (masquerade)" "^$(board_ip cp)$" \
	in_pod cp client timeout 5 busybox nc -w 3 "$lan_prefix.250" 9999
wait "$lan_server" 2>/dev/null

# A Service over both backends, by name through cluster DNS.
b apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
YAML
svc_ip=$(b get service web -o json | tr -d ' \n' | grep -o '"clusterIP":"[^"]*"' | cut -d'"' -f4)
check_output "the Service gets a ClusterIP from 10.43.0.0/16" '^10\.43\.[0-9]+\.[0-9]+$' echo "$svc_ip"
endpoints_two() { b get endpoints web -o json | tr -d ' \n' | grep -q "$ip_b.*$ip_c\|$ip_c.*$ip_b"; }
check "its Endpoints list both backends" wait_until 15 endpoints_two
gateway=${ip_client%.*}.1
check_output "cluster DNS on cp's bridge answers the Service's name with its ClusterIP" "Address: *$svc_ip" \
	in_pod cp client timeout 5 busybox nslookup web.default.svc.cluster.local "$gateway"
nslookup_nosuch() { in_pod cp client timeout 5 busybox nslookup nosuch.default.svc.cluster.local "$gateway"; true; }
check_output "and NXDOMAIN for a Service that does not exist" "NXDOMAIN|can't find" nslookup_nosuch
garbage() { # 512 random bytes over UDP, and over TCP
	in_pod cp client python3 -c "import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5): s.sendto(os.urandom(512), ('$gateway', 53))"
	head -c 512 /dev/urandom | in_pod cp client timeout 3 busybox nc -w 1 "$gateway" 53 >/dev/null
	true
}
garbage
check_output "queries of 512 random bytes (UDP and TCP) leave cluster DNS answering" "Address: *$svc_ip" \
	in_pod cp client timeout 5 busybox nslookup web.default.svc.cluster.local "$gateway"
check "and the agent still runs" kill -0 "${board_pid[cp]}"
resolv() { cat "$test_dir/cp/run/pods/$(pod_uid client)/resolv.conf"; }
check_output "the pod's resolv.conf names it with the search path and ndots:5" \
	"nameserver $gateway" resolv
check_output "search <ns>.svc.cluster.local svc.cluster.local cluster.local" \
	'search default.svc.cluster.local svc.cluster.local cluster.local' resolv
check_output "options ndots:5" 'ndots:5' resolv
b apply -f - >/dev/null <<'JSON'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"own-dns"},"spec":{"nodeName":"cp","terminationGracePeriodSeconds":1,
 "dnsPolicy":"None","dnsConfig":{"nameservers":["192.0.2.53"],"searches":["corp.example"],"options":[{"name":"ndots","value":"2"}]},
 "containers":[{"name":"main","image":"busybox:1.36","command":["sleep","100000"]}]}}
JSON
check "a pod with dnsPolicy None runs" wait_until 30 running own-dns
own_resolv() { in_pod cp own-dns true && cat "$test_dir/cp/run/pods/$(pod_uid own-dns)/resolv.conf" | tr '\n' ' '; }
check_output "its resolv.conf is its dnsConfig alone" \
	'^# written by bramble \(spec.dnsConfig\) nameserver 192\.0\.2\.53 search corp\.example options ndots:2 $' own_resolv
check_fails_output "dnsPolicy None without dnsConfig is refused, naming the field" \
	'spec.dnsConfig: Required value' b apply -f - <<'JSON'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"no-dns"},"spec":{"dnsPolicy":"None",
 "containers":[{"name":"main","image":"busybox:1.36"}]}}
JSON
b delete pod own-dns >/dev/null

# A client pod that asks for http://web/ (short name: resolv.conf's search path) in a loop.
pod asker cp "while true; do (echo 'GET / HTTP/1.0'; echo) | busybox nc -w 2 web 80 | busybox tail -n 1; sleep 0.2; done" |
	b apply -f - >/dev/null
asker_log() { cat "$test_dir/cp/pods/default_asker_"*/main/*.log 2>/dev/null; }
both_seen() { asker_log | grep -q '^web-b$' && asker_log | grep -q '^web-c$'; }
check "a pod on cp reaches the Service by name and traffic reaches both backends" wait_until 40 both_seen
check_output "the ClusterIP itself balances too" 'web-[bc]' fetch "$svc_ip" 80

# A backend whose readiness probe starts failing leaves the rotation.
cat <<JSON | b apply -f - >/dev/null
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-r","labels":{"app":"web"}},"spec":{"nodeName":"c",
 "terminationGracePeriodSeconds":1,"containers":[{"name":"main","image":"busybox:1.36",
 "command":["sh","-c","mkdir -p /www && hostname > /www/index.html && busybox httpd -p 8080 -h /www && touch /tmp/ready && sleep 20 && rm /tmp/ready && exec sleep 100000"],
 "readinessProbe":{"exec":{"command":["cat","/tmp/ready"]},"periodSeconds":1,"failureThreshold":1}}]}}
JSON
ready_endpoint() { b get endpoints web -o json | tr -d ' \n' | grep -o '"addresses":\[[^]]*\]' | grep -q "$(pod_ip web-r)\""; }
check "a third backend whose readiness probe passes joins the Endpoints" wait_until 20 ready_endpoint
not_ready_endpoint() { b get endpoints web -o json | tr -d ' \n' | grep -o '"notReadyAddresses":\[[^]]*\]' | grep -q "$(pod_ip web-r)\""; }
check "when its probe fails it moves to notReadyAddresses" wait_until 40 not_ready_endpoint
never_r() { for _ in 1 2 3 4 5 6 7 8; do [ "$(fetch "$svc_ip" 80)" != web-r ] || return 1; done; }
check "and within 5 s no request reaches it any more (8 in a row)" wait_until 5 never_r
b delete pod web-r >/dev/null

# NodePort from the LAN, on every board.
b apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: web-np
spec:
  type: NodePort
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
    nodePort: 30080
YAML
lan_fetch() { in_lan bash -c "$(declare -f http_get); http_get $(board_ip "$1") 30080"; }
lan_answers() { lan_fetch "$1" | grep -Eq '^web-[bc]$'; }
for board in cp b c; do
	check "NodePort 30080 answers from the LAN on $board" wait_until 15 lan_answers "$board"
done
create_np2() { # a second Service asking for NodePort 30080
	b create -f - <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: web-np2
spec:
  type: NodePort
  ports:
  - port: 80
    nodePort: 30080
YAML
}
check_fails_output "a second Service asking for NodePort 30080 is refused, naming the field" \
	'spec.ports\[0\].nodePort.*already allocated' create_np2
check_output "patched to ClusterIP, it gives its nodePort up (as Kubernetes does)" 'patched' \
	b patch service web-np -p '{"spec":{"type":"ClusterIP"}}'
lan_silent() { ! lan_answers b; }
check "and NodePort 30080 no longer answers from the LAN" wait_until 15 lan_silent
check_output "30080 is free for another Service" 'created' create_np2
b delete service web-np2 >/dev/null
b patch service web-np -p '{"spec":{"type":"NodePort","ports":[{"port":80,"targetPort":8080,"nodePort":30080}]}}' >/dev/null
check "back to NodePort 30080, it answers from the LAN again" wait_until 15 lan_answers b
check_fails_output "a clusterIP outside the service CIDR is refused, naming the field" \
	'spec.clusterIP.*not in the valid range.*10.43.0.0/16' \
	b create -f - <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: far
spec:
  clusterIP: 192.168.7.7
  ports:
  - port: 80
YAML

# A deleted backend leaves the rotation.
b delete pod web-b >/dev/null
only_c() { ! b get endpoints web -o json | tr -d ' \n' | grep -q "$ip_b"; }
check "deleting web-b takes it out of the Endpoints" wait_until 20 only_c
all_c() { for _ in 1 2 3 4 5 6 7 8; do [ "$(fetch "$svc_ip" 80)" = web-c ] || return 1; done; }
check "and within 5 s out of rotation: every request reaches web-c (8 in a row)" wait_until 5 all_c
check_output "its veth is gone from b" '^0$' bash -c "ip -n brb-$run_id-b -o link show | grep -c '^[0-9]*: bv' || true"

# An agent restart keeps pod addresses and rules.
board_kill b # b runs no pod now: nothing for its next agent to adopt
check "with b's agent killed, its rules still serve the NodePort from the LAN (kept in the kernel)" lan_answers b
routed() { in_board b bash -c "$(declare -f http_get); http_get $ip_c 8080" | grep -q '^web-c$'; }
check "and its routes still reach the pods on c" routed
board_start b
check "b's agent back: the NodePort is served there" wait_until 20 lan_answers b
board_stop c
board_start c
check "after a clean restart of c's agent its pod runs again" wait_until 30 running web-c
check_output "with the same pod IP" "^$ip_c$" pod_ip web-c
uid_c=$(pod_uid web-c)
from_web_c() { nsenter --net="$test_dir/c/run/pods/$uid_c/ns/net" bash -c "$(declare -f http_get); http_get $1 $2"; }
hairpin() { from_web_c "$svc_ip" 80 | grep -q '^web-c$'; }
check "web-c reaches itself through its Service's address (hairpin)" wait_until 10 hairpin
check_output "and the Service reaches it" '^web-c$' fetch "$svc_ip" 80

# The userspace proxy, as on a board without nf_tables.
board_stop b
printf '[network]\nproxy-mode = userspace\n' >>"$test_dir/b/bramble.conf"
board_start b
check "with proxy-mode = userspace, b serves the NodePort from the LAN" wait_until 20 lan_answers b
user_cip() { in_board b bash -c "$(declare -f http_get); http_get $svc_ip 80" | grep -q '^web-c$'; }
check "and the ClusterIP" wait_until 10 user_cip
check_output "and its nftables table is gone" '^$' bash -c "nsenter --net=/run/netns/brb-$run_id-b nft list tables | grep bramble_proxy; true"

# Without a control plane, a restarted agent brings its pod network back from the pod CIDR
# it had (edge autonomy: cached pods can run again).
gateway_c=${ip_c%.*}.1
board_stop c
board_stop cp
board_start c
bridge_back() { ip -n "brb-$run_id-c" -br addr show bramble0 | grep -q "$gateway_c/24"; }
check "with the control plane down, c's restarted agent sets up its bridge from the last pod CIDR" \
	wait_until 15 bridge_back

# A reboot of c, the control plane still down: every process gone, the kernel's network state
# too (bridge, routes, nftables tables) and the state directory (a tmpfs) empty. The pods come
# back from the kubelet's cache, routes and Services from the network's saved view.
board_cleanup c
rm -rf "$test_dir/c/run"
ip -n "brb-$run_id-c" link del bramble0 2>/dev/null
ip -n "brb-$run_id-c" link del bramble-svc 2>/dev/null
ip -n "brb-$run_id-c" route flush proto 0x62
in_board c nft flush ruleset
route_to_b() { ip -n "brb-$run_id-c" route | grep -q "^$cidr_b via $(board_ip b) "; }
no_route_to_b() { ! route_to_b; }
check "after the simulated reboot c has no route to b's pods" no_route_to_b
board_start c
check "with the control plane down, the rebooted c routes to b's pods again (its saved view)" wait_until 15 route_to_b
c_rules() { in_board c nft list table ip bramble_proxy 2>/dev/null | tr -d '\n' | grep -q "ip daddr $svc_ip tcp dport 80 goto.*dnat to $ip_c:8080"; }
check "and its Service's rules, to web-c's address (from the saved view)" wait_until 15 c_rules
check "with web-c running again from the cache, reaching itself through its Service" wait_until 30 hairpin
board_start cp
check "the control plane is back" wait_until 20 ready_nodes

# Stopping the boards (pods deleted first) leaves nothing behind.
b delete pod --all >/dev/null
gone_all() { ! b get pods 2>/dev/null | grep -q .; }
check "the pods are deleted" wait_until 30 gone_all
for board in b c cp; do board_stop "$board"; done
leftovers() { # leftovers BOARD: links, routes and nftables tables Bramble made there
	local ns=brb-$run_id-$1
	ip -n "$ns" -o link show | grep -E ': (bramble0|bramble-svc|bv[0-9a-f]+)[:@]'
	ip -n "$ns" route show proto 0x62
	nsenter --net="/run/netns/$ns" nft list tables | grep bramble
	return 0
}
for board in cp b c; do
	check_output "nothing left on $board after a clean stop (bridge, veths, routes, tables)" '^$' leftovers "$board"
done
