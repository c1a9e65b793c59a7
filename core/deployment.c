/* The Deployment controller, after Kubernetes' DeploymentController (sync.go, rolling.go,
 * recreate.go, progress.go), function for function where it matters.
 *
 * A Deployment owns ReplicaSets named <name>-<pod-template-hash>; the hash is of its pod
 * template (keys sorted) and status.collisionCount. The "new" ReplicaSet is the oldest one
 * whose template equals the Deployment's, ignoring the pod-template-hash label; the others
 * are "old". Revisions live in the deployment.kubernetes.io/revision annotation: the new
 * ReplicaSet gets the highest old revision plus one, and the Deployment carries it. That is
 * how a rollback works (`kubectl rollout undo` copies an old ReplicaSet's template into the
 * Deployment on the client side): the old ReplicaSet becomes the new one again and its
 * revision moves to the top, the previous number kept in revision-history.
 *
 * Queued: a Deployment that changed; the controller of a ReplicaSet that changed (or, for
 * one without a controller, the Deployments of its namespace that select it); the
 * Deployment of a pod that went away (Recreate waits for old pods to be gone). Delayed: a
 * rollout in progress, at its progress deadline.
 *
 * sync(namespace/name): being deleted -> status only; paused or a scaling event (a
 * ReplicaSet's desired-replicas annotation differs from spec.replicas) -> scale
 * (proportionally across ReplicaSets during a rollout) and status; else the strategy:
 *   RollingUpdate: scale the new ReplicaSet up within replicas + maxSurge, old ones down
 *                  keeping replicas - maxUnavailable available; when complete, delete old
 *                  ReplicaSets beyond revisionHistoryLimit
 *   Recreate:      old ReplicaSets to 0, wait until their pods are gone, then the new one
 * then the status: counts, Available, and Progressing (NewReplicaSetCreated,
 * FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded,
 * DeploymentPaused, DeploymentResumed). The Deployment is written once per sync, only if
 * its annotations or status changed.
 */
#include "core/controller.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "core/selector.h"
#include "platform/error.h"
#include "platform/memory.h"

#define RESOURCE "deployments.apps"
#define RS_RESOURCE "replicasets.apps"
#define REVISION "deployment.kubernetes.io/revision"
#define REVISION_HISTORY "deployment.kubernetes.io/revision-history"
#define DESIRED_REPLICAS "deployment.kubernetes.io/desired-replicas"
#define MAX_REPLICAS "deployment.kubernetes.io/max-replicas"
#define HASH_LABEL "pod-template-hash"
#define NO_PROGRESS_DEADLINE 2147483647
#define REVISION_HISTORY_MAX 2000 /* characters of revision-history kept */

/* --- queueing ------------------------------------------------------------------------------ */

static void enqueue_selecting(struct controllers *c, const cJSON *rs)
{
	const char *ns = object_namespace(rs);
	const cJSON *labels =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rs, "metadata"), "labels");
	map_each(e, &c->objects[CACHED_DEPLOYMENTS])
	{
		const cJSON *d = e->value;
		if (!ns || !object_namespace(d) || strcmp(ns, object_namespace(d)) != 0)
			continue;
		struct selector *selector = NULL;
		if (selector_from_json(
		            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "spec"), "selector"),
		            "spec.selector", &selector, NULL) == 0 &&
		    !selector_is_empty(selector) && selector_matches_labels(selector, labels))
			controller_enqueue(c, CONTROLLER_DEPLOYMENT, e->key);
		selector_free(selector);
	}
}

static void enqueue_owner(struct controllers *c, const cJSON *rs)
{
	const cJSON *ref = controller_ref_of(rs);
	if (!ref) {
		enqueue_selecting(c, rs);
		return;
	}
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "kind"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "name"));
	if (!kind || !name || strcmp(kind, "Deployment") != 0)
		return;
	cleanup_free char *key = xasprintf("%s/%s", object_namespace(rs), name);
	controller_enqueue(c, CONTROLLER_DEPLOYMENT, key);
}

static void on_object(struct controllers *c, enum cached_kind which, const cJSON *old, const cJSON *new)
{
	if (which == CACHED_DEPLOYMENTS) {
		cleanup_free char *key = controller_key(new ? new : old);
		controller_enqueue(c, CONTROLLER_DEPLOYMENT, key);
	} else if (which == CACHED_REPLICASETS) {
		if (old)
			enqueue_owner(c, old);
		if (new)
			enqueue_owner(c, new);
	}
}

static void on_pod(struct controllers *c, const struct pod *old, const struct pod *new)
{
	if (new || !old)
		return;
	const struct pod_owner *owner = pod_controller(old, "ReplicaSet");
	if (!owner || !owner->name)
		return;
	cleanup_free char *key = xasprintf("%s/%s", old->namespace, owner->name);
	const cJSON *rs = controller_cached(c, CACHED_REPLICASETS, key);
	if (rs)
		enqueue_owner(c, rs);
}

/* --- the state of one sync ----------------------------------------------------------------- */

struct sync {
	struct controllers *c;
	struct error *err;
	const cJSON *stored; /* the Deployment as stored */
	cJSON *d;            /* what will be written back (annotations, status) */
	const char *uid, *ns, *name;
	int replicas;
	bool rolling;
	cJSON **rs; /* its ReplicaSets, fresh from the store and kept current after each write */
	size_t rs_count;
	cJSON *new_rs; /* one of rs[], or NULL */
	int writes;
};

static int int_of(const cJSON *object, const char *path)
{
	return (int)controller_int_at(object, path, 0);
}

