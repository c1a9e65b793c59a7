/* The binder: the scheduler at work on the control plane.
 *
 * It keeps core/scheduler's snapshot current from the store's committed changes (Nodes,
 * bound pods) and remembers the pods waiting for a node. After each commit the API server
 * calls binder_run(), which decides for the waiting pods and writes the result through the
 * store's one mutation path: spec.nodeName and PodScheduled=True for a pod that fits; for
 * one that does not, PodScheduled=False with Kubernetes' message ("0/3 nodes are
 * available: ...") and a FailedScheduling Event, written again only when the message
 * changes. A waiting pod is tried again when the cluster changes (a Node added or changed,
 * a pod gone), not on a timer: an idle cluster stays idle.
 */
#ifndef BRAMBLE_CORE_BINDER_H
#define BRAMBLE_CORE_BINDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct binder;
struct error;
struct store;
struct store_change;

#define BINDER_MAX_PENDING 100000
#define BINDER_RUN_BUDGET_US 10000

/* Reads the Nodes and pods in the store to start from. */
int binder_new(struct store *store, struct binder **ret_binder, struct error *err);
void binder_free(struct binder *binder);

/* Feeds one committed change (the store's change hook, fanned out by the API server). */
void binder_on_change(struct binder *binder, const struct store_change *change);
/* The same with change->object already parsed (NULL: not JSON). */
void binder_on_parsed_change(struct binder *binder, const struct store_change *change, const cJSON *object);

/* Schedules what is waiting, for at most BINDER_RUN_BUDGET_US (so that heartbeats and
 * requests are not kept waiting behind ten thousand decisions); the writes are left
 * uncommitted for the caller's commit. Returns how many writes it made (0: nothing to
 * do), or a negative errno. */
int binder_run(struct binder *binder, struct error *err);

/* The last run stopped at its budget with pods still to try: run again soon. */
bool binder_unfinished(const struct binder *binder);

size_t binder_pending(const struct binder *binder);

/* Decisions since start, as kube-scheduler counts scheduler_schedule_attempts_total: a pod
 * bound, found no node, or could not be read or written. */
struct binder_counts {
	uint64_t scheduled, unschedulable, errors;
};
void binder_counts(const struct binder *binder, struct binder_counts *ret_counts);

#endif
