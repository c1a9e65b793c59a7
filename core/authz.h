/* Authorization: who may do what, decided from the DTLS identity of the caller.
 *
 *   admin        anything
 *   node:<name>  what a kubelet needs and no more (the Kubernetes Node authorizer):
 *                its own Node (create, update, status); every Node, Service and Endpoints
 *                (get, list, watch: routes, the proxy, DNS); pods bound to it (get, list and
 *                watch only with fieldSelector spec.nodeName=<name>, update their status,
 *                delete them once terminated); mirror pods of its static pods (create: the
 *                kubernetes.io/config.mirror annotation, bound to it, owned only by its own
 *                Node, no ConfigMap or Secret); ConfigMaps and Secrets used by a pod bound
 *                to it (get); Events (create)
 *   token:<id>   a join token: nothing here (it may only join, at /bootstrap/join)
 *   anything else, or anything not listed: refused (4.03) with a message naming the rule
 */
#ifndef BRAMBLE_CORE_AUTHZ_H
#define BRAMBLE_CORE_AUTHZ_H

#include <stdbool.h>

#include <cjson/cJSON.h>

struct error;
struct kind;
struct store;

enum authz_verb { AUTHZ_GET, AUTHZ_LIST, AUTHZ_WATCH, AUTHZ_CREATE, AUTHZ_UPDATE, AUTHZ_DELETE };

struct authz_request {
	const char *identity; /* "admin", "node:pi-1"; "" for the loopback debug listener */
	enum authz_verb verb;
	const struct kind *kind;
	const char *namespace;      /* may be NULL */
	const char *name;           /* may be NULL (collections) */
	bool status;                /* the /status subresource */
	const char *field_selector; /* list and watch: the raw query value, or NULL */
	const cJSON *object;        /* the stored object (get/update/delete) or the new one (create) */
};

/* 0 when allowed; -EPERM with the reason otherwise. May read the store (the pods of a node). */
int authz_check(struct store *store, const struct authz_request *request, struct error *err);

/* The principal of a PSK identity, in place: an issued node credential "node:<name>@<G>"
 * (generation G, core/bootstrap.h) is the node "node:<name>". */
void authz_principal(char *identity);

/* The node name of a "node:<name>" identity, or NULL. */
const char *authz_node_name(const char *identity);

const char *authz_verb_name(enum authz_verb verb);

#endif
