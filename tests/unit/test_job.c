#include "tests/unit/controllers_harness.h"

#define JOB_JSON(spec)                                                                                                 \
	"{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"work\"},\"spec\":{" spec               \
	"\"template\":{\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}}}"

static int64_t status_of(struct harness *h, const char *field)
{
	cJSON *job = harness_get(h, "jobs.batch", "default", "work");
	CHECK(job != NULL);
	char path[64];
	snprintf(path, sizeof(path), "status.%s", field);
	int64_t v = controller_int_at(job, path, 0);
	cJSON_Delete(job);
	return v;
}

/* "True/Reason" of a condition of the Job, or "" when absent. */
static const char *condition_of(struct harness *h, const char *type, char *buf, size_t size)
{
	cJSON *job = harness_get(h, "jobs.batch", "default", "work");
	CHECK(job != NULL);
	const cJSON *c = controller_condition(cJSON_GetObjectItem(job, "status"), type);
	snprintf(buf, size, "%s/%s", c ? cJSON_GetStringValue(cJSON_GetObjectItem(c, "status")) : "",
	         c && cJSON_GetObjectItem(c, "reason") ? cJSON_GetStringValue(cJSON_GetObjectItem(c, "reason")) : "");
	cJSON_Delete(job);
	return buf[0] == '/' ? "" : buf;
}

struct ending {
	struct harness *h;
	const char *phase;
};

/* What a kubelet writes when the container ends: the phase and when. */
static void end_pod(cJSON *pod, void *data)
{
	const struct ending *e = data;
	char now[CLOCK_RFC3339_SIZE];
	controller_now_rfc3339(e->h->c, now);
	controller_set_string(controller_child(pod, "spec"), "nodeName", "pi-1");
	cJSON *status = controller_child(pod, "status");
	controller_set_string(status, "phase", e->phase);
	char text[256];
	snprintf(text, sizeof(text),
	         "[{\"name\":\"c\",\"ready\":false,\"restartCount\":0,\"image\":\"i\",\"state\":{\"terminated\":"
	         "{\"exitCode\":%d,\"finishedAt\":\"%s\"}}}]",
	         strcmp(e->phase, "Failed") == 0 ? 1 : 0, now);
	cJSON_DeleteItemFromObject(status, "containerStatuses");
	cJSON_AddItemToObject(status, "containerStatuses", cJSON_Parse(text));
}

/* Live pods not yet finished get phase (on node pi-1); returns how many. */
static int finish_pods(struct harness *h, const char *phase, int at_most)
{
	struct ending ending = { h, phase };
	struct harness_list l;
	harness_list(h, "pods", "default", &l);
	int n = 0;
	for (int i = 0; i < l.count && n < at_most; i++) {
		const char *have = object_string_at(l.items[i], "status.phase");
		if (object_string_at(l.items[i], "metadata.deletionTimestamp") ||
		    (have && (strcmp(have, "Succeeded") == 0 || strcmp(have, "Failed") == 0)))
			continue;
		harness_edit(h, "pods", "default", object_name(l.items[i]), end_pod, &ending);
		n++;
	}
	harness_list_free(&l);
	return n;
}

static int active_pods(struct harness *h)
{
	struct harness_list l;
	harness_list(h, "pods", "default", &l);
	int n = 0;
	for (int i = 0; i < l.count; i++) {
		const char *have = object_string_at(l.items[i], "status.phase");
		n += !object_string_at(l.items[i], "metadata.deletionTimestamp") &&
		     !(have && (strcmp(have, "Succeeded") == 0 || strcmp(have, "Failed") == 0));
	}
	harness_list_free(&l);
	return n;
}

TEST(completions_with_parallelism_and_the_complete_condition)
{
	struct harness h;
	harness_open(&h);
	const char *uid = harness_create(&h, JOB_JSON("\"completions\":3,\"parallelism\":2,"));
	char job_uid[37];
	snprintf(job_uid, sizeof(job_uid), "%s", uid);
	harness_settle(&h);
	CHECK_INT(active_pods(&h), ==, 2);
	CHECK_INT(status_of(&h, "active"), ==, 2);
	struct harness_list l;
	harness_list(&h, "pods", "default", &l);
	for (int i = 0; i < l.count; i++) {
		CHECK(controller_owned_by(l.items[i], job_uid));
		CHECK_STR(controller_label(l.items[i], "batch.kubernetes.io/controller-uid"), job_uid);
		CHECK_STR(controller_label(l.items[i], "job-name"), "work");
		CHECK(strncmp(object_name(l.items[i]), "work-", 5) == 0);
	}
	harness_list_free(&l);
	cJSON *job = harness_get(&h, "jobs.batch", "default", "work");
	CHECK(object_string_at(job, "status.startTime") != NULL);
	cJSON_Delete(job);
	char buf[64];
	CHECK_INT(finish_pods(&h, "Succeeded", 1), ==, 1);
	harness_settle(&h);
	CHECK_INT(status_of(&h, "succeeded"), ==, 1);
	CHECK_INT(active_pods(&h), ==, 2); /* min(parallelism, completions - succeeded) */
	CHECK_INT(finish_pods(&h, "Succeeded", 2), ==, 2);
	harness_settle(&h);
	CHECK_INT(status_of(&h, "succeeded"), ==, 3);
	CHECK_INT(status_of(&h, "active"), ==, 0);
	CHECK_STR(condition_of(&h, "Complete", buf, sizeof(buf)), "True/CompletionsReached");
	CHECK_INT(harness_events(&h, "default", "Completed"), ==, 1);
	job = harness_get(&h, "jobs.batch", "default", "work");
	CHECK(object_string_at(job, "status.completionTime") != NULL);
	cJSON_Delete(job);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 3); /* finished pods stay */
	CHECK_INT(harness_settle(&h), ==, 0);
	harness_close(&h);
}

