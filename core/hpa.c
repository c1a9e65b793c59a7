/* The HorizontalPodAutoscaler controller (autoscaling/v2): scales a Deployment or a
 * ReplicaSet (its spec.replicas, Bramble's scale) on the cpu or memory the agents report
 * (core/metrics.h), with Kubernetes' algorithm:
 *
 *   per metric (Resource cpu|memory; Utilization of the pods' requests, or AverageValue):
 *     the target's pods (its selector) not being deleted and not Failed; those with
 *     metrics give usageRatio = usage / target; missing metrics (no fresh report) and,
 *     for cpu, pods not Ready are set aside. Without set-aside pods:
 *       |ratio - 1| <= 10%  -> current replicas, else ceil(ratio * pods with metrics)
 *     else the missing count as 100% of target when scaling down, 0 when scaling up, the
 *     unready as 0 when scaling up; the ratio is computed again and the change dropped if
 *     it is within tolerance or changed direction. No pod with metrics: an error (no change).
 *   the largest desired count of all metrics (no metrics given: cpu at 80%)
 *   stabilisation: the highest recommendation of the scale-down window (default 300 s),
 *     the lowest of the scale-up window (default 0 s)
 *   rate: behavior policies (defaults: up by max(100%, 4 pods), down by 100%) applied per
 *     evaluation (every hpa_sync_ms, 15 s: the policies' default period); selectPolicy
 *     Max, Min or Disabled
 *   then minReplicas..maxReplicas. A target at 0 replicas is not scaled (as Kubernetes).
 *
 * State (in memory, as Kubernetes keeps it): per HPA, its recent recommendations (time,
 * count), pruned to the longest window. Every HPA is evaluated when it changes and every
 * hpa_sync_ms; a write happens only when the target's replicas or the HPA's status change.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/controller.h"
#include "core/metrics.h"
#include "core/object.h"
#include "core/scheduler.h"
#include "core/selector.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

#define HPA_RESOURCE "horizontalpodautoscalers.autoscaling"
#define HPA_DEFAULT_SYNC_MS 15000
#define HPA_TOLERANCE 0.1
#define HPA_DEFAULT_CPU_UTILIZATION 80
#define HPA_DEFAULT_DOWN_WINDOW_S 300
#define HPA_MAX_HISTORY 256
/* Usage alone changing in an HPA's status (currentMetrics) is written at most this often:
 * every board's SD card would otherwise take a write per HPA every sync period. */
#define HPA_METRICS_WRITE_MS 60000

struct recommendation {
	int64_t at_ms;
	int replicas;
};

struct history {
	struct recommendation items[HPA_MAX_HISTORY];
	size_t count;
	int64_t status_written_ms; /* wall clock of the last status write */
};

static struct history *history_of(struct controllers *c, const char *key)
{
	struct history *h = map_get(&c->hpa_history, key);
	if (!h) {
		h = xcalloc(1, sizeof(*h));
		map_put(&c->hpa_history, key, h);
	}
	return h;
}

static uint64_t sync_period(const struct controllers *c)
{
	return c->options.hpa_sync_ms ? c->options.hpa_sync_ms : HPA_DEFAULT_SYNC_MS;
}

static void on_other(struct controllers *c, const struct store_change *change, const cJSON *object)
{
	if (strcmp(change->resource, HPA_RESOURCE) != 0)
		return;
	cleanup_free char *key = xasprintf("%s/%s", change->namespace, change->name);
	if (change->type == STORE_DELETED) {
		free(map_remove(&c->hpa_history, key));
		return;
	}
	/* Its own status writes come back here: only a new or changed spec is evaluated at
	 * once (the periodic evaluation covers the rest). */
	cJSON *previous = change->previous ? cJSON_Parse(change->previous) : NULL;
	bool changed = !previous || !object_spec_equal(previous, object);
	cJSON_Delete(previous);
	if (changed)
		controller_enqueue(c, CONTROLLER_HPA, key);
}

void hpa_free_state(struct controllers *c)
{
	map_each(e, &c->hpa_history)
	{
		free(e->value);
	}
	map_clear(&c->hpa_history);
}

/* --- one metric ------------------------------------------------------------------------- */

