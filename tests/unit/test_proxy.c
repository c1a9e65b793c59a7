/* agent/proxy: validation, and both dataplanes carrying real packets inside a network
 * namespace of the test's own. Endpoints are sockets on local addresses of a veth. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/proxy.h"
#include "platform/error.h"
#include "platform/loop.h"
#include "platform/netlink.h"
#include "platform/nftables.h"
#include "tests/unit/unit.h"

static struct in_addr ip(const char *text)
{
	struct in_addr a;
	CHECK(inet_pton(AF_INET, text, &a) == 1);
	return a;
}

static bool nftables_expected(void)
{
#if defined(__x86_64__)
	return true;
#else
	return false; /* the ARM unit tests run under qemu-user, which has no NETLINK_NETFILTER */
#endif
}

/* A namespace with lan0 holding 10.42.3.2 and .3 (the "endpoints") and a route to the
 * service CIDR, so that traffic to a ClusterIP is routed before it is translated. */
static void network(void)
{
	CHECK_OK(unshare(CLONE_NEWNET));
	struct netlink *nl;
	struct error err = { 0 };
	CHECK_OK(netlink_open(-1, &nl, &err));
	CHECK_OK(netlink_link_set_up(nl, "lo", true, &err));
	CHECK_OK(netlink_veth_add(nl, "lan0", "lan1", -1, &err));
	CHECK_OK(netlink_link_set_up(nl, "lan1", true, &err));
	CHECK_OK(netlink_link_set_up(nl, "lan0", true, &err));
	CHECK_OK(netlink_address_add(nl, "lan0", ip("10.42.3.2"), 24, &err));
	CHECK_OK(netlink_address_add(nl, "lan0", ip("10.42.3.3"), 24, &err));
	struct netlink_route route = { .destination = ip("10.43.0.0"), .prefix_length = 16 };
	strcpy(route.device, "lan0");
	CHECK_OK(netlink_route_add(nl, &route, &err));
	netlink_close(nl);
}

static int bound(int type, const char *address, uint16_t port)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	CHECK(fd >= 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = ip(address) };
	CHECK_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	if (type == SOCK_STREAM)
		CHECK_OK(listen(fd, 16));
	return fd;
}

static const struct proxy_config base_config = {
	.table = "bramble_proxy_test",
	.service_cidr = "10.43.0.0/16",
	.pod_cidr = "10.42.3.0/24",
	.service_link = "bramble-svct",
};

/* Runs the loop (when there is one) until fd is readable or 5 s pass. */
static bool wait_readable(struct loop *loop, int fd)
{
	for (int i = 0; i < 500; i++) {
		if (loop)
			loop_run_once(loop, 0);
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 10) > 0)
			return true;
	}
	return false;
}

/* UDP datagrams from fresh client sockets: both endpoints answer, always as the ClusterIP. */
static void check_udp_balancing(struct loop *loop, const char *cluster_ip, uint16_t port)
{
	int endpoints[2] = { bound(SOCK_DGRAM, "10.42.3.2", 5301), bound(SOCK_DGRAM, "10.42.3.3", 5302) };
	int seen[2] = { 0, 0 };
	for (int i = 0; i < 40; i++) {
		int client = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = ip(cluster_ip) };
		CHECK_INT(sendto(client, "q", 1, 0, (struct sockaddr *)&to, sizeof(to)), ==, 1);
		int got = -1;
		for (int w = 0; w < 500 && got < 0; w++) {
			if (loop)
				loop_run_once(loop, 0);
			for (int e = 0; e < 2; e++) {
				char buf[8];
				struct sockaddr_in from;
				socklen_t fromlen = sizeof(from);
				if (recvfrom(endpoints[e], buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen) ==
				    1) {
					got = e;
					CHECK_INT(sendto(endpoints[e], "a", 1, 0, (struct sockaddr *)&from, fromlen),
					          ==, 1);
				}
			}
			if (got < 0)
				usleep(10000);
		}
		CHECK(got >= 0);
		seen[got]++;
		CHECK(wait_readable(loop, client));
		struct sockaddr_in from;
		socklen_t fromlen = sizeof(from);
		char buf[8];
		CHECK_INT(recvfrom(client, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen), ==, 1);
		CHECK_INT(from.sin_addr.s_addr, ==, ip(cluster_ip).s_addr);
		CHECK_INT(ntohs(from.sin_port), ==, port);
		close(client);
	}
	CHECK_INT(seen[0], >, 0);
	CHECK_INT(seen[1], >, 0);
	close(endpoints[0]);
	close(endpoints[1]);
}

