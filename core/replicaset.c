/* The ReplicaSet controller: keeps spec.replicas pods of the template, as Kubernetes'
 * ReplicaSetController does.
 *
 * Queued: a ReplicaSet that changed; the controller of a pod that changed; for a pod
 * without a controller, every ReplicaSet of its namespace whose selector matches it.
 *
 * sync(namespace/name):
 *   1. claim: pods controlled by it that no longer match the selector are released (their
 *      controller reference removed); pods without a controller that match are adopted
 *      (not while the ReplicaSet is being deleted)
 *   2. manage (not while being deleted): active pods (not terminated, not being deleted)
 *      fewer than spec.replicas: create the difference from the template, at most
 *      CONTROLLERS_MAX_BURST per sync, named <name>-<5 random characters>, controlled by it;
 *      more: delete the surplus, the least useful first (unscheduled, pending, not ready,
 *      doubled up on a node, ready the shortest, restarted the most, newest)
 *   3. status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (ready for
 *      minReadySeconds), observedGeneration, the ReplicaFailure condition; written only
 *      when it changed. A pod ready but not yet available queues the ReplicaSet again for
 *      when it will be.
 * The pods created or deleted come back through the change hook after the commit, so the
 * next sync counts them: nothing is created twice.
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

#define RESOURCE "replicasets.apps"

/* Every ReplicaSet of the namespace whose selector matches the labels. */
static void on_pod(struct controllers *c, const struct pod *old, const struct pod *new)
{
	controller_enqueue_pod_owners(c, CONTROLLER_REPLICASET, CACHED_REPLICASETS, "ReplicaSet", old, new);
}

static void on_object(struct controllers *c, enum cached_kind which, const cJSON *old, const cJSON *new)
{
	controller_enqueue_cached(c, CONTROLLER_REPLICASET, CACHED_REPLICASETS, which, old, new);
}

/* --- deletion order ---------------------------------------------------------------------- */

struct ranked {
	const struct pod *pod;
	int colocated; /* active pods of this ReplicaSet on the same node */
};

static int phase_rank(enum pod_phase phase)
{
	return phase == POD_PENDING ? 0 : phase == POD_UNKNOWN ? 1 : 2;
}

/* Kubernetes' ActivePodsWithRanks: the pod to delete first sorts first. */
static int compare_for_deletion(const void *pa, const void *pb)
{
	const struct ranked *a = pa, *b = pb;
	const struct pod *x = a->pod, *y = b->pod;
	if (!x->node_name != !y->node_name)
		return x->node_name ? 1 : -1;
	if (phase_rank(x->phase) != phase_rank(y->phase))
		return phase_rank(x->phase) - phase_rank(y->phase);
	if (x->ready != y->ready)
		return x->ready ? 1 : -1;
	if (a->colocated != b->colocated)
		return b->colocated - a->colocated;
	if (x->ready && y->ready && x->ready_since_ms != y->ready_since_ms)
		return x->ready_since_ms > y->ready_since_ms ? -1 : 1;
	if (x->restarts != y->restarts)
		return y->restarts - x->restarts;
	if (x->created_ms != y->created_ms)
		return x->created_ms > y->created_ms ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void rank(struct ranked *pods, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		pods[i].colocated = 0;
		for (size_t j = 0; j < count && pods[i].pod->node_name; j++)
			if (pods[j].pod->node_name && strcmp(pods[i].pod->node_name, pods[j].pod->node_name) == 0)
				pods[i].colocated++;
	}
	qsort(pods, count, sizeof(*pods), compare_for_deletion);
}

/* --- sync -------------------------------------------------------------------------------- */

struct claimed {
	struct ranked *active;
	size_t active_count;
	size_t fully_labeled, ready, available;
	int64_t next_available_ms; /* the earliest time a ready pod becomes available; 0: none */
};

/* Claims the pods (controller_claim_pods), then counts the active ones for status. */
static int claim_pods(struct controllers *c, const cJSON *rs, const struct selector *selector, bool deleting,
                      struct claimed *out, struct error *err)
{
	const cJSON *template_labels = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(
	                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rs, "spec"), "template"),
	                "metadata"),
	        "labels");
	int min_ready = (int)controller_int_at(rs, "spec.minReadySeconds", 0);
	int64_t now = controller_now_ms(c);
	const struct pod **pods = NULL;
	size_t count = 0;
	int writes = controller_claim_pods(c, rs, selector, deleting, &pods, &count, err);
	if (writes < 0)
		return writes;
	out->active = xcalloc(count ? count : 1, sizeof(*out->active));
	for (size_t i = 0; i < count; i++) {
		const struct pod *pod = pods[i];
		if (!pod_active(pod))
			continue;
		out->active[out->active_count++].pod = pod;
		bool full = true;
		const cJSON *label;
		cJSON_ArrayForEach(label, template_labels)
		{
			const char *have =
			        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pod->labels, label->string));
			if (!have || !cJSON_IsString(label) || strcmp(have, label->valuestring) != 0)
				full = false;
		}
		out->fully_labeled += full;
		if (pod->ready)
			out->ready++;
		if (pod_available(pod, min_ready, now)) {
			out->available++;
		} else if (pod->ready && pod->ready_since_ms > 0) {
			int64_t at = pod->ready_since_ms + (int64_t)min_ready * 1000 + 1000;
			if (!out->next_available_ms || at < out->next_available_ms)
				out->next_available_ms = at;
		}
	}
	free(pods);
	return writes;
}

