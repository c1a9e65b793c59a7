#include "tests/unit/controllers_harness.h"

#define DS_JSON(extra_spec, extra_pod_spec)                                                                            \
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"agent\"},\"spec\":{"              \
	"\"selector\":{\"matchLabels\":{\"app\":\"agent\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":"          \
	"\"agent\"}},\"spec\":{" extra_pod_spec                                                                        \
	"\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1.36\"}]}}" extra_spec "}}"

static void add_node(struct harness *h, const char *name, const char *labels, const char *taints)
{
	char json[800];
	snprintf(json, sizeof(json),
	         "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\",\"labels\":{%s}},"
	         "\"spec\":{\"taints\":[%s]},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
	         name, labels, taints);
	harness_create(h, json);
}

static int64_t status_of(struct harness *h, const char *field)
{
	cJSON *ds = harness_get(h, "daemonsets.apps", "default", "agent");
	CHECK(ds != NULL);
	char path[64];
	snprintf(path, sizeof(path), "status.%s", field);
	int64_t v = controller_int_at(ds, path, 0);
	cJSON_Delete(ds);
	return v;
}

/* The node a daemon pod is meant for, from its required node affinity. */
static const char *target_of(const cJSON *pod)
{
	const cJSON *terms = cJSON_GetObjectItem(
	        cJSON_GetObjectItem(
	                cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "affinity"),
	                                    "nodeAffinity"),
	                "requiredDuringSchedulingIgnoredDuringExecution"),
	        "nodeSelectorTerms");
	const cJSON *field = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(terms, 0), "matchFields"), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(field, "key")), "metadata.name");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(field, "operator")), "In");
	return cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(field, "values"), 0));
}

/* A scheduler and kubelets: every live pod bound to its node, Running and Ready. */
static void run_daemons(struct harness *h)
{
	struct harness_list l;
	harness_list(h, "pods", "default", &l);
	for (int i = 0; i < l.count; i++) {
		const char *phase = object_string_at(l.items[i], "status.phase");
		if (object_string_at(l.items[i], "metadata.deletionTimestamp") ||
		    (phase && strcmp(phase, "Running") == 0))
			continue;
		harness_pod_state(h, "default", object_name(l.items[i]), target_of(l.items[i]), "Running", true);
	}
	harness_list_free(&l);
}

/* Live pods per node, written into counts (indexed like names); returns the total. */
static int pods_on(struct harness *h, const char *const *names, int *counts, int node_count)
{
	struct harness_list l;
	harness_list(h, "pods", "default", &l);
	int total = 0;
	for (int n = 0; n < node_count; n++)
		counts[n] = 0;
	for (int i = 0; i < l.count; i++) {
		if (object_string_at(l.items[i], "metadata.deletionTimestamp"))
			continue;
		total++;
		for (int n = 0; n < node_count; n++)
			counts[n] += strcmp(target_of(l.items[i]), names[n]) == 0;
	}
	harness_list_free(&l);
	return total;
}

static bool tolerates(const cJSON *pod, const char *key, const char *effect)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "tolerations"))
	{
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "key")), key) == 0 &&
		    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "effect")), effect) == 0 &&
		    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "operator")), "Exists") == 0)
			return true;
	}
	return false;
}

