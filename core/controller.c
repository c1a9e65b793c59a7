/* What every controller uses (see controller.h): pod facts, reading and writing
 * the store as the API server would, Events, conditions, hashes, tolerations and node
 * selection. Stateless but for the Event memory kept in struct controllers. */
#include "core/controller.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/object.h"
#include "core/selector.h"
#include "core/store.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

/* --- pods ----------------------------------------------------------------------------- */

bool pod_active(const struct pod *pod)
{
	return !pod->deleting && pod->phase != POD_SUCCEEDED && pod->phase != POD_FAILED;
}

bool pod_available(const struct pod *pod, int min_ready_seconds, int64_t now_ms)
{
	if (!pod->ready)
		return false;
	return min_ready_seconds <= 0 ||
	       (pod->ready_since_ms > 0 && pod->ready_since_ms + (int64_t)min_ready_seconds * 1000 <= now_ms);
}

static bool strings_differ(const char *a, const char *b)
{
	return !a != !b || (a && strcmp(a, b) != 0);
}

bool pod_changed_for_owner(const struct pod *old, const struct pod *new)
{
	if (!old || !new)
		return true;
	const struct pod_owner *a = pod_controller(old, NULL), *b = pod_controller(new, NULL);
	return !cJSON_Compare(old->labels, new->labels, true) || !a != !b || (a && strcmp(a->uid, b->uid) != 0) ||
	       old->phase != new->phase || old->ready != new->ready || old->ready_since_ms != new->ready_since_ms ||
	       old->deleting != new->deleting || strings_differ(old->node_name, new->node_name) ||
	       old->restarts != new->restarts;
}

const struct pod_owner *pod_controller(const struct pod *pod, const char *kind)
{
	if (pod->controller < 0)
		return NULL;
	const struct pod_owner *o = &pod->owners[pod->controller];
	return !kind || (o->kind && strcmp(o->kind, kind) == 0) ? o : NULL;
}

/* --- time ----------------------------------------------------------------------------- */

int64_t controller_now_ms(const struct controllers *c)
{
	return clock_realtime_ms() + c->clock_offset_ms;
}

uint64_t controller_monotonic_ms(const struct controllers *c)
{
	return clock_monotonic_ms() + (uint64_t)c->clock_offset_ms;
}

void controller_now_rfc3339(const struct controllers *c, char buf[CLOCK_RFC3339_SIZE])
{
	clock_format_rfc3339((time_t)(controller_now_ms(c) / 1000), buf);
}

int64_t controller_parse_time(const char *rfc3339)
{
	time_t t;
	if (!rfc3339 || clock_parse_rfc3339(rfc3339, &t) < 0)
		return 0;
	return (int64_t)t * 1000;
}

void controller_enqueue_at_wall(struct controllers *c, enum controller_id id, const char *key, int64_t at_ms)
{
	int64_t delay = at_ms - controller_now_ms(c);
	controller_enqueue_after(c, id, key, delay > 0 ? (uint64_t)delay : 0);
}

/* --- keys and store access ------------------------------------------------------------- */

bool controller_split_key(const char *key, char *ns, size_t ns_size, const char **ret_name)
{
	const char *slash = strchr(key, '/');
	if (!slash || (size_t)(slash - key) >= ns_size)
		return false;
	memcpy(ns, key, (size_t)(slash - key));
	ns[slash - key] = '\0';
	*ret_name = slash + 1;
	return true;
}

char *controller_key(const cJSON *object)
{
	const char *ns = object_namespace(object), *name = object_name(object);
	return xasprintf("%s/%s", ns ? ns : "", name ? name : "");
}

static const struct kind *kind_of_resource(const char *resource)
{
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		size_t n = strlen(k->resource);
		if (strncmp(resource, k->resource, n) != 0)
			continue;
		if (k->group[0] ? resource[n] == '.' && strcmp(resource + n + 1, k->group) == 0 : resource[n] == '\0')
			return k;
	}
	return NULL;
}

cJSON *controller_get(struct controllers *c, const char *resource, const char *ns, const char *name)
{
	cleanup_free char *text = NULL;
	if (store_get(c->store, resource, ns ? ns : "", name, &text, NULL) < 0)
		return NULL;
	return cJSON_Parse(text);
}

static uint64_t revision_of(const cJSON *object)
{
	const char *rv = object_string_at(object, "metadata.resourceVersion");
	return rv ? strtoull(rv, NULL, 10) : 0;
}

static bool namespace_deleting(const struct controllers *c, const char *ns)
{
	char key[80];
	snprintf(key, sizeof(key), "/%s", ns);
	const cJSON *namespace = map_get(&c->objects[CACHED_NAMESPACES], key);
	return !namespace || object_string_at(namespace, "metadata.deletionTimestamp") != NULL;
}

