/* Shared by the controllers' unit tests: a real store in the test's temp dir, the
 * controllers fed by its change hook, and rounds run as the API server runs them (commit,
 * run, commit ...). Objects are written as the API server would store them (defaults,
 * uid, creationTimestamp, generation). A "kubelet" here is the test itself: it sets pod
 * status by hand. */
#ifndef BRAMBLE_TESTS_CONTROLLERS_HARNESS_H
#define BRAMBLE_TESTS_CONTROLLERS_HARNESS_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/controller.h"
#include "core/controllers.h"
#include "core/object.h"
#include "core/store.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

#define HARNESS static __attribute__((unused))

struct harness {
	struct store *store;
	struct controllers *c;
	int changes; /* committed changes seen */
};

HARNESS void harness_feed(const struct store_change *change, void *data)
{
	struct harness *h = data;
	h->changes++;
	controllers_on_change(h->c, change);
}

HARNESS const char *harness_resource(const struct kind *kind, char *buf, size_t size)
{
	if (kind->group[0])
		snprintf(buf, size, "%s.%s", kind->resource, kind->group);
	else
		snprintf(buf, size, "%s", kind->resource);
	return buf;
}

/* Creates an object from JSON text as the API server would; returns its uid (static). */
HARNESS const char *harness_create(struct harness *h, const char *json)
{
	static char uid[37];
	cJSON *object = cJSON_Parse(json);
	CHECK(object != NULL);
	const struct kind *kind = kind_lookup(cJSON_GetStringValue(cJSON_GetObjectItem(object, "apiVersion")),
	                                      cJSON_GetStringValue(cJSON_GetObjectItem(object, "kind")));
	CHECK(kind != NULL);
	cJSON *metadata = object_metadata(object);
	if (kind->namespaced && !object_namespace(object))
		cJSON_AddStringToObject(metadata, "namespace", "default");
	object_new_uid(uid);
	char now[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339((time_t)(controller_now_ms(h->c) / 1000), now);
	cJSON_AddStringToObject(metadata, "uid", uid);
	cJSON_AddStringToObject(metadata, "creationTimestamp", now);
	cJSON_AddNumberToObject(metadata, "generation", 1);
	if (strcmp(kind->name, "Job") == 0)
		CHECK_OK(controllers_prepare_job(object, NULL));
	object_apply_defaults(kind, object);
	struct error err = { 0 };
	if (object_validate(kind, object, &err) < 0)
		unit_fail(__FILE__, __LINE__, "invalid test object: %s", err.message);
	char resource[96];
	struct store_request request = { STORE_CREATE,
		                         harness_resource(kind, resource, sizeof(resource)),
		                         kind->namespaced ? object_namespace(object) : "",
		                         object_name(object),
		                         object,
		                         0 };
	CHECK_OK(store_apply(h->store, &request, NULL, NULL, &err));
	cJSON_Delete(object);
	return uid;
}

HARNESS void harness_open_with(struct harness *hp, const struct controllers_options *options)
{
	struct harness h = { 0 };
	cleanup_free char *path = xasprintf("%s/store.db", unit_temp_dir());
	static const uint8_t key[STORE_SECRET_KEY_SIZE] = { 7 };
	struct store_options store_options = { .path = path, .secret_key = key };
	CHECK_OK(store_open(&store_options, &h.store, NULL));
	cJSON *ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"default\","
	                        "\"uid\":\"ns-default\"},\"status\":{\"phase\":\"Active\"}}");
	struct store_request request = { STORE_CREATE, "namespaces", "", "default", ns, 0 };
	CHECK_OK(store_apply(h.store, &request, NULL, NULL, NULL));
	cJSON_Delete(ns);
	CHECK_OK(store_commit(h.store, NULL));
	CHECK_OK(controllers_new(h.store, NULL, options, NULL, NULL, &h.c, NULL));
	*hp = h;
	store_set_change_hook(hp->store, harness_feed, hp);
}

HARNESS void harness_open(struct harness *h)
{
	harness_open_with(h, NULL);
}

HARNESS void harness_close(struct harness *h)
{
	controllers_free(h->c);
	store_close(h->store);
}

/* Commits and runs the controllers until they write nothing more; returns their writes. */
HARNESS int harness_settle(struct harness *h)
{
	int total = 0;
	for (int round = 0; round < 100; round++) {
		struct error err = { 0 };
		CHECK_OK(store_commit(h->store, &err));
		int writes = controllers_run(h->c, &err);
		CHECK_OK(writes);
		CHECK_OK(store_commit(h->store, &err));
		total += writes;
		if (writes == 0 && !controllers_pending(h->c))
			return total;
	}
	unit_fail(__FILE__, __LINE__, "the controllers kept writing for 100 rounds");
}

HARNESS cJSON *harness_get(struct harness *h, const char *resource, const char *ns, const char *name)
{
	cleanup_free char *text = NULL;
	if (store_get(h->store, resource, ns, name, &text, NULL) < 0)
		return NULL;
	return cJSON_Parse(text);
}

struct harness_list {
	cJSON *items[4096];
	int count;
};

