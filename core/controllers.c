/* See controllers.h. The manager's state:
 *
 *   caches     every pod and node in a compact form (struct pod, struct node), with indexes
 *              by owner uid, node, namespace and (pods without a controller) orphans; the
 *              workload kinds, Services and Namespaces as parsed JSON. They reflect the
 *              store as of the last commit: controllers_on_change() updates them, after
 *              telling every controller of the old and new state.
 *   queues     per controller, the keys to sync at the next run, each once
 *   delayed    keys due later (monotonic time); one loop timer, armed for the earliest of
 *              them (or at once when a queue is not empty after a run), kicks the API
 *              server, which runs a batch: controllers_run() promotes what is due and syncs
 *
 * Life of the manager: controllers_new (caches loaded from the store, every object queued
 * once, so a restart converges) -> on_change / run, as long as the API server lives ->
 * controllers_free. No timer is armed when nothing is due.
 */
#include "core/controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "core/store.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define CONTROLLERS_MAX_DELAYED 100000
#define CONTROLLERS_COSTLY_SYNC_US 1000 /* a sync at least this long, writing at most once, ... */
#define CONTROLLERS_COST_SPACING 10     /* ... waits this many times its cost before the next */

static const struct controller_ops *const controller_table[CONTROLLER_COUNT] = {
	[CONTROLLER_NAMESPACE] = &namespace_controller,
	[CONTROLLER_GARBAGE] = &garbage_controller,
	[CONTROLLER_DEPLOYMENT] = &deployment_controller,
	[CONTROLLER_REPLICASET] = &replicaset_controller,
	[CONTROLLER_DAEMONSET] = &daemonset_controller,
	[CONTROLLER_JOB] = &job_controller,
	[CONTROLLER_ENDPOINTS] = &endpoints_controller,
	[CONTROLLER_NODE_LIFECYCLE] = &node_lifecycle_controller,
	[CONTROLLER_HPA] = &hpa_controller,
	[CONTROLLER_NODE_IPAM] = &node_ipam_controller,
};

static const char *const cached_resources[CACHED_COUNT] = {
	[CACHED_REPLICASETS] = "replicasets.apps",
	[CACHED_DEPLOYMENTS] = "deployments.apps",
	[CACHED_DAEMONSETS] = "daemonsets.apps",
	[CACHED_JOBS] = "jobs.batch",
	[CACHED_SERVICES] = "services",
	[CACHED_NAMESPACES] = "namespaces",
};

const char *controller_cached_resource(enum cached_kind which)
{
	return cached_resources[which];
}

static int cached_kind_of(const char *resource)
{
	for (int i = 0; i < CACHED_COUNT; i++)
		if (strcmp(cached_resources[i], resource) == 0)
			return i;
	return -1;
}

const cJSON *controller_cached(const struct controllers *c, enum cached_kind which, const char *key)
{
	return map_get(&c->objects[which], key);
}

/* --- pods and nodes in compact form ----------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static const char *string_member(const cJSON *object, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, name));
}

static enum pod_phase phase_of(const char *phase)
{
	static const char *const names[] = { "Pending", "Running", "Succeeded", "Failed", "Unknown" };
	for (size_t i = 0; phase && i < ARRAY_SIZE(names); i++)
		if (strcmp(phase, names[i]) == 0)
			return (enum pod_phase)i;
	return POD_PENDING;
}

/* The node named by required node affinity of the form a DaemonSet pod has: one term with
 * matchFields [{key: metadata.name, operator: In, values: [name]}]; NULL otherwise. */
static const char *affinity_node(const cJSON *spec)
{
	const cJSON *terms = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(
	                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "affinity"),
	                                                 "nodeAffinity"),
	                "requiredDuringSchedulingIgnoredDuringExecution"),
	        "nodeSelectorTerms");
	if (cJSON_GetArraySize(terms) != 1)
		return NULL;
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(terms, 0), "matchFields");
	const cJSON *field = cJSON_GetArrayItem(fields, 0);
	const cJSON *values = cJSON_GetObjectItemCaseSensitive(field, "values");
	const char *key = string_member(field, "key"), *op = string_member(field, "operator");
	if (cJSON_GetArraySize(fields) != 1 || !key || !op || strcmp(key, "metadata.name") != 0 ||
	    strcmp(op, "In") != 0 || cJSON_GetArraySize(values) != 1)
		return NULL;
	return cJSON_GetStringValue(cJSON_GetArrayItem(values, 0));
}

