#include "core/scheduler.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const char READY[] = "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]";

static cJSON *parse(char *text)
{
	cJSON *json = cJSON_Parse(text);
	if (!json)
		unit_fail(__FILE__, __LINE__, "bad test JSON: %s", text);
	free(text);
	return json;
}

/* A Node: labels, allocatable and spec as JSON members (without braces); ready or not. */
static void node_full(struct scheduler *s, const char *name, const char *labels, const char *allocatable,
                      const char *spec, bool ready)
{
	cJSON *node = parse(xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
	                              "\"labels\":{%s}},\"spec\":{%s},\"status\":{\"allocatable\":{%s}%s%s}}",
	                              name, labels, spec, allocatable, ready ? "," : "", ready ? READY : ""));
	struct error err = { 0 };
	if (scheduler_add_node(s, node, &err) < 0)
		unit_fail(__FILE__, __LINE__, "add node %s: %s", name, err.message);
	cJSON_Delete(node);
}

/* A ready node with 4 cpus, 8Gi and 110 pods. */
static void node_plain(struct scheduler *s, const char *name, const char *labels, const char *spec)
{
	node_full(s, name, labels, "\"cpu\":\"4\",\"memory\":\"8Gi\",\"pods\":\"110\"", spec, true);
}

/* A pod: labels and extra spec members (each followed by a comma), one container with
 * requests (JSON members). */
static cJSON *pod(const char *name, const char *labels, const char *spec, const char *requests)
{
	return parse(xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
	                       "\"namespace\":\"default\",\"labels\":{%s}},\"spec\":{%s\"containers\":[{\"name\":\"c\","
	                       "\"image\":\"busybox\",\"resources\":{\"requests\":{%s}}}]}}",
	                       name, labels, spec, requests));
}

/* Schedules the pod; returns the node's name (static) or NULL with the message in r. */
static const char *place(struct scheduler *s, cJSON *p, struct scheduler_result *r)
{
	static char chosen[SCHEDULER_NAME_MAX + 1];
	struct error err = { 0 };
	if (scheduler_schedule(s, p, r, &err) < 0)
		unit_fail(__FILE__, __LINE__, "schedule: %s", err.message);
	cJSON_Delete(p);
	if (!r->scheduled)
		return NULL;
	snprintf(chosen, sizeof(chosen), "%s", r->node_name);
	return chosen;
}

static const char *place_simple(struct scheduler *s, const char *name, const char *spec, const char *requests)
{
	struct scheduler_result r;
	return place(s, pod(name, "", spec, requests), &r);
}

/* Binds a pod to a node directly (as if the watch reported it). */
static void bind(struct scheduler *s, cJSON *p, const char *node)
{
	struct error err = { 0 };
	if (scheduler_assume(s, p, node, &err) < 0)
		unit_fail(__FILE__, __LINE__, "assume: %s", err.message);
	cJSON_Delete(p);
}

/* scheduler_remove_pod takes JSON: tests pass a fresh pod and must free it. */
#define scheduler_remove_pod(s, p)                                                                                     \
	do {                                                                                                           \
		cJSON *removed_ = (p);                                                                                 \
		CHECK_OK(scheduler_remove_pod(s, removed_));                                                           \
		cJSON_Delete(removed_);                                                                                \
	} while (0)

/* Schedules then assumes, like the real loop; returns the node. */
static const char *schedule_and_bind(struct scheduler *s, cJSON *p)
{
	struct scheduler_result r;
	struct error err = { 0 };
	static char chosen[SCHEDULER_NAME_MAX + 1];
	if (scheduler_schedule(s, p, &r, &err) < 0)
		unit_fail(__FILE__, __LINE__, "schedule: %s", err.message);
	if (!r.scheduled)
		unit_fail(__FILE__, __LINE__, "unschedulable: %s", r.message);
	if (scheduler_assume(s, p, r.node_name, &err) < 0)
		unit_fail(__FILE__, __LINE__, "assume: %s", err.message);
	cJSON_Delete(p);
	snprintf(chosen, sizeof(chosen), "%s", r.node_name);
	return chosen;
}

static int64_t quantity(const char *text, int scale)
{
	int64_t v = -1;
	int r = scheduler_parse_quantity(text, scale, &v);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "quantity %s: %d", text, r);
	return v;
}

