#include <stdlib.h>

#include "tests/unit/controllers_harness.h"

#define DEPLOYMENT(name, replicas, strategy, extra)                                                                    \
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"" name "\"},\"spec\":{"          \
	"\"replicas\":" #replicas ",\"selector\":{\"matchLabels\":{\"app\":\"" name "\"}}," strategy                   \
	"\"template\":{\"metadata\":{\"labels\":{\"app\":\"" name "\"}},\"spec\":{\"containers\":[{\"name\":\"c\","    \
	"\"image\":\"nginx:1.0\"}]}}" extra "}}"

static const char *const nodes[] = { "pi-1", "pi-2", "pi-3" };

/* One turn of the world: controllers settle, kubelets run what is new and finish deletions. */
static void turn(struct harness *h)
{
	harness_settle(h);
	harness_run_all(h, "default", nodes, 3);
	harness_finish_deletions(h, "default");
	harness_settle(h);
}

struct rs_view {
	char name[128];
	int replicas, available;
	char revision[16], history[64];
	char hash[16];
};

static int list_rs(struct harness *h, struct rs_view *out, int max)
{
	struct harness_list l;
	harness_list(h, "replicasets.apps", "default", &l);
	int n = 0;
	for (int i = 0; i < l.count && n < max; i++, n++) {
		snprintf(out[n].name, sizeof(out[n].name), "%s", object_name(l.items[i]));
		out[n].replicas = (int)controller_int_at(l.items[i], "spec.replicas", -1);
		out[n].available = (int)controller_int_at(l.items[i], "status.availableReplicas", 0);
		const char *r = controller_annotation(l.items[i], "deployment.kubernetes.io/revision");
		const char *hist = controller_annotation(l.items[i], "deployment.kubernetes.io/revision-history");
		const char *hash = controller_label(l.items[i], "pod-template-hash");
		snprintf(out[n].revision, sizeof(out[n].revision), "%s", r ? r : "");
		snprintf(out[n].history, sizeof(out[n].history), "%s", hist ? hist : "");
		snprintf(out[n].hash, sizeof(out[n].hash), "%s", hash ? hash : "");
	}
	harness_list_free(&l);
	return n;
}

static const struct rs_view *find_revision(const struct rs_view *rs, int n, const char *revision)
{
	for (int i = 0; i < n; i++)
		if (strcmp(rs[i].revision, revision) == 0)
			return &rs[i];
	return NULL;
}

static cJSON *deployment_condition(struct harness *h, const char *name, const char *type)
{
	cJSON *d = harness_get(h, "deployments.apps", "default", name);
	cJSON *condition = cJSON_Duplicate(controller_condition(cJSON_GetObjectItem(d, "status"), type), 1);
	cJSON_Delete(d);
	return condition;
}

static void set_image(cJSON *d, void *image)
{
	cJSON *template = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "template");
	cJSON *container =
	        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(template, "spec"), "containers"), 0);
	controller_set_string(container, "image", image);
}

static void set_field(cJSON *d, void *data)
{
	const char *const *kv = data; /* {"replicas", "20"} or {"paused", "true"} */
	cJSON *spec = controller_child(d, "spec");
	if (strcmp(kv[1], "true") == 0 || strcmp(kv[1], "false") == 0) {
		cJSON_DeleteItemFromObject(spec, kv[0]);
		cJSON_AddBoolToObject(spec, kv[0], strcmp(kv[1], "true") == 0);
	} else {
		controller_set_number(spec, kv[0], atoi(kv[1]));
	}
}

