/* core/ipalloc: pod CIDRs for nodes, ClusterIPs and NodePorts for Services. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/ipalloc.h"
#include "core/object.h"
#include "core/store.h"
#include "platform/error.h"
#include "tests/unit/unit.h"

static struct store *open_store(void)
{
	static const uint8_t key[STORE_SECRET_KEY_SIZE] = { 1 };
	char path[300];
	snprintf(path, sizeof(path), "%s/store.db", unit_temp_dir());
	struct store_options options = { .path = path, .secret_key = key };
	struct store *store;
	struct error err;
	CHECK_OK(store_open(&options, &store, &err));
	return store;
}

/* Admits (as a create) and stores a Service; returns the stored object (caller frees) or
 * NULL with err set when refused. */
static cJSON *create_service(struct store *store, const struct ipalloc_config *config, const char *json,
                             struct error *err)
{
	cJSON *service = cJSON_Parse(json);
	CHECK(service);
	if (ipalloc_admit(store, config, "Service", NULL, service, err) < 0) {
		cJSON_Delete(service);
		return NULL;
	}
	struct store_request request = { .op = STORE_CREATE,
		                         .resource = "services",
		                         .namespace = object_namespace(service),
		                         .name = object_name(service),
		                         .object = service };
	CHECK_OK(store_apply(store, &request, NULL, NULL, err));
	return service;
}

#define SERVICE(name, extra)                                                                                           \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"" name "\",\"namespace\":\"default\"},"  \
	"\"spec\":{\"type\":\"ClusterIP\",\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]" extra "}}"

#define NODE_PORT_SERVICE(name, ports)                                                                                 \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"" name "\",\"namespace\":\"default\"},"  \
	"\"spec\":{\"type\":\"NodePort\",\"ports\":" ports "}}"

