/* The garbage collector: ownerReferences, as Kubernetes' garbage collector keeps them.
 *
 * State: an index of dependents by owner uid for every object that is not a pod (pods are
 * indexed by the manager: pods_by_owner), built at start-up and kept by the change hook.
 *
 * Keys queued (one queue, four kinds of work):
 *   gone:<uid>                     an object went away: each of its dependents loses the
 *                                  reference; one left with no owner that exists is deleted
 *                                  (Background, the default propagation)
 *   verify:<resource>|<ns>|<name>  a new or changed object names an owner the caches do not
 *                                  know: checked against the store the same way
 *   owner:<resource>|<ns>|<name>   an object being deleted with the finalizer
 *                                  "orphan" (its dependents' references to it are removed,
 *                                  then the finalizer) or "foregroundDeletion" (its
 *                                  dependents are deleted and the finalizer removed once no
 *                                  dependent that blocks it remains)
 *   node:<name>                    a Node was deleted: its pods are deleted at once (no
 *                                  kubelet is left to stop them; Kubernetes' PodGC)
 * The last finalizer removed from an object being deleted removes it (controller_update).
 * An owner is checked by kind, namespace, name and uid; an owner of a kind Bramble does not
 * serve is taken to exist.
 */
#include "core/controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

#define SEPARATOR '|'

static void resource_key(const struct kind *kind, char *buf, size_t size)
{
	if (kind->group[0])
		snprintf(buf, size, "%s.%s", kind->resource, kind->group);
	else
		snprintf(buf, size, "%s", kind->resource);
}

static const cJSON *owner_references(const cJSON *object)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"),
	                                        "ownerReferences");
}

static const char *ref_string(const cJSON *ref, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, name));
}

/* --- the index of dependents that are not pods ---------------------------------------------- */

static void index_update(struct controllers *c, const char *resource, const cJSON *object, bool add)
{
	const cJSON *ref;
	cJSON_ArrayForEach(ref, owner_references(object))
	{
		const char *uid = ref_string(ref, "uid");
		if (!uid)
			continue;
		const char *ns = object_namespace(object);
		cleanup_free char *key =
		        xasprintf("%s%c%s%c%s", resource, SEPARATOR, ns ? ns : "", SEPARATOR, object_name(object));
		struct map *set = map_get(&c->dependents, uid);
		if (add) {
			if (!set) {
				set = xcalloc(1, sizeof(*set));
				map_put(&c->dependents, uid, set);
			}
			map_put(set, key, (void *)1);
		} else if (set) {
			map_remove(set, key);
			if (set->count == 0) {
				map_remove(&c->dependents, uid);
				map_clear(set);
				free(set);
			}
		}
	}
}

void garbage_free_index(struct controllers *c)
{
	map_each(e, &c->dependents)
	{
		map_clear(e->value);
		free(e->value);
	}
	map_clear(&c->dependents);
}

/* --- queueing ---------------------------------------------------------------------------------- */

static void enqueue(struct controllers *c, const char *what, const char *resource, const char *ns, const char *name)
{
	cleanup_free char *key =
	        resource ? xasprintf("%s:%s%c%s%c%s", what, resource, SEPARATOR, ns ? ns : "", SEPARATOR, name)
	                 : xasprintf("%s:%s", what, name);
	controller_enqueue(c, CONTROLLER_GARBAGE, key);
}

static bool has_finalizer(const cJSON *object, const char *finalizer)
{
	const cJSON *item;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"),
	                                                          "finalizers"))
	{
		if (cJSON_IsString(item) && strcmp(item->valuestring, finalizer) == 0)
			return true;
	}
	return false;
}