HARNESS int harness_collect(const char *text, size_t length, void *data)
{
	struct harness_list *l = data;
	if (l->count < 4096)
		l->items[l->count++] = cJSON_ParseWithLength(text, length);
	return 0;
}

HARNESS void harness_list(struct harness *h, const char *resource, const char *ns, struct harness_list *out)
{
	out->count = 0;
	CHECK_OK(store_list(h->store, resource, ns, NULL, 0, harness_collect, out, NULL, NULL));
}

HARNESS void harness_list_free(struct harness_list *l)
{
	for (int i = 0; i < l->count; i++)
		cJSON_Delete(l->items[i]);
	l->count = 0;
}

HARNESS int harness_count(struct harness *h, const char *resource, const char *ns)
{
	struct harness_list l;
	harness_list(h, resource, ns, &l);
	int n = l.count;
	harness_list_free(&l);
	return n;
}

/* Pods not being deleted. */
HARNESS int harness_live_pods(struct harness *h, const char *ns)
{
	struct harness_list l;
	harness_list(h, "pods", ns, &l);
	int n = 0;
	for (int i = 0; i < l.count; i++)
		n += object_string_at(l.items[i], "metadata.deletionTimestamp") == NULL;
	harness_list_free(&l);
	return n;
}

/* Replaces an object with a modified copy: fn edits it. */
HARNESS void harness_edit(struct harness *h, const char *resource, const char *ns, const char *name,
                          void (*fn)(cJSON *object, void *data), void *data)
{
	cJSON *stored = harness_get(h, resource, ns, name);
	CHECK(stored != NULL);
	cJSON *updated = cJSON_Duplicate(stored, 1);
	fn(updated, data);
	struct error err = { 0 };
	int r = controller_update(h->c, resource, stored, updated, &err);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "edit %s/%s: %s", ns, name, err.message);
	cJSON_Delete(stored);
	cJSON_Delete(updated);
}

struct harness_pod_state {
	const char *phase;
	bool ready;
	const char *node;
	const char *ip;
};

HARNESS void harness_apply_pod_state(cJSON *pod, void *data)
{
	const struct harness_pod_state *s = data;
	char now[CLOCK_RFC3339_SIZE];
	time_t t = time(NULL);
	clock_format_rfc3339(t, now);
	if (s->node)
		controller_set_string(controller_child(pod, "spec"), "nodeName", s->node);
	cJSON *status = controller_child(pod, "status");
	if (s->phase)
		controller_set_string(status, "phase", s->phase);
	if (s->ip)
		controller_set_string(status, "podIP", s->ip);
	controller_set_condition(status, "Ready", s->ready ? "True" : "False", NULL, NULL, now, false, false);
}

/* What a kubelet would write: the pod on node, in phase, ready or not. */
HARNESS void harness_pod_state(struct harness *h, const char *ns, const char *name, const char *node, const char *phase,
                               bool ready)
{
	struct harness_pod_state s = { phase, ready, node, NULL };
	harness_edit(h, "pods", ns, name, harness_apply_pod_state, &s);
}

/* Every pod of the namespace: bound to node (round-robin over nodes when NULL is not
 * given), Running and Ready, as a healthy kubelet would make them. */
HARNESS void harness_run_all(struct harness *h, const char *ns, const char *const *nodes, int node_count)
{
	struct harness_list l;
	harness_list(h, "pods", ns, &l);
	for (int i = 0; i < l.count; i++) {
		const char *phase = object_string_at(l.items[i], "status.phase");
		if (object_string_at(l.items[i], "metadata.deletionTimestamp") ||
		    (phase && strcmp(phase, "Running") == 0))
			continue;
		const char *node = object_string_at(l.items[i], "spec.nodeName");
		if (!node)
			node = node_count ? nodes[i % node_count] : "node-1";
		char ip[32];
		snprintf(ip, sizeof(ip), "10.42.0.%d", 10 + i);
		struct harness_pod_state s = { "Running", true, node, ip };
		harness_edit(h, "pods", ns, object_name(l.items[i]), harness_apply_pod_state, &s);
	}
	harness_list_free(&l);
}

/* What a kubelet does with a pod being deleted: removes it for good. */
HARNESS void harness_finish_deletions(struct harness *h, const char *ns)
{
	struct harness_list l;
	harness_list(h, "pods", ns, &l);
	for (int i = 0; i < l.count; i++)
		if (object_string_at(l.items[i], "metadata.deletionTimestamp"))
			CHECK_OK(controller_force_delete(h->c, "pods", ns, object_name(l.items[i]), NULL, NULL));
	harness_list_free(&l);
}

HARNESS int harness_events(struct harness *h, const char *ns, const char *reason)
{
	struct harness_list l;
	harness_list(h, "events", ns, &l);
	int n = 0;
	for (int i = 0; i < l.count; i++) {
		const char *r = cJSON_GetStringValue(cJSON_GetObjectItem(l.items[i], "reason"));
		n += r && strcmp(r, reason) == 0;
	}
	harness_list_free(&l);
	return n;
}

#endif