static int64_t revision_of_rs(const cJSON *rs)
{
	const char *r = controller_annotation(rs, REVISION);
	return r ? strtoll(r, NULL, 10) : 0;
}

static int annotation_int(const cJSON *rs, const char *name, bool *ret_ok)
{
	const char *v = controller_annotation(rs, name);
	char *end;
	long n = v ? strtol(v, &end, 10) : 0;
	*ret_ok = v && *v && *end == '\0';
	return (int)n;
}

/* ResolveFenceposts: maxSurge rounded up, maxUnavailable down, never both 0. */
static void fenceposts(const struct sync *s, int *ret_surge, int *ret_unavailable)
{
	const cJSON *rolling = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s->d, "spec"), "strategy"),
	        "rollingUpdate");
	int surge = controller_scaled_value(cJSON_GetObjectItemCaseSensitive(rolling, "maxSurge"), s->replicas, true,
	                                    (s->replicas * 25 + 99) / 100);
	int unavailable = controller_scaled_value(cJSON_GetObjectItemCaseSensitive(rolling, "maxUnavailable"),
	                                          s->replicas, false, s->replicas * 25 / 100);
	if (surge == 0 && unavailable == 0)
		unavailable = 1;
	*ret_surge = surge;
	*ret_unavailable = unavailable;
}

static int max_surge(const struct sync *s)
{
	if (!s->rolling)
		return 0;
	int surge, unavailable;
	fenceposts(s, &surge, &unavailable);
	return surge;
}

static int max_unavailable(const struct sync *s)
{
	if (!s->rolling || s->replicas == 0)
		return 0;
	int surge, unavailable;
	fenceposts(s, &surge, &unavailable);
	return unavailable > s->replicas ? s->replicas : unavailable;
}

static int spec_replicas(const cJSON *rs)
{
	return (int)controller_int_at(rs, "spec.replicas", 1);
}

static int sum(cJSON *const *list, size_t count, const cJSON *except, const char *path, bool spec)
{
	int total = 0;
	for (size_t i = 0; i < count; i++)
		if (list[i] && list[i] != except)
			total += spec ? spec_replicas(list[i]) : int_of(list[i], path);
	return total;
}

static int compare_created(const void *pa, const void *pb)
{
	const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
	int64_t ta = controller_parse_time(object_string_at(a, "metadata.creationTimestamp"));
	int64_t tb = controller_parse_time(object_string_at(b, "metadata.creationTimestamp"));
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return strcmp(object_name(a), object_name(b));
}

/* The old ReplicaSets (every one but the new), oldest first; the caller frees the array. */
static cJSON **old_sets(const struct sync *s, size_t *ret_count)
{
	cJSON **old = xcalloc(s->rs_count ? s->rs_count : 1, sizeof(*old));
	size_t n = 0;
	for (size_t i = 0; i < s->rs_count; i++)
		if (s->rs[i] != s->new_rs)
			old[n++] = s->rs[i];
	qsort(old, n, sizeof(*old), compare_created);
	*ret_count = n;
	return old;
}

/* --- templates and the new ReplicaSet ------------------------------------------------------ */

static cJSON *template_without_hash(const cJSON *owner)
{
	cJSON *template = cJSON_Duplicate(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(owner, "spec"), "template"), 1);
	cJSON *labels =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(template, "metadata"), "labels");
	cJSON_DeleteItemFromObjectCaseSensitive(labels, HASH_LABEL);
	return template;
}

static bool equal_ignoring_hash(const cJSON *a, const cJSON *b)
{
	cJSON *x = template_without_hash(a), *y = template_without_hash(b);
	bool equal = cJSON_Compare(x, y, true);
	cJSON_Delete(x);
	cJSON_Delete(y);
	return equal;
}

static cJSON *find_new(const struct sync *s)
{
	cJSON **sorted = xcalloc(s->rs_count ? s->rs_count : 1, sizeof(*sorted));
	if (s->rs_count)
		memcpy(sorted, s->rs, s->rs_count * sizeof(*sorted));
	qsort(sorted, s->rs_count, sizeof(*sorted), compare_created);
	cJSON *found = NULL;
	for (size_t i = 0; i < s->rs_count && !found; i++)
		if (equal_ignoring_hash(sorted[i], s->d))
			found = sorted[i];
	free(sorted);
	return found;
}

/* Writes rs (the current copy in s->rs) after fn changed it; keeps the stored result. */
static int write_rs(struct sync *s, cJSON *rs, const cJSON *before)
{
	int r = controller_update(s->c, RS_RESOURCE, before, rs, s->err);
	if (r > 0) {
		s->writes++;
		cJSON *fresh = controller_get(s->c, RS_RESOURCE, s->ns, object_name(rs));
		if (fresh) {
			for (size_t i = 0; i < s->rs_count; i++) {
				if (s->rs[i] == rs) {
					if (s->new_rs == rs)
						s->new_rs = fresh;
					s->rs[i] = fresh;
					cJSON_Delete(rs);
					break;
				}
			}
		}
	}
	return r;
}

static bool skipped_annotation(const char *name)
{
	static const char *const skipped[] = { "kubectl.kubernetes.io/last-applied-configuration",
		                               REVISION,
		                               REVISION_HISTORY,
		                               DESIRED_REPLICAS,
		                               MAX_REPLICAS,
		                               "deprecated.deployment.rollback.to" };
	for (size_t i = 0; i < ARRAY_SIZE(skipped); i++)
		if (strcmp(name, skipped[i]) == 0)
			return true;
	return false;
}