int controller_create(struct controllers *c, const char *resource, cJSON *object, char *ret_name, struct error *err)
{
	const struct kind *kind = kind_of_resource(resource);
	if (!kind)
		return error_set(err, EINVAL, "no kind is served as %s", resource);
	const char *ns = kind->namespaced ? object_namespace(object) : "";
	if (!ns)
		return error_set(err, EINVAL, "a %s needs a namespace", kind->name);
	if (kind->namespaced && namespace_deleting(c, ns))
		return error_set(err, EPERM,
		                 "namespace \"%s\" is being deleted or absent: nothing new may be created in it", ns);
	cJSON *metadata = object_metadata(object);
	char uid[37], now[CLOCK_RFC3339_SIZE];
	object_new_uid(uid);
	controller_now_rfc3339(c, now);
	controller_set_string(metadata, "uid", uid);
	controller_set_string(metadata, "creationTimestamp", now);
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "resourceVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "deletionTimestamp");
	controller_set_number(metadata, "generation", 1);
	object_apply_defaults(kind, object);
	const char *prefix = object_string_at(object, "metadata.generateName");
	bool generated = !object_name(object) && prefix && strlen(prefix) < 58;
	for (int attempt = 0; attempt < 5; attempt++) {
		if (generated) {
			char suffix[6], name[64];
			object_random_suffix(suffix);
			snprintf(name, sizeof(name), "%s%s", prefix, suffix);
			controller_set_string(metadata, "name", name);
		}
		if (attempt == 0) {
			int r = object_validate(kind, object, err);
			if (r < 0)
				return r;
		}
		struct store_request request = { STORE_CREATE, resource, ns, object_name(object), object, 0 };
		int r = store_apply(c->store, &request, NULL, NULL, err);
		if (r == -EEXIST && generated)
			continue;
		if (r == 0 && ret_name)
			snprintf(ret_name, 254, "%s", object_name(object));
		return r;
	}
	return error_set(err, EEXIST, "no free name for %s after 5 tries", prefix);
}

static bool has_finalizers(const cJSON *object)
{
	const cJSON *f =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"), "finalizers");
	return cJSON_IsArray(f) && cJSON_GetArraySize(f) > 0;
}

int controller_update(struct controllers *c, const char *resource, const cJSON *stored, cJSON *updated,
                      struct error *err)
{
	if (cJSON_Compare(stored, updated, true))
		return 0;
	const struct kind *kind = kind_of_resource(resource);
	if (!kind)
		return error_set(err, EINVAL, "no kind is served as %s", resource);
	cJSON *metadata = object_metadata(updated);
	int64_t generation = controller_int_at(stored, "metadata.generation", 1);
	if (!object_spec_equal(stored, updated))
		generation++;
	controller_set_number(metadata, "generation", (double)generation);
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "resourceVersion");
	object_apply_defaults(kind, updated);
	enum store_op op = STORE_REPLACE;
	/* The last finalizer gone from an object being deleted: it goes (pods wait for their
	 * kubelet). */
	if (object_string_at(updated, "metadata.deletionTimestamp") && !has_finalizers(updated) &&
	    strcmp(kind->name, "Pod") != 0)
		op = STORE_DELETE;
	const char *ns = kind->namespaced ? object_namespace(stored) : "";
	struct store_request request = { op,
		                         resource,
		                         ns ? ns : "",
		                         object_name(stored),
		                         op == STORE_DELETE ? NULL : updated,
		                         revision_of(stored) };
	int r = store_apply(c->store, &request, NULL, NULL, err);
	return r < 0 ? r : 1;
}

int controller_finish_sync(struct controllers *c, const char *resource, const cJSON *stored, cJSON *updated, int writes,
                           struct error *err)
{
	int r = controller_update(c, resource, stored, updated, err);
	if (r == -ESTALE || r == -ENOENT)
		return writes;
	return r < 0 ? r : writes + r;
}

/* Foreground and Orphan deletions keep the object until the garbage collector has dealt
 * with its dependents: it is marked with the finalizer that says which. */
static void add_finalizer(cJSON *object, const char *finalizer)
{
	cJSON *metadata = object_metadata(object);
	cJSON *list = cJSON_GetObjectItemCaseSensitive(metadata, "finalizers");
	if (!cJSON_IsArray(list)) {
		cJSON_DeleteItemFromObjectCaseSensitive(metadata, "finalizers");
		list = cJSON_AddArrayToObject(metadata, "finalizers");
	}
	const cJSON *item;
	cJSON_ArrayForEach(item, list)
	{
		if (cJSON_IsString(item) && strcmp(item->valuestring, finalizer) == 0)
			return;
	}
	cJSON_AddItemToArray(list, cJSON_CreateString(finalizer));
}

