/* The DaemonSet controller: one pod of the template on every node that should run it, as
 * Kubernetes' DaemonSetsController does.
 *
 * Queued: a DaemonSet that changed; the controller of a pod that changed (for a pod without
 * one, the DaemonSets of its namespace that select it); every DaemonSet when a node comes,
 * goes or changes its labels, taints or readiness.
 *
 * Which nodes (nodeShouldRunDaemonPod): the template's nodeSelector and required node
 * affinity must match; its tolerations, plus the ones every daemon pod gets
 * (node.kubernetes.io/not-ready and unreachable: NoExecute, disk-, memory- and pid-pressure
 * and unschedulable: NoSchedule, network-unavailable too with hostNetwork), must tolerate
 * the node's NoExecute taints (else its pod goes) and NoSchedule taints (else no new pod,
 * an existing one stays and counts as misscheduled). A cordoned node keeps its daemon.
 *
 * sync(namespace/name):
 *   1. claim pods by selector (adopt orphans, release those that stop matching)
 *   2. per node: no pod where one should run -> create one (bound through required node
 *      affinity on metadata.name, so the scheduler accounts its resources); pods where none
 *      may run, pods on nodes that are gone, failed pods, and all but one pod per node ->
 *      deleted. At most CONTROLLERS_MAX_BURST creations or deletions per sync.
 *   3. RollingUpdate (not OnDelete): pods carry controller-revision-hash, the hash of the
 *      template. With maxSurge 0, an old pod that is not available is deleted at once and
 *      available old ones while fewer than maxUnavailable nodes lack an available pod (the
 *      replacement comes from step 2); with maxSurge > 0, a new pod is started beside an old
 *      one on up to maxSurge nodes and the old one deleted when the new one is available.
 *   4. status: desired/current/updated NumberScheduled, numberMisscheduled, numberReady,
 *      numberAvailable, numberUnavailable, observedGeneration; written when it changed. A
 *      pod ready but not yet available after minReadySeconds queues the DaemonSet for then.
 */
#include "core/controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "core/selector.h"
#include "platform/error.h"
#include "platform/memory.h"

#define RESOURCE "daemonsets.apps"
#define HASH_LABEL "controller-revision-hash"
#define PODS_PER_NODE 8 /* pods of one DaemonSet on one node looked at per sync; more wait */

/* --- queueing ------------------------------------------------------------------------------- */

static const cJSON *spec_of(const cJSON *object)
{
	return cJSON_GetObjectItemCaseSensitive(object, "spec");
}

static void on_pod(struct controllers *c, const struct pod *old, const struct pod *new)
{
	controller_enqueue_pod_owners(c, CONTROLLER_DAEMONSET, CACHED_DAEMONSETS, "DaemonSet", old, new);
}

static void on_object(struct controllers *c, enum cached_kind which, const cJSON *old, const cJSON *new)
{
	controller_enqueue_cached(c, CONTROLLER_DAEMONSET, CACHED_DAEMONSETS, which, old, new);
}

static void on_node(struct controllers *c, const struct node *old, const struct node *new)
{
	if (old && new && old->ready == new->ready && cJSON_Compare(old->labels, new->labels, true) &&
	    cJSON_Compare(old->taints, new->taints, true))
		return;
	map_each(e, &c->objects[CACHED_DAEMONSETS])
	{
		controller_enqueue(c, CONTROLLER_DAEMONSET, e->key);
	}
}

/* --- which nodes ------------------------------------------------------------------------------ */

static bool has_toleration(const cJSON *tolerations, const char *key, const char *effect)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, tolerations)
	{
		const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "key"));
		const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "effect"));
		if (k && e && strcmp(k, key) == 0 && strcmp(e, effect) == 0)
			return true;
	}
	return false;
}

/* The template's pod spec with the tolerations every daemon pod gets
 * (AddOrUpdateDaemonPodTolerations). */
static cJSON *daemon_pod_spec(const cJSON *template)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(template, "spec");
	cJSON *out = spec ? cJSON_Duplicate(spec, 1) : cJSON_CreateObject();
	static const struct {
		const char *key, *effect;
		bool host_network_only;
	} defaults[] = {
		{ "node.kubernetes.io/not-ready", "NoExecute", false },
		{ "node.kubernetes.io/unreachable", "NoExecute", false },
		{ "node.kubernetes.io/disk-pressure", "NoSchedule", false },
		{ "node.kubernetes.io/memory-pressure", "NoSchedule", false },
		{ "node.kubernetes.io/pid-pressure", "NoSchedule", false },
		{ "node.kubernetes.io/unschedulable", "NoSchedule", false },
		{ "node.kubernetes.io/network-unavailable", "NoSchedule", true },
	};
	bool host_network = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "hostNetwork"));
	cJSON *tolerations = cJSON_GetObjectItemCaseSensitive(out, "tolerations");
	if (!cJSON_IsArray(tolerations)) {
		cJSON_DeleteItemFromObjectCaseSensitive(out, "tolerations");
		tolerations = cJSON_AddArrayToObject(out, "tolerations");
	}
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
		if ((defaults[i].host_network_only && !host_network) ||
		    has_toleration(tolerations, defaults[i].key, defaults[i].effect))
			continue;
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "key", defaults[i].key);
		cJSON_AddStringToObject(t, "operator", "Exists");
		cJSON_AddStringToObject(t, "effect", defaults[i].effect);
		cJSON_AddItemToArray(tolerations, t);
	}
	return out;
}