/* SetReplicasAnnotations: desired and max replicas as the Deployment sees them now. */
static bool set_replicas_annotations(const struct sync *s, cJSON *rs)
{
	char desired[16], max[16];
	snprintf(desired, sizeof(desired), "%d", s->replicas);
	snprintf(max, sizeof(max), "%d", s->replicas + max_surge(s));
	bool changed = false;
	const char *have = controller_annotation(rs, DESIRED_REPLICAS);
	if (!have || strcmp(have, desired) != 0) {
		controller_set_annotation(rs, DESIRED_REPLICAS, desired);
		changed = true;
	}
	have = controller_annotation(rs, MAX_REPLICAS);
	if (!have || strcmp(have, max) != 0) {
		controller_set_annotation(rs, MAX_REPLICAS, max);
		changed = true;
	}
	return changed;
}

/* SetNewReplicaSetAnnotations. */
static bool set_new_annotations(const struct sync *s, cJSON *rs, int64_t new_revision, bool exists)
{
	bool changed = false;
	const cJSON *annotations =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s->d, "metadata"), "annotations");
	const cJSON *a;
	cJSON_ArrayForEach(a, annotations)
	{
		if (!cJSON_IsString(a) || skipped_annotation(a->string))
			continue;
		const char *have = controller_annotation(rs, a->string);
		if (!have || strcmp(have, a->valuestring) != 0) {
			controller_set_annotation(rs, a->string, a->valuestring);
			changed = true;
		}
	}
	const char *old = controller_annotation(rs, REVISION);
	int64_t old_revision = old ? strtoll(old, NULL, 10) : 0;
	if (old_revision < new_revision) {
		char text[24];
		snprintf(text, sizeof(text), "%lld", (long long)new_revision);
		if (old && *old) {
			const char *history = controller_annotation(rs, REVISION_HISTORY);
			cleanup_free char *joined =
			        history && *history ? xasprintf("%s,%s", history, old) : xstrdup(old);
			size_t length = strlen(joined);
			const char *kept = joined;
			while (length > REVISION_HISTORY_MAX && strchr(kept, ',')) {
				kept = strchr(kept, ',') + 1;
				length = strlen(kept);
			}
			controller_set_annotation(rs, REVISION_HISTORY, kept);
		}
		controller_set_annotation(rs, REVISION, text);
		changed = true;
	}
	if (!exists && set_replicas_annotations(s, rs))
		changed = true;
	return changed;
}

static bool set_progressing(struct sync *s, const char *value, const char *reason, const char *message, bool touch)
{
	char now[32];
	controller_now_rfc3339(s->c, now);
	return controller_set_condition(controller_child(s->d, "status"), "Progressing", value, reason, message, now,
	                                true, touch);
}

static bool has_progress_deadline(const struct sync *s)
{
	int64_t deadline = controller_int_at(s->d, "spec.progressDeadlineSeconds", 600);
	return deadline > 0 && deadline != NO_PROGRESS_DEADLINE;
}

/* NewRSNewReplicas: how big the new ReplicaSet may be now. */
static int new_rs_replicas(const struct sync *s, const cJSON *new_rs)
{
	if (!s->rolling)
		return s->replicas;
	int current = sum(s->rs, s->rs_count, NULL, NULL, true);
	if (new_rs && !s->new_rs)
		current += spec_replicas(new_rs);
	int max_total = s->replicas + max_surge(s);
	int have = new_rs ? spec_replicas(new_rs) : 0;
	if (current >= max_total)
		return have;
	int up = max_total - current;
	if (up > s->replicas - have)
		up = s->replicas - have;
	return have + up;
}