TEST(quantities)
{
	CHECK_INT(quantity("100m", 3), ==, 100);
	CHECK_INT(quantity("0.5", 3), ==, 500);
	CHECK_INT(quantity("2", 3), ==, 2000);
	CHECK_INT(quantity("1.5", 3), ==, 1500);
	CHECK_INT(quantity("0.1m", 3), ==, 1); /* rounded up, as Kubernetes does */
	CHECK_INT(quantity("64Mi", 0), ==, 64LL << 20);
	CHECK_INT(quantity("1G", 0), ==, 1000000000LL);
	CHECK_INT(quantity("2e3", 0), ==, 2000);
	CHECK_INT(quantity("2E3", 0), ==, 2000);
	CHECK_INT(quantity("1e-3", 3), ==, 1);
	CHECK_INT(quantity("1Ki", 0), ==, 1024);
	CHECK_INT(quantity("1.5Gi", 0), ==, 3LL << 29);
	CHECK_INT(quantity("0.5", 0), ==, 1);
	CHECK_INT(quantity("+3", 0), ==, 3);
	CHECK_INT(quantity("0", 3), ==, 0);
	CHECK_INT(quantity("0.000", 0), ==, 0);
	CHECK_INT(quantity("250u", 3), ==, 1);
	CHECK_INT(quantity("1k", 0), ==, 1000);
	CHECK_INT(quantity("1E", 0), ==, 1000000000000000000LL);
	CHECK_INT(quantity("4Ei", 0), ==, 4LL << 60);
	CHECK_INT(quantity("00012", 0), ==, 12);
	int64_t v;
	CHECK_INT(scheduler_parse_quantity("8Ei", 0, &v), ==, -ERANGE);
	CHECK_INT(scheduler_parse_quantity("1e30", 0, &v), ==, -ERANGE);
	const char *bad[] = { "", "-1", "m", "1.2.3", "1x", "1Mb", "1e", "1e+", "1 m", "abc", ".", "1ii" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (scheduler_parse_quantity(bad[i], 0, &v) != -EINVAL)
			unit_fail(__FILE__, __LINE__, "\"%s\" accepted", bad[i]);
	CHECK_INT(scheduler_parse_quantity(NULL, 0, &v), ==, -EINVAL);
}

TEST(no_nodes_message)
{
	struct scheduler *s = scheduler_new();
	struct scheduler_result r;
	CHECK(!place(s, pod("p", "", "", ""), &r));
	CHECK_STR(r.message, "0/0 nodes are available: no nodes available to schedule pods.");
	CHECK_INT(r.nodes, ==, 0);
	scheduler_free(s);
}

TEST(arch_mismatch_in_a_mixed_cluster)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "x86", "\"kubernetes.io/arch\":\"amd64\"", "");
	node_plain(s, "pi-zero", "\"kubernetes.io/arch\":\"arm\"", "");
	struct scheduler_result r;
	const char *arm64 = "\"nodeSelector\":{\"kubernetes.io/arch\":\"arm64\"},";
	CHECK(!place(s, pod("p", "", arm64, ""), &r));
	CHECK_STR(r.message, "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.");
	node_plain(s, "pi-4", "\"kubernetes.io/arch\":\"arm64\"", "");
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		CHECK_STR(place_simple(s, name, arm64, ""), "pi-4");
	}
	/* the same through required node affinity: either ARM flavour, never amd64 */
	const char *arm_any = "\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
	                      "{\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":\"kubernetes.io/arch\","
	                      "\"operator\":\"In\",\"values\":[\"arm\",\"arm64\"]}]}]}}},";
	for (int i = 0; i < 20; i++) {
		char name[16];
		snprintf(name, sizeof(name), "q%d", i);
		const char *chosen = schedule_and_bind(s, pod(name, "", arm_any, "\"cpu\":\"100m\""));
		CHECK(strcmp(chosen, "x86") != 0);
	}
	const char *not_arm = "\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
	                      "{\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":\"kubernetes.io/arch\","
	                      "\"operator\":\"NotIn\",\"values\":[\"arm\",\"arm64\"]}]}]}}},";
	CHECK_STR(place_simple(s, "amd", not_arm, ""), "x86");
	scheduler_free(s);
}

TEST(node_affinity_terms_operators_and_fields)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "a", "\"disk\":\"ssd\",\"cores\":\"4\"", "");
	node_plain(s, "b", "\"disk\":\"hdd\",\"cores\":\"8\"", "");
	node_plain(s, "c", "\"cores\":\"2\"", "");