static struct pod *pod_parse(const cJSON *json)
{
	struct pod *pod = xcalloc(1, sizeof(*pod));
	const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(json, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(json, "spec");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(json, "status");
	const char *ns = string_member(metadata, "namespace");
	pod->namespace = xstrdup(ns ? ns : "default");
	pod->name = xstrdup(string_member(metadata, "name") ? string_member(metadata, "name") : "");
	pod->key = xasprintf("%s/%s", pod->namespace, pod->name);
	pod->uid = xstrdup(string_member(metadata, "uid") ? string_member(metadata, "uid") : "");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(metadata, "labels");
	pod->labels = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : cJSON_CreateObject();
	pod->controller = -1;
	const cJSON *ref;
	cJSON_ArrayForEach(ref, cJSON_GetObjectItemCaseSensitive(metadata, "ownerReferences"))
	{
		if (pod->owner_count == POD_MAX_OWNERS || !string_member(ref, "uid"))
			break;
		struct pod_owner *o = &pod->owners[pod->owner_count];
		o->api_version = dup_or_null(string_member(ref, "apiVersion"));
		o->kind = dup_or_null(string_member(ref, "kind"));
		o->name = dup_or_null(string_member(ref, "name"));
		o->uid = xstrdup(string_member(ref, "uid"));
		o->controller = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller"));
		o->block = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "blockOwnerDeletion"));
		if (o->controller && pod->controller < 0)
			pod->controller = pod->owner_count;
		pod->owner_count++;
	}
	pod->node_name = dup_or_null(string_member(spec, "nodeName"));
	if (!pod->node_name)
		pod->target_node = dup_or_null(affinity_node(spec));
	pod->phase = phase_of(string_member(status, "phase"));
	const cJSON *condition;
	cJSON_ArrayForEach(condition, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
	{
		const char *type = string_member(condition, "type"), *value = string_member(condition, "status");
		if (type && value && strcmp(type, "Ready") == 0) {
			pod->ready = strcmp(value, "True") == 0;
			pod->ready_since_ms = controller_parse_time(string_member(condition, "lastTransitionTime"));
		}
	}
	pod->deleting = string_member(metadata, "deletionTimestamp") != NULL;
	pod->created_ms = controller_parse_time(string_member(metadata, "creationTimestamp"));
	const cJSON *container_status;
	cJSON_ArrayForEach(container_status, cJSON_GetObjectItemCaseSensitive(status, "containerStatuses"))
	{
		pod->restarts += (int)controller_int_at(container_status, "restartCount", 0);
		const cJSON *terminated = cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(container_status, "state"), "terminated");
		int64_t finished = controller_parse_time(string_member(terminated, "finishedAt"));
		if (finished > pod->finished_ms)
			pod->finished_ms = finished;
	}
	pod->pod_ip = dup_or_null(string_member(status, "podIP"));
	pod->hostname = dup_or_null(string_member(spec, "hostname"));
	pod->subdomain = dup_or_null(string_member(spec, "subdomain"));
	const cJSON *container, *port;
	cJSON_ArrayForEach(container, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
	{
		cJSON_ArrayForEach(port, cJSON_GetObjectItemCaseSensitive(container, "ports"))
		{
			if (pod->port_count == POD_MAX_PORTS)
				break;
			struct pod_port *p = &pod->ports[pod->port_count++];
			p->name = dup_or_null(string_member(port, "name"));
			p->port = (int)controller_int_at(port, "containerPort", 0);
			const char *protocol = string_member(port, "protocol");
			snprintf(p->protocol, sizeof(p->protocol), "%s", protocol ? protocol : "TCP");
		}
	}
	const cJSON *tolerations = cJSON_GetObjectItemCaseSensitive(spec, "tolerations");
	if (cJSON_IsArray(tolerations) && cJSON_GetArraySize(tolerations) > 0)
		pod->tolerations = cJSON_Duplicate(tolerations, 1);
	return pod;
}

