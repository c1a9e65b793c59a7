/* platform/netlink against the real kernel: every test runs in a network namespace of its
 * own (each test is its own process), so nothing it makes outlives it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/error.h"
#include "platform/netlink.h"
#include "tests/unit/unit.h"

static struct in_addr ip(const char *text)
{
	struct in_addr a;
	CHECK(inet_pton(AF_INET, text, &a) == 1);
	return a;
}

/* A private namespace for the test, and a handle on it. */
static struct netlink *fresh_namespace(void)
{
	CHECK_OK(unshare(CLONE_NEWNET));
	struct netlink *nl = NULL;
	struct error err = { 0 };
	CHECK_OK(netlink_open(-1, &nl, &err));
	CHECK_OK(netlink_link_set_up(nl, "lo", true, &err));
	return nl;
}

/* A second namespace, held only by the returned fd; the caller stays where it was. */
static int other_namespace(void)
{
	int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	CHECK(here >= 0);
	CHECK_OK(unshare(CLONE_NEWNET));
	int there = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	CHECK(there >= 0);
	CHECK_OK(setns(here, CLONE_NEWNET));
	close(here);
	return there;
}

TEST(netlink_bridge_address_mtu_up)
{
	struct netlink *nl = fresh_namespace();
	struct error err = { 0 };
	CHECK_OK(netlink_bridge_add(nl, "br-test", &err));
	CHECK_INT(netlink_bridge_add(nl, "br-test", &err), ==, -EEXIST);
	CHECK_CONTAINS(err.message, "create bridge br-test: File exists");

	struct netlink_link link;
	CHECK_OK(netlink_link_get(nl, "br-test", &link, &err));
	CHECK_STR(link.kind, "bridge");
	CHECK_INT(link.flags & IFF_UP, ==, 0);
	CHECK_OK(netlink_link_set_mtu(nl, "br-test", 1400, &err));
	CHECK_OK(netlink_link_set_up(nl, "br-test", true, &err));
	CHECK_OK(netlink_link_get(nl, "br-test", &link, &err));
	CHECK_INT(link.mtu, ==, 1400);
	CHECK(link.flags & IFF_UP);
	CHECK_INT(netlink_link_set_mtu(nl, "br-test", 10, &err), ==, -EINVAL);

	CHECK_OK(netlink_address_add(nl, "br-test", ip("10.42.3.1"), 24, &err));
	CHECK_OK(netlink_address_add(nl, "br-test", ip("10.42.3.1"), 24, &err)); /* again: fine */
	struct netlink_address *addresses;
	size_t count;
	CHECK_OK(netlink_address_list(nl, "br-test", &addresses, &count, &err));
	CHECK_INT(count, ==, 1);
	CHECK_INT(addresses[0].address.s_addr, ==, ip("10.42.3.1").s_addr);
	CHECK_INT(addresses[0].prefix_length, ==, 24);
	free(addresses);
	CHECK_OK(netlink_address_delete(nl, "br-test", ip("10.42.3.1"), 24, &err));
	CHECK_INT(netlink_address_delete(nl, "br-test", ip("10.42.3.1"), 24, &err), ==, -EADDRNOTAVAIL);
	CHECK_CONTAINS(err.message, "delete address 10.42.3.1/24 from br-test");
	CHECK_OK(netlink_address_list(nl, "br-test", &addresses, &count, &err));
	CHECK_INT(count, ==, 0);
	free(addresses);

	CHECK_OK(netlink_link_delete(nl, "br-test", &err));
	CHECK_INT(netlink_link_get(nl, "br-test", &link, &err), ==, -ENODEV);
	CHECK_CONTAINS(err.message, "look up link br-test");
	CHECK_INT(netlink_link_delete(nl, "br-test", &err), ==, -ENODEV);
	netlink_close(nl);
}