/* nodeShouldRunDaemonPod: may a new pod go there, may an existing one stay? */
static void node_should(const cJSON *pod_spec, const struct node *node, bool *ret_run, bool *ret_stay)
{
	const cJSON *tolerations = cJSON_GetObjectItemCaseSensitive(pod_spec, "tolerations");
	*ret_run = *ret_stay = false;
	if (!controller_node_matches(pod_spec, node) ||
	    !controller_tolerates_all(tolerations, node->taints, false, true))
		return;
	*ret_stay = true;
	*ret_run = controller_tolerates_all(tolerations, node->taints, true, false);
}

/* --- the pods of one DaemonSet, by node ------------------------------------------------------- */

struct slot {
	const struct pod *pods[PODS_PER_NODE]; /* active pods meant for this node */
	int count;
};

static const char *pod_node(const struct pod *pod)
{
	return pod->node_name ? pod->node_name : pod->target_node;
}

static bool pod_updated(const struct pod *pod, const char *hash)
{
	const char *have = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pod->labels, HASH_LABEL));
	return have && strcmp(have, hash) == 0;
}

/* The pod to keep of several on one node: updated first, then available, then the oldest. */
static int keep_index(const struct slot *slot, const char *hash, int min_ready, int64_t now)
{
	int best = 0;
	for (int i = 1; i < slot->count; i++) {
		const struct pod *a = slot->pods[i], *b = slot->pods[best];
		bool au = pod_updated(a, hash), bu = pod_updated(b, hash);
		bool aa = pod_available(a, min_ready, now), ba = pod_available(b, min_ready, now);
		if (au != bu ? au : aa != ba ? aa : a->created_ms < b->created_ms)
			best = i;
	}
	return best;
}

struct daemon_sync {
	struct controllers *c;
	const cJSON *ds;
	const cJSON *pod_spec; /* with the default tolerations */
	const cJSON *template;
	char hash[16];
	int budget; /* creations and deletions left in this sync */
	int writes;
	char failure[ERROR_MESSAGE_MAX];
};

static int delete_pod(struct daemon_sync *s, const struct pod *pod, const char *why, struct error *err)
{
	if (s->budget <= 0)
		return 0;
	int r = controller_delete(s->c, "pods", pod->namespace, pod->name, pod->uid, PROPAGATE_BACKGROUND, err);
	if (r < 0)
		return r;
	if (r > 0) {
		s->budget--;
		s->writes += r;
		controller_event(s->c, s->ds, "Normal", "SuccessfulDelete", "Deleted pod: %s%s", pod->name, why);
	}
	return 0;
}

static void create_pod(struct daemon_sync *s, const char *node_name)
{
	if (s->budget <= 0 || s->failure[0])
		return;
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "%.57s-", object_name(s->ds));
	cJSON *pod = controller_pod_from_template(s->ds, s->template, prefix);
	cJSON_ReplaceItemInObjectCaseSensitive(pod, "spec", cJSON_Duplicate(s->pod_spec, 1));
	controller_set_string(controller_child(object_metadata(pod), "labels"), HASH_LABEL, s->hash);
	/* ReplaceDaemonSetPodNodeNameNodeAffinity: the node, and only it, by name. */
	cJSON *affinity = controller_child(controller_child(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "affinity"),
	                                   "nodeAffinity");
	cJSON *required = cJSON_CreateObject();
	cJSON *term = cJSON_CreateObject();
	cJSON *field = cJSON_CreateObject();
	cJSON_AddStringToObject(field, "key", "metadata.name");
	cJSON_AddStringToObject(field, "operator", "In");
	cJSON_AddItemToObject(field, "values", cJSON_CreateStringArray(&node_name, 1));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(term, "matchFields"), field);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(required, "nodeSelectorTerms"), term);
	cJSON_DeleteItemFromObjectCaseSensitive(affinity, "requiredDuringSchedulingIgnoredDuringExecution");
	cJSON_AddItemToObject(affinity, "requiredDuringSchedulingIgnoredDuringExecution", required);
	struct error err = { 0 };
	char name[254];
	int r = controller_create(s->c, "pods", pod, name, &err);
	cJSON_Delete(pod);
	if (r < 0) {
		snprintf(s->failure, sizeof(s->failure), "%s", err.message);
		controller_event(s->c, s->ds, "Warning", "FailedCreate", "Error creating: %s", err.message);
		return;
	}
	s->budget--;
	s->writes++;
	controller_event(s->c, s->ds, "Normal", "SuccessfulCreate", "Created pod: %s", name);
}