static void pod_free(struct pod *pod)
{
	if (!pod)
		return;
	free(pod->key);
	free(pod->namespace);
	free(pod->name);
	free(pod->uid);
	cJSON_Delete(pod->labels);
	for (int i = 0; i < pod->owner_count; i++) {
		free(pod->owners[i].api_version);
		free(pod->owners[i].kind);
		free(pod->owners[i].name);
		free(pod->owners[i].uid);
	}
	free(pod->node_name);
	free(pod->target_node);
	free(pod->pod_ip);
	free(pod->hostname);
	free(pod->subdomain);
	for (int i = 0; i < pod->port_count; i++)
		free(pod->ports[i].name);
	cJSON_Delete(pod->tolerations);
	free(pod);
}

static struct node *node_parse(const cJSON *json)
{
	struct node *node = xcalloc(1, sizeof(*node));
	const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(json, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(json, "spec");
	node->name = xstrdup(string_member(metadata, "name") ? string_member(metadata, "name") : "");
	node->uid = xstrdup(string_member(metadata, "uid") ? string_member(metadata, "uid") : "");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(metadata, "labels");
	node->labels = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : cJSON_CreateObject();
	const cJSON *taints = cJSON_GetObjectItemCaseSensitive(spec, "taints");
	node->taints = cJSON_IsArray(taints) ? cJSON_Duplicate(taints, 1) : cJSON_CreateArray();
	node->unschedulable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "unschedulable"));
	node->ready = NODE_READY_UNKNOWN;
	const cJSON *condition = controller_condition(cJSON_GetObjectItemCaseSensitive(json, "status"), "Ready");
	const char *value = string_member(condition, "status");
	if (value && strcmp(value, "True") == 0)
		node->ready = NODE_READY_TRUE;
	else if (value && strcmp(value, "False") == 0)
		node->ready = NODE_READY_FALSE;
	return node;
}

static void node_free(struct node *node)
{
	if (!node)
		return;
	free(node->name);
	free(node->uid);
	cJSON_Delete(node->labels);
	cJSON_Delete(node->taints);
	free(node);
}

/* --- indexes ----------------------------------------------------------------------------- */

static void index_add(struct map *index, const char *value, struct pod *pod)
{
	struct map *set = map_get(index, value);
	if (!set) {
		set = xcalloc(1, sizeof(*set));
		map_put(index, value, set);
	}
	map_put(set, pod->key, pod);
}

static void index_remove(struct map *index, const char *value, const struct pod *pod)
{
	struct map *set = map_get(index, value);
	if (!set)
		return;
	map_remove(set, pod->key);
	if (set->count == 0) {
		map_remove(index, value);
		map_clear(set);
		free(set);
	}
}

static void index_free(struct map *index)
{
	map_each(e, index)
	{
		map_clear(e->value);
		free(e->value);
	}
	map_clear(index);
}

static void pod_index_one(struct map *index, const char *value, struct pod *pod, bool add)
{
	if (add)
		index_add(index, value, pod);
	else
		index_remove(index, value, pod);
}

static void pod_index(struct controllers *c, struct pod *pod, bool add)
{
	for (int i = 0; i < pod->owner_count; i++)
		pod_index_one(&c->pods_by_owner, pod->owners[i].uid, pod, add);
	if (pod->node_name)
		pod_index_one(&c->pods_by_node, pod->node_name, pod, add);
	pod_index_one(&c->pods_by_namespace, pod->namespace, pod, add);
	if (pod->controller < 0)
		pod_index_one(&c->orphans, pod->namespace, pod, add);
}

/* --- queues and timers ------------------------------------------------------------------ */

void controller_enqueue(struct controllers *c, enum controller_id id, const char *key)
{
	if (!map_get(&c->queues[id].keys, key))
		map_put(&c->queues[id].keys, key, (void *)1);
}