enum controllers_delete_plan controllers_plan_delete(const struct kind *kind, cJSON *stored, const char *policy,
                                                     int64_t grace_seconds, bool namespace_empty, int64_t now_ms)
{
	bool marked = object_string_at(stored, "metadata.deletionTimestamp") != NULL;
	bool is_pod = strcmp(kind->name, "Pod") == 0;
	bool is_namespace = strcmp(kind->name, "Namespace") == 0;
	const char *phase = is_pod ? object_string_at(stored, "status.phase") : NULL;
	bool terminated = phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
	/* A pod on a node is stopped by its kubelet first, unless it has already terminated. */
	bool bound_pod = is_pod && object_string_at(stored, "spec.nodeName") && !terminated;
	if (!marked && policy && strcmp(policy, "Orphan") == 0)
		add_finalizer(stored, "orphan");
	else if (!marked && policy && strcmp(policy, "Foreground") == 0)
		add_finalizer(stored, "foregroundDeletion");
	bool graceful =
	        has_finalizers(stored) || (is_namespace && !namespace_empty) || (bound_pod && grace_seconds != 0);
	if (!graceful)
		return CONTROLLERS_DELETE_NOW;
	if (marked)
		return CONTROLLERS_DELETE_PENDING;
	int64_t grace = 0;
	if (bound_pod) {
		grace = grace_seconds;
		if (grace < 0) {
			const cJSON *g = cJSON_GetObjectItemCaseSensitive(
			        cJSON_GetObjectItemCaseSensitive(stored, "spec"), "terminationGracePeriodSeconds");
			grace = cJSON_IsNumber(g) && g->valuedouble >= 0 ? (int64_t)g->valuedouble : 30;
		}
	}
	cJSON *metadata = object_metadata(stored);
	char when[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339((time_t)(now_ms / 1000 + grace), when);
	controller_set_string(metadata, "deletionTimestamp", when);
	controller_set_number(metadata, "deletionGracePeriodSeconds", (double)grace);
	if (is_namespace)
		controller_set_string(controller_child(stored, "status"), "phase", "Terminating");
	return CONTROLLERS_DELETE_MARKED;
}

static int count_one(const char *text, size_t length, void *data)
{
	(void)text;
	(void)length;
	(*(int *)data)++;
	return -1;
}

static bool namespace_empty(struct controllers *c, const char *ns)
{
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		if (!k->namespaced)
			continue;
		char key[96];
		int found = 0;
		if (k->group[0])
			snprintf(key, sizeof(key), "%s.%s", k->resource, k->group);
		else
			snprintf(key, sizeof(key), "%s", k->resource);
		store_list(c->store, key, ns, NULL, 1, count_one, &found, NULL, NULL);
		if (found)
			return false;
	}
	return true;
}

int controller_delete(struct controllers *c, const char *resource, const char *ns, const char *name, const char *uid,
                      enum propagation policy, struct error *err)
{
	const struct kind *kind = kind_of_resource(resource);
	if (!kind)
		return error_set(err, EINVAL, "no kind is served as %s", resource);
	cJSON *stored = controller_get(c, resource, ns, name);
	if (!stored)
		return 0;
	const char *stored_uid = object_string_at(stored, "metadata.uid");
	if (uid && (!stored_uid || strcmp(uid, stored_uid) != 0)) {
		cJSON_Delete(stored);
		return 0;
	}
	static const char *const policies[] = { "Background", "Foreground", "Orphan" };
	bool empty = strcmp(kind->name, "Namespace") == 0 ? namespace_empty(c, name) : true;
	uint64_t revision = revision_of(stored);
	enum controllers_delete_plan plan =
	        controllers_plan_delete(kind, stored, policies[policy], -1, empty, controller_now_ms(c));
	int r = 0;
	if (plan != CONTROLLERS_DELETE_PENDING) {
		bool now = plan == CONTROLLERS_DELETE_NOW;
		cJSON_DeleteItemFromObjectCaseSensitive(object_metadata(stored), "resourceVersion");
		struct store_request request = { now ? STORE_DELETE : STORE_REPLACE,
			                         resource,
			                         kind->namespaced ? ns : "",
			                         name,
			                         now ? NULL : stored,
			                         revision };
		r = store_apply(c->store, &request, NULL, NULL, err);
		if (r == 0)
			r = 1;
	}
	cJSON_Delete(stored);
	return r;
}

int controller_force_delete(struct controllers *c, const char *resource, const char *ns, const char *name,
                            const char *uid, struct error *err)
{
	cJSON *stored = controller_get(c, resource, ns, name);
	if (!stored)
		return 0;
	const char *stored_uid = object_string_at(stored, "metadata.uid");
	bool same = !uid || (stored_uid && strcmp(uid, stored_uid) == 0);
	uint64_t revision = revision_of(stored);
	cJSON_Delete(stored);
	if (!same)
		return 0;
	struct store_request request = { STORE_DELETE, resource, ns, name, NULL, revision };
	int r = store_apply(c->store, &request, NULL, NULL, err);
	return r < 0 ? r : 1;
}

