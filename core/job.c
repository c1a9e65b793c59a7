/* The Job controller: pods run to completion, as Kubernetes' JobController does.
 *
 * At creation (controllers_prepare_job, called by the API server) a Job without
 * spec.manualSelector gets the generated selector batch.kubernetes.io/controller-uid=<uid>
 * and its template the labels that match it (and job-name), so its pods are its alone.
 *
 * Queued: a Job that changed; the controller of a pod that changed (for one without a
 * controller, the Jobs of its namespace that select it). Delayed: the deadline
 * (activeDeadlineSeconds from status.startTime), the end of a failure back-off, the time
 * to live after finishing.
 *
 * sync(namespace/name), a Job not being deleted:
 *   claim pods by selector; count active (neither terminated nor being deleted), succeeded
 *   and failed pods. The counts in the status never go down: a terminated pod deleted by
 *   someone stays counted (Kubernetes keeps them with a finalizer; Bramble keeps the
 *   larger of the stored and the counted figure).
 *
 *   running  --failed > backoffLimit (OnFailure: container restarts >= backoffLimit)-->
 *                 Failed=True BackoffLimitExceeded, active pods deleted
 *            --now >= startTime + activeDeadlineSeconds--> Failed=True DeadlineExceeded, same
 *            --succeeded >= completions (no completions: one succeeded, none active)-->
 *                 Complete=True, completionTime
 *            --suspend--> active pods deleted, Suspended=True (False again on resume)
 *            else: pods created up to min(parallelism, completions - succeeded), not before
 *                  the back-off after the last failure (job_backoff_ms doubling per failure,
 *                  at most 6 minutes) has passed; surplus active pods deleted.
 *   finished --ttlSecondsAfterFinished after the finishing time--> the Job is deleted
 *                 (Foreground: its pods go first)
 *
 * completionMode Indexed: pod i carries batch.kubernetes.io/job-completion-index=i (label
 * and annotation), JOB_COMPLETION_INDEX in every container and hostname <job>-<i>; each
 * index runs until one pod of it succeeds; status.completedIndexes lists them ("0-2,4").
 */
#include "core/controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "core/selector.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

#define RESOURCE "jobs.batch"
#define UID_LABEL "batch.kubernetes.io/controller-uid"
#define NAME_LABEL "batch.kubernetes.io/job-name"
#define LEGACY_UID_LABEL "controller-uid"
#define LEGACY_NAME_LABEL "job-name"
#define INDEX_LABEL "batch.kubernetes.io/job-completion-index"
#define MAX_BACKOFF_MS (6 * 60 * 1000)
#define MAX_INDEXED_COMPLETIONS 100000

/* --- creation: the generated selector ------------------------------------------------------- */

static cJSON *object_member(cJSON *object, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(object, name);
}

static void set_label(cJSON *template, const char *name, const char *value)
{
	controller_set_string(controller_child(controller_child(template, "metadata"), "labels"), name, value);
}

int controllers_prepare_job(cJSON *job, struct error *err)
{
	cJSON *spec = object_member(job, "spec");
	if (!cJSON_IsObject(spec) || cJSON_IsTrue(object_member(spec, "manualSelector")))
		return 0;
	if (object_member(spec, "selector"))
		return error_set_field(err, EINVAL, "spec.selector",
		                       "spec.selector: Invalid value: the selector is generated unless "
		                       "`manualSelector` is true: leave it out");
	const char *uid = object_string_at(job, "metadata.uid"), *name = object_name(job);
	if (!uid || !name)
		return 0;
	cJSON *selector = cJSON_AddObjectToObject(spec, "selector");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(selector, "matchLabels"), UID_LABEL, uid);
	cJSON *template = controller_child(spec, "template");
	set_label(template, UID_LABEL, uid);
	set_label(template, NAME_LABEL, name);
	set_label(template, LEGACY_UID_LABEL, uid);
	set_label(template, LEGACY_NAME_LABEL, name);
	return 0;
}