void controller_enqueue_after(struct controllers *c, enum controller_id id, const char *key, uint64_t delay_ms)
{
	uint64_t due = controller_monotonic_ms(c) + delay_ms;
	for (size_t i = 0; i < c->delayed_count; i++) {
		struct delayed *d = &c->delayed[i];
		if (d->id == id && strcmp(d->key, key) == 0) {
			if (due < d->due_ms)
				d->due_ms = due;
			return;
		}
	}
	if (c->delayed_count >= CONTROLLERS_MAX_DELAYED) {
		log_warnx("controllers: %zu keys waiting for a time already; %s of %s is dropped", c->delayed_count,
		          key, controller_table[id]->name);
		return;
	}
	if (c->delayed_count == c->delayed_capacity) {
		c->delayed_capacity = c->delayed_capacity ? 2 * c->delayed_capacity : 16;
		c->delayed = xrealloc(c->delayed, c->delayed_capacity * sizeof(*c->delayed));
	}
	c->delayed[c->delayed_count++] = (struct delayed){ due, id, xstrdup(key) };
}

static void promote_due(struct controllers *c)
{
	uint64_t now = controller_monotonic_ms(c);
	for (size_t i = 0; i < c->delayed_count;) {
		struct delayed *d = &c->delayed[i];
		if (d->due_ms > now) {
			i++;
			continue;
		}
		controller_enqueue(c, d->id, d->key);
		free(d->key);
		*d = c->delayed[--c->delayed_count];
	}
}

bool controllers_pending(const struct controllers *c)
{
	for (int i = 0; i < CONTROLLER_COUNT; i++)
		if (c->queues[i].keys.count)
			return true;
	return false;
}

static void on_timer(struct loop *loop, void *data)
{
	(void)loop;
	struct controllers *c = data;
	c->timer = NULL;
	if (c->kick)
		c->kick(c->kick_data);
}

static void arm_timer(struct controllers *c)
{
	if (!c->loop)
		return;
	uint64_t now = controller_monotonic_ms(c), due = UINT64_MAX;
	if (controllers_pending(c))
		due = now;
	for (size_t i = 0; i < c->delayed_count; i++)
		if (c->delayed[i].due_ms < due)
			due = c->delayed[i].due_ms;
	if (c->timer && (due == UINT64_MAX || due != c->timer_due_ms)) {
		loop_cancel_timer(c->loop, c->timer);
		c->timer = NULL;
	}
	if (due == UINT64_MAX || c->timer)
		return;
	c->timer_due_ms = due;
	c->timer = loop_add_timer(c->loop, due > now ? due - now : 0, on_timer, c);
}

void controllers_advance_clock(struct controllers *c, int64_t ms)
{
	c->clock_offset_ms += ms;
}

/* --- changes ------------------------------------------------------------------------------ */

static void pod_changed(struct controllers *c, const char *key, const cJSON *json)
{
	struct pod *old = map_get(&c->pods, key);
	struct pod *new = json ? pod_parse(json) : NULL;
	if (new &&old && old->node_name &&new->node_name &&strcmp(old->node_name, new->node_name) == 0)
		new->evict_at_ms = old->evict_at_ms;
	for (int i = 0; i < CONTROLLER_COUNT; i++)
		if (controller_table[i]->on_pod)
			controller_table[i]->on_pod(c, old, new);
	if (old) {
		pod_index(c, old, false);
		map_remove(&c->pods, key);
		pod_free(old);
	}
	if (new) {
		map_put(&c->pods, new->key, new);
		pod_index(c, new, true);
	}
}

static void node_changed(struct controllers *c, const char *name, const cJSON *json)
{
	struct node *old = map_get(&c->nodes, name);
	struct node *new = json ? node_parse(json) : NULL;
	if (new)
		new->heartbeat_ms = old ? old->heartbeat_ms : controller_monotonic_ms(c);
	for (int i = 0; i < CONTROLLER_COUNT; i++)
		if (controller_table[i]->on_node)
			controller_table[i]->on_node(c, old, new);
	if (old) {
		map_remove(&c->nodes, name);
		node_free(old);
	}
	if (new)
		map_put(&c->nodes, new->name, new);
}