/* --- Events ----------------------------------------------------------------------------- */

#define EVENT_MEMORY_MS (10 * 60 * 1000)

/* True when the same Event was recorded recently; remembers it otherwise. */
static bool event_seen(struct controllers *c, const char *what)
{
	int64_t now = controller_now_ms(c);
	for (size_t i = 0; i < CONTROLLER_EVENT_MEMORY; i++) {
		struct event_memory *m = &c->events[i];
		if (m->what && strcmp(m->what, what) == 0 && now - m->at_ms < EVENT_MEMORY_MS)
			return true;
	}
	struct event_memory *slot = &c->events[c->event_next++ % CONTROLLER_EVENT_MEMORY];
	free(slot->what);
	slot->what = xstrdup(what);
	slot->at_ms = now;
	return false;
}

void controller_event(struct controllers *c, const cJSON *object, const char *type, const char *reason, const char *fmt,
                      ...)
{
	char message[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	const char *name = object_name(object), *uid = object_string_at(object, "metadata.uid");
	const char *object_ns = object_namespace(object);
	const char *ns = object_ns && object_ns[0] ? object_ns : "default";
	cleanup_free char *what = xasprintf("%s|%s|%s", uid ? uid : name, reason, message);
	if (event_seen(c, what) || namespace_deleting(c, ns))
		return;
	log_debug("event %s %s/%s: %s %s", type, ns, name ? name : "", reason, message);
	char now[CLOCK_RFC3339_SIZE];
	controller_now_rfc3339(c, now);
	cJSON *event = object_event_new(&(struct object_event){
	        .namespace = ns,
	        .api_version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, "apiVersion")),
	        .kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, "kind")),
	        .object_namespace = object_ns,
	        .name = name,
	        .uid = uid,
	        .type = type,
	        .reason = reason,
	        .message = message,
	        .component = "controller-manager",
	        .now = now });
	const char *event_name = object_name(event);
	struct store_request request = { STORE_CREATE, "events", ns, event_name, event, 0 };
	struct error err = { 0 };
	if (store_apply(c->store, &request, NULL, NULL, &err) < 0)
		log_warnx("controllers: recording event %s on %s: %s", reason, name ? name : "?", err.message);
	cJSON_Delete(event);
}

/* --- JSON helpers ------------------------------------------------------------------------ */

int64_t controller_int_at(const cJSON *object, const char *dotted_path, int64_t fallback)
{
	char key[128];
	const cJSON *at = object;
	for (const char *part = dotted_path; at;) {
		const char *dot = strchr(part, '.');
		size_t length = dot ? (size_t)(dot - part) : strlen(part);
		if (length >= sizeof(key))
			return fallback;
		memcpy(key, part, length);
		key[length] = '\0';
		at = cJSON_GetObjectItemCaseSensitive(at, key);
		if (!dot)
			break;
		part = dot + 1;
	}
	return cJSON_IsNumber(at) ? (int64_t)at->valuedouble : fallback;
}

cJSON *controller_child(cJSON *object, const char *name)
{
	cJSON *child = cJSON_GetObjectItemCaseSensitive(object, name);
	if (cJSON_IsObject(child))
		return child;
	cJSON_DeleteItemFromObjectCaseSensitive(object, name);
	return cJSON_AddObjectToObject(object, name);
}

void controller_set_string(cJSON *object, const char *name, const char *value)
{
	cJSON *item = cJSON_CreateString(value);
	if (cJSON_GetObjectItemCaseSensitive(object, name))
		cJSON_ReplaceItemInObjectCaseSensitive(object, name, item);
	else
		cJSON_AddItemToObject(object, name, item);
}

void controller_set_number(cJSON *object, const char *name, double value)
{
	cJSON *item = cJSON_CreateNumber(value);
	if (cJSON_GetObjectItemCaseSensitive(object, name))
		cJSON_ReplaceItemInObjectCaseSensitive(object, name, item);
	else
		cJSON_AddItemToObject(object, name, item);
}

const char *controller_annotation(const cJSON *object, const char *name)
{
	const cJSON *annotations =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"), "annotations");
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(annotations, name));
}

void controller_set_annotation(cJSON *object, const char *name, const char *value)
{
	cJSON *metadata = object_metadata(object);
	if (!value) {
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(metadata, "annotations"),
		                                        name);
		return;
	}
	controller_set_string(controller_child(metadata, "annotations"), name, value);
}

const char *controller_label(const cJSON *object, const char *name)
{
	const cJSON *labels =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"), "labels");
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, name));
}

/* --- owner references -------------------------------------------------------------------- */

const cJSON *controller_ref_of(const cJSON *object)
{
	const cJSON *refs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"),
	                                                     "ownerReferences");
	const cJSON *ref;
	cJSON_ArrayForEach(ref, refs)
	{
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller")))
			return ref;
	}
	return NULL;
}