TEST(deployment_makes_a_replicaset_named_by_its_template_hash)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT("web", 3, "", ""));
	turn(&h);
	struct rs_view rs[8];
	CHECK_INT(list_rs(&h, rs, 8), ==, 1);
	char expected[160];
	snprintf(expected, sizeof(expected), "web-%s", rs[0].hash);
	CHECK_STR(rs[0].name, expected);
	CHECK(strlen(rs[0].hash) >= 8);
	CHECK_STR(rs[0].revision, "1");
	CHECK_INT(rs[0].replicas, ==, 3);
	cJSON *set = harness_get(&h, "replicasets.apps", "default", rs[0].name);
	CHECK_STR(object_string_at(set, "spec.selector.matchLabels.pod-template-hash"), rs[0].hash);
	CHECK_STR(object_string_at(set, "spec.template.metadata.labels.pod-template-hash"), rs[0].hash);
	CHECK_STR(controller_annotation(set, "deployment.kubernetes.io/desired-replicas"), "3");
	CHECK_STR(controller_annotation(set, "deployment.kubernetes.io/max-replicas"), "4");
	cJSON_Delete(set);
	CHECK_INT(harness_live_pods(&h, "default"), ==, 3);
	cJSON *d = harness_get(&h, "deployments.apps", "default", "web");
	CHECK_STR(controller_annotation(d, "deployment.kubernetes.io/revision"), "1");
	CHECK_INT(controller_int_at(d, "status.availableReplicas", 0), ==, 3);
	CHECK_INT(controller_int_at(d, "status.updatedReplicas", 0), ==, 3);
	CHECK_INT(controller_int_at(d, "status.observedGeneration", 0), ==, 1);
	cJSON_Delete(d);
	cJSON *available = deployment_condition(&h, "web", "Available");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(available, "status")), "True");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(available, "reason")), "MinimumReplicasAvailable");
	cJSON_Delete(available);
	cJSON *progressing = deployment_condition(&h, "web", "Progressing");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(progressing, "reason")), "NewReplicaSetAvailable");
	CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(progressing, "message")),
	               "has successfully progressed");
	cJSON_Delete(progressing);
	CHECK_INT(harness_settle(&h), ==, 0); /* nothing more to say */
	harness_close(&h);
}

/* Ready pods not being deleted. */
static int ready_pods(struct harness *h)
{
	struct harness_list l;
	harness_list(h, "pods", "default", &l);
	int n = 0;
	for (int i = 0; i < l.count; i++) {
		cJSON *ready = controller_condition(cJSON_GetObjectItem(l.items[i], "status"), "Ready");
		n += !object_string_at(l.items[i], "metadata.deletionTimestamp") && ready &&
		     strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(ready, "status")), "True") == 0;
	}
	harness_list_free(&l);
	return n;
}

static int spec_total(struct harness *h)
{
	struct rs_view rs[16];
	int n = list_rs(h, rs, 16), total = 0;
	for (int i = 0; i < n; i++)
		total += rs[i].replicas;
	return total;
}

TEST(deployment_rolls_out_within_max_surge_and_max_unavailable_at_every_step)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT("web", 4,
	                              "\"strategy\":{\"rollingUpdate\":{\"maxSurge\":1,\"maxUnavailable\":1}},", ""));
	turn(&h);
	CHECK_INT(ready_pods(&h), ==, 4);
	harness_edit(&h, "deployments.apps", "default", "web", set_image, "nginx:2.0");
	/* Step by step, one kind of actor at a time, checking the bounds after each. */
	for (int step = 0; step < 40; step++) {
		harness_settle(&h);
		CHECK_INT(ready_pods(&h), >=, 4 - 1);
		CHECK_INT(spec_total(&h), <=, 4 + 1);
		if (step % 2 == 0)
			harness_run_all(&h, "default", nodes, 3);
		else
			harness_finish_deletions(&h, "default");
	}
	struct rs_view rs[8];
	int n = list_rs(&h, rs, 8);
	CHECK_INT(n, ==, 2);
	const struct rs_view *old = find_revision(rs, n, "1"), *new = find_revision(rs, n, "2");
	CHECK(old && new);
	CHECK_INT(old->replicas, ==, 0);
	CHECK_INT(new->replicas, ==, 4);
	CHECK_INT(new->available, ==, 4);
	cJSON *d = harness_get(&h, "deployments.apps", "default", "web");
	CHECK_STR(controller_annotation(d, "deployment.kubernetes.io/revision"), "2");
	CHECK_INT(controller_int_at(d, "status.updatedReplicas", 0), ==, 4);
	CHECK_INT(controller_int_at(d, "status.replicas", 0), ==, 4);
	cJSON_Delete(d);
	harness_close(&h);
}

