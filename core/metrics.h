/* Resource usage metrics, as metrics-server keeps them: in memory only, never in the store.
 *
 * Every agent reports its node's usage and its pods' (cpu as a rate in millicores over the
 * sample window, memory as the working set) with PUT on its own node's metrics path:
 *
 *   PUT /apis/metrics.k8s.io/v1beta1/nodes/NAME       (identity node:NAME or admin)
 *   {"timestamp":"2026-12-04T16:00:00Z","window":10000,
 *    "usage":{"cpu":250,"memory":123456789},
 *    "pods":[{"namespace":"default","name":"web","uid":"...",
 *             "containers":[{"name":"main","cpu":12,"memory":3145728}]}]}
 *
 * A report replaces the node's previous one. Pods named in it must be bound to that node
 * (a node reports only its own pods: 4.03 otherwise); pods the store no longer has are
 * dropped. Reads are served in the Kubernetes metrics API shape (admins only):
 *
 *   GET /apis/metrics.k8s.io/v1beta1/nodes[/NAME]                       NodeMetrics(List)
 *   GET /apis/metrics.k8s.io/v1beta1/pods                                PodMetricsList, all
 *   GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods[/NAME]           PodMetrics(List)
 *
 * with cpu as "12m" and memory in binary units ("3Mi", "1236Ki"). A report older than
 * METRICS_STALE_FACTOR windows (at least METRICS_STALE_MIN_MS) is no longer served: the
 * node is down or cut off, and the HPA must treat its pods' metrics as missing.
 *
 * Limits: METRICS_MAX_NODES nodes, METRICS_MAX_PODS pods per report, METRICS_MAX_CONTAINERS
 * containers per pod; a report over them is refused whole with the limit named.
 */
#ifndef BRAMBLE_CORE_METRICS_H
#define BRAMBLE_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct error;
struct metrics;
struct store;

#define METRICS_MAX_NODES 4096
#define METRICS_MAX_PODS 512
#define METRICS_MAX_CONTAINERS 32
#define METRICS_STALE_FACTOR 3
#define METRICS_STALE_MIN_MS 30000
#define METRICS_PATH_PREFIX "apis/metrics.k8s.io/v1beta1"

struct metrics_usage {
	uint64_t cpu_millicores;
	uint64_t memory_bytes;
};

struct metrics *metrics_new(void);
void metrics_free(struct metrics *metrics);

/* Stores a node's report (the JSON above); now_ms is the wall clock at arrival. store, when
 * not NULL, is asked whether each pod is bound to node (-EPERM naming the pod if bound to
 * another). -EINVAL names the bad field. */
int metrics_report(struct metrics *metrics, struct store *store, const char *node, const cJSON *report, int64_t now_ms,
                   struct error *err);

/* A pod's usage (summed over its containers) from a fresh report: 0, or -ENOENT when there
 * is none. ret_timestamp_ms (may be NULL): when it was sampled. */
int metrics_pod_usage(const struct metrics *metrics, const char *namespace, const char *name, int64_t now_ms,
                      struct metrics_usage *ret_usage, int64_t *ret_timestamp_ms);

/* A node's usage from a fresh report: 0 or -ENOENT. */
int metrics_node_usage(const struct metrics *metrics, const char *node, int64_t now_ms,
                       struct metrics_usage *ret_usage);

/* True when path (with or without its leading '/') is under /apis/metrics.k8s.io/v1beta1. */
bool metrics_path(const char *path);

/* Serves one request on a metrics path: method "GET" or "PUT", identity of the caller ("admin",
 * "node:NAME", "" for the loopback debug listener), the body for PUT. Returns the CoAP code
 * (205, 204, 400, 403, 404, 405) and, in ret_body, the JSON answer (an error is
 * {"reason","message"}). */
int metrics_serve(struct metrics *metrics, struct store *store, const char *method, const char *identity,
                  const char *path, const char *body, size_t body_length, int64_t now_ms, char **ret_body);

/* Kubernetes quantities: "12m" for millicores; "3Mi", "1236Ki", "1000" for bytes (the largest
 * binary suffix that divides exactly). */
void metrics_format_cpu(uint64_t millicores, char *buf, size_t size);
void metrics_format_memory(uint64_t bytes, char *buf, size_t size);

#endif