static int create_new_rs(struct sync *s, int64_t new_revision)
{
	int64_t collisions = controller_int_at(s->d, "status.collisionCount", 0);
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(s->d, "spec");
	char hash[16];
	cJSON *template = template_without_hash(s->d);
	controller_hash(template, collisions, hash);
	cJSON *template_labels = controller_child(controller_child(template, "metadata"), "labels");
	controller_set_string(template_labels, HASH_LABEL, hash);
	cJSON *rs = cJSON_CreateObject();
	cJSON_AddStringToObject(rs, "apiVersion", "apps/v1");
	cJSON_AddStringToObject(rs, "kind", "ReplicaSet");
	cJSON *metadata = cJSON_AddObjectToObject(rs, "metadata");
	char name[300];
	snprintf(name, sizeof(name), "%.200s-%s", s->name, hash);
	cJSON_AddStringToObject(metadata, "name", name);
	cJSON_AddStringToObject(metadata, "namespace", s->ns);
	cJSON_AddItemToObject(metadata, "labels", cJSON_Duplicate(template_labels, 1));
	cJSON *refs = cJSON_AddArrayToObject(metadata, "ownerReferences");
	cJSON_AddItemToArray(refs, controller_owner_reference(s->d));
	cJSON *rs_spec = cJSON_AddObjectToObject(rs, "spec");
	cJSON_AddNumberToObject(rs_spec, "replicas", 0);
	cJSON_AddNumberToObject(rs_spec, "minReadySeconds", (double)controller_int_at(spec, "minReadySeconds", 0));
	cJSON *selector = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(spec, "selector"), 1);
	controller_set_string(controller_child(selector, "matchLabels"), HASH_LABEL, hash);
	cJSON_AddItemToObject(rs_spec, "selector", selector);
	cJSON_AddItemToObject(rs_spec, "template", template);
	int replicas = new_rs_replicas(s, rs);
	controller_set_number(rs_spec, "replicas", replicas);
	set_new_annotations(s, rs, new_revision, false);
	struct error create_err = { 0 };
	int r = controller_create(s->c, RS_RESOURCE, rs, NULL, &create_err);
	cJSON_Delete(rs);
	if (r == -EEXIST) {
		cJSON *existing = controller_get(s->c, RS_RESOURCE, s->ns, name);
		bool ours = existing && controller_owned_by(existing, s->uid) && equal_ignoring_hash(existing, s->d);
		if (ours) {
			s->rs = xrealloc(s->rs, (s->rs_count + 1) * sizeof(*s->rs));
			s->rs[s->rs_count++] = existing;
			s->new_rs = existing;
			return 0;
		}
		cJSON_Delete(existing);
		/* Another ReplicaSet has the name: a different hash next time. */
		controller_set_number(controller_child(s->d, "status"), "collisionCount", (double)(collisions + 1));
		return 0;
	}
	if (r < 0) {
		controller_event(s->c, s->d, "Warning", "FailedCreate", "Failed to create new replica set \"%s\": %s",
		                 name, create_err.message);
		set_progressing(s, "False", "ReplicaSetCreateError",
		                create_err.message[0] ? create_err.message : "cannot create the replica set", false);
		return 0;
	}
	s->writes++;
	if (replicas > 0)
		controller_event(s->c, s->d, "Normal", "ScalingReplicaSet", "Scaled up replica set %s to %d", name,
		                 replicas);
	char message[400];
	snprintf(message, sizeof(message), "Created new replica set \"%s\"", name);
	set_progressing(s, "True", "NewReplicaSetCreated", message, false);
	cJSON *fresh = controller_get(s->c, RS_RESOURCE, s->ns, name);
	if (fresh) {
		s->rs = xrealloc(s->rs, (s->rs_count + 1) * sizeof(*s->rs));
		s->rs[s->rs_count++] = fresh;
		s->new_rs = fresh;
	}
	return 0;
}

/* getAllReplicaSetsAndSyncRevision: finds (or creates) the new ReplicaSet and brings the
 * revisions up to date. */
static int sync_revision(struct sync *s, bool create)
{
	s->new_rs = find_new(s);
	int64_t max_old = 0;
	for (size_t i = 0; i < s->rs_count; i++)
		if (s->rs[i] != s->new_rs && revision_of_rs(s->rs[i]) > max_old)
			max_old = revision_of_rs(s->rs[i]);
	int64_t new_revision = max_old + 1;
	if (s->new_rs) {
		cJSON *rs = s->new_rs;
		cJSON *before = cJSON_Duplicate(rs, 1);
		bool changed = set_new_annotations(s, rs, new_revision, true);
		int64_t min_ready = controller_int_at(s->d, "spec.minReadySeconds", 0);
		if (controller_int_at(rs, "spec.minReadySeconds", 0) != min_ready) {
			controller_set_number(controller_child(rs, "spec"), "minReadySeconds", (double)min_ready);
			changed = true;
		}
		int r = changed ? write_rs(s, rs, before) : 0;
		cJSON_Delete(before);
		if (r < 0)
			return r;
		if (!controller_condition(cJSON_GetObjectItemCaseSensitive(s->d, "status"), "Progressing")) {
			char message[400];
			snprintf(message, sizeof(message), "Found new replica set \"%s\"", object_name(s->new_rs));
			set_progressing(s, "True", "FoundNewReplicaSet", message, false);
		}
	} else if (create) {
		int r = create_new_rs(s, new_revision);
		if (r < 0)
			return r;
	}
	if (s->new_rs) {
		const char *revision = controller_annotation(s->new_rs, REVISION);
		if (revision)
			controller_set_annotation(s->d, REVISION, revision);
	}
	return 0;
}

/* --- scaling ------------------------------------------------------------------------------- */

static int scale_rs(struct sync *s, cJSON *rs, int replicas)
{
	int was = spec_replicas(rs);
	cJSON *before = cJSON_Duplicate(rs, 1);
	controller_set_number(controller_child(rs, "spec"), "replicas", replicas);
	set_replicas_annotations(s, rs);
	char name[254];
	snprintf(name, sizeof(name), "%s", object_name(rs));
	int r = write_rs(s, rs, before);
	cJSON_Delete(before);
	if (r > 0 && was != replicas)
		controller_event(s->c, s->d, "Normal", "ScalingReplicaSet", "Scaled %s replica set %s to %d from %d",
		                 replicas > was ? "up" : "down", name, replicas, was);
	return r < 0 ? r : (was != replicas);
}

/* reconcileNewReplicaSet */
static int reconcile_new(struct sync *s)
{
	if (!s->new_rs)
		return 0;
	int have = spec_replicas(s->new_rs);
	if (have == s->replicas)
		return 0;
	int want = have > s->replicas ? s->replicas : new_rs_replicas(s, s->new_rs);
	return want == have ? 0 : scale_rs(s, s->new_rs, want);
}

/* reconcileOldReplicaSets, with cleanupUnhealthyReplicas and
 * scaleDownOldReplicaSetsForRollingUpdate. */