#define REQUIRED(terms)                                                                                                \
	"\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":{"                         \
	"\"nodeSelectorTerms\":" terms "}}},"
	CHECK_STR(place_simple(s, "p",
	                       REQUIRED("[{\"matchExpressions\":[{\"key\":\"cores\",\"operator\":\"Gt\","
	                                "\"values\":[\"6\"]}]}]"),
	                       ""),
	          "b");
	CHECK_STR(place_simple(s, "p",
	                       REQUIRED("[{\"matchExpressions\":[{\"key\":\"cores\",\"operator\":\"Lt\","
	                                "\"values\":[\"3\"]}]}]"),
	                       ""),
	          "c");
	CHECK_STR(place_simple(s, "p",
	                       REQUIRED("[{\"matchExpressions\":[{\"key\":\"disk\",\"operator\":"
	                                "\"DoesNotExist\"}]}]"),
	                       ""),
	          "c");
	/* terms are OR'ed, expressions AND'ed */
	CHECK_STR(place_simple(s, "p",
	                       REQUIRED("[{\"matchExpressions\":[{\"key\":\"disk\",\"operator\":\"Exists\"},"
	                                "{\"key\":\"cores\",\"operator\":\"Lt\",\"values\":[\"5\"]}]},"
	                                "{\"matchExpressions\":[{\"key\":\"nothing\",\"operator\":\"Exists\"}]}]"),
	                       ""),
	          "a");
	CHECK_STR(place_simple(s, "p",
	                       REQUIRED("[{\"matchFields\":[{\"key\":\"metadata.name\",\"operator\":\"In\","
	                                "\"values\":[\"c\"]}]}]"),
	                       ""),
	          "c");
	struct scheduler_result r;
	CHECK(!place(
	        s,
	        pod("p", "",
	            REQUIRED("[{\"matchExpressions\":[{\"key\":\"disk\",\"operator\":\"In\",\"values\":[\"nvme\"]}]}]"),
	            ""),
	        &r));
	CHECK_STR(r.message, "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.");
	/* an empty term selects nothing */
	CHECK(!place(s, pod("p", "", REQUIRED("[{}]"), ""), &r));
	/* bad operators are refused with the field */
	struct error err = { 0 };
	cJSON *bad = pod("p", "", REQUIRED("[{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Near\"}]}]"), "");
	CHECK_INT(scheduler_schedule(s, bad, &r, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.field, "nodeSelectorTerms[0].matchExpressions[0]");
	cJSON_Delete(bad);
#undef REQUIRED
	scheduler_free(s);
}

/* Whether a pod with the toleration (JSON object or "") fits a node with the taint. */
static bool tolerates(const char *taint, const char *toleration)
{
	struct scheduler *s = scheduler_new();
	char *spec = xasprintf("\"taints\":[%s]", taint);
	node_plain(s, "n", "", spec);
	free(spec);
	char *pod_spec = xasprintf("\"tolerations\":[%s],", toleration);
	struct scheduler_result r;
	bool fits = place(s, pod("p", "", pod_spec, ""), &r) != NULL;
	free(pod_spec);
	scheduler_free(s);
	return fits;
}

TEST(taints_and_every_toleration_form)
{
	const char *no_schedule = "{\"key\":\"k\",\"value\":\"v\",\"effect\":\"NoSchedule\"}";
	const char *no_execute = "{\"key\":\"k\",\"value\":\"v\",\"effect\":\"NoExecute\"}";
	const char *prefer = "{\"key\":\"k\",\"value\":\"v\",\"effect\":\"PreferNoSchedule\"}";
	const char *taints[] = { no_schedule, no_execute };
	const char *effects[] = { "NoSchedule", "NoExecute" };
	for (int i = 0; i < 2; i++) {
		const char *t = taints[i];
		CHECK(!tolerates(t, ""));
		char *tol;
		/* Equal (explicit and default) needs key and value */
		CHECK(tolerates(t, "{\"key\":\"k\",\"operator\":\"Equal\",\"value\":\"v\"}"));
		CHECK(tolerates(t, "{\"key\":\"k\",\"value\":\"v\"}"));
		CHECK(!tolerates(t, "{\"key\":\"k\",\"operator\":\"Equal\",\"value\":\"w\"}"));
		CHECK(!tolerates(t, "{\"key\":\"k\",\"operator\":\"Equal\"}"));
		CHECK(!tolerates(t, "{\"key\":\"other\",\"operator\":\"Equal\",\"value\":\"v\"}"));
		/* Exists needs the key only */
		CHECK(tolerates(t, "{\"key\":\"k\",\"operator\":\"Exists\"}"));
		CHECK(!tolerates(t, "{\"key\":\"other\",\"operator\":\"Exists\"}"));
		/* an empty key with Exists tolerates every taint */
		CHECK(tolerates(t, "{\"operator\":\"Exists\"}"));
		/* effects: the same, empty (all), or another one */
		tol = xasprintf("{\"key\":\"k\",\"operator\":\"Exists\",\"effect\":\"%s\"}", effects[i]);
		CHECK(tolerates(t, tol));
		free(tol);
		tol = xasprintf("{\"key\":\"k\",\"operator\":\"Equal\",\"value\":\"v\",\"effect\":\"%s\"}", effects[i]);
		CHECK(tolerates(t, tol));
		free(tol);
		tol = xasprintf("{\"key\":\"k\",\"operator\":\"Exists\",\"effect\":\"%s\"}", effects[1 - i]);
		CHECK(!tolerates(t, tol));
		free(tol);
		CHECK(!tolerates(t, "{\"key\":\"k\",\"operator\":\"Exists\",\"effect\":\"PreferNoSchedule\"}"));
		CHECK(tolerates(t, "{\"operator\":\"Exists\",\"effect\":\"\"}"));
		tol = xasprintf("{\"operator\":\"Exists\",\"effect\":\"%s\"}", effects[1 - i]);
		CHECK(!tolerates(t, tol));
		free(tol);
	}
	/* PreferNoSchedule never filters */
	CHECK(tolerates(prefer, ""));
	/* the message names the first untolerated taint */
	struct scheduler *s = scheduler_new();
	node_plain(s, "cp", "",
	           "\"taints\":[{\"key\":\"node-role.kubernetes.io/control-plane\",\"effect\":\"NoSchedule\"}]");
	node_plain(s, "gpu", "", "\"taints\":[{\"key\":\"gpu\",\"value\":\"yes\",\"effect\":\"NoExecute\"}]");
	struct scheduler_result r;
	CHECK(!place(s, pod("p", "", "", ""), &r));
	CHECK_STR(r.message, "0/2 nodes are available: 1 node(s) had untolerated taint "
	                     "{gpu: yes}, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }.");
	/* an unknown operator or effect is refused with the field named */
	struct error err = { 0 };
	cJSON *bad = pod("p", "", "\"tolerations\":[{\"key\":\"k\",\"operator\":\"Maybe\"}],", "");
	CHECK_INT(scheduler_schedule(s, bad, &r, &err), ==, -EINVAL);
	CHECK_STR(err.field, "spec.tolerations[0]");
	CHECK_CONTAINS(err.message, "Maybe");
	cJSON_Delete(bad);
	bad = pod("p", "", "\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\",\"effect\":\"Never\"}],", "");
	CHECK_INT(scheduler_schedule(s, bad, &r, &err), ==, -EINVAL);
	cJSON_Delete(bad);
	scheduler_free(s);
}

TEST(cordoned_nodes)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "a", "", "\"unschedulable\":true");
	node_plain(s, "b", "", "\"unschedulable\":true");
	struct scheduler_result r;
	CHECK(!place(s, pod("p", "", "", ""), &r));
	CHECK_STR(r.message, "0/2 nodes are available: 2 node(s) were unschedulable.");
	/* a DaemonSet-style toleration goes through */
	CHECK(place_simple(s, "ds",
	                   "\"tolerations\":[{\"key\":\"node.kubernetes.io/unschedulable\","
	                   "\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}],",
	                   ""));
	node_plain(s, "c", "", "\"unschedulable\":false");
	CHECK_STR(place_simple(s, "p", "", ""), "c");
	scheduler_free(s);
}

TEST(not_ready_nodes)
{
	struct scheduler *s = scheduler_new();
	node_full(s, "a", "", "\"cpu\":\"1\"", "", false);
	cJSON *unknown = cJSON_Parse("{\"metadata\":{\"name\":\"b\"},\"status\":{\"allocatable\":{\"cpu\":\"1\"},"
	                             "\"conditions\":[{\"type\":\"Ready\",\"status\":\"Unknown\"}]}}");
	CHECK_OK(scheduler_add_node(s, unknown, NULL));
	cJSON_Delete(unknown);
	struct scheduler_result r;
	CHECK(!place(s, pod("p", "", "", ""), &r));
	CHECK_STR(r.message, "0/2 nodes are available: 2 node(s) were not ready.");
	CHECK(place_simple(
	        s, "ds", "\"tolerations\":[{\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\"}],", ""));
	/* the node becomes Ready: update */
	cJSON *ready = parse(
	        xasprintf("{\"metadata\":{\"name\":\"a\"},\"status\":{\"allocatable\":{\"cpu\":\"1\"},%s}}", READY));
	CHECK_OK(scheduler_update_node(s, ready, NULL));
	CHECK_INT(scheduler_add_node(s, ready, NULL), ==, -EEXIST);
	cJSON_Delete(ready);
	CHECK_STR(place_simple(s, "p", "", ""), "a");
	scheduler_free(s);
}

