/* The controllers: the control loops that turn desired state into objects, on the control
 * plane beside the scheduler (core/binder.c), fed and driven the same way.
 *
 *   ReplicaSet      pods from the template until there are spec.replicas; adoption and
 *                   release by selector; status replicas/ready/available/observedGeneration
 *   Deployment      ReplicaSets <name>-<pod-template-hash>: RollingUpdate (maxSurge,
 *                   maxUnavailable), Recreate, revisions, revisionHistoryLimit, rollback by
 *                   template, paused, progressDeadlineSeconds, Progressing/Available
 *   DaemonSet       one pod per matching node (tolerations, rolling update, OnDelete)
 *   Job             completions, parallelism, backoffLimit, activeDeadlineSeconds,
 *                   ttlSecondsAfterFinished, Complete/Failed conditions
 *   Endpoints       per Service: ready pod IPs and ports, notReadyAddresses
 *   garbage         ownerReferences: dependents of a deleted owner deleted (Background),
 *                   waited for (Foreground) or released (Orphan); pods of a deleted node
 *   namespace       a namespace being deleted is emptied, then deleted
 *   node lifecycle  a node whose heartbeats stop is marked Ready=Unknown after a grace
 *                   period and tainted unreachable; its pods are evicted after their
 *                   toleration (rate-limited; nothing when most nodes are unreachable)
 *   HPA             HorizontalPodAutoscalers scale Deployments and ReplicaSets on the
 *                   usage the agents report (core/metrics.h), as Kubernetes' algorithm does
 *
 * The API server feeds every committed change to controllers_on_change() and calls
 * controllers_run() after each commit; the controllers write through the store's one
 * mutation path (store_apply), uncommitted, for the API server's next commit. They never
 * write what is already stored: an idle cluster writes nothing. Work that is due later
 * (a deadline, a node's grace period, an eviction) arms one loop timer, which calls the
 * kick function to have the API server run a batch; with no nodes and nothing due there
 * is no timer. A controller that meets an object it cannot handle records an Event on it
 * and goes on with the others.
 */
#ifndef BRAMBLE_CORE_CONTROLLERS_H
#define BRAMBLE_CORE_CONTROLLERS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/ipalloc.h"

struct controllers;
struct error;
struct kind;
struct loop;
struct metrics;
struct store;
struct store_change;

#define CONTROLLERS_DEFAULT_NODE_GRACE_MS 12000    /* Kubernetes: 40 s (node-monitor-grace-period) */
#define CONTROLLERS_DEFAULT_EVICTION_DELAY_MS 5000 /* Kubernetes: 300 s (default tolerationSeconds) */
#define CONTROLLERS_DEFAULT_EVICTION_RATE 1.0      /* nodes per second; Kubernetes: 0.1 */
#define CONTROLLERS_DEFAULT_UNHEALTHY_PERCENT 55   /* Kubernetes' unhealthy-zone-threshold */
#define CONTROLLERS_DEFAULT_JOB_BACKOFF_MS 1000    /* Kubernetes: 10 s, doubling, at most 6 min */
#define CONTROLLERS_MAX_BURST 500                  /* pods created or deleted per sync (burstReplicas) */

/* Zero means the default everywhere. */
struct controllers_options {
	uint64_t node_grace_ms;        /* heartbeats missed this long: Ready=Unknown */
	uint64_t eviction_delay_ms;    /* tolerationSeconds of pods that do not tolerate unreachable/not-ready */
	double eviction_rate;          /* nodes per second whose pods start being evicted (burst 1) */
	unsigned unhealthy_percent;    /* nodes not Ready at or above this share: evict nothing */
	uint64_t job_backoff_ms;       /* first delay before a failed Job pod is replaced */
	struct metrics *metrics;       /* the usage the HPA scales on (core/metrics.h); NULL: none */
	uint64_t hpa_sync_ms;          /* how often each HPA is evaluated; 0: 15 s, as Kubernetes */
	struct ipalloc_config network; /* node pod CIDRs (core/nodeipam.c) */
};

/* Called (from a loop timer) when delayed work is due: the caller runs a batch, i.e.
 * controllers_run() and a commit, as after a request. */
typedef void (*controllers_kick_fn)(void *data);

/* Reads the store to start from. loop may be NULL (no timers: tests call controllers_run
 * themselves after moving the clock with controllers_advance_clock). */
int controllers_new(struct store *store, struct loop *loop, const struct controllers_options *options,
                    controllers_kick_fn kick, void *kick_data, struct controllers **ret_controllers, struct error *err);
void controllers_free(struct controllers *controllers);

/* Feeds one committed change (the store's change hook, fanned out by the API server). */
void controllers_on_change(struct controllers *controllers, const struct store_change *change);
/* The same with change->object already parsed (NULL: not JSON), for a caller that fans one
 * change out to several consumers and parses it once. */
void controllers_on_parsed_change(struct controllers *controllers, const struct store_change *change,
                                  const cJSON *object);

/* A heartbeat from a node's kubelet that the API server kept in memory (a Lease renewal or
 * a Node status update): the node is alive. */
void controllers_node_heartbeat(struct controllers *controllers, const char *node_name);

/* Syncs what is queued and due; writes are left uncommitted for the caller. Returns how
 * many writes were made, or a negative errno. */
int controllers_run(struct controllers *controllers, struct error *err);

/* Keys queued and not yet synced (work for the next run). */
bool controllers_pending(const struct controllers *controllers);

/* Tests: moves the controllers' clocks (wall and monotonic) forward. */
void controllers_advance_clock(struct controllers *controllers, int64_t ms);

/* How a DELETE is carried out, shared by the API server and the controllers so both
 * delete alike. `stored` is the object; policy "Background" (NULL), "Foreground" or
 * "Orphan"; grace_seconds < 0: none given. Returns CONTROLLERS_DELETE_NOW (remove it),
 * CONTROLLERS_DELETE_MARKED (stored was changed: deletionTimestamp, finalizers, a
 * Namespace's Terminating phase; replace it) or CONTROLLERS_DELETE_PENDING (already
 * being deleted: nothing to write). namespace_empty only matters for Namespaces. */
enum controllers_delete_plan { CONTROLLERS_DELETE_NOW, CONTROLLERS_DELETE_MARKED, CONTROLLERS_DELETE_PENDING };
enum controllers_delete_plan controllers_plan_delete(const struct kind *kind, cJSON *stored, const char *policy,
                                                     int64_t grace_seconds, bool namespace_empty, int64_t now_ms);

/* A Job being created (uid set): unless spec.manualSelector, its selector is generated
 * (batch.kubernetes.io/controller-uid=<uid>) and its template labelled to match, as the
 * Kubernetes API server does; a selector given without manualSelector is refused. */
int controllers_prepare_job(cJSON *job, struct error *err);
/* A Job being replaced by a manifest that leaves the generated selector and labels out
 * (`bramble apply` of the same file again): they are carried over from the stored one. */
void controllers_prepare_job_update(const cJSON *stored, cJSON *updated);

#endif
