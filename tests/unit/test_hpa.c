/* The HorizontalPodAutoscaler controller with fake metrics: reports stored straight into
 * core/metrics as an agent's would be, the clock moved by hand. */
#include <stdlib.h>

#include "core/metrics.h"
#include "platform/buffer.h"
#include "tests/unit/controllers_harness.h"

#define RS(name, replicas, request)                                                                                    \
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"" name "\"},\"spec\":{"          \
	"\"replicas\":" #replicas ",\"selector\":{\"matchLabels\":{\"app\":\"" name "\"}},"                            \
	"\"template\":{\"metadata\":{\"labels\":{\"app\":\"" name "\"}},\"spec\":{\"containers\":[{\"name\":\"c\","    \
	"\"image\":\"busybox:1.36\"" request "}]}}}}"
#define CPU_100M ",\"resources\":{\"requests\":{\"cpu\":\"100m\"}}"

#define HPA(name, target, min, max, utilization, behavior)                                                             \
	"{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\",\"metadata\":{\"name\":\"" name       \
	"\"},\"spec\":{\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"" target      \
	"\"},\"minReplicas\":" #min ",\"maxReplicas\":" #max ",\"metrics\":[{\"type\":\"Resource\",\"resource\":{"     \
	"\"name\":\"cpu\",\"target\":{\"type\":\"Utilization\",\"averageUtilization\":" #utilization "}}}]" behavior   \
	"}}"
#define NO_DOWN_WINDOW ",\"behavior\":{\"scaleDown\":{\"stabilizationWindowSeconds\":0}}"

static const char *const nodes[] = { "pi-1" };

struct world {
	struct harness h;
	struct metrics *metrics;
};

static void open_world(struct world *w)
{
	w->metrics = metrics_new();
	struct controllers_options options = { .metrics = w->metrics };
	harness_open_with(&w->h, &options);
}

static void close_world(struct world *w)
{
	harness_close(&w->h);
	metrics_free(w->metrics);
}

/* Every pod of the ReplicaSet uses millicores (the first `skip` pods report nothing). */
static void report(struct world *w, int millicores, int skip)
{
	struct harness_list l;
	harness_list(&w->h, "pods", "default", &l);
	struct buffer b = BUFFER_INIT;
	buffer_printf(&b, "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"window\":10000,\"usage\":{\"cpu\":1,\"memory\":1},"
	                  "\"pods\":[");
	int n = 0;
	for (int i = 0; i < l.count; i++) {
		if (object_string_at(l.items[i], "metadata.deletionTimestamp") || i < skip)
			continue;
		buffer_printf(&b,
		              "%s{\"namespace\":\"default\",\"name\":\"%s\",\"containers\":[{\"name\":\"c\",\"cpu\":%d,"
		              "\"memory\":1048576}]}",
		              n++ ? "," : "", object_name(l.items[i]), millicores);
	}
	buffer_append_string(&b, "]}");
	harness_list_free(&l);
	cJSON *json = cJSON_Parse(b.data);
	struct error err = { 0 };
	if (metrics_report(w->metrics, NULL, "pi-1", json, controller_now_ms(w->h.c), &err) < 0)
		unit_fail(__FILE__, __LINE__, "report: %s", err.message);
	cJSON_Delete(json);
	buffer_free(&b);
}

/* The world turns: controllers settle, the "kubelet" runs new pods and finishes deletions. */
static void turn(struct world *w)
{
	harness_settle(&w->h);
	harness_run_all(&w->h, "default", nodes, 1);
	harness_finish_deletions(&w->h, "default");
	harness_settle(&w->h);
}

/* One HPA period later. */
static void next_period(struct world *w, int64_t ms)
{
	controllers_advance_clock(w->h.c, ms);
}

static int replicas(struct world *w, const char *rs)
{
	cJSON *o = harness_get(&w->h, "replicasets.apps", "default", rs);
	int n = (int)controller_int_at(o, "spec.replicas", -1);
	cJSON_Delete(o);
	return n;
}

static char *hpa_status(struct world *w, const char *name)
{
	cJSON *o = harness_get(&w->h, "horizontalpodautoscalers.autoscaling", "default", name);
	char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "status"));
	cJSON_Delete(o);
	return text;
}

