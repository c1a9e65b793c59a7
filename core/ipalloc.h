/* The cluster's addresses, handed out by the control plane: a pod CIDR per Node out of the
 * cluster CIDR, a ClusterIP per Service out of the service CIDR, and NodePorts.
 *
 *   Node      spec.podCIDR (and spec.podCIDRs) is written by the node-IPAM controller
 *             (core/nodeipam.c), which picks the first /node_cidr_mask block of the cluster
 *             CIDR that no Node holds. At the API (ipalloc_admit): once set it may not change;
 *             an update that leaves it out keeps it; one that sets it must give a free block.
 *   Service   at the API, on create and update: a requested clusterIP must lie in the
 *             service CIDR (not its network or broadcast address) and be free; none
 *             requested gets a free one (a hash of namespace/name picks where the search
 *             starts, so a re-created Service tends to get its old address back; the first
 *             address is left for a `kubernetes` Service, as Kubernetes does). The clusterIP
 *             never changes afterwards. NodePort Services get a nodePort per port the same
 *             way, from node_port_min..node_port_max; a requested one outside the range or
 *             held by another Service is refused, naming the field.
 *
 * No state of its own: what is taken is read from the store (uncommitted writes included),
 * so two creates in one commit batch never get the same address.
 */
#ifndef BRAMBLE_CORE_IPALLOC_H
#define BRAMBLE_CORE_IPALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct error;
struct store;

#define IPALLOC_DEFAULT_CLUSTER_CIDR "10.42.0.0/16"
#define IPALLOC_DEFAULT_SERVICE_CIDR "10.43.0.0/16"
#define IPALLOC_DEFAULT_NODE_MASK 24
#define IPALLOC_DEFAULT_NODE_PORT_MIN 30000
#define IPALLOC_DEFAULT_NODE_PORT_MAX 32767
#define IPALLOC_CIDR_TEXT 20 /* "255.255.255.255/32" */

/* Zero or NULL means the default everywhere. */
struct ipalloc_config {
	const char *cluster_cidr;
	const char *service_cidr;
	unsigned node_cidr_mask;
	unsigned node_port_min, node_port_max;
};

/* "10.42.0.0/16" -> network (host order) and prefix; host bits must be zero. */
int ipalloc_parse_cidr(const char *text, uint32_t *ret_network, unsigned *ret_prefix, struct error *err);
bool ipalloc_cidrs_overlap(uint32_t a, unsigned a_prefix, uint32_t b, unsigned b_prefix);

/* Checks a configuration as a whole: CIDRs that parse, cluster and service CIDRs that do not
 * overlap, a node mask that fits the cluster CIDR, a NodePort range that is not empty. The
 * message names the option at fault ("cluster-cidr", "service-cidr", ...). */
int ipalloc_check_config(const struct ipalloc_config *config, struct error *err);

/* The API server's admission step for Nodes and Services (other kinds: nothing). old is the
 * stored object on an update, NULL on a create. Fills in what is allocated; refuses with
 * -EINVAL and the field named. */
/* Before an update is validated, as Kubernetes' dropTypeDependentFields: a Service whose
 * type changes from NodePort to one without node ports loses the nodePorts it kept from
 * the stored object unchanged (a `patch -p '{"spec":{"type":"ClusterIP"}}'`); a nodePort the
 * update sets anew is left for validation to refuse. */
void ipalloc_prepare_update(const char *kind, const cJSON *old, cJSON *object);

int ipalloc_admit(struct store *store, const struct ipalloc_config *config, const char *kind, const cJSON *old,
                  cJSON *object, struct error *err);

/* The first block of the cluster CIDR that overlaps none of taken (CIDR texts; malformed
 * ones are ignored); -ENOSPC when every block is taken. */
int ipalloc_node_cidr(const struct ipalloc_config *config, const char *const *taken, size_t count,
                      char ret_cidr[IPALLOC_CIDR_TEXT], struct error *err);

#endif
