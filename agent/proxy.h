/* The Service proxy: makes ClusterIPs and NodePorts reach ready endpoints.
 *
 * State: the table of services this board knows (fed by the caller from Services and
 * Endpoints: ClusterIP, ports, NodePorts, the ready endpoints of each port with named
 * target ports already resolved), and one dataplane chosen at start:
 *
 *   nftables  (agent/proxy_nft.c): one table of its own (config.table, family ip), rebuilt
 *             and replaced in one atomic batch on every change, so the kernel never holds
 *             a half-programmed rule set; DNAT with `numgen random mod N` over a verdict
 *             map, per-endpoint address sets with timeouts for sessionAffinity ClientIP.
 *   userspace (agent/proxy_userspace.c): TCP and UDP relays on the event loop, for boards
 *             whose kernel has no nf_tables; ClusterIPs are held as /32s on a link of its own.
 *
 *   proxy_new (mode "auto" tries nftables, then userspace; the nftables table of an earlier
 *   run is left in place) -> [proxy_defer ... proxy_commit] -> proxy_set_service /
 *   proxy_remove_service (validated, then applied; a refused change leaves everything as it
 *   was) -> proxy_shutdown (removes the table, or the listeners and the link) -> proxy_free
 *
 * Bounds: PROXY_MAX_SERVICES services, PROXY_MAX_PORTS ports each, PROXY_MAX_ENDPOINTS
 * endpoints per port.
 */
#ifndef BRAMBLE_AGENT_PROXY_H
#define BRAMBLE_AGENT_PROXY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct error;
struct loop;
struct proxy;

#define PROXY_MAX_SERVICES 1024
#define PROXY_MAX_PORTS 32
#define PROXY_MAX_ENDPOINTS 256
#define PROXY_NAME_MAX 64

struct proxy_endpoint {
	struct in_addr address;
	uint16_t port;
};

struct proxy_service_port {
	char name[PROXY_NAME_MAX];              /* "" for an unnamed port */
	uint8_t protocol;                       /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;                          /* on the ClusterIP */
	uint16_t node_port;                     /* 0: none */
	const struct proxy_endpoint *endpoints; /* ready ones only */
	size_t endpoint_count;
};

struct proxy_service {
	char namespace[PROXY_NAME_MAX];
	char name[PROXY_NAME_MAX];
	struct in_addr cluster_ip;
	bool affinity_client_ip;
	uint32_t affinity_timeout_seconds; /* 0: Kubernetes' default, 10800 */
	const struct proxy_service_port *ports;
	size_t port_count;
};

struct proxy_config {
	const char *mode;                      /* "nftables", "userspace" or "auto" (NULL) */
	const char *table;                     /* NULL: "bramble_proxy" */
	const char *service_cidr;              /* "10.43.0.0/16" */
	const char *pod_cidr;                  /* this board's: service traffic between its pods is masqueraded */
	uint16_t node_port_min, node_port_max; /* 0: 30000-32767 */
	const char *service_link;              /* userspace: the link holding ClusterIPs; NULL: "bramble-svc" */
	struct loop *loop;                     /* userspace: the loop the relays run on */
};

int proxy_new(const struct proxy_config *config, struct proxy **ret_proxy, struct error *err);
/* Adds or replaces a service (by namespace/name). */
int proxy_set_service(struct proxy *proxy, const struct proxy_service *service, struct error *err);
/* A service not known is fine. */
int proxy_remove_service(struct proxy *proxy, const char *namespace, const char *name, struct error *err);
/* Until proxy_commit, changes are validated and kept but not applied: what the dataplane
 * serves stays as it was (an agent that restarts keeps the rules of its previous run until
 * it has read every Service again, then replaces them at once). */
void proxy_defer(struct proxy *proxy);
int proxy_commit(struct proxy *proxy, struct error *err);
int proxy_shutdown(struct proxy *proxy, struct error *err);
void proxy_free(struct proxy *proxy);

/* "nftables" or "userspace". */
const char *proxy_mode(const struct proxy *proxy);
size_t proxy_service_count(const struct proxy *proxy);

#endif
