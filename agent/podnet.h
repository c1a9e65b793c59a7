/* The pod network of one board: a bridge, a veth per pod, host-gw routes, masquerade.
 *
 * State lives in the kernel, not in this process: the bridge (config.bridge, holding the
 * gateway address, .1 of the pod CIDR), one veth pair per pod (the host end named from the
 * pod's key, "bv" + 8 hex digits, attached to the bridge; the other end is eth0 in the
 * pod's network namespace with the pod's address and a default route via the gateway),
 * routes to the other boards' pod CIDRs via their node addresses (marked with
 * NETLINK_ROUTE_PROTOCOL_BRAMBLE, so a sync can tell its own from the board's), and an
 * nftables table (config.table, family ip) that masquerades pod traffic leaving the cluster
 * CIDR. So an agent restart adopts what is there (podnet_setup is idempotent) and a crash
 * leaves nothing that podnet_teardown cannot find.
 *
 *   podnet_setup -> podnet_attach / podnet_detach (per pod), podnet_sync_routes (as nodes
 *   come and go) -> podnet_teardown (removes everything: routes, table, host veths, bridge)
 *
 * Decisions that cannot be checked here: boards share one L2 LAN (host-gw; no
 * encapsulation), so a peer's node address must be directly reachable; a host firewall
 * whose FORWARD policy drops (Docker sets one) must let the pod CIDR through, which this
 * module does not touch; the MTU is the LAN's (1500 unless configured).
 */
#ifndef BRAMBLE_AGENT_PODNET_H
#define BRAMBLE_AGENT_PODNET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct error;
struct podnet;

struct podnet_config {
	const char *bridge;       /* "bramble0" */
	const char *pod_cidr;     /* this board's, "10.42.3.0/24" */
	const char *cluster_cidr; /* "10.42.0.0/16": traffic to it is not masqueraded */
	const char *table;        /* nftables table for masquerade; NULL: "bramble_podnet" */
	unsigned mtu;             /* 0: 1500 */
	bool masquerade;
};

/* Another board: its pod CIDR and the address it has on the shared LAN. */
struct podnet_peer {
	struct in_addr network;
	uint8_t prefix_length;
	struct in_addr node_address;
};

#define PODNET_VETH_NAME_MAX 16

int podnet_setup(const struct podnet_config *config, struct podnet **ret_podnet, struct error *err);
void podnet_free(struct podnet *podnet);

/* The host end's name for a pod key. */
void podnet_host_veth_name(const char *pod_key, char name[PODNET_VETH_NAME_MAX]);

/* Gives the pod (its network namespace, by fd) eth0 with `address` and a default route via
 * the gateway. A half-made attachment of the same pod is replaced. */
int podnet_attach(struct podnet *podnet, const char *pod_key, int pod_netns_fd, struct in_addr address,
                  struct error *err);
/* Is the pod's host veth on the bridge and up (attached by this or an earlier run)? */
bool podnet_attached(struct podnet *podnet, const char *pod_key);
/* Pod veths on the bridge. */
size_t podnet_attached_count(struct podnet *podnet);

/* Removes the pod's veth pair; a pod not attached is fine. */
int podnet_detach(struct podnet *podnet, const char *pod_key, struct error *err);

/* Makes the routes to other boards' pod CIDRs exactly `peers`: adds missing, replaces
 * changed, deletes stale. A peer CIDR overlapping this board's is refused. */
int podnet_sync_routes(struct podnet *podnet, const struct podnet_peer *peers, size_t count, struct error *err);

/* Removes what podnet_setup and the attachments made. */
int podnet_teardown(struct podnet *podnet, struct error *err);

struct in_addr podnet_gateway(const struct podnet *podnet);

#endif
