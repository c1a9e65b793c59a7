/* agent/podnet in a network namespace of the test's own (each test is its own process). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/podnet.h"
#include "platform/error.h"
#include "platform/netlink.h"
#include "platform/nftables.h"
#include "tests/unit/unit.h"

static struct in_addr ip(const char *text)
{
	struct in_addr a;
	CHECK(inet_pton(AF_INET, text, &a) == 1);
	return a;
}

static int other_namespace(void)
{
	int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	CHECK_OK(unshare(CLONE_NEWNET));
	int there = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	CHECK_OK(setns(here, CLONE_NEWNET));
	close(here);
	return there;
}

/* A UDP socket bound inside the namespace netns_fd. */
static int udp_socket_in(int netns_fd, struct in_addr address, uint16_t port)
{
	int saved;
	struct error err = { 0 };
	CHECK_OK(netlink_netns_enter(netns_fd, &saved, &err));
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = address };
	CHECK_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	CHECK_OK(netlink_netns_leave(saved, &err));
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static bool nftables_expected(void)
{
#if defined(__x86_64__)
	return true;
#else
	return false; /* the ARM unit tests run under qemu-user, which has no NETLINK_NETFILTER */
#endif
}

static const struct podnet_config config = {
	.bridge = "bramble-t0",
	.pod_cidr = "10.42.3.0/24",
	.cluster_cidr = "10.42.0.0/16",
	.table = "bramble_podnet_test",
	.masquerade = false,
};