static void object_changed(struct controllers *c, enum cached_kind which, const char *key, cJSON *json)
{
	cJSON *old = map_get(&c->objects[which], key);
	for (int i = 0; i < CONTROLLER_COUNT; i++)
		if (controller_table[i]->on_object)
			controller_table[i]->on_object(c, which, old, json);
	if (json)
		map_put(&c->objects[which], key, json);
	else
		map_remove(&c->objects[which], key);
	cJSON_Delete(old);
}

void controllers_on_parsed_change(struct controllers *c, const struct store_change *change, const cJSON *json)
{
	if (!json)
		return;
	bool deleted = change->type == STORE_DELETED;
	cleanup_free char *key = xasprintf("%s/%s", change->namespace, change->name);
	int which;
	if (strcmp(change->resource, "pods") == 0) {
		pod_changed(c, key, deleted ? NULL : json);
	} else if (strcmp(change->resource, "nodes") == 0) {
		node_changed(c, change->name, deleted ? NULL : json);
	} else if ((which = cached_kind_of(change->resource)) >= 0) {
		/* The cache keeps a copy of its own. */
		object_changed(c, (enum cached_kind)which, key, deleted ? NULL : cJSON_Duplicate(json, 1));
	} else if (strcmp(change->resource, "events") != 0) {
		for (int i = 0; i < CONTROLLER_COUNT; i++)
			if (controller_table[i]->on_other)
				controller_table[i]->on_other(c, change, json);
	}
}

void controllers_on_change(struct controllers *c, const struct store_change *change)
{
	cJSON *json = cJSON_Parse(change->object);
	controllers_on_parsed_change(c, change, json);
	cJSON_Delete(json);
}

void controllers_node_heartbeat(struct controllers *c, const char *node_name)
{
	struct node *node = map_get(&c->nodes, node_name);
	if (node)
		node->heartbeat_ms = controller_monotonic_ms(c);
}

/* --- start-up: load everything as if it had just been added ---------------------------- */

struct load_state {
	struct controllers *c;
	const char *resource;
};

static int load_one(const char *text, size_t length, void *data)
{
	struct load_state *s = data;
	cJSON *json = cJSON_ParseWithLength(text, length);
	if (!json)
		return 0;
	const char *ns = object_namespace(json), *name = object_name(json);
	cleanup_free char *copy = xstrndup(text, length);
	struct store_change synthetic = {
		.type = STORE_ADDED,
		.resource = s->resource,
		.namespace = ns ? ns : "",
		.name = name ? name : "",
		.object = copy,
	};
	controllers_on_parsed_change(s->c, &synthetic, json);
	cJSON_Delete(json);
	return 0;
}