void controllers_prepare_job_update(const cJSON *stored, cJSON *updated)
{
	cJSON *spec = object_member(updated, "spec");
	const cJSON *stored_spec = cJSON_GetObjectItemCaseSensitive(stored, "spec");
	if (!cJSON_IsObject(spec) || cJSON_IsTrue(object_member(spec, "manualSelector")) ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(stored_spec, "manualSelector")))
		return;
	const cJSON *selector = cJSON_GetObjectItemCaseSensitive(stored_spec, "selector");
	if (!object_member(spec, "selector") && selector)
		cJSON_AddItemToObject(spec, "selector", cJSON_Duplicate(selector, 1));
	const cJSON *stored_labels = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(stored_spec, "template"), "metadata"),
	        "labels");
	cJSON *template = object_member(spec, "template");
	if (!cJSON_IsObject(template))
		return;
	static const char *const generated[] = { UID_LABEL, NAME_LABEL, LEGACY_UID_LABEL, LEGACY_NAME_LABEL };
	for (size_t i = 0; i < ARRAY_SIZE(generated); i++) {
		const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(stored_labels, generated[i]));
		const cJSON *labels = object_member(object_member(template, "metadata"), "labels");
		if (value && !cJSON_GetObjectItemCaseSensitive(labels, generated[i]))
			set_label(template, generated[i], value);
	}
}

/* --- queueing ------------------------------------------------------------------------------- */

static void on_pod(struct controllers *c, const struct pod *old, const struct pod *new)
{
	controller_enqueue_pod_owners(c, CONTROLLER_JOB, CACHED_JOBS, "Job", old, new);
}

static void on_object(struct controllers *c, enum cached_kind which, const cJSON *old, const cJSON *new)
{
	controller_enqueue_cached(c, CONTROLLER_JOB, CACHED_JOBS, which, old, new);
}

/* --- indexes ---------------------------------------------------------------------------------- */

static int pod_index(const struct pod *pod)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pod->labels, INDEX_LABEL));
	if (!v || !*v)
		return -1;
	char *end;
	long i = strtol(v, &end, 10);
	return *end || i < 0 || i >= MAX_INDEXED_COMPLETIONS ? -1 : (int)i;
}

/* "0-2,4,6-7" of the indexes set in done[0..count). */
static char *index_ranges(const bool *done, int count)
{
	size_t size = 64, length = 0;
	char *out = xcalloc(1, size);
	for (int i = 0; i < count;) {
		if (!done[i]) {
			i++;
			continue;
		}
		int j = i;
		while (j + 1 < count && done[j + 1])
			j++;
		char part[32];
		int n = j > i ? snprintf(part, sizeof(part), "%s%d-%d", length ? "," : "", i, j)
		              : snprintf(part, sizeof(part), "%s%d", length ? "," : "", i);
		if (length + (size_t)n + 1 > size) {
			size = 2 * (length + (size_t)n + 1);
			out = xrealloc(out, size);
		}
		memcpy(out + length, part, (size_t)n + 1);
		length += (size_t)n;
		i = j + 1;
	}
	return out;
}

/* --- sync ------------------------------------------------------------------------------------ */

struct tally {
	const struct pod **active;
	size_t active_count;
	int64_t succeeded, failed, ready, restarts;
	int64_t last_failure_ms; /* wall clock: the latest end of a failed pod */
	bool *index_done;        /* Indexed: an index with a succeeded pod */
	bool *index_active;      /* Indexed: an index with an active pod */
};

struct job_sync {
	struct controllers *c;
	const cJSON *job;
	int writes;
	char failure[ERROR_MESSAGE_MAX];
};

static int delete_pod(struct job_sync *s, const struct pod *pod, struct error *err)
{
	int r = controller_delete(s->c, "pods", pod->namespace, pod->name, pod->uid, PROPAGATE_BACKGROUND, err);
	if (r > 0) {
		s->writes += r;
		controller_event(s->c, s->job, "Normal", "SuccessfulDelete", "Deleted pod: %s", pod->name);
	}
	return r < 0 ? r : 0;
}