/* One TCP connection through the ClusterIP, echoed by the endpoint. */
static void check_tcp(struct loop *loop, const char *cluster_ip, uint16_t port)
{
	int server = bound(SOCK_STREAM, "10.42.3.2", 8080);
	int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = ip(cluster_ip) };
	int r = connect(client, (struct sockaddr *)&to, sizeof(to));
	CHECK(r == 0 || errno == EINPROGRESS);
	CHECK(wait_readable(loop, server));
	int accepted = accept4(server, NULL, NULL, SOCK_CLOEXEC);
	CHECK(accepted >= 0);
	for (int i = 0; i < 100 && send(client, "hello", 5, MSG_NOSIGNAL) < 0; i++) {
		if (loop)
			loop_run_once(loop, 0);
		usleep(10000);
	}
	CHECK(wait_readable(loop, accepted));
	char buf[16];
	CHECK_INT(recv(accepted, buf, sizeof(buf), 0), ==, 5);
	CHECK_INT(send(accepted, "world", 5, 0), ==, 5);
	CHECK(wait_readable(loop, client));
	CHECK_INT(recv(client, buf, sizeof(buf), 0), ==, 5);
	CHECK(memcmp(buf, "world", 5) == 0);
	close(accepted);
	close(client);
	close(server);
}

static const struct proxy_endpoint udp_endpoints[] = { { { 0 }, 5301 }, { { 0 }, 5302 } };

static void set_dns_and_web(struct proxy *proxy)
{
	struct error err = { 0 };
	struct proxy_endpoint udp[2] = { udp_endpoints[0], udp_endpoints[1] };
	udp[0].address = ip("10.42.3.2");
	udp[1].address = ip("10.42.3.3");
	struct proxy_service_port dns_ports[] = {
		{ .name = "dns", .protocol = IPPROTO_UDP, .port = 53, .endpoints = udp, .endpoint_count = 2 }
	};
	struct proxy_service dns = { .namespace = "kube-system",
		                     .name = "dns",
		                     .cluster_ip = ip("10.43.0.10"),
		                     .ports = dns_ports,
		                     .port_count = 1 };
	CHECK_OK(proxy_set_service(proxy, &dns, &err));
	struct proxy_endpoint web_endpoint = { ip("10.42.3.2"), 8080 };
	struct proxy_service_port web_ports[] = { { .name = "http",
		                                    .protocol = IPPROTO_TCP,
		                                    .port = 80,
		                                    .node_port = 30080,
		                                    .endpoints = &web_endpoint,
		                                    .endpoint_count = 1 } };
	struct proxy_service web = { .namespace = "default",
		                     .name = "web",
		                     .cluster_ip = ip("10.43.0.20"),
		                     .ports = web_ports,
		                     .port_count = 1,
		                     .affinity_client_ip = true };
	CHECK_OK(proxy_set_service(proxy, &web, &err));
	CHECK_INT(proxy_service_count(proxy), ==, 2);
}

TEST(proxy_nftables_dataplane)
{
	network();
	struct error err = { 0 };
	struct proxy *proxy;
	struct proxy_config config = base_config;
	config.mode = "nftables";
	if (!nftables_expected()) {
		CHECK(proxy_new(&config, &proxy, &err) < 0);
		CHECK_CONTAINS(err.message, "NETLINK_NETFILTER");
		return;
	}
	CHECK_OK(proxy_new(&config, &proxy, &err));
	CHECK_STR(proxy_mode(proxy), "nftables");
	set_dns_and_web(proxy);
	check_udp_balancing(NULL, "10.43.0.10", 53);
	check_tcp(NULL, "10.43.0.20", 80);

	struct netlink *netfilter;
	CHECK_OK(netlink_open_netfilter(-1, &netfilter, &err));
	CHECK_OK(nft_table_exists(netfilter, NFPROTO_IPV4, "bramble_proxy_test", &err));
	CHECK_OK(proxy_remove_service(proxy, "kube-system", "dns", &err));
	CHECK_OK(proxy_remove_service(proxy, "kube-system", "dns", &err));
	CHECK_INT(proxy_service_count(proxy), ==, 1);
	check_tcp(NULL, "10.43.0.20", 80);
	CHECK_OK(proxy_shutdown(proxy, &err));
	CHECK_INT(nft_table_exists(netfilter, NFPROTO_IPV4, "bramble_proxy_test", &err), ==, -ENOENT);
	proxy_free(proxy);
	netlink_close(netfilter);
}

TEST(proxy_userspace_dataplane)
{
	network();
	struct error err = { 0 };
	struct loop *loop;
	CHECK_OK(loop_new(&loop));
	struct proxy *proxy;
	struct proxy_config config = base_config;
	config.mode = "userspace";
	config.loop = loop;
	CHECK_OK(proxy_new(&config, &proxy, &err));
	CHECK_STR(proxy_mode(proxy), "userspace");
	set_dns_and_web(proxy);
	check_udp_balancing(loop, "10.43.0.10", 53);
	check_tcp(loop, "10.43.0.20", 80);
	set_dns_and_web(proxy); /* the same again: listeners kept */
	check_tcp(loop, "10.43.0.20", 80);
	CHECK_OK(proxy_remove_service(proxy, "default", "web", &err));
	int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr = ip("10.43.0.20") };
	CHECK(connect(client, (struct sockaddr *)&to, sizeof(to)) < 0); /* the ClusterIP is gone */
	close(client);
	CHECK_OK(proxy_shutdown(proxy, &err));
	struct netlink *nl;
	CHECK_OK(netlink_open(-1, &nl, &err));
	CHECK_INT(netlink_link_get(nl, "bramble-svct", NULL, &err), ==, -ENODEV);
	netlink_close(nl);
	proxy_free(proxy);
	loop_free(loop);
}