TEST(one_pod_per_matching_node_with_the_daemon_tolerations)
{
	struct harness h;
	harness_open(&h);
	add_node(&h, "pi-1", "\"role\":\"edge\"", "");
	add_node(&h, "pi-2", "\"role\":\"edge\"", "");
	add_node(&h, "x86", "\"role\":\"server\"", "");
	const char *uid = harness_create(&h, DS_JSON("", "\"nodeSelector\":{\"role\":\"edge\"},"));
	char ds_uid[37];
	snprintf(ds_uid, sizeof(ds_uid), "%s", uid);
	harness_settle(&h);
	static const char *const names[] = { "pi-1", "pi-2", "x86" };
	int counts[3];
	CHECK_INT(pods_on(&h, names, counts, 3), ==, 2);
	CHECK_INT(counts[0], ==, 1);
	CHECK_INT(counts[1], ==, 1);
	CHECK_INT(counts[2], ==, 0);
	struct harness_list l;
	harness_list(&h, "pods", "default", &l);
	for (int i = 0; i < l.count; i++) {
		CHECK(strncmp(object_name(l.items[i]), "agent-", 6) == 0);
		CHECK(controller_owned_by(l.items[i], ds_uid));
		CHECK(controller_label(l.items[i], "controller-revision-hash") != NULL);
		CHECK(object_string_at(l.items[i], "spec.nodeName") == NULL); /* the scheduler binds it */
		CHECK(tolerates(l.items[i], "node.kubernetes.io/not-ready", "NoExecute"));
		CHECK(tolerates(l.items[i], "node.kubernetes.io/unreachable", "NoExecute"));
		CHECK(tolerates(l.items[i], "node.kubernetes.io/unschedulable", "NoSchedule"));
		CHECK(tolerates(l.items[i], "node.kubernetes.io/memory-pressure", "NoSchedule"));
		CHECK(!tolerates(l.items[i], "node.kubernetes.io/network-unavailable",
		                 "NoSchedule")); /* no hostNetwork */
	}
	harness_list_free(&l);
	CHECK_INT(status_of(&h, "desiredNumberScheduled"), ==, 2);
	CHECK_INT(status_of(&h, "currentNumberScheduled"), ==, 2);
	CHECK_INT(status_of(&h, "numberReady"), ==, 0);
	CHECK_INT(status_of(&h, "numberUnavailable"), ==, 2);
	CHECK_INT(status_of(&h, "updatedNumberScheduled"), ==, 2);
	run_daemons(&h);
	harness_settle(&h);
	CHECK_INT(status_of(&h, "numberReady"), ==, 2);
	CHECK_INT(status_of(&h, "numberAvailable"), ==, 2);
	CHECK_INT(status_of(&h, "numberUnavailable"), ==, 0);
	CHECK_INT(status_of(&h, "observedGeneration"), ==, 1);
	CHECK_INT(harness_settle(&h), ==, 0); /* settled */
	harness_close(&h);
}

static void set_label(cJSON *node, void *data)
{
	controller_set_string(controller_child(object_metadata(node), "labels"), "role", data);
}

TEST(follows_nodes_joining_leaving_and_relabelled)
{
	struct harness h;
	harness_open(&h);
	add_node(&h, "pi-1", "\"role\":\"edge\"", "");
	harness_create(&h, DS_JSON("", "\"nodeSelector\":{\"role\":\"edge\"},"));
	harness_settle(&h);
	run_daemons(&h);
	harness_settle(&h);
	static const char *const names[] = { "pi-1", "pi-2", "pi-3" };
	int counts[3];
	/* Joining. */
	add_node(&h, "pi-2", "\"role\":\"edge\"", "");
	add_node(&h, "pi-3", "", "");
	harness_settle(&h);
	CHECK_INT(pods_on(&h, names, counts, 3), ==, 2);
	CHECK_INT(counts[1], ==, 1);
	CHECK_INT(status_of(&h, "desiredNumberScheduled"), ==, 2);
	/* Relabelled into and out of the selector. */
	harness_edit(&h, "nodes", "", "pi-3", set_label, "edge");
	harness_edit(&h, "nodes", "", "pi-1", set_label, "server");
	harness_settle(&h);
	CHECK_INT(pods_on(&h, names, counts, 3), ==, 2);
	CHECK_INT(counts[0], ==, 0);
	CHECK_INT(counts[2], ==, 1);
	CHECK(harness_events(&h, "default", "SuccessfulDelete") >= 1);
	/* Leaving: the Node deleted; its unbound daemon pod goes too. */
	CHECK_OK(controller_force_delete(h.c, "nodes", "", "pi-3", NULL, NULL));
	harness_settle(&h);
	CHECK_INT(pods_on(&h, names, counts, 3), ==, 1);
	CHECK_INT(counts[1], ==, 1);
	CHECK_INT(status_of(&h, "desiredNumberScheduled"), ==, 1);
	harness_close(&h);
}

static void add_taint(cJSON *node, void *data)
{
	cJSON *taints = cJSON_GetObjectItem(controller_child(node, "spec"), "taints");
	if (!taints)
		taints = cJSON_AddArrayToObject(cJSON_GetObjectItem(node, "spec"), "taints");
	cJSON_AddItemToArray(taints, cJSON_Parse(data));
}

static void cordon(cJSON *node, void *data)
{
	(void)data;
	cJSON_AddBoolToObject(controller_child(node, "spec"), "unschedulable", 1);
}