/* Does the cache know the owner a reference names? Unknown kinds count as known. */
static bool owner_known(struct controllers *c, const char *ns, const char *api_version, const char *kind,
                        const char *name, const char *uid)
{
	const struct kind *k = kind_lookup(api_version, kind);
	if (!k || !name || !uid)
		return true;
	if (strcmp(k->name, "Node") == 0) {
		const struct node *node = map_get(&c->nodes, name);
		return node && strcmp(node->uid, uid) == 0;
	}
	if (strcmp(k->name, "Pod") == 0) {
		cleanup_free char *key = xasprintf("%s/%s", ns, name);
		const struct pod *pod = map_get(&c->pods, key);
		return pod && strcmp(pod->uid, uid) == 0;
	}
	static const struct {
		const char *kind;
		enum cached_kind which;
	} cached[] = {
		{ "ReplicaSet", CACHED_REPLICASETS }, { "Deployment", CACHED_DEPLOYMENTS },
		{ "DaemonSet", CACHED_DAEMONSETS },   { "Job", CACHED_JOBS },
		{ "Service", CACHED_SERVICES },       { "Namespace", CACHED_NAMESPACES },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cached); i++) {
		if (strcmp(k->name, cached[i].kind) != 0)
			continue;
		cleanup_free char *key = xasprintf("%s/%s", k->namespaced ? ns : "", name);
		const cJSON *owner = controller_cached(c, cached[i].which, key);
		const char *owner_uid = owner ? object_string_at(owner, "metadata.uid") : NULL;
		return owner_uid && strcmp(owner_uid, uid) == 0;
	}
	return true; /* not cached: checked when it goes away */
}

static void check_pod_owners(struct controllers *c, const struct pod *pod)
{
	for (int i = 0; i < pod->owner_count; i++) {
		const struct pod_owner *o = &pod->owners[i];
		if (!owner_known(c, pod->namespace, o->api_version, o->kind, o->name, o->uid)) {
			enqueue(c, "verify", "pods", pod->namespace, pod->name);
			return;
		}
	}
}

static void check_owners(struct controllers *c, const char *resource, const cJSON *object)
{
	const char *ns = object_namespace(object);
	const cJSON *ref;
	cJSON_ArrayForEach(ref, owner_references(object))
	{
		if (!owner_known(c, ns ? ns : "", ref_string(ref, "apiVersion"), ref_string(ref, "kind"),
		                 ref_string(ref, "name"), ref_string(ref, "uid"))) {
			enqueue(c, "verify", resource, ns, object_name(object));
			return;
		}
	}
}

/* An owner waiting in the foreground for this dependent may now be free to go. */
static void wake_owners(struct controllers *c, const char *ns, const cJSON *refs_object, const struct pod *pod)
{
	if (pod) {
		for (int i = 0; i < pod->owner_count; i++) {
			const struct kind *k = kind_lookup(pod->owners[i].api_version, pod->owners[i].kind);
			if (!k || !pod->owners[i].name)
				continue;
			char resource[96];
			resource_key(k, resource, sizeof(resource));
			enqueue(c, "owner", resource, k->namespaced ? ns : "", pod->owners[i].name);
		}
		return;
	}
	const cJSON *ref;
	cJSON_ArrayForEach(ref, owner_references(refs_object))
	{
		const struct kind *k = kind_lookup(ref_string(ref, "apiVersion"), ref_string(ref, "kind"));
		if (!k || !ref_string(ref, "name"))
			continue;
		char resource[96];
		resource_key(k, resource, sizeof(resource));
		enqueue(c, "owner", resource, k->namespaced ? ns : "", ref_string(ref, "name"));
	}
}

static void object_event(struct controllers *c, const char *resource, const cJSON *old, const cJSON *new)
{
	if (old)
		index_update(c, resource, old, false);
	if (new)
		index_update(c, resource, new, true);
	if (old && !new) {
		const char *uid = object_string_at(old, "metadata.uid");
		if (uid)
			enqueue(c, "gone", NULL, NULL, uid);
		const char *ns = object_namespace(old);
		if (cJSON_GetArraySize(owner_references(old)) > 0)
			wake_owners(c, ns ? ns : "", old, NULL);
		return;
	}
	if (!new)
		return;
	if (object_string_at(new, "metadata.deletionTimestamp") &&
	    (has_finalizer(new, "orphan") || has_finalizer(new, "foregroundDeletion")))
		enqueue(c, "owner", resource, object_namespace(new), object_name(new));
	if (!old || !cJSON_Compare(owner_references(old), owner_references(new), true))
		check_owners(c, resource, new);
}

static void on_object(struct controllers *c, enum cached_kind which, const cJSON *old, const cJSON *new)
{
	object_event(c, controller_cached_resource(which), old, new);
}