TEST(resources_fit_and_the_messages)
{
	struct scheduler *s = scheduler_new();
	node_full(s, "small", "", "\"cpu\":\"1\",\"memory\":\"1Gi\",\"pods\":\"2\"", "", true);
	struct scheduler_result r;
	CHECK(!place(s, pod("p", "", "", "\"cpu\":\"1500m\""), &r));
	CHECK_STR(r.message, "0/1 nodes are available: 1 Insufficient cpu.");
	CHECK(!place(s, pod("p", "", "", "\"cpu\":\"2\",\"memory\":\"2Gi\""), &r));
	CHECK_STR(r.message, "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.");
	bind(s, pod("a", "", "", "\"cpu\":\"600m\",\"memory\":\"512Mi\""), "small");
	CHECK(!place(s, pod("p", "", "", "\"cpu\":\"500m\""), &r));
	CHECK_STR(r.message, "0/1 nodes are available: 1 Insufficient cpu.");
	CHECK_STR(place_simple(s, "p", "", "\"cpu\":\"400m\",\"memory\":\"512Mi\""), "small");
	bind(s, pod("b", "", "", ""), "small");
	CHECK(!place(s, pod("p", "", "", ""), &r));
	CHECK_STR(r.message, "0/1 nodes are available: 1 Too many pods.");
	/* a pod that ends frees its share */
	cJSON *done = parse(xasprintf("{\"metadata\":{\"name\":\"b\",\"namespace\":\"default\"},\"spec\":{\"nodeName\":"
	                              "\"small\",\"containers\":[]},\"status\":{\"phase\":\"Succeeded\"}}"));
	CHECK_OK(scheduler_add_pod(s, done, NULL));
	cJSON_Delete(done);
	CHECK_INT(scheduler_pod_count(s), ==, 1);
	CHECK_STR(place_simple(s, "p", "", ""), "small");
	/* limits stand in for missing requests */
	cJSON *limited = parse(xasprintf("{\"metadata\":{\"name\":\"l\"},\"spec\":{\"containers\":[{\"name\":\"c\","
	                                 "\"resources\":{\"limits\":{\"cpu\":\"500m\"}}}]}}"));
	CHECK(!place(s, limited, &r));
	CHECK_STR(r.message, "0/1 nodes are available: 1 Insufficient cpu.");
	scheduler_free(s);
}

/* Containers 200m + 200m, an init container 900m: effective 900m cpu, 700Mi memory. */
static char *init_pod(const char *name)
{
	return xasprintf("{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"initContainers\":[{\"name\":\"init\","
	                 "\"resources\":{\"requests\":{\"cpu\":\"900m\"}}},{\"name\":\"init2\",\"resources\":"
	                 "{\"requests\":{\"cpu\":\"100m\",\"memory\":\"700Mi\"}}}],\"containers\":[{\"name\":\"a\","
	                 "\"resources\":{\"requests\":{\"cpu\":\"200m\",\"memory\":\"100Mi\"}}},{\"name\":\"b\","
	                 "\"resources\":{\"requests\":{\"cpu\":\"200m\",\"memory\":\"100Mi\"}}}]}}",
	                 name);
}

TEST(init_containers_effective_requests)
{
	struct scheduler *s = scheduler_new();
	node_full(s, "n", "", "\"cpu\":\"1\",\"memory\":\"1Gi\"", "", true);
	struct scheduler_result r;
	CHECK_STR(place(s, parse(init_pod("p")), &r), "n");
	bind(s, pod("other", "", "", "\"cpu\":\"200m\""), "n");
	/* 900m no longer fits beside 200m, though the containers' 400m would */
	CHECK(!place(s, parse(init_pod("p")), &r));
	CHECK_STR(r.message, "0/1 nodes are available: 1 Insufficient cpu.");
	/* and a bound pod accounts its effective requests: 900m cpu, 700Mi memory */
	scheduler_remove_pod(s, pod("other", "", "", ""));
	cJSON *bound = parse(init_pod("q"));
	bind(s, bound, "n");
	CHECK(!place(s, pod("x", "", "", "\"cpu\":\"200m\",\"memory\":\"400Mi\""), &r));
	CHECK_STR(r.message, "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.");
	scheduler_free(s);
}

TEST(extended_resources)
{
	struct scheduler *s = scheduler_new();
	node_full(s, "gpio", "", "\"cpu\":\"4\",\"bramble.io/gpio\":\"2\"", "", true);
	node_full(s, "plain", "", "\"cpu\":\"4\"", "", true);
	const char *gpio = "\"bramble.io/gpio\":\"1\"";
	CHECK_STR(schedule_and_bind(s, pod("a", "", "", gpio)), "gpio");
	CHECK_STR(schedule_and_bind(s, pod("b", "", "", gpio)), "gpio");
	struct scheduler_result r;
	CHECK(!place(s, pod("c", "", "", gpio), &r));
	CHECK_STR(r.message, "0/2 nodes are available: 2 Insufficient bramble.io/gpio.");
	scheduler_remove_pod(s, pod("a", "", "", ""));
	CHECK_STR(place_simple(s, "c", "", gpio), "gpio");
	/* pods without the resource go anywhere */
	CHECK(place_simple(s, "d", "", "\"cpu\":\"1\""));
	scheduler_free(s);
}

