#include "tests/unit/controllers_harness.h"

#define RS_JSON(name, replicas, extra)                                                                                 \
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"" name "\"},\"spec\":{"          \
	"\"replicas\":" #replicas ",\"selector\":{\"matchLabels\":{\"app\":\"" name "\"}},\"template\":{\"metadata\":" \
	"{\"labels\":{\"app\":\"" name "\",\"tier\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"    \
	"\"nginx:1.25\"}]}}" extra "}}"

static int64_t status_of(struct harness *h, const char *name, const char *field)
{
	cJSON *rs = harness_get(h, "replicasets.apps", "default", name);
	CHECK(rs != NULL);
	char path[64];
	snprintf(path, sizeof(path), "status.%s", field);
	int64_t v = controller_int_at(rs, path, 0);
	cJSON_Delete(rs);
	return v;
}

TEST(replicaset_creates_its_pods_from_the_template_with_an_owner)
{
	struct harness h;
	harness_open(&h);
	const char *uid = harness_create(&h, RS_JSON("web", 3, ""));
	char rs_uid[37];
	snprintf(rs_uid, sizeof(rs_uid), "%s", uid);
	harness_settle(&h);
	struct harness_list pods;
	harness_list(&h, "pods", "default", &pods);
	CHECK_INT(pods.count, ==, 3);
	for (int i = 0; i < pods.count; i++) {
		const char *name = object_name(pods.items[i]);
		CHECK(strncmp(name, "web-", 4) == 0);
		CHECK_INT(strlen(name), ==, 9); /* web- and five characters */
		CHECK_STR(controller_label(pods.items[i], "tier"), "web");
		const cJSON *ref = controller_ref_of(pods.items[i]);
		CHECK(ref != NULL);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ref, "kind")), "ReplicaSet");
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ref, "uid")), rs_uid);
		CHECK(cJSON_IsTrue(cJSON_GetObjectItem(ref, "blockOwnerDeletion")));
		CHECK_STR(object_string_at(pods.items[i], "spec.restartPolicy"), "Always"); /* defaults applied */
		CHECK(object_string_at(pods.items[i], "metadata.uid") != NULL);
	}
	harness_list_free(&pods);
	CHECK_INT(status_of(&h, "web", "replicas"), ==, 3);
	CHECK_INT(status_of(&h, "web", "readyReplicas"), ==, 0);
	CHECK_INT(status_of(&h, "web", "observedGeneration"), ==, 1);
	CHECK_INT(harness_events(&h, "default", "SuccessfulCreate"), ==, 1);
	/* Settled: another run writes nothing. */
	CHECK_INT(harness_settle(&h), ==, 0);
	harness_close(&h);
}

TEST(replicaset_status_counts_ready_and_available_pods_after_min_ready_seconds)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, RS_JSON("web", 2, ",\"minReadySeconds\":10"));
	harness_settle(&h);
	static const char *const nodes[] = { "pi-1", "pi-2" };
	harness_run_all(&h, "default", nodes, 2);
	harness_settle(&h);
	CHECK_INT(status_of(&h, "web", "readyReplicas"), ==, 2);
	CHECK_INT(status_of(&h, "web", "availableReplicas"), ==, 0);
	controllers_advance_clock(h.c, 12000);
	CHECK_INT(harness_settle(&h), ==, 1); /* the status, once */
	CHECK_INT(status_of(&h, "web", "availableReplicas"), ==, 2);
	CHECK_INT(status_of(&h, "web", "fullyLabeledReplicas"), ==, 2);
	harness_close(&h);
}

static void set_replicas(cJSON *rs, void *data)
{
	controller_set_number(controller_child(rs, "spec"), "replicas", *(int *)data);
}