static void on_other(struct controllers *c, const struct store_change *change, const cJSON *object)
{
	bool deleted = change->type == STORE_DELETED;
	/* The index needs the old references: for a change, drop what the object had. */
	if (change->previous) {
		cJSON *previous = cJSON_Parse(change->previous);
		if (previous)
			index_update(c, change->resource, previous, false);
		cJSON_Delete(previous);
	} else if (change->type == STORE_MODIFIED) {
		index_update(c, change->resource, object, false);
	}
	object_event(c, change->resource, deleted ? object : NULL, deleted ? NULL : object);
}

static void on_pod(struct controllers *c, const struct pod *old, const struct pod *new)
{
	if (old && !new) {
		enqueue(c, "gone", NULL, NULL, old->uid);
		if (old->owner_count)
			wake_owners(c, old->namespace, NULL, old);
		return;
	}
	if (!new)
		return;
	bool owners_changed = !old || old->owner_count != new->owner_count;
	for (int i = 0; !owners_changed && i < new->owner_count; i++)
		owners_changed = strcmp(old->owners[i].uid, new->owners[i].uid) != 0;
	if (owners_changed)
		check_pod_owners(c, new);
}

static void on_node(struct controllers *c, const struct node *old, const struct node *new)
{
	if (old && !new) {
		enqueue(c, "gone", NULL, NULL, old->uid);
		enqueue(c, "node", NULL, NULL, old->name);
	}
}

/* --- the work ------------------------------------------------------------------------------------ */

/* Does the owner a reference names exist (same uid)? gone_uid is known to be absent. */
static bool owner_exists(struct controllers *c, const char *dependent_ns, const cJSON *ref, const char *gone_uid)
{
	const char *uid = ref_string(ref, "uid");
	if (!uid || (gone_uid && strcmp(uid, gone_uid) == 0))
		return false;
	const struct kind *k = kind_lookup(ref_string(ref, "apiVersion"), ref_string(ref, "kind"));
	const char *name = ref_string(ref, "name");
	if (!k || !name)
		return true;
	char resource[96];
	resource_key(k, resource, sizeof(resource));
	cJSON *owner = controller_get(c, resource, k->namespaced ? dependent_ns : "", name);
	const char *owner_uid = owner ? object_string_at(owner, "metadata.uid") : NULL;
	bool exists = owner_uid && strcmp(owner_uid, uid) == 0;
	cJSON_Delete(owner);
	return exists;
}

/* Drops references to owners that do not exist; deletes the dependent when none is left. */
static int attend_dependent(struct controllers *c, const char *resource, const char *ns, const char *name,
                            const char *gone_uid, struct error *err)
{
	cJSON *object = controller_get(c, resource, ns, name);
	if (!object)
		return 0;
	const cJSON *refs = owner_references(object);
	int total = cJSON_GetArraySize(refs), absent = 0;
	bool *missing = xcalloc(total ? (size_t)total : 1, sizeof(*missing));
	int i = 0;
	const cJSON *ref;
	cJSON_ArrayForEach(ref, refs)
	{
		missing[i] = !owner_exists(c, ns, ref, gone_uid);
		absent += missing[i];
		i++;
	}
	int r = 0;
	if (total > 0 && absent == total) {
		log_debug("garbage collector: deleting %s %s/%s: its owners are gone", resource, ns, name);
		r = controller_delete(c, resource, ns, name, object_string_at(object, "metadata.uid"),
		                      PROPAGATE_BACKGROUND, err);
	} else if (absent > 0) {
		cJSON *updated = cJSON_Duplicate(object, 1);
		cJSON *list = cJSON_GetObjectItemCaseSensitive(object_metadata(updated), "ownerReferences");
		for (int k = total - 1; k >= 0; k--)
			if (missing[k])
				cJSON_DeleteItemFromArray(list, k);
		r = controller_update(c, resource, object, updated, err);
		cJSON_Delete(updated);
	}
	free(missing);
	cJSON_Delete(object);
	return r == -ESTALE || r == -ENOENT ? 0 : r;
}

