/* core/metrics: reports from the agents, kept in memory and served in the metrics API's
 * shape; authorization of reports and reads; staleness; quantities. */
#include <errno.h>
#include <stdlib.h>

#include "core/metrics.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

#define REPORT(pods)                                                                                                   \
	"{\"timestamp\":\"2026-12-04T16:00:00Z\",\"window\":10000,\"usage\":{\"cpu\":250,\"memory\":3145728},"         \
	"\"pods\":[" pods "]}"
#define POD(ns, name, cpu, memory)                                                                                     \
	"{\"namespace\":\"" ns "\",\"name\":\"" name "\",\"containers\":[{\"name\":\"main\",\"cpu\":" #cpu             \
	",\"memory\":" #memory "},{\"name\":\"side\",\"cpu\":1,\"memory\":1024}]}"

static const int64_t now = 1796400000000; /* 2026-12-04T16:00:00Z, in ms */

static int put(struct metrics *m, struct store *store, const char *identity, const char *node, const char *body,
               char **ret_body)
{
	cleanup_free char *path = xasprintf("/apis/metrics.k8s.io/v1beta1/nodes/%s", node);
	return metrics_serve(m, store, "PUT", identity, path, body, strlen(body), now, ret_body);
}

static char *get(struct metrics *m, const char *identity, const char *path, int64_t at, int *ret_code)
{
	char *body = NULL;
	*ret_code = metrics_serve(m, NULL, "GET", identity, path, NULL, 0, at, &body);
	return body;
}

TEST(quantities_as_kubernetes_writes_them)
{
	char buf[32];
	metrics_format_cpu(12, buf, sizeof(buf));
	CHECK_STR(buf, "12m");
	metrics_format_cpu(0, buf, sizeof(buf));
	CHECK_STR(buf, "0m");
	metrics_format_memory(3 * 1024 * 1024, buf, sizeof(buf));
	CHECK_STR(buf, "3Mi");
	metrics_format_memory(1236 * 1024, buf, sizeof(buf));
	CHECK_STR(buf, "1236Ki");
	metrics_format_memory(1000, buf, sizeof(buf));
	CHECK_STR(buf, "1000");
	metrics_format_memory(0, buf, sizeof(buf));
	CHECK_STR(buf, "0");
	metrics_format_memory((uint64_t)2 << 30, buf, sizeof(buf));
	CHECK_STR(buf, "2Gi");
}