struct metric_result {
	int replicas;          /* desired by this metric */
	int64_t utilization;   /* percent of requests (Utilization targets), -1 otherwise */
	int64_t average_value; /* per pod: millicores for cpu, bytes for memory */
};

static int64_t container_request(const cJSON *container, const char *resource)
{
	const cJSON *resources = cJSON_GetObjectItemCaseSensitive(container, "resources");
	const cJSON *q =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resources, "requests"), resource);
	if (!q)
		q = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resources, "limits"), resource);
	int64_t v = -1;
	char text[64];
	if (cJSON_IsString(q))
		snprintf(text, sizeof(text), "%s", q->valuestring);
	else if (cJSON_IsNumber(q))
		snprintf(text, sizeof(text), "%.17g", q->valuedouble);
	else
		return -1;
	if (scheduler_parse_quantity(text, strcmp(resource, "cpu") == 0 ? 3 : 0, &v) < 0)
		return -1;
	return v;
}

struct pod_sample {
	const struct pod *pod;
	int64_t request; /* -1: a container has none */
	bool has_metrics;
	int64_t usage;
	bool unready;
};

static int hpa_compute(struct controllers *c, const char *ns, const struct selector *selector, int current,
                       const char *resource, bool utilization, int64_t target, struct metric_result *ret,
                       struct error *err)
{
	struct map *pods = map_get(&c->pods_by_namespace, ns);
	size_t capacity = pods ? pods->count : 0, n = 0;
	struct pod_sample *samples = xcalloc(capacity + 1, sizeof(*samples));
	int64_t now = controller_now_ms(c);
	bool cpu = strcmp(resource, "cpu") == 0;
	if (pods) {
		map_each(e, pods)
		{
			const struct pod *pod = e->value;
			if (pod->deleting || pod->phase == POD_FAILED || pod->phase == POD_SUCCEEDED ||
			    !selector_matches_labels(selector, pod->labels))
				continue;
			struct pod_sample *s = &samples[n++];
			s->pod = pod;
			struct metrics_usage usage;
			s->has_metrics = metrics_pod_usage(c->options.metrics, pod->namespace, pod->name, now, &usage,
			                                   NULL) == 0;
			s->usage = (int64_t)(cpu ? usage.cpu_millicores : usage.memory_bytes);
			if (!s->has_metrics)
				s->usage = 0;
			s->unready = cpu && (pod->phase == POD_PENDING || !pod->ready);
			if (utilization) {
				cJSON *object = controller_get(c, "pods", pod->namespace, pod->name);
				const cJSON *container;
				s->request = 0;
				cJSON_ArrayForEach(container, cJSON_GetObjectItemCaseSensitive(
				                                      cJSON_GetObjectItemCaseSensitive(object, "spec"),
				                                      "containers"))
				{
					int64_t r = container_request(container, resource);
					s->request = r < 0 || s->request < 0 ? -1 : s->request + r;
				}
				cJSON_Delete(object);
				if (s->request <= 0) {
					int r = error_set(err, EINVAL,
					                  "failed to get %s utilization: missing request for %s",
					                  resource, resource);
					free(samples);
					return r;
				}
			}
		}
	}
	/* Kubernetes' groupPods: ready with metrics count; unready (cpu) and missing wait. */
	int64_t usage_sum = 0, request_sum = 0;
	size_t with_metrics = 0, missing = 0, unready = 0;
	for (size_t i = 0; i < n; i++) {
		if (samples[i].has_metrics && !samples[i].unready) {
			usage_sum += samples[i].usage;
			request_sum += samples[i].request;
			with_metrics++;
		} else if (!samples[i].has_metrics) {
			missing++;
		} else {
			unready++;
		}
	}
	if (with_metrics == 0) {
		free(samples);
		return error_set(
		        err, ENODATA,
		        "failed to get %s utilization: did not receive metrics for targeted pods (pods might be "
		        "unready)",
		        resource);
	}
	double ratio;
	if (utilization) {
		ret->utilization = request_sum ? usage_sum * 100 / request_sum : 0;
		ratio = request_sum ? ((double)usage_sum * 100.0 / (double)request_sum) / (double)target : 0;
	} else {
		ret->utilization = -1;
		ratio = (double)usage_sum / (double)with_metrics / (double)target;
	}
	ret->average_value = usage_sum / (int64_t)with_metrics;
	if (missing == 0 && unready == 0) {
		ret->replicas = fabs(ratio - 1.0) <= HPA_TOLERANCE ? current : (int)ceil(ratio * (double)with_metrics);
		free(samples);
		return 0;
	}
	/* Set-aside pods: missing ones at 100% of target when scaling down, at 0 when scaling
	 * up; unready ones at 0 when scaling up (and left out when scaling down). */
	int64_t usage_all = usage_sum, request_all = request_sum;
	size_t count_all = with_metrics;
	for (size_t i = 0; i < n; i++) {
		const struct pod_sample *s = &samples[i];
		bool counted = s->has_metrics && !s->unready;
		if (counted)
			continue;
		if (!s->has_metrics && ratio < 1.0) {
			usage_all += utilization ? s->request * target / 100 : target;
		} else if (ratio > 1.0) {
			/* at 0 usage */
		} else {
			continue;
		}
		request_all += s->request;
		count_all++;
	}
	double new_ratio =
	        utilization ? (request_all ? ((double)usage_all * 100.0 / (double)request_all) / (double)target : 0)
	                    : (double)usage_all / (double)count_all / (double)target;
	free(samples);
	if (fabs(new_ratio - 1.0) <= HPA_TOLERANCE || (ratio < 1.0 && new_ratio > 1.0) ||
	    (ratio > 1.0 && new_ratio < 1.0)) {
		ret->replicas = current;
		return 0;
	}
	ret->replicas = (int)ceil(new_ratio * (double)count_all);
	return 0;
}

