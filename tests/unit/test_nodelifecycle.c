#include "tests/unit/controllers_harness.h"

static void add_node(struct harness *h, const char *name)
{
	char json[400];
	snprintf(json, sizeof(json),
	         "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"},\"status\":{\"conditions\":["
	         "{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\"},"
	         "{\"type\":\"MemoryPressure\",\"status\":\"False\"}]}}",
	         name);
	harness_create(h, json);
}

static void add_pod(struct harness *h, const char *name, const char *node, const char *tolerations)
{
	char json[800];
	snprintf(json, sizeof(json),
	         "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"},\"spec\":{\"nodeName\":\"%s\","
	         "\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]%s%s}}",
	         name, node, tolerations ? ",\"tolerations\":" : "", tolerations ? tolerations : "");
	harness_create(h, json);
}

static void beat(struct harness *h, const char *const *names, int count)
{
	for (int i = 0; i < count; i++)
		controllers_node_heartbeat(h->c, names[i]);
}

static bool pod_evicted(struct harness *h, const char *name)
{
	cJSON *pod = harness_get(h, "pods", "default", name);
	bool evicted = pod && object_string_at(pod, "metadata.deletionTimestamp");
	cJSON_Delete(pod);
	return evicted;
}

static const char *ready_of(struct harness *h, const char *node, char *buf, size_t size)
{
	cJSON *n = harness_get(h, "nodes", "", node);
	cJSON *ready = controller_condition(cJSON_GetObjectItem(n, "status"), "Ready");
	snprintf(buf, size, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(ready, "status")));
	cJSON_Delete(n);
	return buf;
}

static bool has_taint(struct harness *h, const char *node, const char *key, const char *effect)
{
	cJSON *n = harness_get(h, "nodes", "", node);
	bool found = false;
	cJSON *taint;
	cJSON_ArrayForEach(taint, cJSON_GetObjectItem(cJSON_GetObjectItem(n, "spec"), "taints"))
	{
		found |= strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(taint, "key")), key) == 0 &&
		         strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(taint, "effect")), effect) == 0;
	}
	cJSON_Delete(n);
	return found;
}

TEST(nodelifecycle_a_quiet_node_goes_unknown_is_tainted_and_its_pods_evicted_by_toleration)
{
	struct harness h;
	harness_open(&h);
	static const char *const alive[] = { "pi-1", "pi-2" };
	add_node(&h, "pi-1");
	add_node(&h, "pi-2");
	add_node(&h, "dead");
	add_pod(&h, "plain", "dead", NULL);
	add_pod(&h, "patient", "dead",
	        "[{\"key\":\"node.kubernetes.io/unreachable\",\"operator\":\"Exists\",\"effect\":\"NoExecute\","
	        "\"tolerationSeconds\":60}]");
	add_pod(&h, "stubborn", "dead", "[{\"operator\":\"Exists\"}]");
	harness_settle(&h);
	char buf[16];
	/* 10 s of silence: still within the 12 s grace. */
	controllers_advance_clock(h.c, 10000);
	beat(&h, alive, 2);
	CHECK_INT(harness_settle(&h), ==, 0);
	CHECK_STR(ready_of(&h, "dead", buf, sizeof(buf)), "True");
	controllers_advance_clock(h.c, 3000);
	beat(&h, alive, 2);
	harness_settle(&h);
	CHECK_STR(ready_of(&h, "dead", buf, sizeof(buf)), "Unknown");
	CHECK_STR(ready_of(&h, "pi-1", buf, sizeof(buf)), "True");
	CHECK(has_taint(&h, "dead", "node.kubernetes.io/unreachable", "NoSchedule"));
	CHECK(has_taint(&h, "dead", "node.kubernetes.io/unreachable", "NoExecute"));
	cJSON *node = harness_get(&h, "nodes", "", "dead");
	cJSON *memory = controller_condition(cJSON_GetObjectItem(node, "status"), "MemoryPressure");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(memory, "status")), "Unknown");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(memory, "message")), "Kubelet stopped posting node status.");
	cJSON_Delete(node);
	CHECK(!pod_evicted(&h, "plain"));
	/* The default toleration (5 s) runs out for the pod without one. */
	controllers_advance_clock(h.c, 6000);
	beat(&h, alive, 2);
	harness_settle(&h);
	CHECK(pod_evicted(&h, "plain"));
	CHECK(!pod_evicted(&h, "patient"));
	CHECK_INT(harness_events(&h, "default", "TaintManagerEviction"), ==, 1);
	/* Its own 60 s for the one with tolerationSeconds; never for the one tolerating all. */
	for (int i = 0; i < 7; i++) {
		controllers_advance_clock(h.c, 9000);
		beat(&h, alive, 2);
		harness_settle(&h);
	}
	CHECK(pod_evicted(&h, "patient"));
	CHECK(!pod_evicted(&h, "stubborn"));
	harness_close(&h);
}

