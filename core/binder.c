/* See binder.h. State:
 *
 *   scheduler   the snapshot: every Node, every bound pod
 *   pending     keys ("namespace/name") of pods without a node, each with the cluster
 *               generation it was last tried at, in arrival order and indexed by key
 *               (tens of thousands may wait at once); a pod is tried when it is new or the
 *               cluster generation has moved since (cluster_generation counts changes to
 *               Nodes and the departure of bound pods, the events that free room)
 *
 * A pod's life here: ADDED unbound -> pending -> binder_run: bound (REPLACE with
 * spec.nodeName; the MODIFIED that follows moves it into the snapshot) or unschedulable
 * (status written, stays pending until the cluster changes) -> DELETED: forgotten.
 */
#include "core/binder.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/object.h"
#include "core/scheduler.h"
#include "core/store.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

#define BINDER_SCHEDULER_NAME "default-scheduler"

struct pending_pod {
	char *key;         /* namespace/name */
	uint64_t tried_at; /* cluster generation of the last attempt; 0: never tried */
	uint32_t hash;
	size_t slot; /* its index in pending */
	struct pending_pod *next_in_bucket;
};

struct binder {
	struct store *store;
	struct scheduler *scheduler;
	struct pending_pod **pending; /* in the order they came, but for removals (the last moves up) */
	size_t pending_count, pending_capacity;
	struct pending_pod **buckets; /* by key: finding one is O(1), not a scan of thousands */
	size_t bucket_count;
	uint64_t cluster_generation;
	bool unfinished; /* the last run ran out of time */
	struct binder_counts counts;
};

static char *key_of(const cJSON *pod)
{
	const char *ns = object_namespace(pod), *name = object_name(pod);
	return xasprintf("%s/%s", ns ? ns : "default", name ? name : "");
}