TEST(taints_and_tolerations_decide_where_daemons_run)
{
	struct harness h;
	harness_open(&h);
	add_node(&h, "plain", "", "");
	add_node(&h, "gpu", "", "{\"key\":\"gpu\",\"value\":\"yes\",\"effect\":\"NoSchedule\"}");
	add_node(&h, "cp", "", "{\"key\":\"node-role.kubernetes.io/control-plane\",\"effect\":\"NoSchedule\"}");
	harness_create(&h,
	               DS_JSON("", "\"tolerations\":[{\"key\":\"gpu\",\"operator\":\"Equal\",\"value\":\"yes\"}],"));
	harness_settle(&h);
	static const char *const names[] = { "plain", "gpu", "cp" };
	int counts[3];
	CHECK_INT(pods_on(&h, names, counts, 3), ==, 2);
	CHECK_INT(counts[2], ==, 0); /* untolerated NoSchedule */
	CHECK_INT(status_of(&h, "desiredNumberScheduled"), ==, 2);
	run_daemons(&h);
	harness_settle(&h);
	/* A cordoned node keeps its daemon; not-ready and unreachable are tolerated. */
	harness_edit(&h, "nodes", "", "plain", cordon, NULL);
	harness_edit(&h, "nodes", "", "plain", add_taint,
	             "{\"key\":\"node.kubernetes.io/unreachable\",\"effect\":\"NoExecute\"}");
	harness_settle(&h);
	CHECK_INT(pods_on(&h, names, counts, 3), ==, 2);
	CHECK_INT(counts[0], ==, 1);
	/* A new NoSchedule taint keeps the pod there (misscheduled); NoExecute takes it away. */
	harness_edit(&h, "nodes", "", "gpu", add_taint, "{\"key\":\"dedicated\",\"effect\":\"NoSchedule\"}");
	harness_settle(&h);
	CHECK_INT(pods_on(&h, names, counts, 3), ==, 2);
	CHECK_INT(status_of(&h, "numberMisscheduled"), ==, 1);
	CHECK_INT(status_of(&h, "desiredNumberScheduled"), ==, 1);
	harness_edit(&h, "nodes", "", "gpu", add_taint, "{\"key\":\"broken\",\"effect\":\"NoExecute\"}");
	harness_settle(&h);
	CHECK_INT(pods_on(&h, names, counts, 3), ==, 1);
	CHECK_INT(counts[1], ==, 0);
	harness_close(&h);
}

static void set_image(cJSON *ds, void *data)
{
	cJSON *container = cJSON_GetArrayItem(
	        cJSON_GetObjectItem(
	                cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ds, "spec"), "template"), "spec"),
	                "containers"),
	        0);
	controller_set_string(container, "image", data);
}

static int count_image(struct harness *h, const char *image, bool available_only)
{
	struct harness_list l;
	harness_list(h, "pods", "default", &l);
	int n = 0;
	for (int i = 0; i < l.count; i++) {
		const cJSON *c0 = cJSON_GetArrayItem(
		        cJSON_GetObjectItem(cJSON_GetObjectItem(l.items[i], "spec"), "containers"), 0);
		bool ready = controller_condition(cJSON_GetObjectItem(l.items[i], "status"), "Ready") &&
		             strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(
		                            controller_condition(cJSON_GetObjectItem(l.items[i], "status"), "Ready"),
		                            "status")),
		                    "True") == 0;
		if (object_string_at(l.items[i], "metadata.deletionTimestamp") || (available_only && !ready))
			continue;
		n += strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "image")), image) == 0;
	}
	harness_list_free(&l);
	return n;
}

TEST(rolling_update_keeps_max_unavailable)
{
	struct harness h;
	harness_open(&h);
	static const char *const names[] = { "n1", "n2", "n3", "n4" };
	for (int i = 0; i < 4; i++)
		add_node(&h, names[i], "", "");
	harness_create(
	        &h, DS_JSON(",\"updateStrategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxUnavailable\":1}}",
	                    ""));
	harness_settle(&h);
	run_daemons(&h);
	harness_settle(&h);
	CHECK_INT(status_of(&h, "numberAvailable"), ==, 4);
	harness_edit(&h, "daemonsets.apps", "default", "agent", set_image, "busybox:1.37");
	int rounds = 0;
	while (count_image(&h, "busybox:1.37", true) < 4) {
		CHECK(++rounds <= 8);
		harness_settle(&h);
		/* Never fewer than 4 - 1 available, whatever the mix of images. */
		int available = count_image(&h, "busybox:1.36", true) + count_image(&h, "busybox:1.37", true);
		CHECK_INT(available, >=, 3);
		harness_finish_deletions(&h, "default");
		harness_settle(&h);
		run_daemons(&h);
		harness_settle(&h);
	}
	CHECK_INT(rounds, >=, 4); /* one node at a time */
	CHECK_INT(count_image(&h, "busybox:1.36", false), ==, 0);
	CHECK_INT(status_of(&h, "updatedNumberScheduled"), ==, 4);
	CHECK_INT(status_of(&h, "numberAvailable"), ==, 4);
	harness_close(&h);
}