static void ready_again(cJSON *node, void *data)
{
	(void)data;
	cJSON *ready = controller_condition(cJSON_GetObjectItem(node, "status"), "Ready");
	controller_set_string(ready, "status", "True");
	controller_set_string(ready, "reason", "KubeletReady");
}

TEST(nodelifecycle_a_node_that_comes_back_loses_its_taints)
{
	struct harness h;
	harness_open(&h);
	static const char *const alive[] = { "pi-1", "pi-2" };
	add_node(&h, "pi-1");
	add_node(&h, "pi-2");
	add_node(&h, "pi-3");
	harness_settle(&h);
	controllers_advance_clock(h.c, 13000);
	beat(&h, alive, 2);
	harness_settle(&h);
	CHECK(has_taint(&h, "pi-3", "node.kubernetes.io/unreachable", "NoExecute"));
	/* Its kubelet posts a Ready status again (through the API: a heartbeat, then the write). */
	controllers_node_heartbeat(h.c, "pi-3");
	harness_edit(&h, "nodes", "", "pi-3", ready_again, NULL);
	harness_settle(&h);
	CHECK(!has_taint(&h, "pi-3", "node.kubernetes.io/unreachable", "NoExecute"));
	CHECK(!has_taint(&h, "pi-3", "node.kubernetes.io/unreachable", "NoSchedule"));
	harness_close(&h);
}

TEST(nodelifecycle_heartbeating_nodes_cost_no_writes)
{
	struct harness h;
	harness_open(&h);
	static const char *const names[] = { "pi-1", "pi-2", "pi-3" };
	for (int i = 0; i < 3; i++)
		add_node(&h, names[i]);
	harness_settle(&h);
	int changes = h.changes;
	for (int i = 0; i < 20; i++) {
		controllers_advance_clock(h.c, 4000);
		beat(&h, names, 3);
		CHECK_INT(harness_settle(&h), ==, 0);
	}
	CHECK_INT(h.changes, ==, changes);
	harness_close(&h);
}

TEST(nodelifecycle_no_nodes_no_timer)
{
	struct harness h;
	harness_open(&h);
	harness_settle(&h);
	CHECK_INT(h.c->delayed_count, ==, 0);
	add_node(&h, "pi-1");
	harness_settle(&h);
	CHECK_INT(h.c->delayed_count, ==, 1); /* the grace period of pi-1 */
	CHECK_INT(controller_force_delete(h.c, "nodes", "", "pi-1", NULL, NULL), ==, 1);
	harness_settle(&h);
	controllers_advance_clock(h.c, 20000);
	harness_settle(&h);
	CHECK_INT(h.c->delayed_count, ==, 0);
	harness_close(&h);
}

TEST(nodelifecycle_most_nodes_unreachable_evicts_nothing)
{
	struct harness h;
	harness_open(&h);
	static const char *const alive[] = { "pi-1" };
	add_node(&h, "pi-1");
	add_node(&h, "pi-2");
	add_node(&h, "pi-3");
	add_pod(&h, "a", "pi-2", NULL);
	add_pod(&h, "b", "pi-3", NULL);
	harness_settle(&h);
	for (int i = 0; i < 5; i++) {
		controllers_advance_clock(h.c, 6000);
		beat(&h, alive, 1);
		harness_settle(&h);
	}
	char buf[16];
	CHECK_STR(ready_of(&h, "pi-2", buf, sizeof(buf)), "Unknown");
	CHECK(has_taint(&h, "pi-2", "node.kubernetes.io/unreachable", "NoSchedule"));
	CHECK(!has_taint(&h, "pi-2", "node.kubernetes.io/unreachable", "NoExecute"));
	CHECK(!pod_evicted(&h, "a"));
	CHECK(!pod_evicted(&h, "b"));
	CHECK(h.c->disrupted);
	harness_close(&h);
}

TEST(nodelifecycle_noexecute_taints_are_rate_limited)
{
	struct harness h;
	harness_open(&h);
	static const char *names[10] = { "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9" };
	for (int i = 0; i < 10; i++)
		add_node(&h, names[i]);
	harness_settle(&h);
	/* Three die at once; the other seven keep beating. */
	controllers_advance_clock(h.c, 13000);
	beat(&h, names + 3, 7);
	harness_settle(&h);
	int tainted = 0;
	for (int i = 0; i < 3; i++)
		tainted += has_taint(&h, names[i], "node.kubernetes.io/unreachable", "NoExecute");
	CHECK_INT(tainted, ==, 1); /* one token */
	for (int i = 0; i < 3; i++)
		CHECK(has_taint(&h, names[i], "node.kubernetes.io/unreachable", "NoSchedule"));
	controllers_advance_clock(h.c, 1100);
	beat(&h, names + 3, 7);
	harness_settle(&h);
	tainted = 0;
	for (int i = 0; i < 3; i++)
		tainted += has_taint(&h, names[i], "node.kubernetes.io/unreachable", "NoExecute");
	CHECK_INT(tainted, ==, 2);
	harness_close(&h);
}