/* A pod with hostPort 8080 and extra port members. */
static char *port_pod(const char *name, const char *extra)
{
	return xasprintf("{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":"
	                 "[{\"containerPort\":80,\"hostPort\":8080%s}]}]}}",
	                 name, extra);
}

TEST(host_port_conflicts)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "a", "", "");
	node_plain(s, "b", "", "");
	bind(s, parse(port_pod("web-1", "")), "a");
	struct scheduler_result r;
	CHECK_STR(place(s, parse(port_pod("web-2", "")), &r), "b");
	/* another protocol, or another host address, does not conflict */
	bind(s, parse(port_pod("web-2", "")), "b");
	CHECK(place(s, parse(port_pod("dns", ",\"protocol\":\"UDP\"")), &r));
	bind(s, parse(port_pod("ip-1", ",\"hostIP\":\"10.0.0.1\"")), "a");
	CHECK(!place(s, parse(port_pod("web-3", ",\"hostIP\":\"10.0.0.2\"")), &r));
	CHECK_STR(r.message, "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.");
	scheduler_remove_pod(s, parse(port_pod("web-1", "")));
	CHECK(!place(s, parse(port_pod("web-3", ",\"hostIP\":\"10.0.0.1\"")), &r));
	CHECK_STR(place(s, parse(port_pod("web-3", ",\"hostIP\":\"10.0.0.2\"")), &r), "a");
	scheduler_free(s);
}

#define POD_TERM(selector, key) "{\"labelSelector\":{\"matchLabels\":" selector "},\"topologyKey\":\"" key "\"}"
#define AFFINITY(kind, term)                                                                                           \
	"\"affinity\":{\"" kind "\":{\"requiredDuringSchedulingIgnoredDuringExecution\":[" term "]}},"

TEST(pod_affinity_on_hostname)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "a", "\"kubernetes.io/hostname\":\"a\"", "");
	node_plain(s, "b", "\"kubernetes.io/hostname\":\"b\"", "");
	node_plain(s, "c", "\"kubernetes.io/hostname\":\"c\"", "");
	bind(s, pod("db", "\"app\":\"db\"", "", ""), "b");
	const char *with_db = AFFINITY("podAffinity", POD_TERM("{\"app\":\"db\"}", "kubernetes.io/hostname"));
	const char *without_db = AFFINITY("podAntiAffinity", POD_TERM("{\"app\":\"db\"}", "kubernetes.io/hostname"));
	for (int i = 0; i < 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "w%d", i);
		CHECK_STR(place_simple(s, name, with_db, ""), "b");
		CHECK(strcmp(place_simple(s, name, without_db, ""), "b") != 0);
	}
	struct scheduler_result r;
	CHECK(!place(
	        s, pod("x", "", AFFINITY("podAffinity", POD_TERM("{\"app\":\"cache\"}", "kubernetes.io/hostname")), ""),
	        &r));
	CHECK_STR(r.message, "0/3 nodes are available: 3 node(s) didn't match pod affinity rules.");
	/* the first pod of a group that wants its own kind may start anywhere */
	CHECK(place(s,
	            pod("c1", "\"app\":\"cache\"",
	                AFFINITY("podAffinity", POD_TERM("{\"app\":\"cache\"}", "kubernetes.io/hostname")), ""),
	            &r));
	/* namespaces: another namespace's db does not count */
	CHECK(!place(
	        s,
	        pod("y", "",
	            AFFINITY("podAffinity", "{\"labelSelector\":{\"matchLabels\":{\"app\":\"db\"}},\"topologyKey\":"
	                                    "\"kubernetes.io/hostname\",\"namespaces\":[\"other\"]}"),
	            ""),
	        &r));
	/* anti-affinity of three replicas: one per node, then none */
	const char *spread = AFFINITY("podAntiAffinity", POD_TERM("{\"app\":\"web\"}", "kubernetes.io/hostname"));
	const char *names[3] = { NULL };
	char *texts[3];
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "web-%d", i);
		names[i] = xstrdup(schedule_and_bind(s, pod(name, "\"app\":\"web\"", spread, "")));
		texts[i] = (char *)names[i];
	}
	CHECK(strcmp(names[0], names[1]) && strcmp(names[1], names[2]) && strcmp(names[0], names[2]));
	CHECK(!place(s, pod("web-3", "\"app\":\"web\"", spread, ""), &r));
	/* existing pods' anti-affinity holds against the new pod too (symmetry) */
	CHECK(!place(s, pod("plain-web", "\"app\":\"web\"", "", ""), &r));
	CHECK_STR(r.message, "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules.");
	CHECK(place(s, pod("plain", "\"app\":\"other\"", "", ""), &r));
	for (int i = 0; i < 3; i++)
		free(texts[i]);
	scheduler_free(s);
}

TEST(pod_affinity_on_a_zone)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "a1", "\"topology.kubernetes.io/zone\":\"a\"", "");
	node_plain(s, "a2", "\"topology.kubernetes.io/zone\":\"a\"", "");
	node_plain(s, "b1", "\"topology.kubernetes.io/zone\":\"b\"", "");
	node_plain(s, "nozone", "", "");
	bind(s, pod("db", "\"app\":\"db\"", "", ""), "a1");
	const char *near = AFFINITY("podAffinity", POD_TERM("{\"app\":\"db\"}", "topology.kubernetes.io/zone"));
	const char *far = AFFINITY("podAntiAffinity", POD_TERM("{\"app\":\"db\"}", "topology.kubernetes.io/zone"));
	bool seen_a2 = false;
	for (int i = 0; i < 12; i++) {
		char name[16];
		snprintf(name, sizeof(name), "n%d", i);
		const char *chosen = place_simple(s, name, near, "");
		CHECK(strcmp(chosen, "a1") == 0 || strcmp(chosen, "a2") == 0);
		seen_a2 |= strcmp(chosen, "a2") == 0;
		chosen = place_simple(s, name, far, "");
		CHECK(strcmp(chosen, "b1") == 0 || strcmp(chosen, "nozone") == 0);
	}
	CHECK(seen_a2); /* the zone counts, not only the db's own node */
	struct scheduler_result r;
	bind(s, pod("db2", "\"app\":\"db\"", "", ""), "b1");
	CHECK_STR(place(s, pod("f", "", far, ""), &r), "nozone");
	/* a mixed refusal: 3 nodes in zones with the db, 1 without the zone label */
	cJSON *both =
	        pod("h", "", AFFINITY("podAntiAffinity", POD_TERM("{\"app\":\"db\"}", "topology.kubernetes.io/zone")),
	            "\"cpu\":\"5\"");
	CHECK(!place(s, both, &r));
	CHECK_STR(r.message, "0/4 nodes are available: 4 Insufficient cpu.");
	scheduler_free(s);
}