bool controller_owned_by(const cJSON *object, const char *uid)
{
	const cJSON *ref = controller_ref_of(object);
	const char *ref_uid = ref ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "uid")) : NULL;
	return ref_uid && uid && strcmp(ref_uid, uid) == 0;
}

cJSON *controller_owner_reference(const cJSON *owner)
{
	cJSON *ref = cJSON_CreateObject();
	const char *api_version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(owner, "apiVersion"));
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(owner, "kind"));
	const char *uid = object_string_at(owner, "metadata.uid");
	cJSON_AddStringToObject(ref, "apiVersion", api_version ? api_version : "");
	cJSON_AddStringToObject(ref, "kind", kind ? kind : "");
	cJSON_AddStringToObject(ref, "name", object_name(owner) ? object_name(owner) : "");
	cJSON_AddStringToObject(ref, "uid", uid ? uid : "");
	cJSON_AddBoolToObject(ref, "controller", 1);
	cJSON_AddBoolToObject(ref, "blockOwnerDeletion", 1);
	return ref;
}

void controller_set_controller_ref(cJSON *object, const cJSON *owner)
{
	cJSON *metadata = object_metadata(object);
	cJSON *refs = cJSON_GetObjectItemCaseSensitive(metadata, "ownerReferences");
	if (cJSON_IsArray(refs)) {
		int index = 0;
		cJSON *ref;
		cJSON_ArrayForEach(ref, refs)
		{
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller"))) {
				cJSON_DeleteItemFromArray(refs, index);
				break;
			}
			index++;
		}
	}
	if (owner) {
		if (!cJSON_IsArray(refs)) {
			cJSON_DeleteItemFromObjectCaseSensitive(metadata, "ownerReferences");
			refs = cJSON_AddArrayToObject(metadata, "ownerReferences");
		}
		cJSON_AddItemToArray(refs, controller_owner_reference(owner));
	} else if (cJSON_IsArray(refs) && cJSON_GetArraySize(refs) == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(metadata, "ownerReferences");
	}
}

int controller_claim(struct controllers *c, const char *resource, const char *ns, const char *name, const char *uid,
                     const cJSON *owner, const char *release_uid, struct error *err)
{
	cJSON *stored = controller_get(c, resource, ns, name);
	if (!stored)
		return 0;
	const char *stored_uid = object_string_at(stored, "metadata.uid");
	bool ok = !uid || (stored_uid && strcmp(uid, stored_uid) == 0);
	if (owner)
		ok = ok && !controller_ref_of(stored) && !object_string_at(stored, "metadata.deletionTimestamp");
	else
		ok = ok && controller_owned_by(stored, release_uid);
	int r = 0;
	if (ok) {
		cJSON *updated = cJSON_Duplicate(stored, 1);
		controller_set_controller_ref(updated, owner);
		r = controller_update(c, resource, stored, updated, err);
		cJSON_Delete(updated);
	}
	cJSON_Delete(stored);
	return r;
}

struct selector *controller_owner_selector(struct controllers *c, const cJSON *owner)
{
	struct selector *selector = NULL;
	struct error err = { 0 };
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(owner, "spec");
	if (selector_from_json(cJSON_GetObjectItemCaseSensitive(spec, "selector"), "spec.selector", &selector, &err) <
	            0 ||
	    selector_is_empty(selector)) {
		controller_event(c, owner, "Warning", "InvalidSelector", "%s",
		                 err.message[0] ? err.message : "spec.selector: empty selector");
		selector_free(selector);
		return NULL;
	}
	return selector;
}

int controller_claim_pods(struct controllers *c, const cJSON *owner, const struct selector *selector, bool deleting,
                          const struct pod ***ret_pods, size_t *ret_count, struct error *err)
{
	const char *uid = object_string_at(owner, "metadata.uid"), *ns = object_namespace(owner);
	struct map *owned = uid ? map_get(&c->pods_by_owner, uid) : NULL;
	struct map *orphans = ns ? map_get(&c->orphans, ns) : NULL;
	size_t room = (owned ? owned->count : 0) + (orphans ? orphans->count : 0), count = 0;
	const struct pod **pods = xcalloc(room ? room : 1, sizeof(*pods));
	int writes = 0, r = 0;
	for (int pass = 0; pass < 2; pass++) {
		struct map *set = pass == 0 ? owned : orphans;
		if (!set)
			continue;
		map_each(e, set)
		{
			const struct pod *pod = e->value;
			bool matches = selector_matches_labels(selector, pod->labels);
			if (pass == 0) {
				const struct pod_owner *o = pod_controller(pod, NULL);
				if (!o || strcmp(o->uid, uid) != 0)
					continue;
				if (!matches && !deleting) {
					r = controller_claim(c, "pods", pod->namespace, pod->name, pod->uid, NULL, uid,
					                     err);
					if (r < 0)
						goto fail;
					writes += r;
					continue;
				}
			} else {
				if (!matches || deleting || pod->deleting)
					continue;
				r = controller_claim(c, "pods", pod->namespace, pod->name, pod->uid, owner, NULL, err);
				if (r < 0)
					goto fail;
				writes += r;
			}
			pods[count++] = pod;
		}
	}
	*ret_pods = pods;
	*ret_count = count;
	return writes;
fail:
	free(pods);
	return r;
}

