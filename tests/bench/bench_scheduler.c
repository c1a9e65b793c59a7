/* Scheduler benchmark: figures only, no assertions (timing on a shared machine is not a test).
 *
 *   bench-scheduler [NODES [PODS]]     (default: 1,000 hollow nodes, 10,000 pods)
 *
 * Builds NODES hollow nodes (4 cpus, 8Gi, 110 pods, mixed arm64/arm/amd64, 10 zones, a few
 * tainted), then schedules PODS pending pods of 100 ReplicaSets, each decision followed by
 * scheduler_assume as the real loop does, and prints pods/s. The pods are parsed JSON before
 * the clock starts: the figure is the algorithm's, not cJSON's. A second pass gives every
 * tenth pod a required pod anti-affinity on the hostname and a node affinity on the arch.
 */
#include "core/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform/error.h"
#include "platform/memory.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct scheduler *hollow_cluster(int nodes)
{
	static const char *const arches[] = { "arm64", "arm64", "arm", "amd64" };
	struct scheduler *s = scheduler_new();
	for (int i = 0; i < nodes; i++) {
		char *text = xasprintf(
		        "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"hollow-%04d\",\"labels\":{"
		        "\"kubernetes.io/hostname\":\"hollow-%04d\",\"kubernetes.io/arch\":\"%s\",\"kubernetes.io/os\":"
		        "\"linux\",\"topology.kubernetes.io/zone\":\"zone-%d\",\"bramble.io/board\":\"rpi4\"}},"
		        "\"spec\":{%s},\"status\":{\"allocatable\":{\"cpu\":\"4\",\"memory\":\"8Gi\",\"pods\":\"110\","
		        "\"bramble.io/gpio\":\"1\"},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
		        i, i, arches[i % 4], i % 10,
		        i % 50 == 0
		                ? "\"taints\":[{\"key\":\"dedicated\",\"value\":\"infra\",\"effect\":\"NoSchedule\"}]"
		                : "");
		cJSON *node = cJSON_Parse(text);
		free(text);
		struct error err = { 0 };
		if (!node || scheduler_add_node(s, node, &err) < 0) {
			fprintf(stderr, "bench-scheduler: node %d: %s\n", i, err.message);
			exit(1);
		}
		cJSON_Delete(node);
	}
	return s;
}

/* Every tenth pod of the second pass: ARM boards only, one per host within its group. */
static char *special_affinity(int owner)
{
	return xasprintf("\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":{"
	                 "\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":\"kubernetes.io/arch\",\"operator\":"
	                 "\"In\",\"values\":[\"arm64\",\"arm\"]}]}]}},\"podAntiAffinity\":{"
	                 "\"requiredDuringSchedulingIgnoredDuringExecution\":[{\"labelSelector\":{\"matchLabels\":"
	                 "{\"anti\":\"group-%d\"}},\"topologyKey\":\"kubernetes.io/hostname\"}]}},",
	                 owner);
}

static cJSON **make_pods(int count, bool with_affinity)
{
	cJSON **pods = xcalloc((size_t)count, sizeof(*pods));
	for (int i = 0; i < count; i++) {
		int owner = i % 100;
		bool special = with_affinity && i % 10 == 0;
		char *affinity = special ? special_affinity(owner) : xstrdup("");
		char *text = xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-%d-%d\","
		                       "\"namespace\":\"default\",\"labels\":{\"app\":\"web-%d\",\"anti\":\"%s%d\"},"
		                       "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
		                       "\"name\":\"web-%d\",\"uid\":\"uid-%d\",\"controller\":true}]},\"spec\":{%s"
		                       "\"containers\":[{\"name\":\"web\",\"image\":\"web:1\",\"ports\":[{"
		                       "\"containerPort\":8080}],\"resources\":{\"requests\":{\"cpu\":\"100m\","
		                       "\"memory\":\"64Mi\"},\"limits\":{\"cpu\":\"500m\",\"memory\":\"128Mi\"}}}]}}",
		                       owner, i, owner, special ? "group-" : "none-", owner, owner, owner, affinity);
		pods[i] = cJSON_Parse(text);
		free(text);
		free(affinity);
	}
	return pods;
}

static void run(int nodes, int count, bool with_affinity)
{
	struct scheduler *s = hollow_cluster(nodes);
	cJSON **pods = make_pods(count, with_affinity);
	int scheduled = 0, unschedulable = 0;
	double start = now();
	for (int i = 0; i < count; i++) {
		struct scheduler_result r;
		struct error err = { 0 };
		if (scheduler_schedule(s, pods[i], &r, &err) < 0) {
			fprintf(stderr, "bench-scheduler: %s\n", err.message);
			exit(1);
		}
		if (!r.scheduled) {
			unschedulable++;
			continue;
		}
		if (scheduler_assume(s, pods[i], r.node_name, &err) < 0) {
			fprintf(stderr, "bench-scheduler: %s\n", err.message);
			exit(1);
		}
		scheduled++;
	}
	double elapsed = now() - start;
	printf("scheduler: %d pods onto %d hollow nodes%s: %.0f pods/s (%.3f s; %d bound, %d unschedulable)\n", count,
	       nodes, with_affinity ? " (10% with node and pod anti-affinity)" : "", count / elapsed, elapsed,
	       scheduled, unschedulable);
	for (int i = 0; i < count; i++)
		cJSON_Delete(pods[i]);
	free(pods);
	scheduler_free(s);
}

int main(int argc, char **argv)
{
	int nodes = argc > 1 ? atoi(argv[1]) : 1000;
	int count = argc > 2 ? atoi(argv[2]) : 10000;
	if (nodes <= 0 || count <= 0) {
		fprintf(stderr, "usage: bench-scheduler [NODES [PODS]]\n");
		return 2;
	}
	run(nodes, count, false);
	run(nodes, count, true);
	return 0;
}