TEST(rolling_update_with_max_surge_starts_the_new_pod_first)
{
	struct harness h;
	harness_open(&h);
	add_node(&h, "n1", "", "");
	add_node(&h, "n2", "", "");
	harness_create(&h,
	               DS_JSON(",\"updateStrategy\":{\"rollingUpdate\":{\"maxSurge\":1,\"maxUnavailable\":0}}", ""));
	harness_settle(&h);
	run_daemons(&h);
	harness_settle(&h);
	harness_edit(&h, "daemonsets.apps", "default", "agent", set_image, "busybox:1.37");
	harness_settle(&h);
	/* One node has both pods; the old one stays until the new one is ready. */
	CHECK_INT(count_image(&h, "busybox:1.36", false), ==, 2);
	CHECK_INT(count_image(&h, "busybox:1.37", false), ==, 1);
	run_daemons(&h);
	harness_settle(&h);
	CHECK_INT(count_image(&h, "busybox:1.36", false), ==, 1);
	for (int i = 0; i < 4; i++) {
		harness_finish_deletions(&h, "default");
		run_daemons(&h);
		harness_settle(&h);
	}
	CHECK_INT(count_image(&h, "busybox:1.36", false), ==, 0);
	CHECK_INT(count_image(&h, "busybox:1.37", true), ==, 2);
	harness_close(&h);
}

TEST(on_delete_waits_and_failed_pods_are_replaced)
{
	struct harness h;
	harness_open(&h);
	add_node(&h, "n1", "", "");
	harness_create(&h, DS_JSON(",\"updateStrategy\":{\"type\":\"OnDelete\"}", ""));
	harness_settle(&h);
	run_daemons(&h);
	harness_settle(&h);
	harness_edit(&h, "daemonsets.apps", "default", "agent", set_image, "busybox:1.37");
	harness_settle(&h);
	CHECK_INT(count_image(&h, "busybox:1.36", true), ==, 1); /* untouched */
	CHECK_INT(status_of(&h, "updatedNumberScheduled"), ==, 0);
	struct harness_list l;
	harness_list(&h, "pods", "default", &l);
	CHECK_INT(l.count, ==, 1);
	harness_pod_state(&h, "default", object_name(l.items[0]), NULL, "Failed", false);
	harness_list_free(&l);
	harness_settle(&h);
	CHECK_INT(harness_events(&h, "default", "FailedDaemonPod"), ==, 1);
	harness_finish_deletions(&h, "default");
	harness_settle(&h);
	CHECK_INT(count_image(&h, "busybox:1.37", false), ==, 1); /* the replacement has the new template */
	CHECK_INT(harness_live_pods(&h, "default"), ==, 1);
	harness_close(&h);
}

TEST(bad_daemonsets_are_refused_with_the_field_named)
{
	const struct kind *kind = kind_lookup("apps/v1", "DaemonSet");
	CHECK(kind != NULL);
	static const struct {
		const char *json, *field;
	} cases[] = {
		{ "{\"apiVersion\":\"apps/"
		  "v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"d\"},\"spec\":{\"selector\":"
		  "{\"matchLabels\":{\"app\":\"a\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"b\"}},\"spec\":{"
		  "\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}}}",
		  "spec.template.metadata.labels" },
		{ "{\"apiVersion\":\"apps/"
		  "v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"d\"},\"spec\":{\"selector\":"
		  "{\"matchLabels\":{\"app\":\"a\"}},\"updateStrategy\":{\"rollingUpdate\":{\"maxUnavailable\":0,"
		  "\"maxSurge\":0}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"a\"}},\"spec\":{\"containers\":[{"
		  "\"name\":\"c\",\"image\":\"i\"}]}}}}",
		  "spec.updateStrategy.rollingUpdate.maxUnavailable" },
		{ "{\"apiVersion\":\"apps/"
		  "v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"d\"},\"spec\":{\"selector\":"
		  "{\"matchLabels\":{\"app\":\"a\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"a\"}},\"spec\":{"
		  "\"tolerations\":[{\"key\":\"k\",\"operator\":\"Matches\"}],\"containers\":[{\"name\":\"c\","
		  "\"image\":"
		  "\"i\"}]}}}}",
		  "spec.template.spec.tolerations[0].operator" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cJSON *ds = cJSON_Parse(cases[i].json);
		object_apply_defaults(kind, ds);
		struct error err = { 0 };
		CHECK_INT(object_validate(kind, ds, &err), ==, -EINVAL);
		CHECK_STR(err.field, cases[i].field);
		cJSON_Delete(ds);
	}
}