void controller_set_count(cJSON *status, const char *name, int64_t value, bool omit_zero)
{
	if (value == 0 && omit_zero)
		cJSON_DeleteItemFromObjectCaseSensitive(status, name);
	else
		controller_set_number(status, name, (double)value);
}

cJSON *controller_pod_from_template(const cJSON *owner, const cJSON *template, const char *name_prefix)
{
	cJSON *pod = cJSON_CreateObject();
	cJSON_AddStringToObject(pod, "apiVersion", "v1");
	cJSON_AddStringToObject(pod, "kind", "Pod");
	cJSON *metadata = cJSON_AddObjectToObject(pod, "metadata");
	cJSON_AddStringToObject(metadata, "generateName", name_prefix);
	cJSON_AddStringToObject(metadata, "namespace", object_namespace(owner) ? object_namespace(owner) : "default");
	const cJSON *template_metadata = cJSON_GetObjectItemCaseSensitive(template, "metadata");
	static const char *const copied[] = { "labels", "annotations", "finalizers" };
	for (size_t i = 0; i < ARRAY_SIZE(copied); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(template_metadata, copied[i]);
		if (v)
			cJSON_AddItemToObject(metadata, copied[i], cJSON_Duplicate(v, 1));
	}
	cJSON *refs = cJSON_AddArrayToObject(metadata, "ownerReferences");
	cJSON_AddItemToArray(refs, controller_owner_reference(owner));
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(template, "spec");
	cJSON_AddItemToObject(pod, "spec", spec ? cJSON_Duplicate(spec, 1) : cJSON_CreateObject());
	return pod;
}

/* --- conditions -------------------------------------------------------------------------- */

cJSON *controller_condition(const cJSON *status, const char *type)
{
	cJSON *condition;
	cJSON_ArrayForEach(condition, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
	{
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(condition, "type"));
		if (t && strcmp(t, type) == 0)
			return condition;
	}
	return NULL;
}

void controller_remove_condition(cJSON *status, const char *type)
{
	cJSON *conditions = cJSON_GetObjectItemCaseSensitive(status, "conditions");
	int index = 0;
	cJSON *condition;
	cJSON_ArrayForEach(condition, conditions)
	{
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(condition, "type"));
		if (t && strcmp(t, type) == 0) {
			cJSON_DeleteItemFromArray(conditions, index);
			break;
		}
		index++;
	}
	if (conditions && cJSON_GetArraySize(conditions) == 0)
		cJSON_DeleteItemFromObjectCaseSensitive(status, "conditions");
}

static bool member_is(const cJSON *object, const char *name, const char *value)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, name));
	return v && value && strcmp(v, value) == 0;
}

bool controller_set_condition(cJSON *status, const char *type, const char *value, const char *reason,
                              const char *message, const char *now, bool with_update_time, bool touch)
{
	cJSON *conditions = cJSON_GetObjectItemCaseSensitive(status, "conditions");
	if (!cJSON_IsArray(conditions)) {
		cJSON_DeleteItemFromObjectCaseSensitive(status, "conditions");
		conditions = cJSON_AddArrayToObject(status, "conditions");
	}
	cJSON *old = controller_condition(status, type);
	bool same_status = old && member_is(old, "status", value);
	if (same_status && member_is(old, "reason", reason) && !touch)
		return false;
	cJSON *condition = cJSON_CreateObject();
	cJSON_AddStringToObject(condition, "type", type);
	cJSON_AddStringToObject(condition, "status", value);
	if (with_update_time)
		cJSON_AddStringToObject(condition, "lastUpdateTime", now);
	const char *transition =
	        same_status ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(old, "lastTransitionTime")) : NULL;
	cJSON_AddStringToObject(condition, "lastTransitionTime", transition ? transition : now);
	if (reason)
		cJSON_AddStringToObject(condition, "reason", reason);
	if (message)
		cJSON_AddStringToObject(condition, "message", message);
	if (old) {
		bool equal = cJSON_Compare(old, condition, true);
		int index = 0;
		cJSON *item;
		cJSON_ArrayForEach(item, conditions)
		{
			if (item == old)
				break;
			index++;
		}
		if (equal) {
			cJSON_Delete(condition);
			return false;
		}
		cJSON_ReplaceItemInArray(conditions, index, condition);
	} else {
		cJSON_AddItemToArray(conditions, condition);
	}
	return true;
}