/* The dependents of uid as "resource|ns|name" strings (a copy: the work changes the index). */
static char **dependents_of(struct controllers *c, const char *uid, size_t *ret_count)
{
	struct map *pods = map_get(&c->pods_by_owner, uid), *others = map_get(&c->dependents, uid);
	size_t n = (pods ? pods->count : 0) + (others ? others->count : 0), i = 0;
	char **list = xcalloc(n ? n : 1, sizeof(*list));
	if (pods) {
		map_each(e, pods)
		{
			const struct pod *pod = e->value;
			list[i++] = xasprintf("pods%c%s%c%s", SEPARATOR, pod->namespace, SEPARATOR, pod->name);
		}
	}
	if (others) {
		map_each(e, others)
		{
			list[i++] = xstrdup(e->key);
		}
	}
	*ret_count = i;
	return list;
}

static bool split_target(char *target, char **ret_resource, char **ret_ns, char **ret_name)
{
	char *a = strchr(target, SEPARATOR);
	char *b = a ? strchr(a + 1, SEPARATOR) : NULL;
	if (!b)
		return false;
	*a = *b = '\0';
	*ret_resource = target;
	*ret_ns = a + 1;
	*ret_name = b + 1;
	return true;
}

static void free_list(char **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i]);
	free(list);
}

static int attend_gone(struct controllers *c, const char *uid, struct error *err)
{
	size_t count;
	char **list = dependents_of(c, uid, &count);
	int writes = 0;
	for (size_t i = 0; i < count; i++) {
		char *resource, *ns, *name;
		if (!split_target(list[i], &resource, &ns, &name))
			continue;
		int r = attend_dependent(c, resource, ns, name, uid, err);
		if (r < 0) {
			free_list(list, count);
			return r;
		}
		writes += r;
	}
	free_list(list, count);
	return writes;
}

static int remove_finalizer(struct controllers *c, const char *resource, const cJSON *owner, const char *finalizer,
                            struct error *err)
{
	cJSON *updated = cJSON_Duplicate(owner, 1);
	cJSON *list = cJSON_GetObjectItemCaseSensitive(object_metadata(updated), "finalizers");
	int index = 0;
	cJSON *item;
	cJSON_ArrayForEach(item, list)
	{
		if (cJSON_IsString(item) && strcmp(item->valuestring, finalizer) == 0) {
			cJSON_DeleteItemFromArray(list, index);
			break;
		}
		index++;
	}
	if (cJSON_GetArraySize(list) == 0)
		cJSON_DeleteItemFromObjectCaseSensitive(object_metadata(updated), "finalizers");
	int r = controller_update(c, resource, owner, updated, err);
	cJSON_Delete(updated);
	return r;
}

/* Removes every reference to uid from the dependent. */
static int orphan_dependent(struct controllers *c, const char *resource, const char *ns, const char *name,
                            const char *uid, struct error *err)
{
	cJSON *object = controller_get(c, resource, ns, name);
	if (!object)
		return 0;
	cJSON *updated = cJSON_Duplicate(object, 1);
	cJSON *list = cJSON_GetObjectItemCaseSensitive(object_metadata(updated), "ownerReferences");
	for (int k = cJSON_GetArraySize(list) - 1; k >= 0; k--) {
		const char *ref_uid = ref_string(cJSON_GetArrayItem(list, k), "uid");
		if (ref_uid && strcmp(ref_uid, uid) == 0)
			cJSON_DeleteItemFromArray(list, k);
	}
	if (cJSON_GetArraySize(list) == 0)
		cJSON_DeleteItemFromObjectCaseSensitive(object_metadata(updated), "ownerReferences");
	int r = controller_update(c, resource, object, updated, err);
	cJSON_Delete(updated);
	cJSON_Delete(object);
	return r == -ESTALE || r == -ENOENT ? 0 : r;
}

/* Does the dependent still hold its owner back (blockOwnerDeletion)? */
static bool blocks(struct controllers *c, const char *resource, const char *ns, const char *name, const char *uid)
{
	cJSON *object = controller_get(c, resource, ns, name);
	bool blocking = false;
	const cJSON *ref;
	cJSON_ArrayForEach(ref, owner_references(object))
	{
		const char *ref_uid = ref_string(ref, "uid");
		if (ref_uid && strcmp(ref_uid, uid) == 0 &&
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "blockOwnerDeletion")))
			blocking = true;
	}
	cJSON_Delete(object);
	return blocking;
}