/* --- behavior ------------------------------------------------------------------------- */

static int window_seconds(const cJSON *rules, int fallback)
{
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(rules, "stabilizationWindowSeconds");
	return cJSON_IsNumber(w) ? (int)w->valuedouble : fallback;
}

/* The most (up) or least (down) replicas the policies allow from current. */
static int policy_limit(const cJSON *rules, int current, bool up)
{
	const char *select = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rules, "selectPolicy"));
	if (select && strcmp(select, "Disabled") == 0)
		return current;
	bool pick_min_change = select && strcmp(select, "Min") == 0;
	const cJSON *policies = cJSON_GetObjectItemCaseSensitive(rules, "policies");
	int limit = -1;
	int n = cJSON_GetArraySize(policies);
	for (int i = 0; i < (n ? n : (up ? 2 : 1)); i++) {
		const char *type;
		int value;
		if (n) {
			const cJSON *p = cJSON_GetArrayItem(policies, i);
			type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "type"));
			value = (int)controller_int_at(p, "value", 0);
		} else { /* Kubernetes' defaults */
			type = i == 0 ? "Percent" : "Pods";
			value = i == 0 ? 100 : 4;
		}
		bool percent = type && strcmp(type, "Percent") == 0;
		int allowed;
		if (up)
			allowed = percent ? (int)ceil((double)current * (1.0 + value / 100.0)) : current + value;
		else
			allowed = percent ? (int)ceil((double)current * (1.0 - value / 100.0)) : current - value;
		if (allowed < 0)
			allowed = 0;
		/* Max: the policy allowing the largest change; Min: the smallest. */
		bool better = limit < 0 || (up ? (pick_min_change ? allowed < limit : allowed > limit)
		                               : (pick_min_change ? allowed > limit : allowed < limit));
		if (better)
			limit = allowed;
	}
	return limit < 0 ? current : limit;
}