TEST(netlink_bad_names)
{
	struct netlink *nl = fresh_namespace();
	struct error err = { 0 };
	CHECK_INT(netlink_bridge_add(nl, "a-name-that-is-too-long", &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "not a valid interface name");
	CHECK_INT(netlink_bridge_add(nl, "", &err), ==, -EINVAL);
	CHECK_INT(netlink_link_set_up(nl, "no/slash", true, &err), ==, -EINVAL);
	CHECK_INT(netlink_link_set_up(nl, "missing0", true, &err), ==, -ENODEV);
	CHECK_CONTAINS(err.message, "missing0");
	netlink_close(nl);
}

TEST(netlink_veth_into_namespace_master_rename)
{
	struct netlink *nl = fresh_namespace();
	struct error err = { 0 };
	int pod = other_namespace();
	CHECK_OK(netlink_bridge_add(nl, "br0", &err));
	CHECK_OK(netlink_veth_add(nl, "vethhost", "eth0", pod, &err));
	CHECK_OK(netlink_link_set_master(nl, "vethhost", "br0", &err));
	struct netlink_link link, bridge;
	CHECK_OK(netlink_link_get(nl, "vethhost", &link, &err));
	CHECK_OK(netlink_link_get(nl, "br0", &bridge, &err));
	CHECK_STR(link.kind, "veth");
	CHECK_INT(link.master, ==, bridge.index);
	CHECK_INT(netlink_link_get(nl, "eth0", &link, &err), ==, -ENODEV);
	/* hairpin mode on the port, as iproute2 reads it back in this namespace */
	CHECK_OK(netlink_bridge_port_set_hairpin(nl, "vethhost", true, &err));
	CHECK_INT(system("bridge -d link show dev vethhost | grep -q 'hairpin on'"), ==, 0);
	CHECK_OK(netlink_bridge_port_set_hairpin(nl, "vethhost", false, &err));
	CHECK_INT(system("bridge -d link show dev vethhost | grep -q 'hairpin off'"), ==, 0);
	CHECK_INT(netlink_bridge_port_set_hairpin(nl, "nosuch", true, &err), ==, -ENODEV);

	/* the peer is in the pod's namespace, reachable through a socket opened there */
	struct netlink *inside = NULL;
	CHECK_OK(netlink_open(pod, &inside, &err));
	CHECK_OK(netlink_link_get(inside, "eth0", &link, &err));
	CHECK_STR(link.kind, "veth");
	CHECK_OK(netlink_link_rename(inside, "eth0", "eth1", &err));
	CHECK_INT(netlink_link_get(inside, "eth0", &link, &err), ==, -ENODEV);
	CHECK_OK(netlink_link_get(inside, "eth1", &link, &err));

	/* and back out by fd */
	int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	CHECK_OK(netlink_link_set_netns(inside, "eth1", here, &err));
	CHECK_OK(netlink_link_get(nl, "eth1", &link, &err));
	CHECK_OK(netlink_link_set_master(nl, "vethhost", NULL, &err));
	CHECK_OK(netlink_link_get(nl, "vethhost", &link, &err));
	CHECK_INT(link.master, ==, 0);

	/* deleting one end removes both */
	CHECK_OK(netlink_link_delete(nl, "vethhost", &err));
	CHECK_INT(netlink_link_get(nl, "eth1", &link, &err), ==, -ENODEV);

	struct netlink_link *links;
	size_t count;
	CHECK_OK(netlink_link_list(nl, &links, &count, &err));
	CHECK_INT(count, ==, 2); /* lo, br0 */
	free(links);
	netlink_close(inside);
	netlink_close(nl);
	close(here);
	close(pod);
}

TEST(netlink_routes)
{
	struct netlink *nl = fresh_namespace();
	struct error err = { 0 };
	/* (a veth, not a dummy: not every kernel has the dummy driver) */
	CHECK_OK(netlink_veth_add(nl, "lan0", "lan1", -1, &err));
	CHECK_OK(netlink_link_set_up(nl, "lan1", true, &err));
	CHECK_OK(netlink_link_set_up(nl, "lan0", true, &err));
	CHECK_OK(netlink_address_add(nl, "lan0", ip("192.168.77.10"), 24, &err));

	struct netlink_route route = { .destination = ip("10.42.2.0"),
		                       .prefix_length = 24,
		                       .gateway = ip("192.168.77.12"),
		                       .protocol = NETLINK_ROUTE_PROTOCOL_BRAMBLE };
	CHECK_OK(netlink_route_add(nl, &route, &err));
	CHECK_INT(netlink_route_add(nl, &route, &err), ==, -EEXIST);
	CHECK_CONTAINS(err.message, "add route 10.42.2.0/24 via 192.168.77.12");
	route.gateway = ip("192.168.77.13");
	CHECK_OK(netlink_route_replace(nl, &route, &err));

	/* a gateway the kernel cannot reach without onlink */
	struct netlink_route onlink = { .destination = ip("10.42.9.0"),
		                        .prefix_length = 24,
		                        .gateway = ip("172.30.0.1"),
		                        .protocol = NETLINK_ROUTE_PROTOCOL_BRAMBLE };
	strcpy(onlink.device, "lan0");
	CHECK(netlink_route_add(nl, &onlink, &err) < 0);
	onlink.onlink = true;
	CHECK_OK(netlink_route_add(nl, &onlink, &err));

	struct netlink_route default_route = { .gateway = ip("192.168.77.1") };
	CHECK_OK(netlink_route_add(nl, &default_route, &err));

	struct netlink_route *routes;
	size_t count;
	CHECK_OK(netlink_route_list(nl, NETLINK_ROUTE_PROTOCOL_BRAMBLE, &routes, &count, &err));
	CHECK_INT(count, ==, 2);
	int seen = 0;
	for (size_t i = 0; i < count; i++) {
		if (routes[i].destination.s_addr == ip("10.42.2.0").s_addr) {
			CHECK_INT(routes[i].gateway.s_addr, ==, ip("192.168.77.13").s_addr);
			CHECK_STR(routes[i].device, "lan0");
			seen++;
		}
		if (routes[i].destination.s_addr == ip("10.42.9.0").s_addr) {
			CHECK(routes[i].onlink);
			seen++;
		}
	}
	CHECK_INT(seen, ==, 2);
	free(routes);
	CHECK_OK(netlink_route_list(nl, 0, &routes, &count, &err));
	CHECK_INT(count, >=, 4); /* + default + the connected 192.168.77.0/24 */
	free(routes);

	CHECK_OK(netlink_route_delete(nl, &route, &err));
	CHECK_INT(netlink_route_delete(nl, &route, &err), ==, -ESRCH);
	CHECK_OK(netlink_route_delete(nl, &default_route, &err));
	CHECK_OK(netlink_route_list(nl, NETLINK_ROUTE_PROTOCOL_BRAMBLE, &routes, &count, &err));
	CHECK_INT(count, ==, 1);
	free(routes);

	struct netlink_route nowhere = { .destination = ip("10.1.0.0"), .prefix_length = 16 };
	CHECK_INT(netlink_route_add(nl, &nowhere, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "needs a gateway or a device");
	netlink_close(nl);
}

TEST(netlink_sysctl_in_namespace)
{
	struct netlink *nl = fresh_namespace();
	struct error err = { 0 };
	char value[16];
	/* a new namespace starts with the machine's IPv4 settings (devconf_inherit_init_net): set
	 * a known value first */
	CHECK_OK(netlink_sysctl_write("net.ipv4.ip_forward", "0", &err));
	CHECK_OK(netlink_sysctl_read("net.ipv4.ip_forward", value, sizeof(value), &err));
	CHECK_STR(value, "0");
	CHECK_OK(netlink_enable_ipv4_forwarding(&err));
	CHECK_OK(netlink_sysctl_read("net.ipv4.ip_forward", value, sizeof(value), &err));
	CHECK_STR(value, "1");

	/* another namespace keeps its own, entered and left by fd */
	int other = other_namespace();
	int saved;
	CHECK_OK(netlink_netns_enter(other, &saved, &err));
	CHECK_OK(netlink_sysctl_write("net.ipv4.ip_forward", "0", &err));
	CHECK_OK(netlink_sysctl_read("net.ipv4.ip_forward", value, sizeof(value), &err));
	CHECK_STR(value, "0");
	CHECK_OK(netlink_netns_leave(saved, &err));
	CHECK_OK(netlink_sysctl_read("net.ipv4.ip_forward", value, sizeof(value), &err));
	CHECK_STR(value, "1");

	CHECK_INT(netlink_sysctl_write("../../etc/passwd", "x", &err), ==, -EINVAL);
	CHECK_INT(netlink_sysctl_read("net.ipv4.no_such_key", value, sizeof(value), &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "net.ipv4.no_such_key");
	close(other);
	netlink_close(nl);
}

TEST(netlink_cidr_text)
{
	struct error err = { 0 };
	struct in_addr a, b;
	uint8_t alen, blen;
	CHECK_OK(netlink_parse_cidr("10.42.0.0/16", false, &a, &alen, &err));
	CHECK_INT(alen, ==, 16);
	CHECK_INT(netlink_parse_cidr("10.42.3.1/16", false, &a, &alen, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "host bits set: the network is 10.42.0.0/16");
	CHECK_OK(netlink_parse_cidr("10.42.3.1/16", true, &a, &alen, &err));
	const char *bad[] = { "10.42.0.0",    "10.42.0.0/33", "10.42.0.0/",    "/8", "10.42.0/16",
		              "10.42.0.0/1x", "10.42.0.0/-1", "10.42.0.0/008", NULL };
	for (int i = 0; bad[i]; i++) {
		CHECK_INT(netlink_parse_cidr(bad[i], false, &a, &alen, &err), ==, -EINVAL);
		CHECK_CONTAINS(err.message, bad[i]);
	}
	CHECK_OK(netlink_parse_cidr("10.42.0.0/16", false, &a, &alen, &err));
	CHECK_OK(netlink_parse_cidr("10.42.3.0/24", false, &b, &blen, &err));
	CHECK(netlink_cidr_overlaps(a, alen, b, blen));
	CHECK(netlink_cidr_overlaps(b, blen, a, alen));
	CHECK_OK(netlink_parse_cidr("10.43.0.0/16", false, &b, &blen, &err));
	CHECK(!netlink_cidr_overlaps(a, alen, b, blen));
	CHECK(netlink_cidr_contains(a, alen, ip("10.42.200.7")));
	CHECK(!netlink_cidr_contains(a, alen, ip("10.43.0.1")));
}