TEST(config_checks)
{
	struct error err;
	CHECK_OK(ipalloc_check_config(NULL, &err));
	struct ipalloc_config overlap = { .cluster_cidr = "10.42.0.0/16", .service_cidr = "10.42.128.0/20" };
	CHECK_INT(ipalloc_check_config(&overlap, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "service-cidr 10.42.128.0/20 overlaps cluster-cidr 10.42.0.0/16");
	struct ipalloc_config host_bits = { .cluster_cidr = "10.42.0.1/16" };
	CHECK_INT(ipalloc_check_config(&host_bits, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "cluster-cidr: '10.42.0.1/16' has host bits set");
	struct ipalloc_config mask = { .cluster_cidr = "10.42.0.0/24", .node_cidr_mask = 16 };
	CHECK_INT(ipalloc_check_config(&mask, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "node-cidr-mask /16");
	struct ipalloc_config ports = { .node_port_min = 40000, .node_port_max = 30000 };
	CHECK_INT(ipalloc_check_config(&ports, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "node-port-range");
	struct ipalloc_config garbage = { .service_cidr = "ten.43/16" };
	CHECK_INT(ipalloc_check_config(&garbage, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "service-cidr");
}

TEST(node_cidrs_in_order_until_exhausted)
{
	struct ipalloc_config config = { .cluster_cidr = "10.50.0.0/22", .node_cidr_mask = 24 };
	char cidr[IPALLOC_CIDR_TEXT];
	struct error err;
	CHECK_OK(ipalloc_node_cidr(&config, NULL, 0, cidr, &err));
	CHECK_STR(cidr, "10.50.0.0/24");
	const char *taken[] = { "10.50.0.0/24", "garbage", "10.50.2.0/24" };
	CHECK_OK(ipalloc_node_cidr(&config, taken, 3, cidr, &err));
	CHECK_STR(cidr, "10.50.1.0/24");
	const char *full[] = { "10.50.0.0/23", "10.50.2.0/24", "10.50.3.0/24" };
	CHECK_INT(ipalloc_node_cidr(&config, full, 3, cidr, &err), ==, -ENOSPC);
	CHECK_CONTAINS(err.message, "all 4 /24 blocks of the cluster CIDR 10.50.0.0/22 are taken");
}

TEST(service_gets_a_stable_free_cluster_ip)
{
	struct store *store = open_store();
	struct ipalloc_config config = { .service_cidr = "10.43.0.0/29" }; /* offsets 2..6 usable */
	struct error err;
	char seen[8][16];
	for (int i = 0; i < 5; i++) {
		char json[400];
		snprintf(json, sizeof(json), SERVICE("s%d", ""), i);
		cJSON *service = create_service(store, &config, json, &err);
		CHECK(service);
		const char *ip = object_string_at(service, "spec.clusterIP");
		CHECK(ip);
		snprintf(seen[i], sizeof(seen[i]), "%s", ip);
		CHECK(strcmp(ip, "10.43.0.0") != 0 && strcmp(ip, "10.43.0.1") != 0 && strcmp(ip, "10.43.0.7") != 0);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(seen[j], ip) != 0);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(
		                  cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(service, "spec"),
		                                                   "clusterIPs"),
		                  0)),
		          ip);
		/* an update that leaves clusterIP out keeps it; one that changes it is refused */
		cJSON *update = cJSON_Parse(json);
		CHECK_OK(ipalloc_admit(store, &config, "Service", service, update, &err));
		CHECK_STR(object_string_at(update, "spec.clusterIP"), ip);
		cJSON_Delete(update);
		cJSON_Delete(service);
	}
	cJSON *full = create_service(store, &config, SERVICE("s9", ""), &err);
	CHECK(!full);
	CHECK_STR(err.field, "spec.clusterIP");
	CHECK_CONTAINS(err.message, "no ClusterIP left");
	store_close(store);
}

TEST(service_requested_cluster_ip_checked)
{
	struct store *store = open_store();
	struct error err;
	cJSON *a = create_service(store, NULL, SERVICE("a", ",\"clusterIP\":\"10.43.0.10\""), &err);
	CHECK(a);
	CHECK_STR(object_string_at(a, "spec.clusterIP"), "10.43.0.10");
	cJSON *b = create_service(store, NULL, SERVICE("b", ",\"clusterIP\":\"10.43.0.10\""), &err);
	CHECK(!b);
	CHECK_STR(err.field, "spec.clusterIP");
	CHECK_CONTAINS(err.message, "spec.clusterIP: Invalid value: \"10.43.0.10\": provided IP is already allocated");
	cJSON *c = create_service(store, NULL, SERVICE("c", ",\"clusterIP\":\"10.99.0.1\""), &err);
	CHECK(!c);
	CHECK_CONTAINS(err.message, "provided IP is not in the valid range. The range of valid IPs is 10.43.0.0/16");
	cJSON *d = create_service(store, NULL, SERVICE("d", ",\"clusterIP\":\"10.43.255.255\""), &err);
	CHECK(!d);
	cJSON *headless = create_service(store, NULL, SERVICE("h", ",\"clusterIP\":\"None\""), &err);
	CHECK(headless);
	CHECK_STR(object_string_at(headless, "spec.clusterIP"), "None");
	cJSON *changed = cJSON_Parse(SERVICE("a", ",\"clusterIP\":\"10.43.0.11\""));
	CHECK_INT(ipalloc_admit(store, NULL, "Service", a, changed, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "field is immutable");
	cJSON_Delete(changed);
	cJSON_Delete(a);
	cJSON_Delete(headless);
	store_close(store);
}

TEST(node_ports_allocated_kept_and_refused)
{
	struct store *store = open_store();
	struct error err;
	struct ipalloc_config config = { .node_port_min = 30000, .node_port_max = 30009 };
	cJSON *web = create_service(
	        store, &config,
	        NODE_PORT_SERVICE("web", "[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"},"
	                                 "{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\",\"nodePort\":30005}]"),
	        &err);
	CHECK(web);
	const cJSON *ports = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(web, "spec"), "ports");
	int first = (int)cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ports, 0), "nodePort")->valuedouble;
	CHECK_INT(first, >=, 30000);
	CHECK_INT(first, <=, 30009);
	CHECK_INT(first, !=, 30005);
	CHECK_INT(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ports, 1), "nodePort")->valuedouble, ==, 30005);

	cJSON *taken = create_service(
	        store, &config, NODE_PORT_SERVICE("other", "[{\"port\":81,\"protocol\":\"TCP\",\"nodePort\":30005}]"),
	        &err);
	CHECK(!taken);
	CHECK_STR(err.field, "spec.ports[0].nodePort");
	CHECK_CONTAINS(err.message, "30005: provided port is already allocated");
	cJSON *outside = create_service(
	        store, &config, NODE_PORT_SERVICE("far", "[{\"port\":81,\"protocol\":\"TCP\",\"nodePort\":8080}]"),
	        &err);
	CHECK(!outside);
	CHECK_CONTAINS(err.message, "provided port is not in the valid range. The range of valid ports is 30000-30009");

	/* a re-apply without nodePorts keeps them */
	cJSON *again = cJSON_Parse(NODE_PORT_SERVICE("web", "[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"},"
	                                                    "{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"}]"));
	CHECK_OK(ipalloc_admit(store, &config, "Service", web, again, &err));
	ports = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(again, "spec"), "ports");
	CHECK_INT(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ports, 0), "nodePort")->valuedouble, ==, first);
	CHECK_INT(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ports, 1), "nodePort")->valuedouble, ==, 30005);
	cJSON_Delete(again);
	cJSON_Delete(web);
	store_close(store);
}

