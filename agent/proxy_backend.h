/* Private to agent/proxy*.c: the service table in its owned form and the dataplane ops. */
#ifndef BRAMBLE_AGENT_PROXY_BACKEND_H
#define BRAMBLE_AGENT_PROXY_BACKEND_H

#include "agent/proxy.h"

/* A service as the proxy keeps it (its own copies of ports and endpoints). */
struct proxy_entry {
	struct proxy_service service;
	struct proxy_service_port *ports;
	struct proxy_endpoint **endpoints; /* per port */
};

struct proxy_settings {
	char table[64];
	char service_link[16];
	struct in_addr service_network, pod_network;
	uint8_t service_prefix, pod_prefix;
	struct loop *loop;
};

struct proxy_backend_ops {
	const char *name;
	int (*start)(const struct proxy_settings *settings, void **ret_state, struct error *err);
	/* Makes the dataplane serve exactly these services. On failure the previous set stays. */
	int (*apply)(void *state, const struct proxy_entry *const *entries, size_t count, struct error *err);
	int (*stop)(void *state, struct error *err);
	void (*free)(void *state);
};

extern const struct proxy_backend_ops proxy_nft_ops;
extern const struct proxy_backend_ops proxy_userspace_ops;

/* The endpoint for a new connection from `client` (session affinity in the userspace
 * dataplane is kept by the caller). */
#define PROXY_DEFAULT_AFFINITY_SECONDS 10800

#endif