TEST(scales_up_on_cpu_above_target)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 2, CPU_100M));
	turn(&w);
	report(&w, 150, 0); /* 150% of the request against a 50% target: 3x */
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 6);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "\"currentReplicas\":2");
	CHECK_CONTAINS(status, "\"desiredReplicas\":6");
	CHECK_CONTAINS(status, "\"currentMetrics\":[{\"type\":\"Resource\",\"resource\":{\"name\":\"cpu\",\"current\":"
	                       "{\"averageUtilization\":150,\"averageValue\":\"150m\"}}}]");
	CHECK_CONTAINS(status, "\"type\":\"AbleToScale\",\"status\":\"True\"");
	CHECK_CONTAINS(status, "\"reason\":\"SucceededRescale\"");
	CHECK_CONTAINS(status, "\"reason\":\"ValidMetricFound\",\"message\":\"the HPA was able to successfully "
	                       "calculate a replica count from cpu resource utilization (percentage of request)\"");
	CHECK_CONTAINS(status, "\"reason\":\"DesiredWithinRange\"");
	CHECK_CONTAINS(status, "\"lastScaleTime\"");
	CHECK_INT(harness_events(&w.h, "default", "SuccessfulRescale"), ==, 1);
	close_world(&w);
}

TEST(scale_up_rate_is_limited_by_the_default_policies)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 1, CPU_100M));
	turn(&w);
	report(&w, 1000, 0); /* 20x the target: wants 20, may go to max(2x, +4) = 5 */
	harness_create(&w.h, HPA("web", "web", 1, 30, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 5);
	close_world(&w);
}

TEST(within_tolerance_nothing_changes)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 3, CPU_100M));
	turn(&w);
	report(&w, 53, 0); /* 53% of request against a 50% target: ratio 1.06 */
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 3);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "\"reason\":\"ReadyForNewScale\"");
	CHECK_CONTAINS(status, "\"desiredReplicas\":3");
	close_world(&w);
}

TEST(scale_down_waits_for_the_stabilization_window)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 4, CPU_100M));
	turn(&w);
	report(&w, 50, 0); /* at target: 4 recommended */
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 4);
	next_period(&w, 15000);
	report(&w, 20, 0); /* 20% of request against 50%: 2 would do, but 4 was recommended within 300 s */
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 4);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "\"reason\":\"ScaleDownStabilized\"");
	for (int i = 0; i < 20; i++) { /* 300 s of low usage */
		next_period(&w, 15000);
		report(&w, 20, 0);
		turn(&w);
	}
	CHECK_INT(replicas(&w, "web"), ==, 2);
	close_world(&w);
}

TEST(a_short_window_from_behavior_scales_down_sooner)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 4, CPU_100M));
	turn(&w);
	report(&w, 50, 0);
	harness_create(&w.h, HPA("web", "web", 1, 10, 50,
	                         ",\"behavior\":{\"scaleDown\":{\"stabilizationWindowSeconds\":20}}"));
	turn(&w);
	next_period(&w, 15000);
	report(&w, 20, 0);
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 4); /* 4 was recommended 15 s ago */
	next_period(&w, 15000);
	report(&w, 20, 0);
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 2);
	close_world(&w);
}

TEST(missing_metrics_count_as_target_when_scaling_down)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 4, CPU_100M));
	turn(&w);
	/* Two pods at 20% of request, two without metrics (taken as at the 50% target):
	 * (20+20+50+50)/400 = 35% -> ratio 0.7 -> ceil(2.8) = 3. */
	report(&w, 20, 2);
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, NO_DOWN_WINDOW));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 3);
	close_world(&w);
}

TEST(missing_metrics_count_as_zero_when_scaling_up)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 4, CPU_100M));
	turn(&w);
	/* Two pods at 100%, two silent (0): 200/400 = 50% = the target: no change, where
	 * ignoring them would have doubled the pods. */
	report(&w, 100, 2);
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 4);
	close_world(&w);
}