TEST(a_node_port_service_turned_cluster_ip_drops_its_node_ports)
{
	struct store *store = open_store();
	struct error err;
	struct ipalloc_config config = { .node_port_min = 30000, .node_port_max = 30009 };
	cJSON *web = create_service(store, &config,
	                            NODE_PORT_SERVICE("web", "[{\"port\":80,\"protocol\":\"TCP\",\"nodePort\":30001},"
	                                                     "{\"port\":81,\"protocol\":\"TCP\",\"nodePort\":30002}]"),
	                            &err);
	CHECK(web);
	/* A merge patch of the type alone keeps the stored nodePorts: they go. One the update
	 * sets anew (30009 for port 81) stays, for validation to refuse. */
	cJSON *patched = cJSON_Parse(SERVICE("web", "")); /* type ClusterIP, port 80 */
	cJSON *ports = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(patched, "spec"), "ports");
	cJSON_AddNumberToObject(cJSON_GetArrayItem(ports, 0), "nodePort", 30001);
	cJSON *second = cJSON_Parse("{\"port\":81,\"protocol\":\"TCP\",\"nodePort\":30009}");
	cJSON_AddItemToArray(ports, second);
	ipalloc_prepare_update("Service", web, patched);
	CHECK(!cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ports, 0), "nodePort"));
	CHECK_INT(cJSON_GetObjectItemCaseSensitive(second, "nodePort")->valuedouble, ==, 30009);
	/* Still NodePort: nothing is dropped. */
	cJSON *still = cJSON_Parse(NODE_PORT_SERVICE("web", "[{\"port\":80,\"protocol\":\"TCP\",\"nodePort\":30001}]"));
	const cJSON *kept = cJSON_GetArrayItem(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(still, "spec"), "ports"), 0);
	ipalloc_prepare_update("Service", web, still);
	CHECK_INT(cJSON_GetObjectItemCaseSensitive(kept, "nodePort")->valuedouble, ==, 30001);
	/* Other kinds are not touched; nor is a create. */
	cJSON *turned = cJSON_Parse(SERVICE("web", ""));
	cJSON *port = cJSON_GetArrayItem(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(turned, "spec"), "ports"), 0);
	cJSON_AddNumberToObject(port, "nodePort", 30001);
	ipalloc_prepare_update("Service", NULL, turned);
	ipalloc_prepare_update("Node", web, turned);
	CHECK_INT(cJSON_GetObjectItemCaseSensitive(port, "nodePort")->valuedouble, ==, 30001);
	cJSON_Delete(turned);
	cJSON_Delete(still);
	cJSON_Delete(patched);
	cJSON_Delete(web);
	store_close(store);
}

TEST(node_pod_cidr_may_not_change)
{
	struct store *store = open_store();
	struct error err;
	cJSON *old = cJSON_Parse(
	        "{\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"},\"spec\":{\"podCIDR\":\"10.42.1.0/24\"}}");
	cJSON *keep = cJSON_Parse("{\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"},\"spec\":{}}");
	CHECK_OK(ipalloc_admit(store, NULL, "Node", old, keep, &err));
	CHECK_STR(object_string_at(keep, "spec.podCIDR"), "10.42.1.0/24");
	cJSON *change = cJSON_Parse(
	        "{\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"},\"spec\":{\"podCIDR\":\"10.42.2.0/24\"}}");
	CHECK_INT(ipalloc_admit(store, NULL, "Node", old, change, &err), ==, -EINVAL);
	CHECK_STR(err.field, "spec.podCIDR");
	cJSON *bad = cJSON_Parse("{\"kind\":\"Node\",\"metadata\":{\"name\":\"n2\"},\"spec\":{\"podCIDR\":\"nope\"}}");
	CHECK_INT(ipalloc_admit(store, NULL, "Node", NULL, bad, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "spec.podCIDR: Invalid value: \"nope\"");
	cJSON_Delete(old);
	cJSON_Delete(keep);
	cJSON_Delete(change);
	cJSON_Delete(bad);
	store_close(store);
}