TEST(proxy_refuses_bad_services_and_keeps_the_old)
{
	network();
	struct error err = { 0 };
	struct loop *loop;
	CHECK_OK(loop_new(&loop));
	struct proxy *proxy;
	struct proxy_config config = base_config;
	config.mode = nftables_expected() ? "nftables" : "userspace";
	config.loop = loop;
	CHECK_OK(proxy_new(&config, &proxy, &err));
	set_dns_and_web(proxy);

	struct proxy_endpoint endpoint = { ip("10.42.3.3"), 8080 };
	struct proxy_service_port ports[] = {
		{ .protocol = IPPROTO_TCP, .port = 80, .node_port = 30080, .endpoints = &endpoint, .endpoint_count = 1 }
	};
	struct proxy_service other = {
		.namespace = "default", .name = "other", .cluster_ip = ip("10.43.0.30"), .ports = ports, .port_count = 1
	};
	CHECK_INT(proxy_set_service(proxy, &other, &err), ==, -EEXIST);
	CHECK_CONTAINS(err.message, "NodePort 30080/TCP is taken by default/web");
	CHECK_STR(err.field, "spec.ports[0].nodePort");
	ports[0].node_port = 40000;
	CHECK_INT(proxy_set_service(proxy, &other, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "NodePort 40000 is outside 30000-32767");
	ports[0].node_port = 0;
	other.cluster_ip = ip("10.44.0.30");
	CHECK_INT(proxy_set_service(proxy, &other, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "10.44.0.30 is not in the service CIDR 10.43.0.0/16");
	other.cluster_ip = ip("10.43.0.20");
	CHECK_INT(proxy_set_service(proxy, &other, &err), ==, -EEXIST);
	CHECK_CONTAINS(err.message, "already the ClusterIP of default/web");
	other.cluster_ip = ip("10.43.0.30");
	ports[0].protocol = 1;
	CHECK_INT(proxy_set_service(proxy, &other, &err), ==, -EINVAL);
	ports[0].protocol = IPPROTO_TCP;
	other.port_count = 0;
	CHECK_INT(proxy_set_service(proxy, &other, &err), ==, -EINVAL);
	CHECK_INT(proxy_service_count(proxy), ==, 2);
	/* what was there still works */
	check_tcp(loop, "10.43.0.20", 80);
	proxy_shutdown(proxy, &err);
	proxy_free(proxy);
	loop_free(loop);

	config.service_cidr = "10.42.0.0/16";
	CHECK_INT(proxy_new(&config, &proxy, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "overlaps the pod CIDR");
	config.service_cidr = "10.43.0.0/16";
	config.mode = "ipvs";
	CHECK_INT(proxy_new(&config, &proxy, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "proxy mode 'ipvs'");
}

/* An agent restart: the next proxy leaves the table of the one before serving until it has
 * been told every service again (proxy_defer ... proxy_commit), then replaces it at once. */
TEST(proxy_restart_keeps_the_rules_until_commit)
{
	if (!nftables_expected())
		return; /* qemu-user has no NETLINK_NETFILTER: proxy_nftables_dataplane checks the refusal */
	network();
	struct error err = { 0 };
	struct proxy *first, *second;
	struct proxy_config config = base_config;
	config.mode = "nftables";
	CHECK_OK(proxy_new(&config, &first, &err));
	set_dns_and_web(first);
	proxy_free(first); /* a crash: no proxy_shutdown */

	CHECK_OK(proxy_new(&config, &second, &err));
	proxy_defer(second);
	check_tcp(NULL, "10.43.0.20", 80); /* the first run's rules, still there */
	struct proxy_endpoint web_endpoint = { ip("10.42.3.2"), 8080 };
	struct proxy_service_port web_ports[] = {
		{ .protocol = IPPROTO_TCP, .port = 81, .endpoints = &web_endpoint, .endpoint_count = 1 }
	};
	struct proxy_service web = { .namespace = "default",
		                     .name = "web",
		                     .cluster_ip = ip("10.43.0.21"),
		                     .ports = web_ports,
		                     .port_count = 1 };
	CHECK_OK(proxy_set_service(second, &web, &err));
	check_tcp(NULL, "10.43.0.20", 80); /* deferred: nothing applied yet */
	CHECK_OK(proxy_commit(second, &err));
	check_tcp(NULL, "10.43.0.21", 81);
	/* the old rules are gone: a connection to the old ClusterIP reaches no endpoint */
	int server = bound(SOCK_STREAM, "10.42.3.2", 8080);
	int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr = ip("10.43.0.20") };
	connect(client, (struct sockaddr *)&to, sizeof(to));
	struct pollfd p = { server, POLLIN, 0 };
	CHECK_INT(poll(&p, 1, 300), ==, 0);
	close(client);
	close(server);
	CHECK_OK(proxy_shutdown(second, &err));
	proxy_free(second);
}