/* Stabilisation over the recent recommendations, then the rate policies. */
static int stabilize(struct controllers *c, const char *key, const cJSON *behavior, int current, int desired,
                     bool *ret_stabilized)
{
	const cJSON *up = cJSON_GetObjectItemCaseSensitive(behavior, "scaleUp");
	const cJSON *down = cJSON_GetObjectItemCaseSensitive(behavior, "scaleDown");
	int64_t up_window = (int64_t)window_seconds(up, 0) * 1000;
	int64_t down_window = (int64_t)window_seconds(down, HPA_DEFAULT_DOWN_WINDOW_S) * 1000;
	int64_t now = controller_now_ms(c);
	struct history *h = history_of(c, key);
	int up_recommendation = desired, down_recommendation = desired;
	for (size_t i = 0; i < h->count; i++) {
		if (h->items[i].at_ms > now - up_window && h->items[i].replicas < up_recommendation)
			up_recommendation = h->items[i].replicas;
		if (h->items[i].at_ms > now - down_window && h->items[i].replicas > down_recommendation)
			down_recommendation = h->items[i].replicas;
	}
	/* Remember this one; forget what no window reaches any more. */
	int64_t longest = up_window > down_window ? up_window : down_window;
	size_t kept = 0;
	for (size_t i = 0; i < h->count; i++)
		if (h->items[i].at_ms > now - longest)
			h->items[kept++] = h->items[i];
	h->count = kept;
	if (h->count == HPA_MAX_HISTORY) {
		memmove(h->items, h->items + 1, (h->count - 1) * sizeof(h->items[0]));
		h->count--;
	}
	h->items[h->count++] = (struct recommendation){ now, desired };

	int recommendation = current;
	if (recommendation < up_recommendation)
		recommendation = up_recommendation;
	if (recommendation > down_recommendation)
		recommendation = down_recommendation;
	*ret_stabilized = recommendation != desired;
	if (recommendation > current) {
		int limit = policy_limit(up, current, true);
		if (recommendation > limit)
			recommendation = limit;
	} else if (recommendation < current) {
		int limit = policy_limit(down, current, false);
		if (recommendation < limit)
			recommendation = limit;
	}
	return recommendation;
}

/* --- sync -------------------------------------------------------------------------------- */

static const char *target_resource(const cJSON *ref)
{
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "kind"));
	if (kind && strcmp(kind, "Deployment") == 0)
		return "deployments.apps";
	if (kind && strcmp(kind, "ReplicaSet") == 0)
		return "replicasets.apps";
	return NULL;
}