TEST(deployment_percentages_round_surge_up_and_unavailability_down)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT("web", 10, "", "")); /* 25% and 25%: surge 3, unavailable 2 */
	turn(&h);
	harness_edit(&h, "deployments.apps", "default", "web", set_image, "nginx:2.0");
	harness_settle(&h);
	struct rs_view rs[8];
	int n = list_rs(&h, rs, 8);
	CHECK_INT(n, ==, 2);
	/* The new one surged to 3, the old one went down to 8 (10 - 2 unavailable), which made
	 * room for 2 more new ones: 13 = 10 + 3 in all; none of the new ones is ready yet. */
	CHECK_INT(find_revision(rs, n, "2")->replicas, ==, 5);
	CHECK_INT(find_revision(rs, n, "1")->replicas, ==, 8);
	/* Resized mid-rollout to 20: the room (20 + 5) is shared in proportion. */
	const char *const kv[] = { "replicas", "20" };
	harness_edit(&h, "deployments.apps", "default", "web", set_field, (void *)kv);
	harness_settle(&h);
	n = list_rs(&h, rs, 8);
	CHECK_INT(find_revision(rs, n, "1")->replicas, ==, 15); /* 8 + round(8 * 25 / 13) - 8 */
	CHECK_INT(find_revision(rs, n, "2")->replicas, ==, 10); /* 5 + round(5 * 25 / 13) - 5 */
	harness_close(&h);
}

TEST(deployment_recreate_stops_every_old_pod_before_starting_new_ones)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT("web", 2, "\"strategy\":{\"type\":\"Recreate\"},", ""));
	turn(&h);
	harness_edit(&h, "deployments.apps", "default", "web", set_image, "nginx:2.0");
	harness_settle(&h);
	struct rs_view rs[8];
	CHECK_INT(list_rs(&h, rs, 8), ==, 1); /* old ones down first, no new one yet */
	CHECK_INT(rs[0].replicas, ==, 0);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 2); /* still terminating */
	harness_finish_deletions(&h, "default");
	harness_settle(&h);
	int n = list_rs(&h, rs, 8);
	CHECK_INT(n, ==, 2);
	CHECK_INT(find_revision(rs, n, "2")->replicas, ==, 2);
	harness_close(&h);
}

/* What `kubectl rollout undo` does on the client: the old ReplicaSet's template, without
 * its pod-template-hash label, into the Deployment. */
static void undo_to(cJSON *d, void *rs_json)
{
	cJSON *template = cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetObjectItem(rs_json, "spec"), "template"), 1);
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetObjectItem(template, "metadata"), "labels"),
	                           "pod-template-hash");
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(d, "spec"), "template", template);
}

TEST(deployment_rollback_reuses_the_old_replicaset_and_moves_its_revision)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT("web", 2, "", ""));
	turn(&h);
	harness_edit(&h, "deployments.apps", "default", "web", set_image, "nginx:2.0");
	for (int i = 0; i < 6; i++)
		turn(&h);
	struct rs_view rs[8];
	int n = list_rs(&h, rs, 8);
	CHECK_INT(n, ==, 2);
	char first[128];
	snprintf(first, sizeof(first), "%s", find_revision(rs, n, "1")->name);
	cJSON *old = harness_get(&h, "replicasets.apps", "default", first);
	harness_edit(&h, "deployments.apps", "default", "web", undo_to, old);
	cJSON_Delete(old);
	for (int i = 0; i < 6; i++)
		turn(&h);
	n = list_rs(&h, rs, 8);
	CHECK_INT(n, ==, 2); /* no third ReplicaSet */
	const struct rs_view *back = find_revision(rs, n, "3");
	CHECK(back != NULL);
	CHECK_STR(back->name, first);
	CHECK_STR(back->history, "1");
	CHECK_INT(back->replicas, ==, 2);
	CHECK_INT(find_revision(rs, n, "2")->replicas, ==, 0);
	cJSON *d = harness_get(&h, "deployments.apps", "default", "web");
	CHECK_STR(controller_annotation(d, "deployment.kubernetes.io/revision"), "3");
	cJSON_Delete(d);
	harness_close(&h);
}