TEST(a_report_is_served_as_node_and_pod_metrics)
{
	struct metrics *m = metrics_new();
	cleanup_free char *answer = NULL;
	CHECK_INT(put(m, NULL, "node:pi-1", "pi-1", REPORT(POD("default", "web", 120, 3145728)), &answer), ==, 204);
	int code;
	cleanup_free char *node = get(m, "admin", "/apis/metrics.k8s.io/v1beta1/nodes/pi-1", now, &code);
	CHECK_INT(code, ==, 205);
	CHECK_CONTAINS(node, "\"kind\":\"NodeMetrics\",\"apiVersion\":\"metrics.k8s.io/v1beta1\","
	                     "\"metadata\":{\"name\":\"pi-1\"");
	CHECK_CONTAINS(node, "\"timestamp\":\"2026-12-04T16:00:00Z\",\"window\":\"10s\","
	                     "\"usage\":{\"cpu\":\"250m\",\"memory\":\"3Mi\"}");
	cleanup_free char *pod =
	        get(m, "admin", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web", now, &code);
	CHECK_INT(code, ==, 205);
	CHECK_CONTAINS(pod, "\"kind\":\"PodMetrics\"");
	CHECK_CONTAINS(pod, "\"namespace\":\"default\"");
	CHECK_CONTAINS(pod, "\"containers\":[{\"name\":\"main\",\"usage\":{\"cpu\":\"120m\",\"memory\":\"3Mi\"}},"
	                    "{\"name\":\"side\",\"usage\":{\"cpu\":\"1m\",\"memory\":\"1Ki\"}}]");
	cleanup_free char *list = get(m, "", "/apis/metrics.k8s.io/v1beta1/pods", now, &code);
	CHECK_INT(code, ==, 205);
	CHECK_CONTAINS(list, "{\"kind\":\"PodMetricsList\",\"apiVersion\":\"metrics.k8s.io/v1beta1\",\"metadata\":{},"
	                     "\"items\":[{\"kind\":\"PodMetrics\"");
	cleanup_free char *nodes = get(m, "admin", "apis/metrics.k8s.io/v1beta1/nodes", now, &code);
	CHECK_CONTAINS(nodes, "\"kind\":\"NodeMetricsList\"");
	struct metrics_usage usage;
	int64_t stamp = 0;
	CHECK_OK(metrics_pod_usage(m, "default", "web", now, &usage, &stamp));
	CHECK_INT(usage.cpu_millicores, ==, 121);
	CHECK_INT(usage.memory_bytes, ==, 3145728 + 1024);
	CHECK_INT(stamp, ==, 1796400000000);
	CHECK_OK(metrics_node_usage(m, "pi-1", now, &usage));
	CHECK_INT(usage.cpu_millicores, ==, 250);
	metrics_free(m);
}

TEST(a_new_report_replaces_the_last_one)
{
	struct metrics *m = metrics_new();
	cleanup_free char *a = NULL, *b = NULL;
	CHECK_INT(put(m, NULL, "node:pi-1", "pi-1", REPORT(POD("default", "web", 120, 1024)), &a), ==, 204);
	CHECK_INT(put(m, NULL, "node:pi-1", "pi-1", REPORT(POD("default", "db", 5, 1024)), &b), ==, 204);
	struct metrics_usage usage;
	CHECK_INT(metrics_pod_usage(m, "default", "web", now, &usage, NULL), ==, -ENOENT);
	CHECK_OK(metrics_pod_usage(m, "default", "db", now, &usage, NULL));
	metrics_free(m);
}

TEST(namespaces_filter_pod_lists)
{
	struct metrics *m = metrics_new();
	cleanup_free char *a = NULL;
	CHECK_INT(put(m, NULL, "admin", "pi-1", REPORT(POD("default", "web", 1, 1024) "," POD("shop", "cart", 2, 1024)),
	              &a),
	          ==, 204);
	int code;
	cleanup_free char *shop = get(m, "admin", "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods", now, &code);
	CHECK_CONTAINS(shop, "\"name\":\"cart\"");
	CHECK(strstr(shop, "\"name\":\"web\"") == NULL);
	cleanup_free char *missing =
	        get(m, "admin", "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/web", now, &code);
	CHECK_INT(code, ==, 404);
	CHECK_CONTAINS(missing, "podmetrics.metrics.k8s.io \\\"shop/web\\\" not found");
	metrics_free(m);
}

TEST(old_reports_are_not_served)
{
	struct metrics *m = metrics_new();
	cleanup_free char *a = NULL;
	CHECK_INT(put(m, NULL, "node:pi-1", "pi-1", REPORT(POD("default", "web", 1, 1024)), &a), ==, 204);
	int code;
	/* 3 windows of 10 s are 30 s: the minimum applies */
	cleanup_free char *fresh = get(m, "admin", "/apis/metrics.k8s.io/v1beta1/nodes/pi-1", now + 29000, &code);
	CHECK_INT(code, ==, 205);
	CHECK(fresh != NULL && strstr(fresh, "\"pi-1\"") != NULL);
	cleanup_free char *stale = get(m, "admin", "/apis/metrics.k8s.io/v1beta1/nodes/pi-1", now + 31000, &code);
	CHECK_INT(code, ==, 404);
	(void)stale; /* freed by its cleanup */
	struct metrics_usage usage;
	CHECK_INT(metrics_pod_usage(m, "default", "web", now + 31000, &usage, NULL), ==, -ENOENT);
	cleanup_free char *list = get(m, "admin", "/apis/metrics.k8s.io/v1beta1/pods", now + 31000, &code);
	CHECK_CONTAINS(list, "\"items\":[]");
	metrics_free(m);
}

TEST(nodes_report_only_for_themselves_and_do_not_read)
{
	struct metrics *m = metrics_new();
	cleanup_free char *a = NULL, *b = NULL;
	CHECK_INT(put(m, NULL, "node:pi-2", "pi-1", REPORT(""), &a), ==, 403);
	CHECK_CONTAINS(a, "node:pi-2 may not report metrics of node pi-1: a node reports only its own");
	int code;
	cleanup_free char *read = get(m, "node:pi-1", "/apis/metrics.k8s.io/v1beta1/nodes", now, &code);
	CHECK_INT(code, ==, 403);
	CHECK_CONTAINS(read, "only admins may");
	CHECK_INT(put(m, NULL, "stranger", "pi-1", REPORT(""), &b), ==, 403);
	metrics_free(m);
}

static struct store *open_store_with_pod(const char *name, const char *node)
{
	cleanup_free char *path = xasprintf("%s/store.db", unit_temp_dir());
	static const uint8_t key[STORE_SECRET_KEY_SIZE] = { 7 };
	struct store_options options = { .path = path, .secret_key = key };
	struct store *store = NULL;
	CHECK_OK(store_open(&options, &store, NULL));
	cleanup_free char *text = xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
	                                    "\"namespace\":\"default\",\"uid\":\"u-1\"},\"spec\":{\"nodeName\":\"%s\","
	                                    "\"containers\":[{\"name\":\"main\",\"image\":\"busybox\"}]}}",
	                                    name, node);
	cJSON *pod = cJSON_Parse(text);
	struct store_request request = { STORE_CREATE, "pods", "default", name, pod, 0 };
	CHECK_OK(store_apply(store, &request, NULL, NULL, NULL));
	CHECK_OK(store_commit(store, NULL));
	cJSON_Delete(pod);
	return store;
}