static int reconcile_old(struct sync *s)
{
	size_t old_count;
	cJSON **old = old_sets(s, &old_count);
	int scaled = 0;
	int old_pods = sum(old, old_count, NULL, NULL, true);
	if (old_pods == 0)
		goto out;
	int all_pods = sum(s->rs, s->rs_count, NULL, NULL, true);
	int min_available = s->replicas - max_unavailable(s);
	int new_unavailable = s->new_rs ? spec_replicas(s->new_rs) - int_of(s->new_rs, "status.availableReplicas") : 0;
	int max_scaled_down = all_pods - min_available - new_unavailable;
	if (max_scaled_down <= 0)
		goto out;
	/* Unhealthy replicas of old ReplicaSets go first: they serve no one. */
	int cleaned = 0;
	for (size_t i = 0; i < old_count && cleaned < max_scaled_down; i++) {
		int replicas = spec_replicas(old[i]), available = int_of(old[i], "status.availableReplicas");
		if (replicas == 0 || replicas == available)
			continue;
		int down = replicas - available;
		if (down > max_scaled_down - cleaned)
			down = max_scaled_down - cleaned;
		cJSON *rs = old[i];
		int r = scale_rs(s, rs, replicas - down);
		if (r < 0) {
			scaled = r;
			goto out;
		}
		cleaned += down;
		scaled += r;
	}
	free(old);
	old = old_sets(s, &old_count); /* the copies moved on with the writes */
	int available = sum(s->rs, s->rs_count, NULL, "status.availableReplicas", false);
	if (available <= min_available)
		goto out;
	int total = available - min_available, done = 0;
	for (size_t i = 0; i < old_count && done < total; i++) {
		int replicas = spec_replicas(old[i]);
		if (replicas == 0)
			continue;
		int down = replicas < total - done ? replicas : total - done;
		int r = scale_rs(s, old[i], replicas - down);
		if (r < 0) {
			scaled = r;
			goto out;
		}
		done += down;
		scaled += r;
	}
out:
	free(old);
	return scaled;
}

static int compare_size_newer(const void *pa, const void *pb)
{
	const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
	if (spec_replicas(a) != spec_replicas(b))
		return spec_replicas(b) - spec_replicas(a);
	return -compare_created(pa, pb);
}

static int compare_size_older(const void *pa, const void *pb)
{
	const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
	if (spec_replicas(a) != spec_replicas(b))
		return spec_replicas(b) - spec_replicas(a);
	return compare_created(pa, pb);
}

/* getReplicaSetFraction / GetProportion. */
static int proportion(const struct sync *s, const cJSON *rs, int to_add, int added)
{
	int replicas = spec_replicas(rs);
	if (replicas == 0 || to_add == 0 || to_add == added)
		return 0;
	int fraction;
	if (s->replicas == 0) {
		fraction = -replicas;
	} else {
		bool ok;
		int annotated = annotation_int(rs, MAX_REPLICAS, &ok);
		if (!ok)
			annotated = int_of(s->stored, "status.replicas");
		fraction = annotated > 0
		                   ? (int)lround((double)replicas * (s->replicas + max_surge(s)) / annotated) - replicas
		                   : 0;
	}
	int allowed = to_add - added;
	if (to_add > 0)
		return fraction < allowed ? fraction : allowed;
	return fraction > allowed ? fraction : allowed;
}

/* scale(): a Deployment resized, perhaps mid-rollout. */
static int scale(struct sync *s)
{
	cJSON **active = xcalloc(s->rs_count ? s->rs_count : 1, sizeof(*active));
	size_t active_count = 0;
	for (size_t i = 0; i < s->rs_count; i++)
		if (spec_replicas(s->rs[i]) > 0)
			active[active_count++] = s->rs[i];
	int r = 0;
	cJSON *only = NULL;
	if (active_count == 0) {
		if (s->new_rs) {
			only = s->new_rs;
		} else if (s->rs_count) {
			size_t n;
			cJSON **old = old_sets(s, &n);
			only = n ? old[n - 1] : NULL;
			free(old);
		}
	} else if (active_count == 1) {
		only = active[0];
	}
	if (only || active_count <= 1) {
		if (only && spec_replicas(only) != s->replicas)
			r = scale_rs(s, only, s->replicas);
		goto out;
	}
	bool ok;
	if (s->new_rs && spec_replicas(s->new_rs) == s->replicas &&
	    annotation_int(s->new_rs, DESIRED_REPLICAS, &ok) == s->replicas && ok &&
	    int_of(s->new_rs, "status.availableReplicas") == s->replicas) {
		/* The new ReplicaSet is saturated: the old ones go. */
		for (size_t i = 0; i < active_count && r >= 0; i++)
			if (active[i] != s->new_rs) {
				int w = scale_rs(s, active[i], 0);
				r = w < 0 ? w : r + w;
			}
		goto out;
	}
	if (!s->rolling)
		goto out;
	int all = sum(active, active_count, NULL, NULL, true);
	int allowed = s->replicas > 0 ? s->replicas + max_surge(s) : 0;
	int to_add = allowed - all;
	qsort(active, active_count, sizeof(*active), to_add > 0 ? compare_size_newer : compare_size_older);
	int *sizes = xcalloc(active_count, sizeof(*sizes));
	int added = 0;
	for (size_t i = 0; i < active_count; i++) {
		int p = to_add ? proportion(s, active[i], to_add, added) : 0;
		sizes[i] = spec_replicas(active[i]) + p;
		added += p;
	}
	if (to_add != 0) {
		sizes[0] += to_add - added;
		if (sizes[0] < 0)
			sizes[0] = 0;
	}
	/* scale_rs replaces the copies it writes: collect names first. */
	char **names = xcalloc(active_count, sizeof(*names));
	for (size_t i = 0; i < active_count; i++)
		names[i] = xstrdup(object_name(active[i]));
	for (size_t i = 0; i < active_count && r >= 0; i++) {
		for (size_t j = 0; j < s->rs_count; j++) {
			if (strcmp(object_name(s->rs[j]), names[i]) == 0) {
				int w = scale_rs(s, s->rs[j], sizes[i]);
				r = w < 0 ? w : r + w;
				break;
			}
		}
	}
	for (size_t i = 0; i < active_count; i++)
		free(names[i]);
	free(names);
	free(sizes);
out:
	free(active);
	return r;
}