static int attend_owner(struct controllers *c, char *target, struct error *err)
{
	char *resource, *ns, *name;
	if (!split_target(target, &resource, &ns, &name))
		return 0;
	cJSON *owner = controller_get(c, resource, ns, name);
	if (!owner || !object_string_at(owner, "metadata.deletionTimestamp")) {
		cJSON_Delete(owner);
		return 0;
	}
	bool orphan = has_finalizer(owner, "orphan"), foreground = has_finalizer(owner, "foregroundDeletion");
	const char *uid = object_string_at(owner, "metadata.uid");
	int writes = 0, r = 0;
	if ((!orphan && !foreground) || !uid)
		goto out;
	size_t count;
	char **list = dependents_of(c, uid, &count);
	size_t blocking = 0;
	for (size_t i = 0; i < count && r >= 0; i++) {
		char *d_resource, *d_ns, *d_name;
		if (!split_target(list[i], &d_resource, &d_ns, &d_name))
			continue;
		if (orphan) {
			r = orphan_dependent(c, d_resource, d_ns, d_name, uid, err);
		} else {
			/* Dependents that own others go in the foreground too. */
			cJSON *d = controller_get(c, d_resource, d_ns, d_name);
			const char *d_uid = d ? object_string_at(d, "metadata.uid") : NULL;
			bool owns = d_uid && (map_get(&c->pods_by_owner, d_uid) || map_get(&c->dependents, d_uid));
			r = d ? controller_delete(c, d_resource, d_ns, d_name, d_uid,
			                          owns ? PROPAGATE_FOREGROUND : PROPAGATE_BACKGROUND, err)
			      : 0;
			cJSON_Delete(d);
			if (r >= 0 && blocks(c, d_resource, d_ns, d_name, uid))
				blocking++;
		}
		if (r > 0)
			writes += r;
	}
	free_list(list, count);
	if (r < 0)
		goto out;
	if (orphan) {
		r = remove_finalizer(c, resource, owner, "orphan", err);
	} else if (blocking == 0) {
		r = remove_finalizer(c, resource, owner, "foregroundDeletion", err);
	}
	if (r > 0)
		writes += r;
out:
	cJSON_Delete(owner);
	if (r == -ESTALE || r == -ENOENT)
		r = 0;
	return r < 0 ? r : writes;
}

static int attend_node(struct controllers *c, const char *node, struct error *err)
{
	cJSON *still = controller_get(c, "nodes", "", node);
	cJSON_Delete(still);
	struct map *pods = map_get(&c->pods_by_node, node);
	if (still || !pods)
		return 0;
	size_t count = 0;
	char **list = xcalloc(pods->count ? pods->count : 1, sizeof(*list));
	map_each(e, pods)
	{
		list[count++] = xstrdup(e->key);
	}
	int writes = 0, r = 0;
	for (size_t i = 0; i < count && r >= 0; i++) {
		const struct pod *pod = map_get(&c->pods, list[i]);
		if (!pod)
			continue;
		log_info("garbage collector: deleting pod %s: its node %s is gone", pod->key, node);
		r = controller_force_delete(c, "pods", pod->namespace, pod->name, pod->uid, err);
		if (r > 0)
			writes += r;
	}
	free_list(list, count);
	return r < 0 ? r : writes;
}

static int garbage_sync(struct controllers *c, const char *key, struct error *err)
{
	cleanup_free char *copy = xstrdup(key);
	char *colon = strchr(copy, ':');
	if (!colon)
		return 0;
	*colon = '\0';
	char *rest = colon + 1;
	if (strcmp(copy, "gone") == 0)
		return attend_gone(c, rest, err);
	if (strcmp(copy, "owner") == 0)
		return attend_owner(c, rest, err);
	if (strcmp(copy, "node") == 0)
		return attend_node(c, rest, err);
	if (strcmp(copy, "verify") == 0) {
		char *resource, *ns, *name;
		if (!split_target(rest, &resource, &ns, &name))
			return 0;
		return attend_dependent(c, resource, ns, name, NULL, err);
	}
	return 0;
}

const struct controller_ops garbage_controller = {
	.name = "garbage collector",
	.on_pod = on_pod,
	.on_object = on_object,
	.on_node = on_node,
	.on_other = on_other,
	.sync = garbage_sync,
};