static int delete_active(struct job_sync *s, const struct tally *t, size_t count, struct error *err)
{
	for (size_t i = 0; i < count && i < t->active_count; i++) {
		int r = delete_pod(s, t->active[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static void add_index_env(cJSON *containers, int index)
{
	char value[16];
	snprintf(value, sizeof(value), "%d", index);
	cJSON *container;
	cJSON_ArrayForEach(container, containers)
	{
		cJSON *env = cJSON_GetObjectItemCaseSensitive(container, "env");
		if (!cJSON_IsArray(env)) {
			cJSON_DeleteItemFromObjectCaseSensitive(container, "env");
			env = cJSON_AddArrayToObject(container, "env");
		}
		cJSON *var = cJSON_CreateObject();
		cJSON_AddStringToObject(var, "name", "JOB_COMPLETION_INDEX");
		cJSON_AddStringToObject(var, "value", value);
		cJSON_AddItemToArray(env, var);
	}
}

static bool create_pod(struct job_sync *s, int index)
{
	const cJSON *template =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s->job, "spec"), "template");
	char prefix[64];
	if (index >= 0)
		snprintf(prefix, sizeof(prefix), "%.45s-%d-", object_name(s->job), index);
	else
		snprintf(prefix, sizeof(prefix), "%.57s-", object_name(s->job));
	cJSON *pod = controller_pod_from_template(s->job, template, prefix);
	if (index >= 0) {
		char value[16], hostname[64];
		snprintf(value, sizeof(value), "%d", index);
		snprintf(hostname, sizeof(hostname), "%.45s-%d", object_name(s->job), index);
		controller_set_string(controller_child(object_metadata(pod), "labels"), INDEX_LABEL, value);
		controller_set_annotation(pod, INDEX_LABEL, value);
		cJSON *spec = controller_child(pod, "spec");
		if (!cJSON_GetObjectItemCaseSensitive(spec, "hostname"))
			controller_set_string(spec, "hostname", hostname);
		add_index_env(cJSON_GetObjectItemCaseSensitive(spec, "initContainers"), index);
		add_index_env(cJSON_GetObjectItemCaseSensitive(spec, "containers"), index);
	}
	struct error err = { 0 };
	char name[254];
	int r = controller_create(s->c, "pods", pod, name, &err);
	cJSON_Delete(pod);
	if (r < 0) {
		snprintf(s->failure, sizeof(s->failure), "%s", err.message);
		controller_event(s->c, s->job, "Warning", "FailedCreate", "Error creating: %s", err.message);
		return false;
	}
	s->writes++;
	controller_event(s->c, s->job, "Normal", "SuccessfulCreate", "Created pod: %s", name);
	return true;
}

/* The surplus to delete first: not ready, then the newest. */
static int compare_for_deletion(const void *pa, const void *pb)
{
	const struct pod *a = *(const struct pod *const *)pa, *b = *(const struct pod *const *)pb;
	if (a->ready != b->ready)
		return a->ready ? 1 : -1;
	if (a->created_ms != b->created_ms)
		return a->created_ms > b->created_ms ? -1 : 1;
	return strcmp(a->name, b->name);
}

static const char *finished_condition(const cJSON *status, const char **ret_when)
{
	static const char *const types[] = { "Complete", "Failed" };
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		const cJSON *condition = controller_condition(status, types[i]);
		const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(condition, "status"));
		if (value && strcmp(value, "True") == 0) {
			*ret_when =
			        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(condition, "lastTransitionTime"));
			return types[i];
		}
	}
	return NULL;
}

static void tally_pods(const struct pod **pods, size_t count, int completions, struct tally *t)
{
	t->active = xcalloc(count ? count : 1, sizeof(*t->active));
	if (completions > 0) {
		t->index_done = xcalloc((size_t)completions, sizeof(bool));
		t->index_active = xcalloc((size_t)completions, sizeof(bool));
	}
	for (size_t i = 0; i < count; i++) {
		const struct pod *pod = pods[i];
		int index = t->index_done ? pod_index(pod) : -1;
		if (index >= completions)
			index = -1;
		if (pod->phase == POD_SUCCEEDED) {
			if (!t->index_done)
				t->succeeded++;
			else if (index >= 0 && !t->index_done[index])
				t->succeeded++, t->index_done[index] = true;
		} else if (pod->phase == POD_FAILED) {
			t->failed++;
			int64_t end = pod->finished_ms      ? pod->finished_ms
			              : pod->ready_since_ms ? pod->ready_since_ms
			                                    : pod->created_ms;
			if (end > t->last_failure_ms)
				t->last_failure_ms = end;
		} else if (!pod->deleting) {
			t->active[t->active_count++] = pod;
			t->ready += pod->ready;
			t->restarts += pod->restarts;
			if (index >= 0)
				t->index_active[index] = true;
		}
	}
}