/* isScalingEvent */
static bool scaling_event(const struct sync *s)
{
	for (size_t i = 0; i < s->rs_count; i++) {
		bool ok;
		if (spec_replicas(s->rs[i]) > 0 && annotation_int(s->rs[i], DESIRED_REPLICAS, &ok) != s->replicas && ok)
			return true;
	}
	return false;
}

/* cleanupDeployment: old ReplicaSets beyond revisionHistoryLimit, lowest revision first. */
static int compare_revision(const void *pa, const void *pb)
{
	const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
	int64_t ra = revision_of_rs(a), rb = revision_of_rs(b);
	if (ra != rb)
		return ra < rb ? -1 : 1;
	return compare_created(pa, pb);
}

static int cleanup(struct sync *s)
{
	int64_t limit = controller_int_at(s->d, "spec.revisionHistoryLimit", 10);
	size_t count;
	cJSON **old = old_sets(s, &count);
	size_t alive = 0;
	for (size_t i = 0; i < count; i++)
		if (!object_string_at(old[i], "metadata.deletionTimestamp"))
			old[alive++] = old[i];
	int r = 0;
	if ((int64_t)alive > limit) {
		qsort(old, alive, sizeof(*old), compare_revision);
		for (size_t i = 0; i < alive - (size_t)limit && r >= 0; i++) {
			const cJSON *rs = old[i];
			if (int_of(rs, "status.replicas") != 0 || spec_replicas(rs) != 0 ||
			    controller_int_at(rs, "metadata.generation", 1) >
			            controller_int_at(rs, "status.observedGeneration", 0))
				continue;
			int w = controller_delete(s->c, RS_RESOURCE, s->ns, object_name(rs),
			                          object_string_at(rs, "metadata.uid"), PROPAGATE_BACKGROUND, s->err);
			r = w < 0 ? w : r + w;
		}
	}
	free(old);
	if (r > 0)
		s->writes += r;
	return r < 0 ? r : 0;
}

/* --- status ---------------------------------------------------------------------------------- */

/* calculateStatus */
static void calculate_status(struct sync *s)
{
	cJSON *status = controller_child(s->d, "status");
	int available = sum(s->rs, s->rs_count, NULL, "status.availableReplicas", false);
	int total = sum(s->rs, s->rs_count, NULL, "status.replicas", false);
	int unavailable = total - available;
	controller_set_count(status, "observedGeneration", controller_int_at(s->d, "metadata.generation", 1), true);
	controller_set_count(status, "replicas", total, true);
	controller_set_count(status, "updatedReplicas", s->new_rs ? int_of(s->new_rs, "status.replicas") : 0, true);
	controller_set_count(status, "readyReplicas", sum(s->rs, s->rs_count, NULL, "status.readyReplicas", false),
	                     true);
	controller_set_count(status, "availableReplicas", available, true);
	controller_set_count(status, "unavailableReplicas", unavailable > 0 ? unavailable : 0, true);
	char now[32];
	controller_now_rfc3339(s->c, now);
	if (available >= s->replicas - max_unavailable(s))
		controller_set_condition(status, "Available", "True", "MinimumReplicasAvailable",
		                         "Deployment has minimum availability.", now, true, false);
	else
		controller_set_condition(status, "Available", "False", "MinimumReplicasUnavailable",
		                         "Deployment does not have minimum availability.", now, true, false);
}

static bool complete(const struct sync *s)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(s->d, "status");
	return int_of(status, "updatedReplicas") == s->replicas && int_of(status, "replicas") == s->replicas &&
	       int_of(status, "availableReplicas") == s->replicas &&
	       controller_int_at(status, "observedGeneration", 0) >= controller_int_at(s->d, "metadata.generation", 1);
}

static bool progressing(const struct sync *s)
{
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(s->stored, "status");
	const cJSON *new = cJSON_GetObjectItemCaseSensitive(s->d, "status");
	int old_old = int_of(old, "replicas") - int_of(old, "updatedReplicas");
	int new_old = int_of(new, "replicas") - int_of(new, "updatedReplicas");
	return int_of(new, "updatedReplicas") > int_of(old, "updatedReplicas") || new_old < old_old ||
	       int_of(new, "readyReplicas") > int_of(old, "readyReplicas") ||
	       int_of(new, "availableReplicas") > int_of(old, "availableReplicas");
}

static const char *condition_string(const cJSON *condition, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(condition, name));
}

static bool timed_out(const struct sync *s)
{
	const cJSON *condition = controller_condition(cJSON_GetObjectItemCaseSensitive(s->d, "status"), "Progressing");
	const char *reason = condition_string(condition, "reason");
	if (!has_progress_deadline(s) || !condition || !reason || strcmp(reason, "NewReplicaSetAvailable") == 0)
		return false;
	if (strcmp(reason, "ProgressDeadlineExceeded") == 0)
		return true;
	int64_t from = controller_parse_time(condition_string(condition, "lastUpdateTime"));
	int64_t deadline = controller_int_at(s->d, "spec.progressDeadlineSeconds", 600) * 1000;
	return from > 0 && from + deadline < controller_now_ms(s->c);
}