TEST(backoff_limit_fails_the_job_after_delayed_retries)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, JOB_JSON("\"backoffLimit\":2,"));
	harness_settle(&h);
	char buf[64];
	for (int failure = 1; failure <= 3; failure++) {
		CHECK_INT(active_pods(&h), ==, 1);
		CHECK_INT(finish_pods(&h, "Failed", 1), ==, 1);
		harness_settle(&h);
		CHECK_INT(status_of(&h, "failed"), ==, failure);
		CHECK_INT(active_pods(&h), ==, 0); /* backing off, or failed for good */
		controllers_advance_clock(h.c, 5000);
		harness_settle(&h);
		if (failure < 3)
			CHECK_STR(condition_of(&h, "Failed", buf, sizeof(buf)), "");
	}
	CHECK_STR(condition_of(&h, "Failed", buf, sizeof(buf)), "True/BackoffLimitExceeded");
	CHECK_INT(active_pods(&h), ==, 0);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 3); /* 1 + backoffLimit tries */
	CHECK_INT(harness_events(&h, "default", "BackoffLimitExceeded"), ==, 1);
	controllers_advance_clock(h.c, 60000);
	CHECK_INT(harness_settle(&h), ==, 0);
	harness_close(&h);
}

TEST(restarts_count_against_the_backoff_limit_with_on_failure)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"work\"},\"spec\":{"
	                   "\"backoffLimit\":2,\"template\":{\"spec\":{\"restartPolicy\":\"OnFailure\",\"containers\":"
	                   "[{\"name\":\"c\",\"image\":\"i\"}]}}}}");
	harness_settle(&h);
	struct harness_list l;
	harness_list(&h, "pods", "default", &l);
	CHECK_INT(l.count, ==, 1);
	cJSON *pod = cJSON_Duplicate(l.items[0], 1);
	cJSON *status = controller_child(pod, "status");
	controller_set_string(status, "phase", "Running");
	cJSON_AddItemToObject(status, "containerStatuses",
	                      cJSON_Parse("[{\"name\":\"c\",\"ready\":false,\"restartCount\":2,\"image\":\"i\"}]"));
	CHECK_INT(controller_update(h.c, "pods", l.items[0], pod, NULL), ==, 1);
	cJSON_Delete(pod);
	harness_list_free(&l);
	harness_settle(&h);
	char buf[64];
	CHECK_STR(condition_of(&h, "Failed", buf, sizeof(buf)), "True/BackoffLimitExceeded");
	CHECK_INT(active_pods(&h), ==, 0); /* the restarting pod was deleted */
	harness_close(&h);
}

TEST(active_deadline_fails_the_job_and_stops_its_pods)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, JOB_JSON("\"parallelism\":2,\"completions\":4,\"activeDeadlineSeconds\":10,"));
	harness_settle(&h);
	CHECK_INT(active_pods(&h), ==, 2);
	char buf[64];
	controllers_advance_clock(h.c, 5000);
	harness_settle(&h);
	CHECK_STR(condition_of(&h, "Failed", buf, sizeof(buf)), "");
	controllers_advance_clock(h.c, 6000);
	harness_settle(&h);
	CHECK_STR(condition_of(&h, "Failed", buf, sizeof(buf)), "True/DeadlineExceeded");
	CHECK_INT(active_pods(&h), ==, 0);
	CHECK_INT(status_of(&h, "active"), ==, 0);
	harness_close(&h);
}

TEST(ttl_after_finished_deletes_the_job_and_its_pods)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, JOB_JSON("\"ttlSecondsAfterFinished\":5,"));
	harness_settle(&h);
	CHECK_INT(finish_pods(&h, "Succeeded", 1), ==, 1);
	harness_settle(&h);
	char buf[64];
	CHECK_STR(condition_of(&h, "Complete", buf, sizeof(buf)), "True/CompletionsReached");
	controllers_advance_clock(h.c, 3000);
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "jobs.batch", "default"), ==, 1);
	controllers_advance_clock(h.c, 3000);
	harness_settle(&h);
	CHECK_INT(harness_count(&h, "jobs.batch", "default"), ==, 0);
	CHECK_INT(harness_count(&h, "pods", "default"), ==, 0);
	harness_close(&h);
}

