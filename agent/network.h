/* The board's share of the cluster network: the glue between the control plane's Nodes,
 * Services and Endpoints and the modules that program the kernel (agent/podnet.c,
 * agent/ipam.c, agent/proxy.c, agent/dns.c). See the design comment in network.c.
 *
 * The kubelet's pods use it through three calls: network_pod_setup when the sandbox exists
 * (an address and eth0 for a pod of the pod network, a resolv.conf for every pod),
 * network_pod_release when the pod is gone for good, network_pods_listed when the kubelet
 * has the whole list of its pods (addresses of pods deleted while the agent was away are
 * released). A NULL network (pod-network = off) gives hostNetwork behaviour only.
 */
#ifndef BRAMBLE_AGENT_NETWORK_H
#define BRAMBLE_AGENT_NETWORK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/link.h"

struct config;
struct error;
struct loop;
struct network;
struct runtime_mount;

struct network_options {
	struct loop *loop;
	const struct config *config;
	const char *servers[LINK_MAX_SERVERS]; /* the control plane, as the kubelet's */
	const char *identity;                  /* "node:<name>" */
	const char *key;
};

/* Starts watching Nodes (the board's pod CIDR, the routes to the others), Services and
 * Endpoints; the pod network is set up once the control plane has given this Node its pod
 * CIDR. */
int network_new(const struct network_options *options, struct network **ret_network, struct error *err);
/* A clean shutdown: the proxy's rules and cluster DNS go; the bridge, routes and masquerade
 * go too once no pod is attached any more. Pod addresses stay recorded for the next start. */
void network_free(struct network *network);

/* Is the board's pod network up (pod CIDR known, bridge made)? */
bool network_ready(const struct network *network);

/* What a pod got. */
struct network_attachment {
	char pod_ip[INET_ADDRSTRLEN]; /* "" for hostNetwork pods */
	char *resolv_conf;            /* the file for /etc/resolv.conf, or NULL */
};

/* Gives the pod its network: for a pod of the pod network (netns_fd its sandbox's network
 * namespace) an address of this board's pod CIDR on eth0 (the same address again for a pod
 * seen before, e.g. after an agent restart); for every pod <pod_dir>/resolv.conf after its
 * dnsPolicy. -EAGAIN while the board waits for its pod CIDR. Idempotent. */
int network_pod_setup(struct network *network, const cJSON *pod, int netns_fd, const char *pod_dir,
                      struct network_attachment *attachment, struct error *err);
/* The pod is gone for good: its veth and its address are released. */
void network_pod_release(struct network *network, const char *pod_uid);
/* The pods the control plane binds to this board, all of them (uids). */
void network_pods_listed(struct network *network, const char *const *uids, size_t count);
/* The same from the items of a pod list. */
void network_pods_listed_json(struct network *network, const cJSON *items);

/* Adds /etc/resolv.conf to a container's mounts (unless it mounts one itself). */
void network_add_mounts(const struct network_attachment *attachment, struct runtime_mount **mounts,
                        size_t *mount_count);
void network_attachment_clear(struct network_attachment *attachment);

#endif