TEST(podnet_attach_pod_and_talk)
{
	CHECK_OK(unshare(CLONE_NEWNET));
	struct error err = { 0 };
	struct podnet *podnet;
	CHECK_OK(podnet_setup(&config, &podnet, &err));
	CHECK_STR(inet_ntoa(podnet_gateway(podnet)), "10.42.3.1");
	int pod = other_namespace();
	CHECK_OK(podnet_attach(podnet, "default/web-1", pod, ip("10.42.3.2"), &err));
	/* again (a retry after a crash): replaced, not refused */
	CHECK_OK(podnet_attach(podnet, "default/web-1", pod, ip("10.42.3.2"), &err));

	struct netlink *nl, *inside;
	CHECK_OK(netlink_open(-1, &nl, &err));
	CHECK_OK(netlink_open(pod, &inside, &err));
	char host[PODNET_VETH_NAME_MAX];
	podnet_host_veth_name("default/web-1", host);
	CHECK(strncmp(host, "bv", 2) == 0 && strlen(host) == 10);
	struct netlink_link link, bridge;
	CHECK_OK(netlink_link_get(nl, host, &link, &err));
	CHECK_OK(netlink_link_get(nl, "bramble-t0", &bridge, &err));
	CHECK_INT(link.master, ==, bridge.index);
	CHECK(link.flags & IFF_UP);
	CHECK_OK(netlink_link_get(inside, "eth0", &link, &err));
	CHECK(link.flags & IFF_UP);
	struct netlink_route *routes;
	size_t count;
	CHECK_OK(netlink_route_list(inside, 0, &routes, &count, &err));
	bool has_default = false;
	for (size_t i = 0; i < count; i++)
		if (routes[i].prefix_length == 0 && routes[i].gateway.s_addr == ip("10.42.3.1").s_addr)
			has_default = true;
	CHECK(has_default);
	free(routes);

	/* the host reaches the pod and the pod the host, through the bridge */
	int in_pod = udp_socket_in(pod, ip("10.42.3.2"), 5353);
	int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int on_host = udp_socket_in(here, ip("10.42.3.1"), 5354);
	struct sockaddr_in to_pod = { .sin_family = AF_INET, .sin_port = htons(5353), .sin_addr = ip("10.42.3.2") };
	CHECK_INT(sendto(on_host, "ping", 4, 0, (struct sockaddr *)&to_pod, sizeof(to_pod)), ==, 4);
	char buf[16];
	struct sockaddr_in from;
	socklen_t fromlen = sizeof(from);
	CHECK_INT(recvfrom(in_pod, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen), ==, 4);
	CHECK_INT(sendto(in_pod, "pong", 4, 0, (struct sockaddr *)&from, fromlen), ==, 4);
	CHECK_INT(recv(on_host, buf, sizeof(buf), 0), ==, 4);
	CHECK(memcmp(buf, "pong", 4) == 0);

	CHECK_OK(podnet_detach(podnet, "default/web-1", &err));
	CHECK_INT(netlink_link_get(nl, host, &link, &err), ==, -ENODEV);
	CHECK_INT(netlink_link_get(inside, "eth0", &link, &err), ==, -ENODEV);
	CHECK_OK(podnet_detach(podnet, "default/web-1", &err)); /* twice: fine */

	/* a wrong address is refused */
	CHECK_INT(podnet_attach(podnet, "p", pod, ip("10.42.4.2"), &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "10.42.4.2 is not a pod address of this board");
	CHECK_INT(podnet_attach(podnet, "p", pod, ip("10.42.3.1"), &err), ==, -EINVAL);
	podnet_free(podnet);

	/* a restart adopts the bridge */
	CHECK_OK(podnet_setup(&config, &podnet, &err));
	CHECK_OK(podnet_attach(podnet, "default/web-2", pod, ip("10.42.3.3"), &err));
	CHECK_OK(podnet_teardown(podnet, &err));
	CHECK_INT(netlink_link_get(nl, "bramble-t0", &link, &err), ==, -ENODEV);
	CHECK_INT(netlink_link_get(inside, "eth0", &link, &err), ==, -ENODEV);
	podnet_free(podnet);
	netlink_close(nl);
	netlink_close(inside);
	close(pod);
	close(here);
	close(in_pod);
	close(on_host);
}

TEST(podnet_routes_sync)
{
	CHECK_OK(unshare(CLONE_NEWNET));
	struct error err = { 0 };
	struct netlink *nl;
	CHECK_OK(netlink_open(-1, &nl, &err));
	CHECK_OK(netlink_veth_add(nl, "lan0", "lan1", -1, &err));
	CHECK_OK(netlink_link_set_up(nl, "lan0", true, &err));
	CHECK_OK(netlink_link_set_up(nl, "lan1", true, &err));
	CHECK_OK(netlink_address_add(nl, "lan0", ip("192.168.50.1"), 24, &err));
	/* a route of someone else's, which a sync must leave alone */
	struct netlink_route foreign = { .destination = ip("10.99.0.0"),
		                         .prefix_length = 16,
		                         .gateway = ip("192.168.50.9") };
	CHECK_OK(netlink_route_add(nl, &foreign, &err));

	struct podnet *podnet;
	CHECK_OK(podnet_setup(&config, &podnet, &err));
	struct podnet_peer peers[] = {
		{ ip("10.42.1.0"), 24, ip("192.168.50.2") },
		{ ip("10.42.2.0"), 24, ip("192.168.50.3") },
	};
	CHECK_OK(podnet_sync_routes(podnet, peers, 2, &err));
	CHECK_OK(podnet_sync_routes(podnet, peers, 2, &err));
	struct netlink_route *routes;
	size_t count;
	CHECK_OK(netlink_route_list(nl, NETLINK_ROUTE_PROTOCOL_BRAMBLE, &routes, &count, &err));
	CHECK_INT(count, ==, 2);
	free(routes);

	/* node 2 moved, node 1 left */
	struct podnet_peer moved[] = { { ip("10.42.2.0"), 24, ip("192.168.50.4") } };
	CHECK_OK(podnet_sync_routes(podnet, moved, 1, &err));
	CHECK_OK(netlink_route_list(nl, NETLINK_ROUTE_PROTOCOL_BRAMBLE, &routes, &count, &err));
	CHECK_INT(count, ==, 1);
	CHECK_INT(routes[0].destination.s_addr, ==, ip("10.42.2.0").s_addr);
	CHECK_INT(routes[0].gateway.s_addr, ==, ip("192.168.50.4").s_addr);
	CHECK_STR(routes[0].device, "lan0");
	free(routes);

	/* bad sets change nothing */
	struct podnet_peer overlapping[] = { { ip("10.42.3.0"), 24, ip("192.168.50.5") } };
	CHECK_INT(podnet_sync_routes(podnet, overlapping, 1, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "overlaps this board's pod CIDR");
	struct podnet_peer twice[] = { { ip("10.42.5.0"), 24, ip("192.168.50.5") },
		                       { ip("10.42.5.128"), 25, ip("192.168.50.6") } };
	CHECK_INT(podnet_sync_routes(podnet, twice, 2, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "overlaps another peer's");
	CHECK_OK(netlink_route_list(nl, NETLINK_ROUTE_PROTOCOL_BRAMBLE, &routes, &count, &err));
	CHECK_INT(count, ==, 1);
	free(routes);

	CHECK_OK(podnet_teardown(podnet, &err));
	CHECK_OK(netlink_route_list(nl, NETLINK_ROUTE_PROTOCOL_BRAMBLE, &routes, &count, &err));
	CHECK_INT(count, ==, 0);
	free(routes);
	CHECK_OK(netlink_route_list(nl, 0, &routes, &count, &err));
	bool foreign_kept = false;
	for (size_t i = 0; i < count; i++)
		foreign_kept |= routes[i].destination.s_addr == ip("10.99.0.0").s_addr;
	CHECK(foreign_kept);
	free(routes);
	podnet_free(podnet);
	netlink_close(nl);
}

TEST(podnet_bad_config)
{
	CHECK_OK(unshare(CLONE_NEWNET));
	struct error err = { 0 };
	struct podnet *podnet;
	struct podnet_config c = config;
	c.pod_cidr = "10.50.3.0/24";
	CHECK_INT(podnet_setup(&c, &podnet, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "pod CIDR 10.50.3.0/24 is not inside the cluster CIDR 10.42.0.0/16");
	c.pod_cidr = "10.42.3.7/24";
	CHECK_INT(podnet_setup(&c, &podnet, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "pod CIDR");
	c = config;
	c.bridge = "lo";
	CHECK_INT(podnet_setup(&c, &podnet, &err), ==, -EEXIST);
	CHECK_CONTAINS(err.message, "lo exists and is not a bridge");
}

TEST(podnet_masquerade_table)
{
	CHECK_OK(unshare(CLONE_NEWNET));
	struct error err = { 0 };
	struct podnet *podnet;
	struct podnet_config c = config;
	c.masquerade = true;
	if (!nftables_expected()) {
		CHECK(podnet_setup(&c, &podnet, &err) < 0);
		CHECK_CONTAINS(err.message, "NETLINK_NETFILTER");
		return;
	}
	CHECK_OK(podnet_setup(&c, &podnet, &err));
	struct netlink *netfilter;
	CHECK_OK(netlink_open_netfilter(-1, &netfilter, &err));
	CHECK_OK(nft_table_exists(netfilter, NFPROTO_IPV4, "bramble_podnet_test", &err));
	podnet_free(podnet);
	CHECK_OK(podnet_setup(&c, &podnet, &err)); /* replaced, not doubled */
	CHECK_OK(podnet_teardown(podnet, &err));
	CHECK_INT(nft_table_exists(netfilter, NFPROTO_IPV4, "bramble_podnet_test", &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "bramble_podnet_test");
	podnet_free(podnet);
	netlink_close(netfilter);
}
