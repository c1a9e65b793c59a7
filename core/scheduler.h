/* The scheduling algorithm: which node a pending pod should run on, as a pure module.
 *
 * A scheduler holds a snapshot of the cluster (nodes and the pods bound to them), fed from
 * the API's watches by its caller, and answers one question per pending pod. No I/O: the
 * caller binds the pod through the API and tells the snapshot with scheduler_assume() so
 * the next decision already counts it.
 *
 *   s = scheduler_new();
 *   scheduler_add_node(s, node_json, &err);          ... per Node (update/remove on watch)
 *   scheduler_add_pod(s, bound_pod_json, &err);      ... per pod with spec.nodeName
 *   scheduler_schedule(s, pending_pod_json, &result, &err);
 *   if (result.scheduled) { bind via the API; scheduler_assume(s, pod, result.node_name, &err); }
 *   else { PodScheduled=False + Event with result.message }
 */
#ifndef BRAMBLE_CORE_SCHEDULER_H
#define BRAMBLE_CORE_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct error;
struct scheduler;

/* Bounds on what one Node or Pod may carry; more is refused with -EINVAL and the field. */
#define SCHEDULER_MAX_LABELS 64        /* labels of a node or a pod */
#define SCHEDULER_MAX_TAINTS 32        /* taints of a node */
#define SCHEDULER_MAX_EXTENDED 16      /* extended resources a node offers or a pod requests */
#define SCHEDULER_MAX_TOLERATIONS 64   /* tolerations of a pod */
#define SCHEDULER_MAX_HOST_PORTS 32    /* hostPorts of a pod */
#define SCHEDULER_MAX_TERMS 16         /* per affinity list (node or pod, required or preferred) */
#define SCHEDULER_MAX_REQUIREMENTS 128 /* selector requirements over a pod's whole affinity */
#define SCHEDULER_NAME_MAX 253         /* a node name is a DNS subdomain */
#define SCHEDULER_MESSAGE_MAX 1024     /* the unschedulable message, truncated with "..." */

struct scheduler_result {
	bool scheduled;
	char node_name[SCHEDULER_NAME_MAX + 1]; /* when scheduled */
	/* When not scheduled, Kubernetes' words: "0/3 nodes are available: 1 node(s) had
	 * untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient memory." */
	char message[SCHEDULER_MESSAGE_MAX];
	unsigned nodes;    /* nodes considered */
	unsigned feasible; /* nodes that passed every filter, of those examined (see scheduler.c) */
};

struct scheduler *scheduler_new(void);
void scheduler_free(struct scheduler *s); /* accepts NULL */

/* Node objects as the API stores them. add refuses a name already known (-EEXIST); update
 * replaces a node's facts and adds it when absent (a watch may deliver MODIFIED first);
 * remove forgets it (-ENOENT when unknown); pods bound to it stay accounted and count
 * again if it comes back. */
int scheduler_add_node(struct scheduler *s, const cJSON *node, struct error *err);
int scheduler_update_node(struct scheduler *s, const cJSON *node, struct error *err);
int scheduler_remove_node(struct scheduler *s, const char *name);
unsigned scheduler_node_count(const struct scheduler *s);

/* Pods bound to a node (spec.nodeName set), keyed by namespace/name: adding one already
 * known replaces it (the watch confirming an assumed pod), a pod in phase Succeeded or
 * Failed is dropped since it no longer holds resources. remove: -ENOENT when unknown. */
int scheduler_add_pod(struct scheduler *s, const cJSON *pod, struct error *err);
int scheduler_remove_pod(struct scheduler *s, const cJSON *pod);
unsigned scheduler_pod_count(const struct scheduler *s);

/* Chooses a node for a pending pod: 0 with ret_result filled (scheduled, or not with the
 * message), or -EINVAL when the pod itself cannot be read (a bad quantity, an unknown
 * operator, a bound exceeded), with the field named in err. */
int scheduler_schedule(struct scheduler *s, const cJSON *pod, struct scheduler_result *ret_result, struct error *err);

/* Accounts the pod as bound to node_name now, before the API confirms it. */
int scheduler_assume(struct scheduler *s, const cJSON *pod, const char *node_name, struct error *err);

/* A Kubernetes quantity ("100m", "0.5", "64Mi", "1G", "2e3", "1Ki") as an integer count of
 * 10^-scale units, rounded up as Kubernetes does: scale 3 gives millicores ("100m" -> 100,
 * "2" -> 2000), scale 0 bytes or counts ("64Mi" -> 67108864, "0.5" -> 1). -EINVAL for a
 * malformed or negative quantity, -ERANGE when it does not fit 63 bits. */
int scheduler_parse_quantity(const char *text, int scale, int64_t *ret_value);

#endif