TEST(replicaset_scales_down_the_least_useful_pods_first)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, RS_JSON("web", 4, ""));
	harness_settle(&h);
	struct harness_list pods;
	harness_list(&h, "pods", "default", &pods);
	/* Two ready and running, one pending on a node, one not scheduled at all. */
	harness_pod_state(&h, "default", object_name(pods.items[0]), "pi-1", "Running", true);
	harness_pod_state(&h, "default", object_name(pods.items[1]), "pi-2", "Running", true);
	harness_pod_state(&h, "default", object_name(pods.items[2]), "pi-1", "Pending", false);
	char kept0[64], kept1[64];
	snprintf(kept0, sizeof(kept0), "%s", object_name(pods.items[0]));
	snprintf(kept1, sizeof(kept1), "%s", object_name(pods.items[1]));
	harness_list_free(&pods);
	harness_settle(&h);
	int two = 2;
	harness_edit(&h, "replicasets.apps", "default", "web", set_replicas, &two);
	harness_settle(&h);
	CHECK_INT(harness_live_pods(&h, "default"), ==, 2);
	cJSON *a = harness_get(&h, "pods", "default", kept0), *b = harness_get(&h, "pods", "default", kept1);
	CHECK(a && !object_string_at(a, "metadata.deletionTimestamp"));
	CHECK(b && !object_string_at(b, "metadata.deletionTimestamp"));
	cJSON_Delete(a);
	cJSON_Delete(b);
	CHECK_INT(status_of(&h, "web", "replicas"), ==, 2);
	CHECK_INT(status_of(&h, "web", "observedGeneration"), ==, 2);
	harness_close(&h);
}

TEST(replicaset_replaces_pods_being_deleted_or_failed)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, RS_JSON("web", 2, ""));
	harness_settle(&h);
	static const char *const nodes[] = { "pi-1" };
	harness_run_all(&h, "default", nodes, 1);
	harness_settle(&h);
	struct harness_list pods;
	harness_list(&h, "pods", "default", &pods);
	/* One is deleted (gracefully: it is bound), the other fails. */
	CHECK_INT(
	        controller_delete(h.c, "pods", "default", object_name(pods.items[0]), NULL, PROPAGATE_BACKGROUND, NULL),
	        ==, 1);
	harness_pod_state(&h, "default", object_name(pods.items[1]), NULL, "Failed", false);
	harness_list_free(&pods);
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 4);
	CHECK_INT(status_of(&h, "web", "replicas"), ==, 2);
	harness_close(&h);
}

static void relabel(cJSON *pod, void *data)
{
	controller_set_string(controller_child(object_metadata(pod), "labels"), "app", data);
}

TEST(replicaset_adopts_matching_orphans_and_releases_pods_that_stop_matching)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"stray\",\"labels\":"
	                   "{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}");
	const char *uid = harness_create(&h, RS_JSON("web", 2, ""));
	char rs_uid[37];
	snprintf(rs_uid, sizeof(rs_uid), "%s", uid);
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 2); /* the stray counts as one */
	cJSON *stray = harness_get(&h, "pods", "default", "stray");
	CHECK(controller_owned_by(stray, rs_uid));
	cJSON_Delete(stray);
	/* Relabelled away: released, and replaced. */
	harness_edit(&h, "pods", "default", "stray", relabel, "other");
	harness_settle(&h);
	stray = harness_get(&h, "pods", "default", "stray");
	CHECK(controller_ref_of(stray) == NULL);
	cJSON_Delete(stray);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 3);
	CHECK_INT(status_of(&h, "web", "replicas"), ==, 2);
	harness_close(&h);
}

TEST(replicaset_in_a_namespace_being_deleted_creates_nothing)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"gone\","
	                   "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\",\"finalizers\":[\"example.com/hold\"]}}");
	harness_create(&h,
	               "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"web\","
	               "\"namespace\":\"gone\"},\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"a\":\"b\"}},"
	               "\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":"
	               "\"c\",\"image\":\"i\"}]}}}}");
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "pods", "gone"), ==, 0);
	/* The namespace controller took the ReplicaSet away; the finalizer keeps the namespace. */
	CHECK_INT(harness_count(&h, "replicasets.apps", "gone"), ==, 0);
	cJSON *ns = harness_get(&h, "namespaces", "", "gone");
	CHECK(ns != NULL);
	cJSON_Delete(ns);
	harness_close(&h);
}

static void empty_the_selector(cJSON *rs, void *data)
{
	(void)data;
	cJSON *spec = cJSON_GetObjectItem(rs, "spec");
	cJSON_ReplaceItemInObject(spec, "selector", cJSON_CreateObject());
	cJSON_ReplaceItemInObject(spec, "replicas", cJSON_CreateNumber(4));
}

TEST(replicaset_with_an_empty_selector_creates_nothing_and_says_why)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, RS_JSON("any", 2, ""));
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 2);
	/* Stored past the API's validation (as an older version might have): it would select
	 * every pod of the namespace. */
	harness_edit(&h, "replicasets.apps", "default", "any", empty_the_selector, NULL);
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 2); /* none more, none released */
	CHECK_INT(harness_events(&h, "default", "InvalidSelector"), ==, 1);
	harness_close(&h);
}
