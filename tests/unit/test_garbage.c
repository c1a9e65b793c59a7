#include "tests/unit/controllers_harness.h"

#define DEPLOYMENT                                                                                                     \
	"{\"apiVersion\":\"apps/"                                                                                      \
	"v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},\"spec\":{\"replicas\":2,"                       \
	"\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"  \
	"\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"nginx\"}]}}}}"

static const char *const nodes[] = { "pi-1" };

static int delete_as_api(struct harness *h, const char *resource, const char *ns, const char *name,
                         enum propagation policy)
{
	return controller_delete(h->c, resource, ns, name, NULL, policy, NULL);
}

TEST(garbage_background_deletion_of_a_deployment_takes_its_replicasets_and_pods)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT);
	harness_settle(&h);
	harness_run_all(&h, "default", nodes, 1);
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "replicasets.apps", "default"), ==, 1);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 2);
	CHECK_INT(delete_as_api(&h, "deployments.apps", "default", "web", PROPAGATE_BACKGROUND), ==, 1);
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "deployments.apps", "default"), ==, 0);
	CHECK_INT(harness_count(&h, "replicasets.apps", "default"), ==, 0);
	CHECK_INT(harness_live_pods(&h, "default"), ==, 0); /* marked for their kubelet */
	harness_finish_deletions(&h, "default");
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 0);
	CHECK_INT(harness_settle(&h), ==, 0);
	harness_close(&h);
}

TEST(garbage_orphan_deletion_leaves_the_dependents_without_the_reference)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT);
	harness_settle(&h);
	CHECK_INT(delete_as_api(&h, "deployments.apps", "default", "web", PROPAGATE_ORPHAN), ==, 1);
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "deployments.apps", "default"), ==, 0); /* the finalizer was removed */
	struct harness_list l;
	harness_list(&h, "replicasets.apps", "default", &l);
	CHECK_INT(l.count, ==, 1);
	CHECK(controller_ref_of(l.items[0]) == NULL);
	harness_list_free(&l);
	CHECK_INT(harness_live_pods(&h, "default"), ==, 2); /* the ReplicaSet goes on */
	harness_close(&h);
}

TEST(garbage_foreground_deletion_waits_for_the_dependents_to_be_gone)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT);
	harness_settle(&h);
	harness_run_all(&h, "default", nodes, 1);
	harness_settle(&h);
	CHECK_INT(delete_as_api(&h, "deployments.apps", "default", "web", PROPAGATE_FOREGROUND), ==, 1);
	harness_settle(&h);
	/* The pods are stopping on their node: the ReplicaSet and the Deployment wait. */
	cJSON *d = harness_get(&h, "deployments.apps", "default", "web");
	CHECK(d != NULL);
	CHECK(object_string_at(d, "metadata.deletionTimestamp") != NULL);
	cJSON_Delete(d);
	CHECK_INT(harness_count(&h, "replicasets.apps", "default"), ==, 1);
	harness_finish_deletions(&h, "default");
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 0);
	CHECK_INT(harness_count(&h, "replicasets.apps", "default"), ==, 0);
	CHECK_INT(harness_count(&h, "deployments.apps", "default"), ==, 0);
	harness_close(&h);
}

TEST(garbage_a_dependent_whose_owner_never_existed_is_deleted)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h,
	               "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"left\","
	               "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"ghost\","
	               "\"uid\":\"0000\"}]},\"data\":{\"a\":\"b\"}}");
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"foreign\","
	                   "\"ownerReferences\":[{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"name\":\"w\","
	                   "\"uid\":\"1111\"}]},\"data\":{\"a\":\"b\"}}");
	harness_settle(&h);
	cJSON *left = harness_get(&h, "configmaps", "default", "left");
	cJSON *foreign = harness_get(&h, "configmaps", "default", "foreign");
	CHECK(left == NULL);
	CHECK(foreign != NULL); /* an owner of a kind Bramble does not serve is taken to exist */
	cJSON_Delete(foreign);
	harness_close(&h);
}

TEST(garbage_a_dependent_with_another_owner_only_loses_the_reference)
{
	struct harness h;
	harness_open(&h);
	const char *uid = harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	                                     "\"a\"},\"data\":{}}");
	char a_uid[37];
	snprintf(a_uid, sizeof(a_uid), "%s", uid);
	uid = harness_create(
	        &h, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"},\"data\":{}}");
	char b_uid[37];
	snprintf(b_uid, sizeof(b_uid), "%s", uid);
	char json[600];
	snprintf(json, sizeof(json),
	         "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\",\"ownerReferences\":["
	         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"a\",\"uid\":\"%s\"},"
	         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"b\",\"uid\":\"%s\"}]}}",
	         a_uid, b_uid);
	harness_create(&h, json);
	harness_settle(&h);
	CHECK_INT(delete_as_api(&h, "configmaps", "default", "a", PROPAGATE_BACKGROUND), ==, 1);
	harness_settle(&h);
	cJSON *secret = harness_get(&h, "secrets", "default", "s");
	CHECK(secret != NULL);
	CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(secret, "metadata"), "ownerReferences")),
	          ==, 1);
	cJSON_Delete(secret);
	CHECK_INT(delete_as_api(&h, "configmaps", "default", "b", PROPAGATE_BACKGROUND), ==, 1);
	harness_settle(&h);
	CHECK(harness_get(&h, "secrets", "default", "s") == NULL);
	harness_close(&h);
}

TEST(garbage_pods_of_a_deleted_node_are_deleted_at_once)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"pi-1\"},\"status\":{"
	                   "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{"
	                   "\"nodeName\":\"pi-1\",\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}");
	harness_settle(&h);
	CHECK_INT(controller_force_delete(h.c, "nodes", "", "pi-1", NULL, NULL), ==, 1);
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 0);
	harness_close(&h);
}

TEST(namespace_being_deleted_is_emptied_then_deleted)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"team\"}}");
	harness_settle(&h);
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\",\"namespace\":"
	                   "\"team\"},\"data\":{}}");
	harness_create(&h,
	               "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
	               "\"namespace\":\"team\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":"
	               "\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":"
	               "[{\"name\":\"c\",\"image\":\"nginx\"}]}}}}");
	harness_settle(&h);
	harness_run_all(&h, "team", nodes, 1);
	harness_settle(&h);
	CHECK_INT(delete_as_api(&h, "namespaces", "", "team", PROPAGATE_BACKGROUND), ==, 1);
	harness_settle(&h);
	cJSON *ns = harness_get(&h, "namespaces", "", "team");
	CHECK(ns != NULL);
	CHECK_STR(object_string_at(ns, "status.phase"), "Terminating");
	cJSON_Delete(ns);
	CHECK_INT(harness_count(&h, "configmaps", "team"), ==, 0);
	CHECK_INT(harness_count(&h, "deployments.apps", "team"), ==, 0);
	CHECK_INT(harness_live_pods(&h, "team"), ==, 0);
	CHECK_INT(harness_count(&h, "pods", "team"), ==, 2); /* stopping on their node */
	harness_finish_deletions(&h, "team");
	harness_settle(&h);
	CHECK(harness_get(&h, "namespaces", "", "team") == NULL);
	CHECK_INT(harness_settle(&h), ==, 0);
	harness_close(&h);
}