TEST(a_node_reports_only_the_pods_bound_to_it)
{
	struct store *store = open_store_with_pod("web", "pi-1");
	struct metrics *m = metrics_new();
	cleanup_free char *a = NULL, *b = NULL;
	CHECK_INT(put(m, store, "node:pi-2", "pi-2", REPORT(POD("default", "web", 1, 1024)), &a), ==, 403);
	CHECK_CONTAINS(a, "node pi-2 may not report metrics of pod default/web: it is not bound to it");
	struct metrics_usage usage;
	CHECK_INT(metrics_pod_usage(m, "default", "web", now, &usage, NULL), ==, -ENOENT);
	/* Its own pod counts; a pod the API no longer has is dropped quietly. */
	CHECK_INT(put(m, store, "node:pi-1", "pi-1",
	              REPORT(POD("default", "web", 7, 1024) "," POD("default", "gone", 1, 1)), &b),
	          ==, 204);
	CHECK_OK(metrics_pod_usage(m, "default", "web", now, &usage, NULL));
	CHECK_INT(usage.cpu_millicores, ==, 8);
	CHECK_INT(metrics_pod_usage(m, "default", "gone", now, &usage, NULL), ==, -ENOENT);
	metrics_free(m);
	store_close(store);
}

TEST(bad_reports_are_refused_with_the_field_named)
{
	struct metrics *m = metrics_new();
	static const struct {
		const char *body, *message;
	} cases[] = {
		{ "[]", "the top level must be an object" },
		{ "{\"window\":10000,\"timestamp\":\"2026-12-04T16:00:00Z\"}", "usage.cpu: a non-negative number" },
		{ "{\"window\":0,\"timestamp\":\"2026-12-04T16:00:00Z\",\"usage\":{\"cpu\":1,\"memory\":1}}",
		  "window: 0 ms is not between 1 ms and an hour" },
		{ "{\"window\":10,\"timestamp\":\"yesterday\",\"usage\":{\"cpu\":1,\"memory\":1}}",
		  "timestamp: an RFC 3339 time is required" },
		{ REPORT("{\"namespace\":\"default\",\"containers\":[]}"), "pods[0].name: a name of 1 to 253" },
		{ REPORT("{\"namespace\":\"default\",\"name\":\"w\",\"containers\":[{\"name\":\"c\",\"cpu\":-1}]}"),
		  "pods[0].containers[0].cpu: a non-negative number" },
		{ "{not json", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *answer = NULL;
		CHECK_INT(put(m, NULL, "node:pi-1", "pi-1", cases[i].body, &answer), ==, 400);
		CHECK_CONTAINS(answer, cases[i].message);
	}
	int code;
	cleanup_free char *none = get(m, "admin", "/apis/metrics.k8s.io/v1beta1/nodes/pi-1", now, &code);
	CHECK_INT(code, ==, 404); /* nothing half-stored */
	(void)none;
	metrics_free(m);
}

TEST(paths_and_methods)
{
	struct metrics *m = metrics_new();
	CHECK(metrics_path("/apis/metrics.k8s.io/v1beta1/nodes"));
	CHECK(metrics_path("apis/metrics.k8s.io/v1beta1"));
	CHECK(!metrics_path("/apis/metrics.k8s.io/v1beta10/nodes"));
	CHECK(!metrics_path("/api/v1/nodes"));
	int code;
	cleanup_free char *a = get(m, "admin", "/apis/metrics.k8s.io/v1beta1/deployments", now, &code);
	CHECK_INT(code, ==, 404);
	CHECK_CONTAINS(a, "served: nodes[/NAME], pods, namespaces/NS/pods[/NAME]");
	cleanup_free char *b = get(m, "admin", "/apis/metrics.k8s.io/v1beta1/pods/web", now, &code);
	CHECK_INT(code, ==, 404);
	CHECK_CONTAINS(b, "pods are namespaced");
	cleanup_free char *c = NULL;
	CHECK_INT(metrics_serve(m, NULL, "DELETE", "admin", "/apis/metrics.k8s.io/v1beta1/nodes/x", NULL, 0, now, &c),
	          ==, 405);
	metrics_free(m);
}
