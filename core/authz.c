/* See authz.h. Rules are checked in the order of the table in authz.h; the first one that
 * applies decides. A node's access to ConfigMaps and Secrets is derived from the pods bound
 * to it, read from the store at request time, so a pod deleted is access revoked. */
#include "core/authz.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/object.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/memory.h"

const char *authz_verb_name(enum authz_verb verb)
{
	static const char *const names[] = { "get", "list", "watch", "create", "update", "delete" };
	return (unsigned)verb < ARRAY_SIZE(names) ? names[verb] : "?";
}

void authz_principal(char *identity)
{
	if (strncmp(identity, "node:", 5) != 0)
		return;
	char *at = strchr(identity + 5, '@');
	if (at && at[1] && strspn(at + 1, "0123456789") == strlen(at + 1))
		*at = '\0';
}

const char *authz_node_name(const char *identity)
{
	if (identity && strncmp(identity, "node:", 5) == 0 && identity[5] != '\0')
		return identity + 5;
	return NULL;
}

static int deny(const struct authz_request *r, struct error *err, const char *why)
{
	if (r->name)
		return error_set(err, EPERM, "%s may not %s %s%s \"%s\"%s%s: %s",
		                 r->identity[0] ? r->identity : "(anonymous)", authz_verb_name(r->verb),
		                 r->kind->resource, r->status ? "/status" : "", r->name,
		                 r->namespace ? " in namespace " : "", r->namespace ? r->namespace : "", why);
	return error_set(err, EPERM, "%s may not %s %s%s%s: %s", r->identity[0] ? r->identity : "(anonymous)",
	                 authz_verb_name(r->verb), r->kind->resource, r->namespace ? " in namespace " : "",
	                 r->namespace ? r->namespace : "", why);
}

/* True when the comma-separated field selector contains exactly the term want. */
static bool selector_has_term(const char *selector, const char *want)
{
	if (!selector)
		return false;
	size_t n = strlen(want);
	for (const char *p = selector; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && strncmp(p, want, n) == 0)
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

static bool bound_to(const cJSON *pod, const char *node)
{
	const char *bound = object_string_at(pod, "spec.nodeName");
	return bound && strcmp(bound, node) == 0;
}

/* name NULL: any name. */
static bool name_is(const cJSON *item, const char *key, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);
	return cJSON_IsString(v) && (!name || strcmp(v->valuestring, name) == 0);
}

/* Does the pod spec use the ConfigMap (secret = false) or Secret (true) called name (NULL:
 * any)? */
static bool pod_uses(const cJSON *pod, bool secret, const char *name)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	const cJSON *item;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(spec, "volumes"))
	{
		if (secret && name_is(cJSON_GetObjectItemCaseSensitive(item, "secret"), "secretName", name))
			return true;
		if (!secret && name_is(cJSON_GetObjectItemCaseSensitive(item, "configMap"), "name", name))
			return true;
	}
	static const char *const lists[] = { "containers", "initContainers" };
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		const cJSON *container;
		cJSON_ArrayForEach(container, cJSON_GetObjectItemCaseSensitive(spec, lists[i]))
		{
			const cJSON *env;
			cJSON_ArrayForEach(env, cJSON_GetObjectItemCaseSensitive(container, "env"))
			{
				const cJSON *from = cJSON_GetObjectItemCaseSensitive(env, "valueFrom");
				if (name_is(cJSON_GetObjectItemCaseSensitive(from, secret ? "secretKeyRef"
				                                                          : "configMapKeyRef"),
				            "name", name))
					return true;
			}
			cJSON_ArrayForEach(env, cJSON_GetObjectItemCaseSensitive(container, "envFrom"))
			{
				if (name_is(cJSON_GetObjectItemCaseSensitive(env,
				                                             secret ? "secretRef" : "configMapRef"),
				            "name", name))
					return true;
			}
		}
	}
	return false;
}

struct use_search {
	const char *node;
	bool secret;
	const char *name;
	bool found;
};

static int check_pod_use(const char *text, size_t length, void *data)
{
	struct use_search *s = data;
	cJSON *pod = cJSON_ParseWithLength(text, length);
	if (pod && bound_to(pod, s->node) && pod_uses(pod, s->secret, s->name))
		s->found = true;
	cJSON_Delete(pod);
	return s->found ? -1 : 0; /* stop at the first user */
}

#define MIRROR_ANNOTATION "kubernetes.io/config.mirror"