TEST(deployment_keeps_only_revision_history_limit_old_replicasets)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT("web", 1, "", ",\"revisionHistoryLimit\":1"));
	turn(&h);
	static const char *const images[] = { "nginx:2.0", "nginx:3.0", "nginx:4.0" };
	for (size_t i = 0; i < 3; i++) {
		harness_edit(&h, "deployments.apps", "default", "web", set_image, (void *)images[i]);
		for (int t = 0; t < 6; t++)
			turn(&h);
	}
	struct rs_view rs[8];
	int n = list_rs(&h, rs, 8);
	CHECK_INT(n, ==, 2);
	CHECK(find_revision(rs, n, "4") != NULL);
	CHECK(find_revision(rs, n, "3") != NULL);
	harness_close(&h);
}

TEST(deployment_paused_scales_but_does_not_roll_out_until_resumed)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT("web", 2, "", ""));
	turn(&h);
	const char *const pause[] = { "paused", "true" };
	harness_edit(&h, "deployments.apps", "default", "web", set_field, (void *)pause);
	harness_edit(&h, "deployments.apps", "default", "web", set_image, "nginx:2.0");
	turn(&h);
	struct rs_view rs[8];
	CHECK_INT(list_rs(&h, rs, 8), ==, 1);
	cJSON *progressing = deployment_condition(&h, "web", "Progressing");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(progressing, "status")), "Unknown");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(progressing, "reason")), "DeploymentPaused");
	cJSON_Delete(progressing);
	const char *const three[] = { "replicas", "3" };
	harness_edit(&h, "deployments.apps", "default", "web", set_field, (void *)three);
	turn(&h);
	CHECK_INT(list_rs(&h, rs, 8), ==, 1);
	CHECK_INT(rs[0].replicas, ==, 3);
	const char *const resume[] = { "paused", "false" };
	harness_edit(&h, "deployments.apps", "default", "web", set_field, (void *)resume);
	harness_settle(&h);
	CHECK_INT(list_rs(&h, rs, 8), ==, 2);
	for (int i = 0; i < 8; i++)
		turn(&h);
	int n = list_rs(&h, rs, 8);
	CHECK_INT(find_revision(rs, n, "2")->replicas, ==, 3);
	progressing = deployment_condition(&h, "web", "Progressing");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(progressing, "reason")), "NewReplicaSetAvailable");
	cJSON_Delete(progressing);
	harness_close(&h);
}

TEST(deployment_that_makes_no_progress_times_out_at_its_deadline)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT("web", 2, "", ",\"progressDeadlineSeconds\":30"));
	harness_settle(&h); /* pods are never made ready */
	cJSON *progressing = deployment_condition(&h, "web", "Progressing");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(progressing, "status")), "True");
	cJSON_Delete(progressing);
	controllers_advance_clock(h.c, 20000);
	CHECK_INT(harness_settle(&h), ==, 0); /* not yet */
	controllers_advance_clock(h.c, 15000);
	harness_settle(&h);
	progressing = deployment_condition(&h, "web", "Progressing");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(progressing, "status")), "False");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(progressing, "reason")), "ProgressDeadlineExceeded");
	CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(progressing, "message")), "has timed out progressing");
	cJSON_Delete(progressing);
	cJSON *available = deployment_condition(&h, "web", "Available");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(available, "status")), "False");
	cJSON_Delete(available);
	harness_close(&h);
}

static void restart(cJSON *d, void *when)
{
	cJSON *template = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "template");
	controller_set_string(controller_child(controller_child(template, "metadata"), "annotations"),
	                      "kubectl.kubernetes.io/restartedAt", when);
}

TEST(deployment_restarted_at_annotation_rolls_every_pod)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, DEPLOYMENT("web", 2, "", ""));
	turn(&h);
	harness_edit(&h, "deployments.apps", "default", "web", restart, "2026-11-22T10:00:00Z");
	for (int i = 0; i < 8; i++)
		turn(&h);
	struct rs_view rs[8];
	int n = list_rs(&h, rs, 8);
	CHECK_INT(n, ==, 2);
	CHECK_INT(find_revision(rs, n, "2")->replicas, ==, 2);
	cJSON *set = harness_get(&h, "replicasets.apps", "default", find_revision(rs, n, "2")->name);
	cJSON *annotations = cJSON_GetObjectItem(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(set, "spec"), "template"), "metadata"),
	        "annotations");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(annotations, "kubectl.kubernetes.io/restartedAt")),
	          "2026-11-22T10:00:00Z");
	cJSON_Delete(set);
	harness_close(&h);
}
