/* The namespace controller: a Namespace being deleted (the API server marks it, phase
 * Terminating, when it is not empty) is emptied, then deleted.
 *
 * Queued: a Namespace that changed and is being deleted; the namespace of any object that
 * went away while its namespace is being deleted (the last one out lets it go).
 *
 * sync(name): every object of every namespaced kind in it is deleted as a DELETE would
 * (Background; pods on a node are stopped by their kubelet first, so the namespace waits
 * for them); once nothing is left, and no finalizer holds it, the Namespace goes.
 */
#include "core/controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/memory.h"

#define NAMESPACE_BATCH 500 /* objects of one kind deleted per sync; the rest come next run */

static bool deleting(struct controllers *c, const char *ns)
{
	cleanup_free char *key = xasprintf("/%s", ns ? ns : "");
	const cJSON *namespace = controller_cached(c, CACHED_NAMESPACES, key);
	return namespace && object_string_at(namespace, "metadata.deletionTimestamp");
}

static void on_pod(struct controllers *c, const struct pod *old, const struct pod *new)
{
	if (old && !new &&deleting(c, old->namespace))
		controller_enqueue(c, CONTROLLER_NAMESPACE, old->namespace);
}

static void on_object(struct controllers *c, enum cached_kind which, const cJSON *old, const cJSON *new)
{
	if (which == CACHED_NAMESPACES) {
		if (new &&object_string_at(new, "metadata.deletionTimestamp"))
			controller_enqueue(c, CONTROLLER_NAMESPACE, object_name(new));
		return;
	}
	if (old && !new &&deleting(c, object_namespace(old)))
		controller_enqueue(c, CONTROLLER_NAMESPACE, object_namespace(old));
}

static void on_other(struct controllers *c, const struct store_change *change, const cJSON *object)
{
	(void)object;
	if (change->type == STORE_DELETED && change->namespace[0] && deleting(c, change->namespace))
		controller_enqueue(c, CONTROLLER_NAMESPACE, change->namespace);
}

struct names {
	char **names, **uids;
	size_t count;
};

static int collect(const char *text, size_t length, void *data)
{
	struct names *n = data;
	cJSON *object = cJSON_ParseWithLength(text, length);
	const char *name = object_name(object), *uid = object_string_at(object, "metadata.uid");
	if (name) {
		n->names = xrealloc(n->names, (n->count + 1) * sizeof(*n->names));
		n->uids = xrealloc(n->uids, (n->count + 1) * sizeof(*n->uids));
		n->names[n->count] = xstrdup(name);
		n->uids[n->count++] = uid ? xstrdup(uid) : NULL;
	}
	cJSON_Delete(object);
	return 0;
}

static void names_free(struct names *n)
{
	for (size_t i = 0; i < n->count; i++) {
		free(n->names[i]);
		free(n->uids[i]);
	}
	free(n->names);
	free(n->uids);
}

static int namespace_sync(struct controllers *c, const char *name, struct error *err)
{
	cJSON *namespace = controller_get(c, "namespaces", "", name);
	if (!namespace || !object_string_at(namespace, "metadata.deletionTimestamp")) {
		cJSON_Delete(namespace);
		return 0;
	}
	int writes = 0, r = 0;
	size_t left = 0;
	for (size_t i = 0; i < kind_count() && r >= 0; i++) {
		const struct kind *k = kind_at(i);
		if (!k->namespaced)
			continue;
		char resource[96];
		if (k->group[0])
			snprintf(resource, sizeof(resource), "%s.%s", k->resource, k->group);
		else
			snprintf(resource, sizeof(resource), "%s", k->resource);
		struct names n = { 0 };
		r = store_list(c->store, resource, name, NULL, NAMESPACE_BATCH, collect, &n, NULL, err);
		for (size_t j = 0; j < n.count && r >= 0; j++) {
			int w = controller_delete(c, resource, name, n.names[j], n.uids[j], PROPAGATE_BACKGROUND, err);
			if (w < 0 && w != -ESTALE && w != -ENOENT)
				r = w;
			else if (w > 0)
				writes += w;
		}
		names_free(&n);
		if (r < 0)
			break;
		struct names still = { 0 };
		r = store_list(c->store, resource, name, NULL, 1, collect, &still, NULL, err);
		left += still.count;
		names_free(&still);
	}
	if (r >= 0 && left == 0) {
		const cJSON *finalizers = cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(namespace, "metadata"), "finalizers");
		if (cJSON_GetArraySize(finalizers) == 0) {
			r = controller_force_delete(c, "namespaces", "", name,
			                            object_string_at(namespace, "metadata.uid"), err);
			if (r > 0)
				writes += r;
		}
	}
	cJSON_Delete(namespace);
	return r < 0 ? r : writes;
}

const struct controller_ops namespace_controller = {
	.name = "namespace",
	.on_pod = on_pod,
	.on_object = on_object,
	.on_other = on_other,
	.sync = namespace_sync,
};