/* The ReplicaFailure of the ReplicaSets, carried over (getReplicaFailures). */
static void carry_replica_failure(struct sync *s)
{
	cJSON *status = controller_child(s->d, "status");
	const cJSON *failure = NULL;
	if (s->new_rs)
		failure = controller_condition(cJSON_GetObjectItemCaseSensitive(s->new_rs, "status"), "ReplicaFailure");
	for (size_t i = 0; i < s->rs_count && !failure; i++)
		failure = controller_condition(cJSON_GetObjectItemCaseSensitive(s->rs[i], "status"), "ReplicaFailure");
	char now[32];
	controller_now_rfc3339(s->c, now);
	if (failure)
		controller_set_condition(status, "ReplicaFailure", "True", condition_string(failure, "reason"),
		                         condition_string(failure, "message"), now, true, false);
	else
		controller_remove_condition(status, "ReplicaFailure");
}

/* syncRolloutStatus */
static void rollout_status(struct sync *s)
{
	calculate_status(s);
	cJSON *status = controller_child(s->d, "status");
	if (!has_progress_deadline(s))
		controller_remove_condition(status, "Progressing");
	const cJSON *current = controller_condition(status, "Progressing");
	const char *reason = condition_string(current, "reason");
	bool is_complete = int_of(status, "replicas") == int_of(status, "updatedReplicas") && reason &&
	                   strcmp(reason, "NewReplicaSetAvailable") == 0;
	char message[400];
	const char *rs_name = s->new_rs ? object_name(s->new_rs) : NULL;
	if (has_progress_deadline(s) && !is_complete) {
		if (complete(s)) {
			if (rs_name)
				snprintf(message, sizeof(message), "ReplicaSet \"%s\" has successfully progressed.",
				         rs_name);
			else
				snprintf(message, sizeof(message), "Deployment has successfully progressed.");
			set_progressing(s, "True", "NewReplicaSetAvailable", message, false);
		} else if (progressing(s)) {
			if (rs_name)
				snprintf(message, sizeof(message), "ReplicaSet \"%s\" is progressing.", rs_name);
			else
				snprintf(message, sizeof(message), "Deployment is progressing.");
			set_progressing(s, "True", "ReplicaSetUpdated", message, true);
		} else if (timed_out(s)) {
			if (rs_name)
				snprintf(message, sizeof(message), "ReplicaSet \"%s\" has timed out progressing.",
				         rs_name);
			else
				snprintf(message, sizeof(message), "Deployment %s has timed out progressing.", s->name);
			set_progressing(s, "False", "ProgressDeadlineExceeded", message, false);
		}
	}
	carry_replica_failure(s);
}

/* requeueStuckDeployment: come back at the progress deadline. */
static void requeue_at_deadline(struct sync *s, const char *key)
{
	const cJSON *current = controller_condition(cJSON_GetObjectItemCaseSensitive(s->d, "status"), "Progressing");
	const char *reason = condition_string(current, "reason");
	if (!has_progress_deadline(s) || !current || complete(s) || !reason ||
	    strcmp(reason, "ProgressDeadlineExceeded") == 0 || strcmp(reason, "DeploymentPaused") == 0)
		return;
	int64_t from = controller_parse_time(condition_string(current, "lastUpdateTime"));
	if (from <= 0)
		return;
	int64_t deadline = controller_int_at(s->d, "spec.progressDeadlineSeconds", 600) * 1000;
	controller_enqueue_at_wall(s->c, CONTROLLER_DEPLOYMENT, key, from + deadline + 1000);
}

/* checkPausedConditions */
static void paused_conditions(struct sync *s, bool paused)
{
	if (!has_progress_deadline(s))
		return;
	const cJSON *current = controller_condition(cJSON_GetObjectItemCaseSensitive(s->d, "status"), "Progressing");
	const char *reason = condition_string(current, "reason");
	if (reason && strcmp(reason, "ProgressDeadlineExceeded") == 0)
		return;
	bool paused_condition = reason && strcmp(reason, "DeploymentPaused") == 0;
	if (paused && !paused_condition)
		set_progressing(s, "Unknown", "DeploymentPaused", "Deployment is paused", false);
	else if (!paused && paused_condition)
		set_progressing(s, "Unknown", "DeploymentResumed", "Deployment is resumed", false);
}

/* --- the strategies ------------------------------------------------------------------------ */

static int rollout_rolling(struct sync *s, const char *key)
{
	int r = sync_revision(s, true);
	if (r < 0)
		return r;
	r = reconcile_new(s);
	if (r < 0)
		return r;
	if (r == 0) {
		r = reconcile_old(s);
		if (r < 0)
			return r;
	}
	if (r == 0) {
		calculate_status(s);
		if (complete(s) && (r = cleanup(s)) < 0)
			return r;
	}
	rollout_status(s);
	requeue_at_deadline(s, key);
	return 0;
}

/* Are pods of the old ReplicaSets still there (being deleted counts)? */
static bool old_pods_running(const struct sync *s)
{
	for (size_t i = 0; i < s->rs_count; i++) {
		if (s->rs[i] == s->new_rs)
			continue;
		if (int_of(s->rs[i], "status.replicas") > 0)
			return true;
		struct map *pods = map_get(&s->c->pods_by_owner, object_string_at(s->rs[i], "metadata.uid"));
		if (!pods)
			continue;
		map_each(e, pods)
		{
			const struct pod *pod = e->value;
			if (pod->phase != POD_SUCCEEDED && pod->phase != POD_FAILED)
				return true;
		}
	}
	return false;
}