TEST(preferred_node_affinity_changes_the_choice)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "a", "\"disk\":\"hdd\"", "");
	node_plain(s, "b", "\"disk\":\"ssd\"", "");
	node_plain(s, "c", "\"disk\":\"hdd\"", "");
	const char *prefer_ssd = "\"affinity\":{\"nodeAffinity\":{\"preferredDuringSchedulingIgnoredDuringExecution\":"
	                         "[{\"weight\":50,\"preference\":{\"matchExpressions\":[{\"key\":\"disk\",\"operator\":"
	                         "\"In\",\"values\":[\"ssd\"]}]}}]}},";
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		CHECK_STR(place_simple(s, name, prefer_ssd, "\"cpu\":\"100m\""), "b");
	}
	/* but preference is not a requirement: a full ssd node is passed over */
	bind(s, pod("hog", "", "", "\"cpu\":\"4\""), "b");
	CHECK(strcmp(place_simple(s, "p", prefer_ssd, "\"cpu\":\"100m\""), "b") != 0);
	scheduler_free(s);
}

TEST(preferred_pod_affinity_changes_the_choice)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "a", "", "");
	node_plain(s, "b", "", "");
	node_plain(s, "c", "", "");
	bind(s, pod("cache", "\"app\":\"cache\"", "", ""), "c");
	const char *near_cache = "\"affinity\":{\"podAffinity\":{\"preferredDuringSchedulingIgnoredDuringExecution\":"
	                         "[{\"weight\":100,\"podAffinityTerm\":" POD_TERM("{\"app\":\"cache\"}",
	                                                                          "kubernetes.io/hostname") "}]}},";
	const char *away = "\"affinity\":{\"podAntiAffinity\":{\"preferredDuringSchedulingIgnoredDuringExecution\":"
	                   "[{\"weight\":100,\"podAffinityTerm\":" POD_TERM("{\"app\":\"cache\"}",
	                                                                    "kubernetes.io/hostname") "}]}},";
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		CHECK_STR(place_simple(s, name, near_cache, ""), "c");
		CHECK(strcmp(place_simple(s, name, away, ""), "c") != 0);
	}
	scheduler_free(s);
}

/* A ReplicaSet's pod: name, owner uid, cpu request. */
static char *owned_pod(const char *name, const char *uid, const char *cpu)
{
	return xasprintf("{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"labels\":{\"app\":\"web\"},"
	                 "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":"
	                 "\"web-1\",\"uid\":\"%s\",\"controller\":true}]},\"spec\":{\"containers\":[{\"name\":\"c\","
	                 "\"resources\":{\"requests\":{\"cpu\":\"%s\"}}}]}}",
	                 name, uid, cpu);
}

TEST(replicas_spread_over_nodes)
{
	/* whatever the names, 3 replicas land on 3 nodes, even where free resources differ
	 * a little (least-allocated alone would stack them on the emptiest) */
	for (int round = 0; round < 10; round++) {
		struct scheduler *s = scheduler_new();
		node_full(s, "a", "", "\"cpu\":\"4\",\"memory\":\"8Gi\"", "", true);
		node_full(s, "b", "", "\"cpu\":\"4\",\"memory\":\"8Gi\"", "", true);
		node_full(s, "c", "", "\"cpu\":\"8\",\"memory\":\"8Gi\"", "", true);
		char *chosen[3];
		for (int i = 0; i < 3; i++) {
			char name[32];
			snprintf(name, sizeof(name), "web-%d-%d", round, i);
			chosen[i] = xstrdup(schedule_and_bind(s, parse(owned_pod(name, "rs-uid", "50m"))));
		}
		CHECK(strcmp(chosen[0], chosen[1]) && strcmp(chosen[1], chosen[2]) && strcmp(chosen[0], chosen[2]));
		for (int i = 0; i < 3; i++)
			free(chosen[i]);
		scheduler_free(s);
	}
	/* zones: two replicas go to two zones, whichever node the first took (zone a has
	 * three nodes, b two: counting nodes alone would often keep both in a) */
	for (int round = 0; round < 10; round++) {
		struct scheduler *s = scheduler_new();
		node_plain(s, "a1", "\"topology.kubernetes.io/zone\":\"a\"", "");
		node_plain(s, "a2", "\"topology.kubernetes.io/zone\":\"a\"", "");
		node_plain(s, "a3", "\"topology.kubernetes.io/zone\":\"a\"", "");
		node_plain(s, "b1", "\"topology.kubernetes.io/zone\":\"b\"", "");
		node_plain(s, "b2", "\"topology.kubernetes.io/zone\":\"b\"", "");
		char name[32], zones[2];
		for (int i = 0; i < 2; i++) {
			snprintf(name, sizeof(name), "z-%d-%d", round, i);
			zones[i] = schedule_and_bind(s, parse(owned_pod(name, "rs-z", "10m")))[0];
		}
		CHECK(zones[0] != zones[1]);
		scheduler_free(s);
	}
}