static void set_condition(cJSON *status, const char *type, bool value, const char *reason, const char *now,
                          const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void set_condition(cJSON *status, const char *type, bool value, const char *reason, const char *now,
                          const char *fmt, ...)
{
	char message[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	controller_set_condition(status, type, value ? "True" : "False", reason, message, now, false, false);
}

/* Writes status into the stored HPA when it changed (usage alone: at most every
 * HPA_METRICS_WRITE_MS); takes status; returns writes made (0 or 1). */
static int write_status(struct controllers *c, const char *key, const cJSON *hpa, cJSON *status, struct error *err)
{
	struct history *h = history_of(c, key);
	int64_t now = controller_now_ms(c);
	cJSON *old = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(hpa, "status"), 1);
	cJSON *new = cJSON_Duplicate(status, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(old, "currentMetrics");
	cJSON_DeleteItemFromObjectCaseSensitive(new, "currentMetrics");
	bool usage_only = old && cJSON_Compare(old, new, true);
	cJSON_Delete(old);
	cJSON_Delete(new);
	if (usage_only && now - h->status_written_ms < HPA_METRICS_WRITE_MS) {
		cJSON_Delete(status);
		return 0;
	}
	cJSON *updated = cJSON_Duplicate(hpa, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(updated, "status");
	cJSON_AddItemToObject(updated, "status", status);
	int r = controller_update(c, HPA_RESOURCE, hpa, updated, err);
	cJSON_Delete(updated);
	if (r > 0)
		h->status_written_ms = now;
	return r;
}

static void add_current_metric(cJSON *list, const char *resource, const struct metric_result *m)
{
	cJSON *item = cJSON_CreateObject();
	cJSON_AddStringToObject(item, "type", "Resource");
	cJSON *res = cJSON_AddObjectToObject(item, "resource");
	cJSON_AddStringToObject(res, "name", resource);
	cJSON *current = cJSON_AddObjectToObject(res, "current");
	if (m->utilization >= 0)
		cJSON_AddNumberToObject(current, "averageUtilization", (double)m->utilization);
	char value[32];
	if (strcmp(resource, "cpu") == 0)
		metrics_format_cpu((uint64_t)m->average_value, value, sizeof(value));
	else
		metrics_format_memory((uint64_t)m->average_value, value, sizeof(value));
	cJSON_AddStringToObject(current, "averageValue", value);
	cJSON_AddItemToArray(list, item);
}

static int hpa_sync(struct controllers *c, const char *key, struct error *err)
{
	char ns[64];
	const char *name;
	if (!controller_split_key(key, ns, sizeof(ns), &name))
		return 0;
	cJSON *hpa = controller_get(c, HPA_RESOURCE, ns, name);
	if (!hpa)
		return 0;
	controller_enqueue_after(c, CONTROLLER_HPA, key, sync_period(c));
	int writes = 0, r = 0;
	char now[21];
	controller_now_rfc3339(c, now);
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(hpa, "spec");
	const cJSON *ref = cJSON_GetObjectItemCaseSensitive(spec, "scaleTargetRef");
	cJSON *old_status = cJSON_GetObjectItemCaseSensitive(hpa, "status");
	cJSON *status = old_status ? cJSON_Duplicate(old_status, 1) : cJSON_CreateObject();
	controller_set_number(status, "observedGeneration", (double)controller_int_at(hpa, "metadata.generation", 1));
	const char *resource = target_resource(ref);
	const char *target_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "name"));
	cJSON *target = resource && target_name ? controller_get(c, resource, ns, target_name) : NULL;
	struct selector *selector = NULL;
	if (!target) {
		const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "kind"));
		if (!resource)
			set_condition(status, "AbleToScale", false, "FailedGetScale", now,
			              "the HPA controller was unable to get the target's current scale: %s is not "
			              "scalable (Deployment and ReplicaSet are)",
			              kind ? kind : "the target");
		else
			set_condition(status, "AbleToScale", false, "FailedGetScale", now,
			              "the HPA controller was unable to get the target's current scale: %s \"%s\" not "
			              "found",
			              resource, target_name ? target_name : "");
		controller_event(c, hpa, "Warning", "FailedGetScale", "%s",
		                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		                         controller_condition(status, "AbleToScale"), "message")));
		goto write;
	}
	int current = (int)controller_int_at(target, "spec.replicas", 1);
	controller_set_number(status, "currentReplicas", current);
	int min = (int)controller_int_at(spec, "minReplicas", 1), max = (int)controller_int_at(spec, "maxReplicas", 1);
	if (current == 0 && min != 0) {
		controller_set_number(status, "desiredReplicas", 0);
		set_condition(status, "ScalingActive", false, "ScalingDisabled", now,
		              "scaling is disabled since the replica count of the target is zero");
		goto write;
	}
	if (selector_from_json(
	            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(target, "spec"), "selector"),
	            "spec.selector", &selector, NULL) < 0 ||
	    selector_is_empty(selector)) {
		set_condition(status, "ScalingActive", false, "InvalidSelector", now,
		              "the HPA target's scale is missing a selector");
		goto write;
	}
	set_condition(status, "AbleToScale", true, "SucceededGetScale", now,
	              "the HPA controller was able to get the target's current scale");
	int desired = -1;
	const char *reason_metric = NULL;
	bool reason_utilization = true;
	cJSON *current_metrics = cJSON_CreateArray();
	struct error metric_err = { 0 };
	const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(spec, "metrics");
	int metric_count = cJSON_GetArraySize(metrics);
	bool failed = false;
	for (int i = 0; i < (metric_count ? metric_count : 1); i++) {
		const cJSON *metric = metric_count ? cJSON_GetArrayItem(metrics, i) : NULL;
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(metric, "resource");
		const char *metric_resource =
		        metric ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "name")) : "cpu";
		const cJSON *target_spec = cJSON_GetObjectItemCaseSensitive(res, "target");
		const char *type = metric ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(target_spec, "type"))
		                          : "Utilization";
		bool utilization = type && strcmp(type, "Utilization") == 0;
		int64_t goal = HPA_DEFAULT_CPU_UTILIZATION;
		if (!metric_resource ||
		    (strcmp(metric_resource, "cpu") != 0 && strcmp(metric_resource, "memory") != 0)) {
			error_set(&metric_err, EINVAL, "unsupported resource \"%s\": cpu and memory are",
			          metric_resource ? metric_resource : "");
			failed = true;
			continue;
		}
		if (metric && utilization) {
			goal = controller_int_at(target_spec, "averageUtilization", HPA_DEFAULT_CPU_UTILIZATION);
		} else if (metric) {
			const char *v =
			        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(target_spec, "averageValue"));
			if (!type || strcmp(type, "AverageValue") != 0 || !v ||
			    scheduler_parse_quantity(v, strcmp(metric_resource, "cpu") == 0 ? 3 : 0, &goal) < 0 ||
			    goal <= 0) {
				error_set(&metric_err, EINVAL,
				          "the %s target must be a Utilization or a positive AverageValue",
				          metric_resource);
				failed = true;
				continue;
			}
		}
		struct metric_result result = { 0 };
		if (hpa_compute(c, ns, selector, current, metric_resource, utilization, goal, &result, &metric_err) <
		    0) {
			failed = true;
			continue;
		}
		add_current_metric(current_metrics, metric_resource, &result);
		if (result.replicas > desired) {
			desired = result.replicas;
			reason_metric = metric_resource;
			reason_utilization = utilization;
		}
	}
	cJSON_DeleteItemFromObjectCaseSensitive(status, "currentMetrics");
	if (cJSON_GetArraySize(current_metrics) > 0)
		cJSON_AddItemToObject(status, "currentMetrics", current_metrics);
	else
		cJSON_Delete(current_metrics);
	if (desired < 0) {
		set_condition(status, "ScalingActive", false, "FailedGetResourceMetric", now,
		              "the HPA was unable to compute the replica count: %s", metric_err.message);
		controller_event(c, hpa, "Warning", "FailedGetResourceMetric", "%s", metric_err.message);
		controller_set_number(status, "desiredReplicas", current);
		goto write;
	}
	(void)failed;
	const char *what = reason_utilization ? " utilization (percentage of request)" : "";
	set_condition(status, "ScalingActive", true, "ValidMetricFound", now,
	              "the HPA was able to successfully calculate a replica count from %s resource%s", reason_metric,
	              what);
	bool stabilized = false;
	int recommended =
	        stabilize(c, key, cJSON_GetObjectItemCaseSensitive(spec, "behavior"), current, desired, &stabilized);
	int final = recommended;
	if (final > max) {
		final = max;
		set_condition(status, "ScalingLimited", true, "TooManyReplicas", now,
		              "the desired replica count is more than the maximum replica count");
	} else if (final < min) {
		final = min;
		set_condition(status, "ScalingLimited", true, "TooFewReplicas", now,
		              "the desired replica count is less than the minimum replica count");
	} else {
		set_condition(status, "ScalingLimited", false, "DesiredWithinRange", now,
		              "the desired count is within the acceptable range");
	}
	controller_set_number(status, "desiredReplicas", final);
	if (final != current) {
		cJSON *scaled = cJSON_Duplicate(target, 1);
		controller_set_number(controller_child(scaled, "spec"), "replicas", final);
		struct error scale_err = { 0 };
		r = controller_update(c, resource, target, scaled, &scale_err);
		cJSON_Delete(scaled);
		if (r < 0) {
			set_condition(status, "AbleToScale", false, "FailedUpdateScale", now,
			              "the HPA controller was unable to update the target scale: %s",
			              scale_err.message);
			controller_event(c, hpa, "Warning", "FailedRescale", "New size: %d; error: %s", final,
			                 scale_err.message);
		} else {
			writes += r;
			controller_set_string(status, "lastScaleTime", now);
			set_condition(status, "AbleToScale", true, "SucceededRescale", now,
			              "the HPA controller was able to update the target scale to %d", final);
			controller_event(c, hpa, "Normal", "SuccessfulRescale",
			                 "New size: %d; reason: %s resource%s %s target", final, reason_metric, what,
			                 final > current ? "above" : "below");
		}
	} else if (stabilized && desired < current) {
		set_condition(status, "AbleToScale", true, "ScaleDownStabilized", now,
		              "recent recommendations were higher than current one, applying the highest recent "
		              "recommendation");
	} else {
		set_condition(status, "AbleToScale", true, "ReadyForNewScale", now,
		              "recommended size matches current size");
	}
write:
	selector_free(selector);
	r = write_status(c, key, hpa, status, err);
	cJSON_Delete(target);
	cJSON_Delete(hpa);
	return r < 0 ? r : writes + r;
}

const struct controller_ops hpa_controller = {
	.name = "horizontal-pod-autoscaler",
	.on_other = on_other,
	.sync = hpa_sync,
};
