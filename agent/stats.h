/* Usage statistics of this board for the control plane's metrics API (core/metrics.h):
 * each report samples the node (cpu from /proc/stat, memory in use from /proc/meminfo) and
 * every container of the pods running here (cpu time and working set from its cgroup), and
 * PUTs the rates over the time since the previous sample to
 * /apis/metrics.k8s.io/v1beta1/nodes/<node>. The control plane keeps them in memory only.
 *
 * The kubelet calls stats_report() once per heartbeat with the pods it runs. A container
 * is reported from its second sample on (a rate needs two); a report is skipped while the
 * previous one is in flight.
 */
#ifndef BRAMBLE_AGENT_STATS_H
#define BRAMBLE_AGENT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct cgroups;
struct link;
struct stats;

#define STATS_MAX_CONTAINERS 1024 /* samples kept, all pods together */

struct stats *stats_new(struct cgroups *cgroups, const char *node_name);
void stats_free(struct stats *stats);

/* Samples and reports; pods are the pod objects running here (uid, namespace, name and the
 * names of spec.containers are read). */
void stats_report(struct stats *stats, struct link *link, const cJSON *const *pods, size_t count);

/* The JSON body of a report from samples, for the unit tests and stats_report:
 * now_ms (monotonic) and wall_s (the timestamp) say when. Returns NULL when there is no
 * previous sample of the node yet. Caller frees. */
char *stats_sample(struct stats *stats, const cJSON *const *pods, size_t count, uint64_t now_ms, int64_t wall_s);

/* millicores used over the window: cpu time consumed (ns) over elapsed time (ms). */
uint64_t stats_millicores(uint64_t cpu_ns, uint64_t elapsed_ms);

#endif