static uint32_t hash_key(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct pending_pod *pending_find(const struct binder *b, const char *key)
{
	if (!b->bucket_count)
		return NULL;
	uint32_t h = hash_key(key);
	for (struct pending_pod *p = b->buckets[h & (b->bucket_count - 1)]; p; p = p->next_in_bucket)
		if (p->hash == h && strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

static void pending_remove(struct binder *b, const char *key)
{
	struct pending_pod *p = pending_find(b, key);
	if (!p)
		return;
	struct pending_pod **link = &b->buckets[p->hash & (b->bucket_count - 1)];
	while (*link != p)
		link = &(*link)->next_in_bucket;
	*link = p->next_in_bucket;
	struct pending_pod *last = b->pending[--b->pending_count];
	b->pending[p->slot] = last;
	last->slot = p->slot;
	free(p->key);
	free(p);
}

static void pending_add(struct binder *b, const char *key)
{
	if (pending_find(b, key) || b->pending_count >= BINDER_MAX_PENDING)
		return;
	if (b->pending_count == b->pending_capacity) {
		b->pending_capacity = b->pending_capacity ? 2 * b->pending_capacity : 16;
		b->pending = xrealloc(b->pending, b->pending_capacity * sizeof(*b->pending));
	}
	if (b->pending_count + 1 > b->bucket_count) {
		size_t n = b->bucket_count ? 2 * b->bucket_count : 64;
		struct pending_pod **buckets = xcalloc(n, sizeof(*buckets));
		for (size_t i = 0; i < b->pending_count; i++) {
			struct pending_pod *p = b->pending[i];
			p->next_in_bucket = buckets[p->hash & (n - 1)];
			buckets[p->hash & (n - 1)] = p;
		}
		free(b->buckets);
		b->buckets = buckets;
		b->bucket_count = n;
	}
	struct pending_pod *p = xcalloc(1, sizeof(*p));
	p->key = xstrdup(key);
	p->hash = hash_key(key);
	p->slot = b->pending_count;
	p->next_in_bucket = b->buckets[p->hash & (b->bucket_count - 1)];
	b->buckets[p->hash & (b->bucket_count - 1)] = p;
	b->pending[b->pending_count++] = p;
}

/* Is this pod the default scheduler's to place? */
static bool wants_scheduling(const cJSON *pod)
{
	if (object_string_at(pod, "spec.nodeName") || object_string_at(pod, "metadata.deletionTimestamp"))
		return false;
	const char *scheduler = object_string_at(pod, "spec.schedulerName");
	const char *phase = object_string_at(pod, "status.phase");
	if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
		return false;
	return !scheduler || strcmp(scheduler, BINDER_SCHEDULER_NAME) == 0;
}

static void take_pod(struct binder *b, const cJSON *pod)
{
	cleanup_free char *key = key_of(pod);
	if (object_string_at(pod, "spec.nodeName")) {
		pending_remove(b, key);
		struct error err;
		if (scheduler_add_pod(b->scheduler, pod, &err) < 0)
			log_warnx("binder: pod %s: %s", key, err.message);
	} else if (wants_scheduling(pod)) {
		pending_add(b, key);
	} else {
		pending_remove(b, key);
	}
}

void binder_on_change(struct binder *b, const struct store_change *change)
{
	if (strcmp(change->resource, "pods") != 0 && strcmp(change->resource, "nodes") != 0)
		return;
	cJSON *object = cJSON_Parse(change->object);
	binder_on_parsed_change(b, change, object);
	cJSON_Delete(object);
}

void binder_on_parsed_change(struct binder *b, const struct store_change *change, const cJSON *object)
{
	bool pods = strcmp(change->resource, "pods") == 0;
	if ((!pods && strcmp(change->resource, "nodes") != 0) || !object)
		return;
	struct error err;
	if (!pods) {
		b->cluster_generation++;
		if (change->type == STORE_DELETED)
			scheduler_remove_node(b->scheduler, change->name);
		else if (scheduler_update_node(b->scheduler, object, &err) < 0)
			log_warnx("binder: node %s: %s", change->name, err.message);
	} else if (change->type == STORE_DELETED) {
		cleanup_free char *key = key_of(object);
		pending_remove(b, key);
		if (scheduler_remove_pod(b->scheduler, object) == 0)
			b->cluster_generation++; /* its room is free again */
	} else {
		take_pod(b, object);
	}
}

static int load_node(const char *text, size_t length, void *data)
{
	struct binder *b = data;
	cJSON *node = cJSON_ParseWithLength(text, length);
	struct error err;
	if (node && scheduler_update_node(b->scheduler, node, &err) < 0)
		log_warnx("binder: node %s: %s", object_name(node), err.message);
	cJSON_Delete(node);
	return 0;
}

static int load_pod(const char *text, size_t length, void *data)
{
	cJSON *pod = cJSON_ParseWithLength(text, length);
	if (pod)
		take_pod(data, pod);
	cJSON_Delete(pod);
	return 0;
}

int binder_new(struct store *store, struct binder **ret_binder, struct error *err)
{
	struct binder *b = xcalloc(1, sizeof(*b));
	b->store = store;
	b->scheduler = scheduler_new();
	b->cluster_generation = 1;
	int r = store_list(store, "nodes", NULL, NULL, 0, load_node, b, NULL, err);
	if (r == 0)
		r = store_list(store, "pods", NULL, NULL, 0, load_pod, b, NULL, err);
	if (r < 0) {
		binder_free(b);
		return r;
	}
	*ret_binder = b;
	return 0;
}

void binder_free(struct binder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->pending_count; i++) {
		free(b->pending[i]->key);
		free(b->pending[i]);
	}
	free(b->pending);
	free(b->buckets);
	scheduler_free(b->scheduler);
	free(b);
}

size_t binder_pending(const struct binder *b)
{
	return b->pending_count;
}

/* Sets the PodScheduled condition; returns false when it already said the same. */
static bool set_scheduled_condition(cJSON *pod, bool scheduled, const char *message)
{
	cJSON *status = cJSON_GetObjectItemCaseSensitive(pod, "status");
	if (!cJSON_IsObject(status)) {
		cJSON_DeleteItemFromObjectCaseSensitive(pod, "status");
		status = cJSON_AddObjectToObject(pod, "status");
	}
	cJSON *conditions = cJSON_GetObjectItemCaseSensitive(status, "conditions");
	if (!cJSON_IsArray(conditions)) {
		cJSON_DeleteItemFromObjectCaseSensitive(status, "conditions");
		conditions = cJSON_AddArrayToObject(status, "conditions");
	}
	int index = 0;
	cJSON *c;
	cJSON_ArrayForEach(c, conditions)
	{
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(c, "type");
		if (cJSON_IsString(type) && strcmp(type->valuestring, "PodScheduled") == 0) {
			const cJSON *was = cJSON_GetObjectItemCaseSensitive(c, "status");
			const cJSON *said = cJSON_GetObjectItemCaseSensitive(c, "message");
			if (cJSON_IsString(was) && strcmp(was->valuestring, scheduled ? "True" : "False") == 0 &&
			    (scheduled || (cJSON_IsString(said) && strcmp(said->valuestring, message) == 0)))
				return false;
			cJSON_DeleteItemFromArray(conditions, index);
			break;
		}
		index++;
	}
	char now[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339(time(NULL), now);
	cJSON *condition = cJSON_CreateObject();
	cJSON_AddStringToObject(condition, "type", "PodScheduled");
	cJSON_AddStringToObject(condition, "status", scheduled ? "True" : "False");
	cJSON_AddStringToObject(condition, "lastTransitionTime", now);
	if (!scheduled) {
		cJSON_AddStringToObject(condition, "reason", "Unschedulable");
		cJSON_AddStringToObject(condition, "message", message);
		cJSON *phase = cJSON_GetObjectItemCaseSensitive(status, "phase");
		if (!phase)
			cJSON_AddStringToObject(status, "phase", "Pending");
	}
	cJSON_AddItemToArray(conditions, condition);
	return true;
}

static int record_event(struct binder *b, const cJSON *pod, const char *message, struct error *err)
{
	const char *ns = object_namespace(pod);
	char now[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339(time(NULL), now);
	cJSON *event = object_event_new(&(struct object_event){ .namespace = ns,
	                                                        .api_version = "v1",
	                                                        .kind = "Pod",
	                                                        .object_namespace = ns,
	                                                        .name = object_name(pod),
	                                                        .uid = object_string_at(pod, "metadata.uid"),
	                                                        .type = "Warning",
	                                                        .reason = "FailedScheduling",
	                                                        .message = message,
	                                                        .component = BINDER_SCHEDULER_NAME,
	                                                        .now = now });
	struct store_request request = { STORE_CREATE, "events", ns, object_name(event), event, 0 };
	int r = store_apply(b->store, &request, NULL, NULL, err);
	cJSON_Delete(event);
	return r;
}

static int try_pod(struct binder *b, const char *key, struct error *err)
{
	const char *slash = strchr(key, '/');
	char ns[64];
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	cleanup_free char *text = NULL;
	int r = store_get(b->store, "pods", ns, slash + 1, &text, NULL);
	if (r < 0) {
		pending_remove(b, key);
		return 0;
	}
	cJSON *pod = cJSON_Parse(text);
	if (!pod || !wants_scheduling(pod)) {
		cJSON_Delete(pod);
		pending_remove(b, key);
		return 0;
	}
	struct scheduler_result result;
	int writes = 0;
	r = scheduler_schedule(b->scheduler, pod, &result, err);
	const char *rv = object_string_at(pod, "metadata.resourceVersion");
	struct store_request request = { STORE_REPLACE, "pods", ns, slash + 1, pod, rv ? strtoull(rv, NULL, 10) : 0 };
	if (r < 0) {
		/* A pod the scheduler cannot read (a bad quantity...): say so on it, once. */
		snprintf(result.message, sizeof(result.message), "%s", err->message);
		result.scheduled = false;
	}
	if (result.scheduled) {
		cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
		cJSON_AddStringToObject(spec, "nodeName", result.node_name);
		set_scheduled_condition(pod, true, NULL);
		r = store_apply(b->store, &request, NULL, NULL, err);
		if (r == 0) {
			b->counts.scheduled++;
			scheduler_assume(b->scheduler, pod, result.node_name, NULL);
			log_debug("binder: %s -> %s", key, result.node_name);
			writes++;
		}
	} else {
		b->counts.unschedulable++;
		if (set_scheduled_condition(pod, false, result.message)) {
			r = store_apply(b->store, &request, NULL, NULL, err);
			if (r == 0 && record_event(b, pod, result.message, err) == 0)
				writes += 2;
		} else {
			r = 0;
		}
	}
	cJSON_Delete(pod);
	if (r < 0)
		b->counts.errors++;
	/* A write refused (the pod changed meanwhile) is retried on the next round. */
	return r == -ESTALE || r == -ENOENT ? 0 : r < 0 ? r : writes;
}

void binder_counts(const struct binder *b, struct binder_counts *ret_counts)
{
	*ret_counts = b->counts;
}

bool binder_unfinished(const struct binder *b)
{
	return b->unfinished;
}

int binder_run(struct binder *b, struct error *err)
{
	int writes = 0;
	uint64_t started = clock_monotonic_us();
	b->unfinished = false;
	for (size_t i = 0; i < b->pending_count;) {
		if (clock_monotonic_us() - started >= BINDER_RUN_BUDGET_US) {
			b->unfinished = true;
			break;
		}
		struct pending_pod *p = b->pending[i];
		if (p->tried_at == b->cluster_generation) {
			i++;
			continue;
		}
		p->tried_at = b->cluster_generation;
		cleanup_free char *key = xstrdup(p->key);
		size_t before = b->pending_count;
		int r = try_pod(b, key, err);
		if (r < 0)
			return r;
		writes += r;
		if (b->pending_count == before)
			i++; /* still waiting; a removed entry was replaced by the last one */
	}
	return writes;
}