TEST(spreading_follows_pods_leaving_and_other_namespaces)
{
	/* the owner's per-node counts follow pods bound and removed */
	struct scheduler *s = scheduler_new();
	struct scheduler_result r;
	node_plain(s, "a", "", "");
	node_plain(s, "b", "", "");
	char name[32];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "on-a-%d", i);
		bind(s, parse(owned_pod(name, "rs-move", "10m")), "a");
	}
	CHECK_STR(place(s, parse(owned_pod("next-1", "rs-move", "10m")), &r), "b");
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "on-a-%d", i);
		scheduler_remove_pod(s, parse(owned_pod(name, "rs-move", "10m")));
		snprintf(name, sizeof(name), "on-b-%d", i);
		bind(s, parse(owned_pod(name, "rs-move", "10m")), "b");
	}
	CHECK_STR(place(s, parse(owned_pod("next-2", "rs-move", "10m")), &r), "a");
	/* a pod of the same owner uid in another namespace does not count */
	char *other = owned_pod("elsewhere", "rs-move", "10m");
	char *at = strstr(other, "\"default\"");
	memcpy(at, "\"ns-two\" ", 9);
	CHECK_STR(place(s, parse(other), &r), "a");
	scheduler_free(s);
}

TEST(least_allocated_preferred)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "busy", "", "");
	node_plain(s, "idle", "", "");
	bind(s, pod("load", "", "", "\"cpu\":\"2\",\"memory\":\"4Gi\""), "busy");
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		CHECK_STR(place_simple(s, name, "", "\"cpu\":\"100m\",\"memory\":\"64Mi\""), "idle");
	}
	/* the bigger node wins when both are empty */
	node_full(s, "big", "", "\"cpu\":\"16\",\"memory\":\"64Gi\"", "", true);
	CHECK_STR(place_simple(s, "p", "", "\"cpu\":\"1\",\"memory\":\"1Gi\""), "big");
	scheduler_free(s);
}

TEST(prefer_no_schedule_taints_score_lower)
{
	struct scheduler *s = scheduler_new();
	node_plain(s, "a", "", "\"taints\":[{\"key\":\"spot\",\"effect\":\"PreferNoSchedule\"}]");
	node_plain(s, "b", "", "");
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		CHECK_STR(place_simple(s, name, "", ""), "b");
	}
	/* filled up, the tainted node still takes pods */
	bind(s, pod("hog", "", "", "\"cpu\":\"4\""), "b");
	CHECK_STR(place_simple(s, "p", "", "\"cpu\":\"1\""), "a");
	scheduler_free(s);
}

TEST(unschedulable_message_for_a_mixed_failure)
{
	struct scheduler *s = scheduler_new();
	node_full(s, "pi-1", "", "\"cpu\":\"4\",\"memory\":\"1Gi\"", "", true);
	node_full(s, "pi-2", "", "\"cpu\":\"4\",\"memory\":\"1Gi\"", "", true);
	node_full(s, "cp", "", "\"cpu\":\"4\",\"memory\":\"8Gi\"",
	          "\"taints\":[{\"key\":\"node-role.kubernetes.io/control-plane\",\"effect\":\"NoSchedule\"}]", true);
	struct scheduler_result r;
	CHECK(!place(s, pod("big", "", "", "\"memory\":\"2Gi\""), &r));
	/* Kubernetes sorts the "<count> <reason>" strings, so the count leads */
	CHECK_STR(r.message, "0/3 nodes are available: 1 node(s) had untolerated taint "
	                     "{node-role.kubernetes.io/control-plane: }, 2 Insufficient memory.");
	CHECK_INT(r.nodes, ==, 3);
	CHECK_INT(r.feasible, ==, 0);
	/* every filter's reason, one node each */
	node_plain(s, "cordoned", "", "\"unschedulable\":true");
	node_full(s, "down", "", "\"cpu\":\"4\",\"memory\":\"8Gi\"", "", false);
	node_plain(s, "x86", "\"kubernetes.io/arch\":\"amd64\"", "");
	CHECK(!place(s, pod("big", "", "\"nodeSelector\":{\"kubernetes.io/arch\":\"arm64\"},", "\"memory\":\"2Gi\""),
	             &r));
	CHECK_STR(r.message,
	          "0/6 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
	          "1 node(s) were not ready, 1 node(s) were unschedulable, 3 node(s) didn't match Pod's "
	          "node affinity/selector.");
	scheduler_free(s);
}

TEST(deterministic_and_spread_ties)
{
	struct scheduler *s1 = scheduler_new(), *s2 = scheduler_new();
	const char *names[] = { "n1", "n2", "n3", "n4", "n5" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		node_plain(s1, names[i], "", "");
		node_plain(s2, names[i], "", "");
	}
	bool used[5] = { false };
	for (int i = 0; i < 40; i++) {
		char name[16];
		snprintf(name, sizeof(name), "pod-%d", i);
		char *a = xstrdup(place_simple(s1, name, "", ""));
		CHECK_STR(place_simple(s2, name, "", ""), a);
		CHECK_STR(place_simple(s1, name, "", ""), a); /* again: the same */
		used[a[1] - '1'] = true;
		free(a);
	}
	int distinct = 0;
	for (int i = 0; i < 5; i++)
		distinct += used[i];
	CHECK_INT(distinct, >=, 4); /* equal nodes share the pods, not all on the first */
	scheduler_free(s1);
	scheduler_free(s2);
}

