/* Pod addresses out of the node's pod CIDR.
 *
 * State: which address belongs to which pod (a key the caller chooses, the pod's UID or
 * namespace/name), and the last address handed out. The network address, the gateway (.1,
 * the node bridge's address) and the broadcast address are never given. Allocation is
 * next-fit after the last one handed out, so an address just released is not reused at
 * once (connections to the old pod could still be in conntrack or in a client's cache).
 *
 * Persistence: one text file in the data dir, rewritten atomically (file_write_atomic) only
 * when an address is taken or released — never on reads, never on a restart that changes
 * nothing (SD cards). Lifecycle:
 *
 *   ipam_open (reads the file, or starts empty) -> ipam_reconcile(live pods) at start ->
 *   ipam_allocate / ipam_release as pods come and go -> ipam_free
 *
 * A file written for another CIDR (the node was given a new one) is discarded with a
 * warning: addresses from the old range cannot be valid on this node any more.
 */
#ifndef BRAMBLE_AGENT_IPAM_H
#define BRAMBLE_AGENT_IPAM_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct error;
struct ipam;

/* Longest key (pod UID or namespace/name); keys may not contain whitespace. */
#define IPAM_KEY_MAX 253

/* cidr: the node's pod CIDR, /8 to /29 ("10.42.3.0/24"). */
int ipam_open(const char *state_path, const char *cidr, struct ipam **ret_ipam, struct error *err);
void ipam_free(struct ipam *ipam);
/* The CIDR a state file was written for (what the node had when the agent last ran):
 * -ENOENT when there is no usable file. */
int ipam_stored_cidr(const char *state_path, char *buf, size_t size);

/* The pod's address: the one it already holds, or a free one (persisted before returning).
 * -ENOSPC when the CIDR is exhausted. */
int ipam_allocate(struct ipam *ipam, const char *key, struct in_addr *ret_address, struct error *err);
/* Releasing what the pod does not hold is not an error (and writes nothing). */
int ipam_release(struct ipam *ipam, const char *key, struct error *err);
/* -ENOENT when the pod holds no address. */
int ipam_lookup(const struct ipam *ipam, const char *key, struct in_addr *ret_address);
/* Releases every address whose key is not among live_keys (one write at most). */
int ipam_reconcile(struct ipam *ipam, const char *const *live_keys, size_t live_count, struct error *err);

struct in_addr ipam_gateway(const struct ipam *ipam);
struct in_addr ipam_network(const struct ipam *ipam);
uint8_t ipam_prefix_length(const struct ipam *ipam);
size_t ipam_allocated_count(const struct ipam *ipam);
/* How many pods the CIDR holds at most. */
size_t ipam_capacity(const struct ipam *ipam);

#endif