static int rollout_recreate(struct sync *s, const char *key)
{
	int r = sync_revision(s, false);
	if (r < 0)
		return r;
	int scaled = 0;
	for (size_t i = 0; i < s->rs_count; i++) {
		cJSON *rs = s->rs[i];
		if (rs == s->new_rs || spec_replicas(rs) == 0)
			continue;
		if ((r = scale_rs(s, rs, 0)) < 0)
			return r;
		scaled += r;
	}
	if (scaled == 0 && !old_pods_running(s)) {
		if (!s->new_rs && (r = sync_revision(s, true)) < 0)
			return r;
		if (s->new_rs && spec_replicas(s->new_rs) != s->replicas &&
		    (r = scale_rs(s, s->new_rs, s->replicas)) < 0)
			return r;
		calculate_status(s);
		if (complete(s) && (r = cleanup(s)) < 0)
			return r;
	}
	rollout_status(s);
	requeue_at_deadline(s, key);
	return 0;
}

/* sync(): paused or resized. */
static int scale_only(struct sync *s, bool paused)
{
	int r = sync_revision(s, false);
	if (r < 0)
		return r;
	if ((r = scale(s)) < 0)
		return r;
	if (paused && (r = cleanup(s)) < 0)
		return r;
	calculate_status(s);
	return 0;
}

/* --- claiming and the sync ------------------------------------------------------------------ */

/* Its ReplicaSets: controlled by it and selected (released otherwise), plus orphans it
 * selects (adopted unless it is being deleted). */
static int claim(struct sync *s, const struct selector *selector, bool deleting)
{
	map_each(e, &s->c->objects[CACHED_REPLICASETS])
	{
		const cJSON *cached = e->value;
		const char *ns = object_namespace(cached);
		if (!ns || strcmp(ns, s->ns) != 0)
			continue;
		const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(cached, "metadata"), "labels");
		bool matches = selector_matches_labels(selector, labels);
		bool owned = controller_owned_by(cached, s->uid);
		const char *rs_uid = object_string_at(cached, "metadata.uid");
		int r = 0;
		if (owned && !matches && !deleting) {
			r = controller_claim(s->c, RS_RESOURCE, ns, object_name(cached), rs_uid, NULL, s->uid, s->err);
			owned = false;
		} else if (!owned && !controller_ref_of(cached) && matches && !deleting &&
		           !object_string_at(cached, "metadata.deletionTimestamp")) {
			r = controller_claim(s->c, RS_RESOURCE, ns, object_name(cached), rs_uid, s->d, NULL, s->err);
			owned = r > 0;
		}
		if (r < 0)
			return r;
		s->writes += r > 0;
		if (!owned)
			continue;
		cJSON *fresh = controller_get(s->c, RS_RESOURCE, ns, object_name(cached));
		if (!fresh)
			continue;
		s->rs = xrealloc(s->rs, (s->rs_count + 1) * sizeof(*s->rs));
		s->rs[s->rs_count++] = fresh;
	}
	return 0;
}

static int deployment_sync(struct controllers *c, const char *key, struct error *err)
{
	char ns[64];
	const char *name;
	if (!controller_split_key(key, ns, sizeof(ns), &name))
		return 0;
	cJSON *stored = controller_get(c, RESOURCE, ns, name);
	if (!stored)
		return 0;
	struct sync s = {
		.c = c,
		.err = err,
		.stored = stored,
		.d = cJSON_Duplicate(stored, 1),
		.uid = object_string_at(stored, "metadata.uid"),
		.ns = ns,
		.name = name,
		.replicas = (int)controller_int_at(stored, "spec.replicas", 1),
	};
	const char *type = object_string_at(stored, "spec.strategy.type");
	s.rolling = !type || strcmp(type, "Recreate") != 0;
	struct selector *selector = NULL;
	struct error selector_err = { 0 };
	int r = 0;
	if (selector_from_json(
	            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(stored, "spec"), "selector"),
	            "spec.selector", &selector, &selector_err) < 0 ||
	    selector_is_empty(selector)) {
		controller_event(c, stored, "Warning", "SelectingAll", "%s",
		                 selector_err.message[0]
		                         ? selector_err.message
		                         : "This deployment is selecting all pods. A non-empty selector is "
		                           "required.");
		goto out;
	}
	bool deleting = object_string_at(stored, "metadata.deletionTimestamp") != NULL;
	if ((r = claim(&s, selector, deleting)) < 0)
		goto out;
	bool paused = cJSON_IsTrue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(stored, "spec"), "paused"));
	if (deleting) {
		s.new_rs = find_new(&s);
		calculate_status(&s);
	} else {
		paused_conditions(&s, paused);
		if (paused || scaling_event(&s))
			r = scale_only(&s, paused);
		else if (s.rolling)
			r = rollout_rolling(&s, key);
		else
			r = rollout_recreate(&s, key);
	}
	if (r < 0)
		goto out;
	r = controller_finish_sync(c, RESOURCE, stored, s.d, s.writes, err);
out:
	selector_free(selector);
	for (size_t i = 0; i < s.rs_count; i++)
		cJSON_Delete(s.rs[i]);
	free(s.rs);
	cJSON_Delete(s.d);
	cJSON_Delete(stored);
	return r;
}

const struct controller_ops deployment_controller = {
	.name = "deployment",
	.on_pod = on_pod,
	.on_object = on_object,
	.sync = deployment_sync,
};