TEST(snapshot_updates)
{
	struct scheduler *s = scheduler_new();
	node_full(s, "a", "", "\"cpu\":\"1\"", "", true);
	bind(s, pod("p1", "", "", "\"cpu\":\"800m\""), "a");
	/* the same pod reported again (the watch confirming an assumed pod) is not counted twice */
	cJSON *again = pod("p1", "", "\"nodeName\":\"a\",", "\"cpu\":\"800m\"");
	CHECK_OK(scheduler_add_pod(s, again, NULL));
	cJSON_Delete(again);
	CHECK_INT(scheduler_pod_count(s), ==, 1);
	CHECK_STR(place_simple(s, "p2", "", "\"cpu\":\"200m\""), "a");
	/* the node leaves: nothing to schedule on, its pods stay accounted */
	CHECK_OK(scheduler_remove_node(s, "a"));
	CHECK_INT(scheduler_remove_node(s, "a"), ==, -ENOENT);
	CHECK_INT(scheduler_node_count(s), ==, 0);
	CHECK(!place_simple(s, "p2", "", ""));
	/* it comes back bigger: the pod is still there */
	node_full(s, "a", "", "\"cpu\":\"2\"", "", true);
	struct scheduler_result r;
	CHECK(!place(s, pod("p3", "", "", "\"cpu\":\"1300m\""), &r));
	CHECK_STR(place_simple(s, "p3", "", "\"cpu\":\"1200m\""), "a");
	/* a pod bound to an unknown node, then removed */
	bind(s, pod("ghost", "", "", "\"cpu\":\"1\""), "nowhere");
	CHECK_INT(scheduler_pod_count(s), ==, 2);
	CHECK_INT(scheduler_node_count(s), ==, 1);
	scheduler_remove_pod(s, pod("ghost", "", "", ""));
	cJSON *ghost = pod("ghost", "", "", "");
	CHECK_INT((scheduler_remove_pod)(s, ghost), ==, -ENOENT);
	cJSON_Delete(ghost);
	/* an unbound pod cannot be added; a bad Node is refused whole */
	struct error err = { 0 };
	cJSON *unbound = pod("u", "", "", "");
	CHECK_INT(scheduler_add_pod(s, unbound, &err), ==, -EINVAL);
	cJSON_Delete(unbound);
	cJSON *bad = cJSON_Parse("{\"metadata\":{\"name\":\"b\"},\"status\":{\"allocatable\":{\"cpu\":\"lots\"}}}");
	CHECK_INT(scheduler_add_node(s, bad, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "cpu");
	cJSON_Delete(bad);
	CHECK_INT(scheduler_node_count(s), ==, 1);
	scheduler_free(s);
	scheduler_free(NULL);
}

TEST(message_sorts_as_go_strings)
{
	/* "10 ..." sorts before "2 ...": Kubernetes sorts the joined strings, not the counts */
	struct scheduler *s = scheduler_new();
	for (int i = 0; i < 10; i++) {
		char name[16];
		snprintf(name, sizeof(name), "cordoned-%d", i);
		node_plain(s, name, "", "\"unschedulable\":true");
	}
	node_full(s, "small-1", "", "\"memory\":\"1Gi\"", "", true);
	node_full(s, "small-2", "", "\"memory\":\"1Gi\"", "", true);
	struct scheduler_result r;
	CHECK(!place(s, pod("p", "", "", "\"memory\":\"2Gi\""), &r));
	CHECK_STR(r.message, "0/12 nodes are available: 10 node(s) were unschedulable, 2 Insufficient memory.");
	/* every namespace with namespaceSelector: {}; a non-empty one is refused */
	bind(s, pod("db", "\"app\":\"db\"", "", ""), "small-1");
	const char *all = "\"affinity\":{\"podAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":[{"
	                  "\"labelSelector\":{\"matchLabels\":{\"app\":\"db\"}},\"namespaceSelector\":{},"
	                  "\"topologyKey\":\"kubernetes.io/hostname\"}]}},";
	CHECK_STR(place_simple(s, "q", all, ""), "small-1");
	const char *some = "\"affinity\":{\"podAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":[{"
	                   "\"labelSelector\":{},\"namespaceSelector\":{\"matchLabels\":{\"team\":\"a\"}},"
	                   "\"topologyKey\":\"kubernetes.io/hostname\"}]}},";
	struct error err = { 0 };
	cJSON *bad = pod("q", "", some, "");
	CHECK_INT(scheduler_schedule(s, bad, &r, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.field, "namespaceSelector");
	cJSON_Delete(bad);
	scheduler_free(s);
}

TEST(large_clusters_are_searched_in_part_and_in_turn)
{
	struct scheduler *s = scheduler_new();
	char name[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "n%04d", i);
		node_plain(s, name, i < 10 ? "\"disk\":\"ssd\"" : "", "");
	}
	struct scheduler_result r;
	/* 1,000 nodes: enough once 420 are feasible (kube-scheduler's adaptive percentage, 42%). */
	CHECK(place(s, pod("a", "", "", ""), &r) != NULL);
	CHECK_INT(r.feasible, ==, 420);
	CHECK_INT(r.nodes, ==, 1000);
	/* The next search starts where that one stopped: in turn, every node is looked at. */
	char first[32];
	snprintf(first, sizeof(first), "%s", place(s, pod("b", "", "", ""), &r));
	CHECK_INT(r.feasible, ==, 420);
	CHECK(strcmp(first, "n0420") >= 0 && strcmp(first, "n0839") <= 0);
	/* A pod that fits only a few nodes finds them wherever the search starts. */
	const char *ssd = place(s, pod("c", "", "\"nodeSelector\":{\"disk\":\"ssd\"},", ""), &r);
	CHECK(ssd != NULL && strcmp(ssd, "n0010") < 0);
	CHECK_INT(r.feasible, ==, 10);
	/* One that fits nowhere is tried on every node, and its message counts them all. */
	CHECK(!place(s, pod("d", "", "", "\"cpu\":\"64\""), &r));
	CHECK_STR(r.message, "0/1000 nodes are available: 1000 Insufficient cpu.");
	scheduler_free(s);
	/* Under 100 nodes, every node every time. */
	s = scheduler_new();
	for (int i = 0; i < 99; i++) {
		snprintf(name, sizeof(name), "m%02d", i);
		node_plain(s, name, "", "");
	}
	CHECK(place(s, pod("e", "", "", ""), &r) != NULL);
	CHECK_INT(r.feasible, ==, 99);
	scheduler_free(s);
}