TEST(work_queue_job_completes_when_one_succeeded_and_none_run)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, JOB_JSON("\"parallelism\":3,"));
	harness_settle(&h);
	CHECK_INT(active_pods(&h), ==, 3);
	finish_pods(&h, "Succeeded", 1);
	harness_settle(&h);
	CHECK_INT(active_pods(&h), ==, 2); /* no new pod once one succeeded */
	char buf[64];
	CHECK_STR(condition_of(&h, "Complete", buf, sizeof(buf)), "");
	finish_pods(&h, "Succeeded", 2);
	harness_settle(&h);
	CHECK_STR(condition_of(&h, "Complete", buf, sizeof(buf)), "True/CompletionsReached");
	harness_close(&h);
}

TEST(indexed_jobs_give_each_pod_its_index)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, JOB_JSON("\"completions\":3,\"parallelism\":3,\"completionMode\":\"Indexed\","));
	harness_settle(&h);
	struct harness_list l;
	harness_list(&h, "pods", "default", &l);
	CHECK_INT(l.count, ==, 3);
	bool seen[3] = { false, false, false };
	char middle[64] = "";
	for (int i = 0; i < l.count; i++) {
		const char *index = controller_label(l.items[i], "batch.kubernetes.io/job-completion-index");
		CHECK(index != NULL);
		int n = atoi(index);
		CHECK(n >= 0 && n < 3 && !seen[n]);
		seen[n] = true;
		char hostname[32];
		snprintf(hostname, sizeof(hostname), "work-%d", n);
		CHECK_STR(object_string_at(l.items[i], "spec.hostname"), hostname);
		const cJSON *env = cJSON_GetArrayItem(
		        cJSON_GetObjectItem(
		                cJSON_GetArrayItem(
		                        cJSON_GetObjectItem(cJSON_GetObjectItem(l.items[i], "spec"), "containers"), 0),
		                "env"),
		        0);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(env, "name")), "JOB_COMPLETION_INDEX");
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(env, "value")), index);
		if (n == 1)
			snprintf(middle, sizeof(middle), "%s", object_name(l.items[i]));
	}
	harness_list_free(&l);
	harness_pod_state(&h, "default", middle, "pi-1", "Succeeded", false);
	harness_settle(&h);
	cJSON *job = harness_get(&h, "jobs.batch", "default", "work");
	CHECK_STR(object_string_at(job, "status.completedIndexes"), "1");
	cJSON_Delete(job);
	CHECK_INT(active_pods(&h), ==, 2);
	finish_pods(&h, "Succeeded", 2);
	harness_settle(&h);
	job = harness_get(&h, "jobs.batch", "default", "work");
	CHECK_STR(object_string_at(job, "status.completedIndexes"), "0-2");
	cJSON_Delete(job);
	char buf[64];
	CHECK_STR(condition_of(&h, "Complete", buf, sizeof(buf)), "True/CompletionsReached");
	harness_close(&h);
}

TEST(the_selector_is_generated_unless_manual)
{
	const struct kind *kind = kind_lookup("batch/v1", "Job");
	cJSON *job = cJSON_Parse(JOB_JSON("\"selector\":{\"matchLabels\":{\"a\":\"b\"}},"));
	controller_set_string(object_metadata(job), "uid", "u-1");
	struct error err = { 0 };
	CHECK_INT(controllers_prepare_job(job, &err), ==, -EINVAL);
	CHECK_STR(err.field, "spec.selector");
	cJSON_Delete(job);
	job = cJSON_Parse(JOB_JSON(""));
	controller_set_string(object_metadata(job), "uid", "u-1");
	CHECK_OK(controllers_prepare_job(job, &err));
	const cJSON *match = cJSON_GetObjectItem(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(job, "spec"), "selector"), "matchLabels"),
	        "batch.kubernetes.io/controller-uid");
	CHECK_STR(cJSON_GetStringValue(match), "u-1");
	const cJSON *labels = cJSON_GetObjectItem(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(job, "spec"), "template"), "metadata"),
	        "labels");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(labels, "batch.kubernetes.io/controller-uid")), "u-1");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(labels, "batch.kubernetes.io/job-name")), "work");
	object_apply_defaults(kind, job);
	CHECK_OK(object_validate(kind, job, &err));
	/* Applied again without them: carried over. */
	cJSON *again = cJSON_Parse(JOB_JSON(""));
	controllers_prepare_job_update(job, again);
	CHECK(cJSON_Compare(cJSON_GetObjectItem(cJSON_GetObjectItem(again, "spec"), "selector"),
	                    cJSON_GetObjectItem(cJSON_GetObjectItem(job, "spec"), "selector"), true));
	cJSON_Delete(again);
	cJSON_Delete(job);
	/* A template a manual selector does not match is refused, with the field. */
	job = cJSON_Parse(JOB_JSON("\"manualSelector\":true,\"selector\":{\"matchLabels\":{\"a\":\"b\"}},"));
	CHECK_OK(controllers_prepare_job(job, &err));
	object_apply_defaults(kind, job);
	CHECK_INT(object_validate(kind, job, &err), ==, -EINVAL);
	CHECK_STR(err.field, "spec.template.metadata.labels");
	cJSON_Delete(job);
}