/* A mirror pod of one of node's static pods, as Kubernetes' NodeRestriction admits it: the
 * mirror annotation, bound to the node, owned by nothing but that Node, using no ConfigMap
 * or Secret (a node may read only those its API-made pods use). NULL when it is one. */
static const char *not_own_mirror_pod(const cJSON *pod, const char *node)
{
	const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
	if (!name_is(cJSON_GetObjectItemCaseSensitive(metadata, "annotations"), MIRROR_ANNOTATION, NULL))
		return "a node may create only mirror pods (annotation " MIRROR_ANNOTATION ")";
	if (!bound_to(pod, node))
		return "a node may create only mirror pods bound to itself";
	const cJSON *owner;
	cJSON_ArrayForEach(owner, cJSON_GetObjectItemCaseSensitive(metadata, "ownerReferences"))
	{
		if (!name_is(owner, "kind", "Node") || !name_is(owner, "name", node))
			return "a mirror pod may be owned only by its own Node";
	}
	if (pod_uses(pod, false, NULL) || pod_uses(pod, true, NULL))
		return "a mirror pod may not use ConfigMaps or Secrets";
	return NULL;
}

static int check_node(struct store *store, const struct authz_request *r, const char *node, struct error *err)
{
	const char *kind = r->kind->name;
	/* Every node routes to the others' pod CIDRs and serves every Service (the proxy and
	 * cluster DNS): it reads all Nodes, Services and Endpoints, as Kubernetes' nodes do. */
	bool reading = r->verb == AUTHZ_GET || r->verb == AUTHZ_LIST || r->verb == AUTHZ_WATCH;
	if (reading && (strcmp(kind, "Node") == 0 || strcmp(kind, "Service") == 0 || strcmp(kind, "Endpoints") == 0))
		return 0;
	if (strcmp(kind, "Node") == 0) {
		if (r->verb == AUTHZ_DELETE)
			return deny(r, err, "a node may not delete Nodes");
		const char *name = r->name;
		if (r->verb == AUTHZ_CREATE && !name)
			name = object_name(r->object); /* registering: the new Node's own name */
		if (name && strcmp(name, node) == 0)
			return 0;
		return deny(r, err, "a node may only read and write its own Node");
	}
	if (strcmp(kind, "Pod") == 0) {
		switch (r->verb) {
		case AUTHZ_LIST:
		case AUTHZ_WATCH: {
			char term[300];
			snprintf(term, sizeof(term), "spec.nodeName=%s", node);
			if (selector_has_term(r->field_selector, term))
				return 0;
			return deny(r, err,
			            "a node may list or watch only its own pods (fieldSelector spec.nodeName=<node>)");
		}
		case AUTHZ_GET:
		case AUTHZ_DELETE:
			if (r->object && bound_to(r->object, node))
				return 0;
			return deny(r, err, "the pod is not bound to this node");
		case AUTHZ_UPDATE:
			if (!r->status)
				return deny(r, err, "a node may update only the status of its pods");
			if (r->object && bound_to(r->object, node))
				return 0;
			return deny(r, err, "the pod is not bound to this node");
		case AUTHZ_CREATE: {
			const char *why = r->object ? not_own_mirror_pod(r->object, node) : "no pod given";
			return why ? deny(r, err, why) : 0;
		}
		}
	}
	bool secret = strcmp(kind, "Secret") == 0;
	if (secret || strcmp(kind, "ConfigMap") == 0) {
		if (r->verb != AUTHZ_GET || !r->name || !r->namespace)
			return deny(r, err, "a node may only get, by name, the ConfigMaps and Secrets its pods use");
		struct use_search search = { node, secret, r->name, false };
		int ret = store_list(store, "pods", r->namespace, NULL, 0, check_pod_use, &search, NULL, err);
		if (ret < 0 && !search.found)
			return ret;
		if (search.found)
			return 0;
		return deny(r, err, "no pod bound to this node uses it");
	}
	if (strcmp(kind, "Event") == 0 && r->verb == AUTHZ_CREATE)
		return 0;
	return deny(r, err, "not allowed for node identities");
}

int authz_check(struct store *store, const struct authz_request *request, struct error *err)
{
	/* The debug listener is plain CoAP on loopback, opened only on explicit request. */
	if (!request->identity || request->identity[0] == '\0' || strcmp(request->identity, "admin") == 0)
		return 0;
	const char *node = authz_node_name(request->identity);
	if (node)
		return check_node(store, request, node, err);
	if (strncmp(request->identity, "token:", 6) == 0)
		return deny(request, err, "a join token may only join the cluster (POST /bootstrap/join)");
	return deny(request, err, "unknown identity");
}