static int job_sync(struct controllers *c, const char *key, struct error *err)
{
	char ns[64];
	const char *name;
	if (!controller_split_key(key, ns, sizeof(ns), &name))
		return 0;
	cJSON *job = controller_get(c, RESOURCE, ns, name);
	if (!job)
		return 0;
	if (object_string_at(job, "metadata.deletionTimestamp")) {
		cJSON_Delete(job);
		return 0; /* the garbage collector takes its pods */
	}
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(job, "spec");
	struct selector *selector = controller_owner_selector(c, job);
	if (!selector) {
		cJSON_Delete(job);
		return 0;
	}
	const struct pod **pods = NULL;
	size_t pod_count = 0;
	int r = controller_claim_pods(c, job, selector, false, &pods, &pod_count, err);
	selector_free(selector);
	if (r < 0) {
		cJSON_Delete(job);
		return r;
	}
	struct job_sync s = { .c = c, .job = job, .writes = r };
	const char *mode = object_string_at(job, "spec.completionMode");
	bool indexed = mode && strcmp(mode, "Indexed") == 0;
	int64_t completions = controller_int_at(spec, "completions", -1);
	int64_t parallelism = controller_int_at(spec, "parallelism", 1);
	int64_t backoff_limit = controller_int_at(spec, "backoffLimit", 6);
	int64_t deadline_s = controller_int_at(spec, "activeDeadlineSeconds", -1);
	int64_t ttl_s = controller_int_at(spec, "ttlSecondsAfterFinished", -1);
	bool suspended = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "suspend"));
	const char *restart_policy = object_string_at(job, "spec.template.spec.restartPolicy");
	bool on_failure = restart_policy && strcmp(restart_policy, "OnFailure") == 0;
	if (indexed && (completions < 1 || completions > MAX_INDEXED_COMPLETIONS)) {
		controller_event(c, job, "Warning", "InvalidCompletions",
		                 "spec.completions: Required value: between 1 and %d when completionMode is Indexed",
		                 MAX_INDEXED_COMPLETIONS);
		free(pods);
		cJSON_Delete(job);
		return s.writes;
	}
	struct tally t = { 0 };
	tally_pods(pods, pod_count, indexed ? (int)completions : 0, &t);
	free(pods);

	const cJSON *stored_status = cJSON_GetObjectItemCaseSensitive(job, "status");
	int64_t succeeded = t.succeeded, failed = t.failed;
	if (controller_int_at(stored_status, "succeeded", 0) > succeeded)
		succeeded = controller_int_at(stored_status, "succeeded", 0);
	if (controller_int_at(stored_status, "failed", 0) > failed)
		failed = controller_int_at(stored_status, "failed", 0);
	int64_t now = controller_now_ms(c);
	char now_text[32];
	controller_now_rfc3339(c, now_text);
	cJSON *updated = cJSON_Duplicate(job, 1);
	cJSON *status = controller_child(updated, "status");
	const char *finished_at = NULL;
	const char *finished = finished_condition(stored_status, &finished_at);

	if (!finished) {
		if (!suspended && !object_string_at(job, "status.startTime"))
			controller_set_string(status, "startTime", now_text);
		int64_t start_ms = controller_parse_time(object_string_at(updated, "status.startTime"));
		const char *reason = NULL, *message = NULL;
		if (failed > backoff_limit || (on_failure && t.restarts > 0 && t.restarts >= backoff_limit)) {
			reason = "BackoffLimitExceeded";
			message = "Job has reached the specified backoff limit";
		} else if (deadline_s > 0 && start_ms && !suspended && now >= start_ms + deadline_s * 1000) {
			reason = "DeadlineExceeded";
			message = "Job was active longer than specified deadline";
		}
		bool complete = completions >= 0 ? succeeded >= completions : succeeded > 0 && t.active_count == 0;
		if (reason) {
			r = delete_active(&s, &t, t.active_count, err);
			t.active_count = 0;
			controller_set_condition(status, "Failed", "True", reason, message, now_text, false, false);
			controller_event(c, job, "Warning", reason, "%s", message);
			finished = "Failed";
			finished_at = now_text;
		} else if (complete) {
			r = delete_active(&s, &t, t.active_count, err);
			t.active_count = 0;
			controller_set_condition(status, "Complete", "True", "CompletionsReached",
			                         "Reached expected number of succeeded pods", now_text, false, false);
			controller_set_string(status, "completionTime", now_text);
			controller_event(c, job, "Normal", "Completed", "Job completed");
			finished = "Complete";
			finished_at = now_text;
		} else if (suspended) {
			r = delete_active(&s, &t, t.active_count, err);
			t.active_count = 0;
			controller_set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", now_text,
			                         false, false);
		} else {
			if (controller_condition(status, "Suspended"))
				controller_set_condition(status, "Suspended", "False", "JobResumed", "Job resumed",
				                         now_text, false, false);
			/* A work queue (no completions) starts nothing once one pod succeeded, and lets
			 * the others finish. */
			int64_t want = completions >= 0 ? completions - succeeded
			               : succeeded > 0  ? (int64_t)t.active_count
			                                : parallelism;
			if (want > parallelism)
				want = parallelism;
			if (want < 0)
				want = 0;
			int64_t diff = want - (int64_t)t.active_count;
			if (diff > 0) {
				int64_t due = 0;
				if (failed > 0 && t.last_failure_ms) {
					uint64_t delay = c->options.job_backoff_ms;
					for (int64_t i = 1; i < failed && delay < MAX_BACKOFF_MS; i++)
						delay *= 2;
					if (delay > MAX_BACKOFF_MS)
						delay = MAX_BACKOFF_MS;
					due = t.last_failure_ms + (int64_t)delay;
				}
				if (due > now) {
					controller_enqueue_at_wall(c, CONTROLLER_JOB, key, due);
				} else {
					int budget = diff > CONTROLLERS_MAX_BURST ? CONTROLLERS_MAX_BURST : (int)diff;
					for (int index = 0; budget > 0 && !s.failure[0]; budget--) {
						if (indexed) {
							while (index < completions &&
							       (t.index_done[index] || t.index_active[index]))
								index++;
							if (index >= completions)
								break;
						}
						if (!create_pod(&s, indexed ? index++ : -1))
							break;
					}
				}
			} else if (diff < 0) {
				qsort(t.active, t.active_count, sizeof(*t.active), compare_for_deletion);
				r = delete_active(&s, &t, (size_t)-diff, err);
			}
			if (deadline_s > 0 && start_ms)
				controller_enqueue_at_wall(c, CONTROLLER_JOB, key, start_ms + deadline_s * 1000 + 1);
		}
	} else if (strcmp(finished, "Failed") == 0 && t.active_count) {
		r = delete_active(&s, &t, t.active_count, err);
		t.active_count = 0;
	}

	controller_set_count(status, "active", (int64_t)t.active_count, true);
	controller_set_count(status, "succeeded", succeeded, true);
	controller_set_count(status, "failed", failed, true);
	controller_set_count(status, "ready", t.ready, false);
	if (indexed) {
		cleanup_free char *ranges = index_ranges(t.index_done, (int)completions);
		if (ranges[0])
			controller_set_string(status, "completedIndexes", ranges);
		else
			cJSON_DeleteItemFromObjectCaseSensitive(status, "completedIndexes");
	}
	free(t.active);
	free(t.index_done);
	free(t.index_active);
	if (r < 0) {
		cJSON_Delete(updated);
		cJSON_Delete(job);
		return r;
	}

	/* Finished: the time to live. */
	if (finished && ttl_s >= 0) {
		int64_t at = controller_parse_time(finished_at) + ttl_s * 1000;
		if (at <= now) {
			cJSON_Delete(updated);
			log_info("job %s finished %lld s ago: deleted (ttlSecondsAfterFinished)", key,
			         (long long)ttl_s);
			r = controller_delete(c, RESOURCE, ns, name, object_string_at(job, "metadata.uid"),
			                      PROPAGATE_FOREGROUND, err);
			cJSON_Delete(job);
			return r < 0 ? r : s.writes + r;
		}
		controller_enqueue_at_wall(c, CONTROLLER_JOB, key, at);
	}
	r = controller_finish_sync(c, RESOURCE, job, updated, s.writes, err);
	cJSON_Delete(updated);
	cJSON_Delete(job);
	return r;
}

const struct controller_ops job_controller = {
	.name = "job",
	.on_pod = on_pod,
	.on_object = on_object,
	.sync = job_sync,
};
