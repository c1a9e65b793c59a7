/* The kubelet: registers this board as a Node, keeps its status and heartbeats going, and
 * runs the pods the control plane binds to it (agent/pod.c), writing their status back.
 * It talks to the control plane only through core/link (CoAP Observe + requests on the
 * agent's loop). See the design comment in kubelet.c.
 */
#ifndef BRAMBLE_AGENT_KUBELET_H
#define BRAMBLE_AGENT_KUBELET_H

#include <stddef.h>

#include "core/link.h"

struct config;
struct error;
struct kubelet;
struct loop;
struct network;

struct kubelet_options {
	struct loop *loop;
	const struct config *config;
	const char *servers[LINK_MAX_SERVERS]; /* coaps:// URIs of the control plane */
	const char *identity;                  /* "node:<name>" */
	const char *key;
	const char *driver; /* runtime driver name; NULL: native */
	/* First restart back-off of a crashing container; 0: Kubernetes' 10 s. */
	unsigned backoff_initial_ms;
	/* Secret input of the pod cache's key (agent/podcache.h); NULL: key. */
	const void *cache_key;
	size_t cache_key_length;
	struct network *network; /* the pod network (agent/network.c); NULL: hostNetwork only */
};

int kubelet_new(const struct kubelet_options *options, struct kubelet **ret_kubelet, struct error *err);
/* Agent shutdown: frees, leaving the pods running for the next agent process to adopt. */
void kubelet_free(struct kubelet *kubelet);
/* SIGHUP: reads the static pod manifests again. */
void kubelet_reload(struct kubelet *kubelet);

/* Switches to a new credential (a rotated one): a new handshake with it at once; pods are
 * not touched (the kubelet re-lists and watches again, as after any reconnection). */
int kubelet_set_credential(struct kubelet *kubelet, const char *identity, const char *key);

size_t kubelet_pod_count(const struct kubelet *kubelet);

#endif
