/* core/nodeipam.c: every Node gets its own block of the cluster CIDR; a full cluster CIDR
 * leaves a Node without one and says so in an Event; a freed block goes to a waiting Node. */
#include "tests/unit/controllers_harness.h"

static void node(struct harness *h, const char *name)
{
	char json[256];
	snprintf(json, sizeof(json), "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"}}", name);
	harness_create(h, json);
}

static char *cidr_of(struct harness *h, const char *name)
{
	cJSON *n = harness_get(h, "nodes", "", name);
	CHECK(n);
	const char *cidr = object_string_at(n, "spec.podCIDR");
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "spec"), "podCIDRs");
	char *copy = cidr ? xstrdup(cidr) : NULL;
	if (cidr)
		CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(list, 0)), cidr);
	cJSON_Delete(n);
	return copy;
}

TEST(nodeipam_blocks_in_order_exhaustion_event_and_reuse)
{
	struct harness h;
	struct controllers_options options = { .network = { .cluster_cidr = "10.60.0.0/23", .node_cidr_mask = 24 } };
	harness_open_with(&h, &options);
	node(&h, "n1");
	node(&h, "n2");
	harness_settle(&h);
	char *a = cidr_of(&h, "n1"), *b = cidr_of(&h, "n2");
	CHECK(a && b);
	CHECK(strcmp(a, b) != 0);
	CHECK(strcmp(a, "10.60.0.0/24") == 0 || strcmp(a, "10.60.1.0/24") == 0);
	CHECK(strcmp(b, "10.60.0.0/24") == 0 || strcmp(b, "10.60.1.0/24") == 0);

	node(&h, "n3");
	harness_settle(&h);
	CHECK(cidr_of(&h, "n3") == NULL);
	struct harness_list events;
	harness_list(&h, "events", NULL, &events);
	bool found = false;
	for (int i = 0; i < events.count; i++) {
		char *text = cJSON_PrintUnformatted(events.items[i]);
		found = found || (strstr(text, "CIDRNotAvailable") &&
		                  strstr(text, "all 2 /24 blocks of the cluster CIDR 10.60.0.0/23 are taken"));
		free(text);
	}
	harness_list_free(&events);
	CHECK(found);

	/* n1 goes: its block is n3's */
	struct store_request request = { .op = STORE_DELETE, .resource = "nodes", .namespace = "", .name = "n1" };
	struct error err;
	CHECK_OK(store_apply(h.store, &request, NULL, NULL, &err));
	harness_settle(&h);
	char *c = cidr_of(&h, "n3");
	CHECK(c);
	CHECK_STR(c, a);
	free(a);
	free(b);
	free(c);
	harness_close(&h);
}