TEST(max_and_min_replicas_bound_the_result)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 2, CPU_100M));
	turn(&w);
	report(&w, 200, 0);
	harness_create(&w.h, HPA("web", "web", 1, 3, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 3);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "\"reason\":\"TooManyReplicas\"");
	harness_create(&w.h, RS("low", 3, CPU_100M));
	turn(&w);
	report(&w, 1, 0);
	harness_create(&w.h, HPA("low", "low", 2, 5, 50, NO_DOWN_WINDOW));
	turn(&w);
	CHECK_INT(replicas(&w, "low"), ==, 2);
	cleanup_free char *low = hpa_status(&w, "low");
	CHECK_CONTAINS(low, "\"reason\":\"TooFewReplicas\"");
	close_world(&w);
}

TEST(no_metrics_no_scaling)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 2, CPU_100M));
	turn(&w);
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 2);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "\"type\":\"ScalingActive\",\"status\":\"False\"");
	CHECK_CONTAINS(status, "\"reason\":\"FailedGetResourceMetric\"");
	CHECK_CONTAINS(status, "did not receive metrics for targeted pods");
	CHECK_INT(harness_events(&w.h, "default", "FailedGetResourceMetric"), ==, 1);
	close_world(&w);
}

TEST(stale_metrics_are_missing)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 2, CPU_100M));
	turn(&w);
	report(&w, 150, 0);
	next_period(&w, 60000); /* the board stopped reporting a minute ago */
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 2);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "\"reason\":\"FailedGetResourceMetric\"");
	close_world(&w);
}

TEST(a_pod_without_a_cpu_request_cannot_be_scaled_on_utilization)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 2, ""));
	turn(&w);
	report(&w, 150, 0);
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 2);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "missing request for cpu");
	close_world(&w);
}

TEST(a_missing_target_is_reported)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, HPA("web", "absent", 1, 10, 50, ""));
	turn(&w);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "\"type\":\"AbleToScale\",\"status\":\"False\"");
	CHECK_CONTAINS(status, "replicasets.apps \\\"absent\\\" not found");
	CHECK_INT(harness_events(&w.h, "default", "FailedGetScale"), ==, 1);
	close_world(&w);
}

TEST(a_target_at_zero_is_left_alone)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 0, CPU_100M));
	turn(&w);
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, ""));
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 0);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "\"reason\":\"ScalingDisabled\"");
	close_world(&w);
}

TEST(usage_alone_changing_is_not_written_every_period)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 3, CPU_100M));
	turn(&w);
	report(&w, 50, 0);
	harness_create(&w.h, HPA("web", "web", 1, 10, 50, ""));
	turn(&w);
	int changes = w.h.changes;
	next_period(&w, 15000);
	report(&w, 52, 0); /* within tolerance: only currentMetrics would change */
	turn(&w);
	CHECK_INT(w.h.changes, ==, changes);
	next_period(&w, 60000);
	report(&w, 52, 0);
	turn(&w);
	CHECK_INT(w.h.changes, ==, changes + 1); /* a minute on, it is written */
	close_world(&w);
}

TEST(memory_average_value_targets)
{
	struct world w;
	open_world(&w);
	harness_create(&w.h, RS("web", 2, ""));
	turn(&w);
	report(&w, 1, 0); /* every pod at 1 MiB of memory (see report) against 512Ki: 2x */
	harness_create(
	        &w.h, "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\",\"metadata\":{\"name\":"
	              "\"web\"},\"spec\":{\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
	              "\"name\":\"web\"},\"maxReplicas\":10,\"metrics\":[{\"type\":\"Resource\",\"resource\":{\"name\":"
	              "\"memory\",\"target\":{\"type\":\"AverageValue\",\"averageValue\":\"512Ki\"}}}]}}");
	turn(&w);
	CHECK_INT(replicas(&w, "web"), ==, 4);
	cleanup_free char *status = hpa_status(&w, "web");
	CHECK_CONTAINS(status, "{\"type\":\"Resource\",\"resource\":{\"name\":\"memory\",\"current\":{\"averageValue\":"
	                       "\"1Mi\"}}}");
	CHECK_CONTAINS(status, "a replica count from memory resource\"");
	close_world(&w);
}