/* --- numbers and hashes ----------------------------------------------------------------- */

int controller_scaled_value(const cJSON *value, int total, bool round_up, int fallback)
{
	if (cJSON_IsNumber(value))
		return (int)value->valuedouble;
	if (!cJSON_IsString(value))
		return fallback;
	char *end;
	long percent = strtol(value->valuestring, &end, 10);
	if (end == value->valuestring || *end != '%')
		return fallback;
	double scaled = (double)percent * total / 100.0;
	return (int)(round_up ? ceil(scaled) : floor(scaled));
}

static int compare_names(const void *a, const void *b)
{
	return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static void canonical(struct buffer *out, const cJSON *v)
{
	if (cJSON_IsObject(v)) {
		size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
		const cJSON **members = xcalloc(n ? n : 1, sizeof(*members));
		const cJSON *m;
		cJSON_ArrayForEach(m, v)
		{
			members[i++] = m;
		}
		qsort(members, n, sizeof(*members), compare_names);
		buffer_append(out, "{", 1);
		for (i = 0; i < n; i++) {
			if (i)
				buffer_append(out, ",", 1);
			buffer_append_json_string(out, members[i]->string);
			buffer_append(out, ":", 1);
			canonical(out, members[i]);
		}
		buffer_append(out, "}", 1);
		free(members);
	} else if (cJSON_IsArray(v)) {
		buffer_append(out, "[", 1);
		const cJSON *m;
		bool first = true;
		cJSON_ArrayForEach(m, v)
		{
			if (!first)
				buffer_append(out, ",", 1);
			first = false;
			canonical(out, m);
		}
		buffer_append(out, "]", 1);
	} else if (cJSON_IsString(v)) {
		buffer_append_json_string(out, v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		if (v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15)
			buffer_printf(out, "%lld", (long long)v->valuedouble);
		else
			buffer_printf(out, "%.17g", v->valuedouble);
	} else if (cJSON_IsBool(v)) {
		buffer_append_string(out, cJSON_IsTrue(v) ? "true" : "false");
	} else {
		buffer_append_string(out, "null");
	}
}

void controller_hash(const cJSON *value, int64_t collision_count, char out[16])
{
	struct buffer text = BUFFER_INIT;
	canonical(&text, value);
	uint32_t h = map_hash(text.data ? text.data : "", text.length, MAP_HASH_SEED);
	buffer_free(&text);
	if (collision_count >= 0) {
		uint8_t bytes[4] = { (uint8_t)collision_count, (uint8_t)(collision_count >> 8),
			             (uint8_t)(collision_count >> 16), (uint8_t)(collision_count >> 24) };
		h = map_hash((const char *)bytes, sizeof(bytes), h);
	}
	static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
	char digits[16];
	int n = snprintf(digits, sizeof(digits), "%u", h);
	for (int i = 0; i < n; i++)
		out[i] = alphabet[(unsigned char)digits[i] % (sizeof(alphabet) - 1)];
	out[n] = '\0';
}

/* --- tolerations and node selection ----------------------------------------------------- */

static const char *string_or_empty(const cJSON *object, const char *name)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, name));
	return v ? v : "";
}

bool controller_tolerates(const cJSON *toleration, const cJSON *taint)
{
	const char *effect = string_or_empty(toleration, "effect");
	if (effect[0] && strcmp(effect, string_or_empty(taint, "effect")) != 0)
		return false;
	const char *key = string_or_empty(toleration, "key");
	if (key[0] && strcmp(key, string_or_empty(taint, "key")) != 0)
		return false;
	const char *op = string_or_empty(toleration, "operator");
	if (strcmp(op, "Exists") == 0)
		return true;
	if (op[0] && strcmp(op, "Equal") != 0)
		return false;
	return strcmp(string_or_empty(toleration, "value"), string_or_empty(taint, "value")) == 0;
}

bool controller_tolerates_all(const cJSON *tolerations, const cJSON *taints, bool no_schedule, bool no_execute)
{
	const cJSON *taint;
	cJSON_ArrayForEach(taint, taints)
	{
		const char *effect = string_or_empty(taint, "effect");
		bool relevant = (no_schedule && strcmp(effect, "NoSchedule") == 0) ||
		                (no_execute && strcmp(effect, "NoExecute") == 0);
		if (!relevant)
			continue;
		bool tolerated = false;
		const cJSON *toleration;
		cJSON_ArrayForEach(toleration, tolerations)
		{
			if (controller_tolerates(toleration, taint)) {
				tolerated = true;
				break;
			}
		}
		if (!tolerated)
			return false;
	}
	return true;
}

static bool value_listed(const cJSON *values, const char *value)
{
	const cJSON *v;
	cJSON_ArrayForEach(v, values)
	{
		if (cJSON_IsString(v) && value && strcmp(v->valuestring, value) == 0)
			return true;
	}
	return false;
}