static int load(struct controllers *c, struct error *err)
{
	/* Namespaces and nodes first: the others are judged against them. */
	static const char *const first[] = { "namespaces", "nodes" };
	for (size_t i = 0; i < ARRAY_SIZE(first); i++) {
		struct load_state s = { c, first[i] };
		int r = store_list(c->store, first[i], NULL, NULL, 0, load_one, &s, NULL, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		char resource[96];
		if (k->group[0])
			snprintf(resource, sizeof(resource), "%s.%s", k->resource, k->group);
		else
			snprintf(resource, sizeof(resource), "%s", k->resource);
		if (strcmp(resource, "namespaces") == 0 || strcmp(resource, "nodes") == 0 ||
		    strcmp(resource, "events") == 0)
			continue;
		struct load_state s = { c, resource };
		int r = store_list(c->store, resource, NULL, NULL, 0, load_one, &s, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int controllers_new(struct store *store, struct loop *loop, const struct controllers_options *options,
                    controllers_kick_fn kick, void *kick_data, struct controllers **ret_controllers, struct error *err)
{
	struct controllers *c = xcalloc(1, sizeof(*c));
	c->store = store;
	c->loop = loop;
	c->kick = kick;
	c->kick_data = kick_data;
	if (options)
		c->options = *options;
	if (!c->options.node_grace_ms)
		c->options.node_grace_ms = CONTROLLERS_DEFAULT_NODE_GRACE_MS;
	if (!c->options.eviction_delay_ms)
		c->options.eviction_delay_ms = CONTROLLERS_DEFAULT_EVICTION_DELAY_MS;
	if (c->options.eviction_rate <= 0)
		c->options.eviction_rate = CONTROLLERS_DEFAULT_EVICTION_RATE;
	if (!c->options.unhealthy_percent || c->options.unhealthy_percent > 100)
		c->options.unhealthy_percent = CONTROLLERS_DEFAULT_UNHEALTHY_PERCENT;
	if (!c->options.job_backoff_ms)
		c->options.job_backoff_ms = CONTROLLERS_DEFAULT_JOB_BACKOFF_MS;
	c->eviction_tokens = 1;
	c->eviction_tokens_ms = controller_monotonic_ms(c);
	int r = load(c, err);
	if (r < 0) {
		controllers_free(c);
		return r;
	}
	arm_timer(c);
	*ret_controllers = c;
	return 0;
}

void controllers_free(struct controllers *c)
{
	if (!c)
		return;
	if (c->timer)
		loop_cancel_timer(c->loop, c->timer);
	map_each(e, &c->pods)
	{
		pod_free(e->value);
	}
	map_clear(&c->pods);
	index_free(&c->pods_by_owner);
	index_free(&c->pods_by_node);
	index_free(&c->pods_by_namespace);
	index_free(&c->orphans);
	map_each(e, &c->nodes)
	{
		node_free(e->value);
	}
	map_clear(&c->nodes);
	for (int i = 0; i < CACHED_COUNT; i++) {
		map_each(e, &c->objects[i])
		{
			cJSON_Delete(e->value);
		}
		map_clear(&c->objects[i]);
	}
	for (int i = 0; i < CONTROLLER_COUNT; i++) {
		map_clear(&c->queues[i].keys);
		map_each(e, &c->costs[i])
		{
			free(e->value);
		}
		map_clear(&c->costs[i]);
	}
	for (size_t i = 0; i < c->delayed_count; i++)
		free(c->delayed[i].key);
	free(c->delayed);
	for (size_t i = 0; i < CONTROLLER_EVENT_MEMORY; i++)
		free(c->events[i].what);
	garbage_free_index(c);
	hpa_free_state(c);
	free(c);
}

/* --- runs --------------------------------------------------------------------------------- */

int controllers_run(struct controllers *c, struct error *err)
{
	(void)err;
	promote_due(c);
	int writes = 0;
	for (int id = 0; id < CONTROLLER_COUNT; id++) {
		struct map keys = c->queues[id].keys;
		memset(&c->queues[id].keys, 0, sizeof(c->queues[id].keys));
		map_each(e, &keys)
		{
			/* Costly syncs are spaced out, in the API server (tests run without a loop). */
			struct sync_cost *cost = c->loop ? map_get(&c->costs[id], e->key) : NULL;
			uint64_t now = controller_monotonic_ms(c);
			if (cost) {
				uint64_t next = cost->at_ms + cost->cost_us * CONTROLLERS_COST_SPACING / 1000;
				if (now < next) {
					controller_enqueue_after(c, (enum controller_id)id, e->key, next - now);
					continue;
				}
			}
			uint64_t started_us = clock_monotonic_us();
			struct error sync_err = { 0 };
			int r = controller_table[id]->sync(c, e->key, &sync_err);
			uint64_t took_us = clock_monotonic_us() - started_us;
			/* Only syncs that found next to nothing to do are spaced: one that creates
			 * or deletes pods is progress. */
			if (c->loop && took_us >= CONTROLLERS_COSTLY_SYNC_US && r <= 1) {
				if (!cost) {
					cost = xcalloc(1, sizeof(*cost));
					map_put(&c->costs[id], e->key, cost);
				}
				cost->at_ms = controller_monotonic_ms(c);
				cost->cost_us = took_us;
			} else if (cost) {
				free(map_remove(&c->costs[id], e->key));
			}
			if (r < 0)
				log_warnx("%s controller: %s: %s", controller_table[id]->name, e->key,
				          sync_err.message[0] ? sync_err.message : strerror(-r));
			else
				writes += r;
		}
		map_clear(&keys);
	}
	arm_timer(c);
	return writes;
}
