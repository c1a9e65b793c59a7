#include "tests/unit/controllers_harness.h"

static void add_pod(struct harness *h, const char *name, const char *app, const char *ports)
{
	char json[800];
	snprintf(json, sizeof(json),
	         "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"labels\":{\"app\":\"%s\"}},"
	         "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"ports\":%s}]}}",
	         name, app, ports);
	harness_create(h, json);
}

struct state {
	const char *phase, *ip, *node;
	bool ready;
};

static void set_state(cJSON *pod, void *data)
{
	struct state *s = data;
	controller_set_string(controller_child(pod, "spec"), "nodeName", s->node);
	cJSON *status = controller_child(pod, "status");
	controller_set_string(status, "phase", s->phase);
	controller_set_string(status, "podIP", s->ip);
	controller_set_condition(status, "Ready", s->ready ? "True" : "False", NULL, NULL, "2026-01-01T00:00:00Z",
	                         false, false);
}

static void run(struct harness *h, const char *name, const char *ip, bool ready)
{
	struct state s = { "Running", ip, "pi-1", ready };
	harness_edit(h, "pods", "default", name, set_state, &s);
}

static char *subsets(struct harness *h, const char *name)
{
	cJSON *ep = harness_get(h, "endpoints", "default", name);
	if (!ep)
		return NULL;
	cJSON *s = cJSON_GetObjectItem(ep, "subsets");
	char *text = s ? cJSON_PrintUnformatted(s) : xstrdup("[]");
	cJSON_Delete(ep);
	return text;
}

#define SERVICE                                                                                                        \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"labels\":{\"team\":\"a\"}},"     \
	"\"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":\"http\"}," \
	"{\"name\":\"metrics\",\"port\":9100,\"targetPort\":9100}]}}"

TEST(endpoints_list_ready_pods_with_ports_by_name_and_number)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, SERVICE);
	add_pod(&h, "b", "web", "[{\"name\":\"http\",\"containerPort\":8080}]");
	add_pod(&h, "a", "web", "[{\"name\":\"http\",\"containerPort\":8080}]");
	add_pod(&h, "odd", "web", "[{\"name\":\"www\",\"containerPort\":8000}]");
	add_pod(&h, "other", "db", "[{\"name\":\"http\",\"containerPort\":8080}]");
	harness_settle(&h);
	cleanup_free char *empty = subsets(&h, "web");
	CHECK_STR(empty, "[]"); /* no pod has an IP yet */
	run(&h, "a", "10.42.0.20", true);
	run(&h, "b", "10.42.0.3", true);
	run(&h, "odd", "10.42.0.9", false);
	run(&h, "other", "10.42.0.4", true);
	harness_settle(&h);
	cleanup_free char *got = subsets(&h, "web");
	/* a and b serve both ports (8080 by name, 9100 by number), sorted by IP; odd has no
	 * "http" port: only metrics, and it is not ready. */
	CHECK_CONTAINS(got,
	               "\"addresses\":[{\"ip\":\"10.42.0.3\",\"nodeName\":\"pi-1\",\"targetRef\":{\"kind\":\"Pod\","
	               "\"namespace\":\"default\",\"name\":\"b\"");
	CHECK_CONTAINS(got, "{\"ip\":\"10.42.0.20\"");
	CHECK_CONTAINS(got, "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"},{\"name\":\"metrics\","
	                    "\"port\":9100,\"protocol\":\"TCP\"}]");
	CHECK_CONTAINS(got, "\"notReadyAddresses\":[{\"ip\":\"10.42.0.9\"");
	CHECK_CONTAINS(got, "\"ports\":[{\"name\":\"metrics\",\"port\":9100,\"protocol\":\"TCP\"}]");
	CHECK(strstr(got, "10.42.0.4") == NULL);
	cJSON *ep = harness_get(&h, "endpoints", "default", "web");
	CHECK_STR(controller_label(ep, "team"), "a");
	cJSON_Delete(ep);
	CHECK_INT(harness_settle(&h), ==, 0);
	/* Not ready any more: moved to notReadyAddresses. */
	run(&h, "a", "10.42.0.20", false);
	harness_settle(&h);
	cleanup_free char *after = subsets(&h, "web");
	CHECK_CONTAINS(after, "\"notReadyAddresses\":[{\"ip\":\"10.42.0.20\"");
	harness_close(&h);
}

TEST(endpoints_go_with_their_service_and_leave_selectorless_ones_alone)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, SERVICE);
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"external\"},"
	                   "\"spec\":{\"ports\":[{\"port\":5432}]}}");
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"external\"},"
	                   "\"subsets\":[{\"addresses\":[{\"ip\":\"192.0.2.7\"}],\"ports\":[{\"port\":5432}]}]}");
	harness_settle(&h);
	cleanup_free char *mine = subsets(&h, "external");
	CHECK_CONTAINS(mine, "192.0.2.7");
	cJSON *web = harness_get(&h, "endpoints", "default", "web");
	CHECK(web != NULL);
	cJSON_Delete(web);
	CHECK_INT(controller_force_delete(h.c, "services", "default", "web", NULL, NULL), ==, 1);
	harness_settle(&h);
	CHECK(harness_get(&h, "endpoints", "default", "web") == NULL);
	harness_close(&h);
}

TEST(endpoints_publish_not_ready_addresses_lists_every_pod_as_ready)
{
	struct harness h;
	harness_open(&h);
	harness_create(&h, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"peers\"},\"spec\":{"
	                   "\"clusterIP\":\"None\",\"publishNotReadyAddresses\":true,\"selector\":{\"app\":\"db\"},"
	                   "\"ports\":[{\"port\":5432}]}}");
	add_pod(&h, "db-0", "db", "[]");
	harness_settle(&h);
	run(&h, "db-0", "10.42.1.5", false);
	harness_settle(&h);
	cleanup_free char *got = subsets(&h, "peers");
	CHECK_CONTAINS(got, "\"addresses\":[{\"ip\":\"10.42.1.5\"");
	cJSON *ep = harness_get(&h, "endpoints", "default", "peers");
	CHECK_STR(controller_label(ep, "service.kubernetes.io/headless"), "");
	cJSON_Delete(ep);
	harness_close(&h);
}