static bool requirement_matches(const cJSON *requirement, const char *value)
{
	const char *op = string_or_empty(requirement, "operator");
	const cJSON *values = cJSON_GetObjectItemCaseSensitive(requirement, "values");
	if (strcmp(op, "In") == 0)
		return value_listed(values, value);
	if (strcmp(op, "NotIn") == 0)
		return !value_listed(values, value);
	if (strcmp(op, "Exists") == 0)
		return value != NULL;
	if (strcmp(op, "DoesNotExist") == 0)
		return value == NULL;
	if (strcmp(op, "Gt") == 0 || strcmp(op, "Lt") == 0) {
		const cJSON *first = cJSON_GetArrayItem(values, 0);
		if (!value || !cJSON_IsString(first))
			return false;
		char *end1, *end2;
		long long have = strtoll(value, &end1, 10), want = strtoll(first->valuestring, &end2, 10);
		if (*end1 || *end2)
			return false;
		return op[0] == 'G' ? have > want : have < want;
	}
	return false;
}

static bool term_matches(const cJSON *term, const struct node *node)
{
	const cJSON *expressions = cJSON_GetObjectItemCaseSensitive(term, "matchExpressions");
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(term, "matchFields");
	if (cJSON_GetArraySize(expressions) == 0 && cJSON_GetArraySize(fields) == 0)
		return false;
	const cJSON *r;
	cJSON_ArrayForEach(r, expressions)
	{
		const char *key = string_or_empty(r, "key");
		if (!requirement_matches(r, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(node->labels, key))))
			return false;
	}
	cJSON_ArrayForEach(r, fields)
	{
		if (strcmp(string_or_empty(r, "key"), "metadata.name") != 0 || !requirement_matches(r, node->name))
			return false;
	}
	return true;
}

bool controller_node_matches(const cJSON *pod_spec, const struct node *node)
{
	const cJSON *selector = cJSON_GetObjectItemCaseSensitive(pod_spec, "nodeSelector"), *item;
	cJSON_ArrayForEach(item, selector)
	{
		const char *have = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(node->labels, item->string));
		if (!cJSON_IsString(item) || !have || strcmp(have, item->valuestring) != 0)
			return false;
	}
	const cJSON *affinity = cJSON_GetObjectItemCaseSensitive(pod_spec, "affinity");
	const cJSON *required =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(affinity, "nodeAffinity"),
	                                         "requiredDuringSchedulingIgnoredDuringExecution");
	if (!required)
		return true;
	const cJSON *term;
	cJSON_ArrayForEach(term, cJSON_GetObjectItemCaseSensitive(required, "nodeSelectorTerms"))
	{
		if (term_matches(term, node))
			return true;
	}
	return false;
}

/* --- queueing for pod owners ------------------------------------------------------------ */

static void enqueue_selecting(struct controllers *c, enum controller_id id, enum cached_kind cache, const char *ns,
                              const cJSON *labels)
{
	map_each(e, &c->objects[cache])
	{
		const cJSON *owner = e->value;
		const char *owner_ns = object_namespace(owner);
		if (!owner_ns || strcmp(owner_ns, ns) != 0)
			continue;
		struct selector *selector = NULL;
		if (selector_from_json(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(owner, "spec"),
		                                                        "selector"),
		                       "spec.selector", &selector, NULL) < 0)
			continue;
		if (!selector_is_empty(selector) && selector_matches_labels(selector, labels))
			controller_enqueue(c, id, e->key);
		selector_free(selector);
	}
}

static void enqueue_pod_owner(struct controllers *c, enum controller_id id, enum cached_kind cache,
                              const char *owner_kind, const struct pod *pod)
{
	const struct pod_owner *owner = pod_controller(pod, owner_kind);
	if (owner && owner->name) {
		cleanup_free char *key = xasprintf("%s/%s", pod->namespace, owner->name);
		controller_enqueue(c, id, key);
	} else if (pod->controller < 0) {
		enqueue_selecting(c, id, cache, pod->namespace, pod->labels);
	}
}

void controller_enqueue_pod_owners(struct controllers *c, enum controller_id id, enum cached_kind cache,
                                   const char *owner_kind, const struct pod *old, const struct pod *new)
{
	if (!pod_changed_for_owner(old, new))
		return;
	if (old)
		enqueue_pod_owner(c, id, cache, owner_kind, old);
	if (new)
		enqueue_pod_owner(c, id, cache, owner_kind, new);
}

void controller_enqueue_cached(struct controllers *c, enum controller_id id, enum cached_kind cache,
                               enum cached_kind which, const cJSON *old, const cJSON *new)
{
	if (which != cache)
		return;
	cleanup_free char *key = controller_key(new ? new : old);
	controller_enqueue(c, id, key);
}