static int create_pods(struct controllers *c, const cJSON *rs, int count, char *failure, size_t failure_size)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "%.57s-", object_name(rs));
	const cJSON *template =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rs, "spec"), "template");
	int created = 0;
	char first[254] = "", name[254];
	for (int i = 0; i < count; i++) {
		cJSON *pod = controller_pod_from_template(rs, template, prefix);
		struct error err = { 0 };
		int r = controller_create(c, "pods", pod, name, &err);
		cJSON_Delete(pod);
		if (r < 0) {
			snprintf(failure, failure_size, "%s", err.message);
			controller_event(c, rs, "Warning", "FailedCreate", "Error creating: %s", err.message);
			break;
		}
		if (!created)
			snprintf(first, sizeof(first), "%s", name);
		created++;
	}
	if (created == 1)
		controller_event(c, rs, "Normal", "SuccessfulCreate", "Created pod: %s", first);
	else if (created > 1)
		controller_event(c, rs, "Normal", "SuccessfulCreate", "Created %d pods: %s, ...", created, first);
	return created;
}

static int delete_pods(struct controllers *c, const cJSON *rs, struct ranked *active, size_t count, int surplus,
                       struct error *err)
{
	rank(active, count);
	int deleted = 0;
	for (int i = 0; i < surplus && (size_t)i < count; i++) {
		const struct pod *pod = active[i].pod;
		int r = controller_delete(c, "pods", pod->namespace, pod->name, pod->uid, PROPAGATE_BACKGROUND, err);
		if (r < 0)
			return r;
		if (r > 0 && deleted++ == 0)
			controller_event(c, rs, "Normal", "SuccessfulDelete", "Deleted pod: %s", pod->name);
	}
	return deleted;
}

static int replicaset_sync(struct controllers *c, const char *key, struct error *err)
{
	char ns[64];
	const char *name;
	if (!controller_split_key(key, ns, sizeof(ns), &name))
		return 0;
	cJSON *rs = controller_get(c, RESOURCE, ns, name);
	if (!rs)
		return 0;
	struct selector *selector = controller_owner_selector(c, rs);
	if (!selector) {
		cJSON_Delete(rs);
		return 0;
	}
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(rs, "spec");
	bool deleting = object_string_at(rs, "metadata.deletionTimestamp") != NULL;
	struct claimed claimed = { 0 };
	int writes = claim_pods(c, rs, selector, deleting, &claimed, err);
	selector_free(selector);
	if (writes < 0)
		goto out;
	char failure[ERROR_MESSAGE_MAX] = "";
	if (!deleting) {
		int64_t want = controller_int_at(spec, "replicas", 1);
		int64_t diff = (int64_t)claimed.active_count - want;
		if (diff < 0) {
			int count = -diff > CONTROLLERS_MAX_BURST ? CONTROLLERS_MAX_BURST : (int)-diff;
			writes += create_pods(c, rs, count, failure, sizeof(failure));
		} else if (diff > 0) {
			int surplus = diff > CONTROLLERS_MAX_BURST ? CONTROLLERS_MAX_BURST : (int)diff;
			int r = delete_pods(c, rs, claimed.active, claimed.active_count, surplus, err);
			if (r < 0) {
				writes = r;
				goto out;
			}
			writes += r;
		}
	}
	cJSON *updated = cJSON_Duplicate(rs, 1);
	cJSON *status = controller_child(updated, "status");
	controller_set_count(status, "replicas", (int64_t)claimed.active_count, false);
	controller_set_count(status, "fullyLabeledReplicas", (int64_t)claimed.fully_labeled, true);
	controller_set_count(status, "readyReplicas", (int64_t)claimed.ready, true);
	controller_set_count(status, "availableReplicas", (int64_t)claimed.available, true);
	controller_set_count(status, "observedGeneration", controller_int_at(rs, "metadata.generation", 1), true);
	char now[32];
	controller_now_rfc3339(c, now);
	if (failure[0]) {
		controller_set_condition(status, "ReplicaFailure", "True", "FailedCreate", failure, now, false, false);
	} else {
		controller_remove_condition(status, "ReplicaFailure");
	}
	writes = controller_finish_sync(c, RESOURCE, rs, updated, writes, err);
	cJSON_Delete(updated);
	if (writes >= 0 && claimed.next_available_ms)
		controller_enqueue_at_wall(c, CONTROLLER_REPLICASET, key, claimed.next_available_ms);
out:
	free(claimed.active);
	cJSON_Delete(rs);
	return writes;
}

const struct controller_ops replicaset_controller = {
	.name = "replicaset",
	.on_pod = on_pod,
	.on_object = on_object,
	.sync = replicaset_sync,
};