struct counts {
	int desired, current, misscheduled, updated, ready, available;
	int64_t next_available_ms;
};

static int daemonset_sync(struct controllers *c, const char *key, struct error *err)
{
	char ns[64];
	const char *name;
	if (!controller_split_key(key, ns, sizeof(ns), &name))
		return 0;
	cJSON *ds = controller_get(c, RESOURCE, ns, name);
	if (!ds)
		return 0;
	const cJSON *spec = spec_of(ds);
	struct selector *selector = controller_owner_selector(c, ds);
	if (!selector) {
		cJSON_Delete(ds);
		return 0;
	}
	bool deleting = object_string_at(ds, "metadata.deletionTimestamp") != NULL;
	const struct pod **pods = NULL;
	size_t pod_count = 0;
	int r = controller_claim_pods(c, ds, selector, deleting, &pods, &pod_count, err);
	selector_free(selector);
	if (r < 0) {
		cJSON_Delete(ds);
		return r;
	}
	struct daemon_sync s = { .c = c, .ds = ds, .budget = CONTROLLERS_MAX_BURST, .writes = r };
	s.template = cJSON_GetObjectItemCaseSensitive(spec, "template");
	cJSON *pod_spec = daemon_pod_spec(s.template);
	s.pod_spec = pod_spec;
	controller_hash(s.template, controller_int_at(ds, "status.collisionCount", -1), s.hash);
	int min_ready = (int)controller_int_at(spec, "minReadySeconds", 0);
	int64_t now = controller_now_ms(c);
	const char *strategy = object_string_at(ds, "spec.updateStrategy.type");
	bool rolling = !strategy || strcmp(strategy, "RollingUpdate") == 0;
	const cJSON *rolling_update = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(spec, "updateStrategy"), "rollingUpdate");

	/* The active pods by the node they are meant for; the others dealt with at once. */
	struct map by_node = { 0 };
	struct slot *slots = xcalloc(pod_count ? pod_count : 1, sizeof(*slots));
	size_t slot_count = 0;
	for (size_t i = 0; i < pod_count && r >= 0; i++) {
		const struct pod *pod = pods[i];
		if (pod->deleting)
			continue;
		if (pod->phase == POD_FAILED || pod->phase == POD_SUCCEEDED || !pod_node(pod)) {
			if (!deleting) {
				if (pod->phase == POD_FAILED)
					controller_event(
					        c, ds, "Warning", "FailedDaemonPod",
					        "Found failed daemon pod %s/%s on node %s, will try to kill it",
					        pod->namespace, pod->name, pod_node(pod) ? pod_node(pod) : "");
				r = delete_pod(&s, pod, "", err);
			}
			continue;
		}
		struct slot *slot = map_get(&by_node, pod_node(pod));
		if (!slot) {
			slot = &slots[slot_count++];
			map_put(&by_node, pod_node(pod), slot);
		}
		if (slot->count < PODS_PER_NODE)
			slot->pods[slot->count++] = pod;
	}

	struct counts n = { 0 };
	int surge_nodes = 0, unavailable_nodes = 0;
	/* Pass 1: the nodes there are. */
	map_each(e, &c->nodes)
	{
		if (r < 0 || deleting)
			break;
		const struct node *node = e->value;
		bool run, stay;
		node_should(pod_spec, node, &run, &stay);
		struct slot *slot = map_get(&by_node, node->name);
		int count = slot ? slot->count : 0;
		if (!stay) {
			for (int i = 0; i < count && r >= 0; i++)
				r = delete_pod(&s, slot->pods[i], " (the node may not run it)", err);
			n.misscheduled += count > 0;
			continue;
		}
		if (!run) {
			n.misscheduled += count > 0;
			continue;
		}
		n.desired++;
		if (count == 0) {
			create_pod(&s, node->name);
			unavailable_nodes++;
			continue;
		}
		n.current++;
		/* One old and one new pod: a surge in progress; the old goes once the new is
		 * available. Otherwise one pod stays, the others go. */
		int fresh = -1;
		if (count == 2 && pod_updated(slot->pods[0], s.hash) != pod_updated(slot->pods[1], s.hash))
			fresh = pod_updated(slot->pods[0], s.hash) ? 0 : 1;
		if (fresh >= 0) {
			surge_nodes++;
			if (rolling && pod_available(slot->pods[fresh], min_ready, now))
				r = delete_pod(&s, slot->pods[1 - fresh], " (replaced)", err);
		} else {
			int keep = keep_index(slot, s.hash, min_ready, now);
			for (int i = 0; i < count && r >= 0; i++)
				if (i != keep)
					r = delete_pod(&s, slot->pods[i], " (one daemon pod per node)", err);
		}
		bool any_available = false, any_ready = false, any_updated = false;
		for (int i = 0; i < count; i++) {
			any_available = any_available || pod_available(slot->pods[i], min_ready, now);
			any_ready = any_ready || slot->pods[i]->ready;
			any_updated = any_updated || pod_updated(slot->pods[i], s.hash);
		}
		unavailable_nodes += !any_available;
		n.updated += any_updated;
		n.ready += any_ready;
		n.available += any_available;
		for (int i = 0; i < count; i++) {
			const struct pod *p = slot->pods[i];
			if (p->ready && !pod_available(p, min_ready, now) && p->ready_since_ms > 0) {
				int64_t at = p->ready_since_ms + (int64_t)min_ready * 1000 + 1000;
				if (!n.next_available_ms || at < n.next_available_ms)
					n.next_available_ms = at;
			}
		}
	}
	/* Pass 2: pods meant for nodes that are gone. */
	map_each(e, &by_node)
	{
		if (r < 0 || deleting)
			break;
		if (map_get(&c->nodes, e->key))
			continue;
		const struct slot *slot = e->value;
		for (int i = 0; i < slot->count && r >= 0; i++)
			r = delete_pod(&s, slot->pods[i], " (its node is gone)", err);
	}

	/* Pass 3: the rolling update. */
	if (r >= 0 && !deleting && rolling) {
		int max_unavailable = controller_scaled_value(
		        cJSON_GetObjectItemCaseSensitive(rolling_update, "maxUnavailable"), n.desired, true, 1);
		int max_surge = controller_scaled_value(cJSON_GetObjectItemCaseSensitive(rolling_update, "maxSurge"),
		                                        n.desired, true, 0);
		if (max_surge == 0 && max_unavailable < 1)
			max_unavailable = 1;
		map_each(e, &c->nodes)
		{
			if (r < 0)
				break;
			const struct node *node = e->value;
			struct slot *slot = map_get(&by_node, node->name);
			bool run, stay;
			node_should(pod_spec, node, &run, &stay);
			if (!slot || !run)
				continue;
			if (slot->count != 1)
				continue; /* a surge or duplicates: dealt with above */
			const struct pod *kept = slot->pods[0];
			if (pod_updated(kept, s.hash))
				continue;
			bool available = pod_available(kept, min_ready, now);
			if (!available) {
				r = delete_pod(&s, kept, " (out of date, not available)", err);
			} else if (max_surge > 0) {
				if (surge_nodes < max_surge) {
					surge_nodes++;
					create_pod(&s, node->name);
				}
			} else if (unavailable_nodes < max_unavailable) {
				unavailable_nodes++;
				r = delete_pod(&s, kept, " (out of date)", err);
			}
		}
	}
	map_clear(&by_node);
	free(slots);
	free(pods);
	cJSON_Delete(pod_spec);
	if (r < 0) {
		cJSON_Delete(ds);
		return r;
	}

	cJSON *updated = cJSON_Duplicate(ds, 1);
	cJSON *status = controller_child(updated, "status");
	controller_set_count(status, "desiredNumberScheduled", n.desired, false);
	controller_set_count(status, "currentNumberScheduled", n.current, false);
	controller_set_count(status, "numberMisscheduled", n.misscheduled, false);
	controller_set_count(status, "numberReady", n.ready, false);
	controller_set_count(status, "updatedNumberScheduled", n.updated, true);
	controller_set_count(status, "numberAvailable", n.available, true);
	controller_set_count(status, "numberUnavailable", n.desired - n.available, true);
	controller_set_count(status, "observedGeneration", controller_int_at(ds, "metadata.generation", 1), true);
	r = controller_finish_sync(c, RESOURCE, ds, updated, s.writes, err);
	cJSON_Delete(updated);
	if (n.next_available_ms)
		controller_enqueue_at_wall(c, CONTROLLER_DAEMONSET, key, n.next_available_ms);
	cJSON_Delete(ds);
	return r;
}

const struct controller_ops daemonset_controller = {
	.name = "daemonset",
	.on_pod = on_pod,
	.on_object = on_object,
	.on_node = on_node,
	.sync = daemonset_sync,
};
