#include "core/binder.h"

#include <errno.h>
#include <stdio.h>

#include "core/object.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const uint8_t key[STORE_SECRET_KEY_SIZE] = { 9 };

static void feed(const struct store_change *change, void *data)
{
	binder_on_change(data, change);
}

static void put(struct store *store, const char *resource, const char *ns, const char *name, const char *json)
{
	cJSON *object = cJSON_Parse(json);
	CHECK(object != NULL);
	struct store_request request = { STORE_CREATE, resource, ns, name, object, 0 };
	struct error err;
	CHECK_OK(store_apply(store, &request, NULL, NULL, &err));
	cJSON_Delete(object);
}

static void add_node(struct store *store, const char *name, const char *memory)
{
	char json[700];
	snprintf(json, sizeof(json),
	         "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\",\"labels\":{"
	         "\"kubernetes.io/hostname\":\"%s\"}},\"status\":{\"allocatable\":{\"cpu\":\"2\",\"memory\":\"%s\","
	         "\"pods\":\"10\"},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
	         name, name, memory);
	put(store, "nodes", "", name, json);
}

static void add_pod(struct store *store, const char *name, const char *memory)
{
	char json[600];
	snprintf(json, sizeof(json),
	         "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\"},"
	         "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"resources\":{\"requests\":{\"memory\":"
	         "\"%s\"}}}]}}",
	         name, memory);
	put(store, "pods", "default", name, json);
}

static char *get(struct store *store, const char *resource, const char *ns, const char *name)
{
	char *text = NULL;
	CHECK_OK(store_get(store, resource, ns, name, &text, NULL));
	return text;
}

/* One run of the binder between commits. */
static int one_run(struct store *store, struct binder *b)
{
	struct error err;
	CHECK_OK(store_commit(store, &err));
	int writes = binder_run(b, &err);
	CHECK_OK(writes);
	CHECK_OK(store_commit(store, &err));
	return writes;
}

/* One round as the API server does it: commit, run, commit what it wrote; a run that used
 * up its time budget (a slow emulator, a loaded machine) is run again at once, as the API
 * server does, and the writes of all the runs counted. */
static int round_trip(struct store *store, struct binder *b)
{
	struct error err;
	int writes = 0;
	CHECK_OK(store_commit(store, &err));
	do {
		int r = binder_run(b, &err);
		CHECK_OK(r);
		writes += r;
		CHECK_OK(store_commit(store, &err));
	} while (binder_unfinished(b));
	return writes;
}

static struct store *open_store(void)
{
	struct store *store;
	cleanup_free char *path = xasprintf("%s/store.db", unit_temp_dir());
	struct store_options options = { .path = path, .secret_key = key };
	CHECK_OK(store_open(&options, &store, NULL));
	return store;
}

TEST(pending_pods_are_bound_and_the_unfitting_told_why)
{
	struct store *store = open_store();
	add_node(store, "pi-1", "1Gi");
	CHECK_OK(store_commit(store, NULL));
	struct binder *b;
	CHECK_OK(binder_new(store, &b, NULL)); /* starts from what the store holds */
	store_set_change_hook(store, feed, b);
	add_pod(store, "small", "100Mi");
	add_pod(store, "huge", "4Gi");
	CHECK_INT(round_trip(store, b), ==, 3); /* one binding, one condition, one Event */
	cleanup_free char *small = get(store, "pods", "default", "small");
	CHECK_CONTAINS(small, "\"nodeName\":\"pi-1\"");
	CHECK_CONTAINS(small, "\"type\":\"PodScheduled\",\"status\":\"True\"");
	cleanup_free char *huge = get(store, "pods", "default", "huge");
	CHECK_CONTAINS(huge, "0/1 nodes are available: 1 Insufficient memory.");
	CHECK_INT(binder_pending(b), ==, 1);
	/* Nothing changed in the cluster: no new attempt, no new write. */
	CHECK_INT(round_trip(store, b), ==, 0);
	/* A node it fits joins: it is bound. */
	add_node(store, "big-1", "8Gi");
	CHECK_INT(round_trip(store, b), ==, 1);
	cleanup_free char *bound = get(store, "pods", "default", "huge");
	CHECK_CONTAINS(bound, "\"nodeName\":\"big-1\"");
	CHECK_INT(binder_pending(b), ==, 0);
	binder_free(b);
	store_close(store);
}

TEST(pods_for_another_scheduler_or_already_bound_are_left_alone)
{
	struct store *store = open_store();
	add_node(store, "pi-1", "1Gi");
	put(store, "pods", "default", "other",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"other\",\"namespace\":\"default\"},"
	    "\"spec\":{\"schedulerName\":\"my-scheduler\",\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}");
	put(store, "pods", "default", "mine",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"mine\",\"namespace\":\"default\"},"
	    "\"spec\":{\"nodeName\":\"pi-9\",\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}");
	CHECK_OK(store_commit(store, NULL));
	struct binder *b;
	CHECK_OK(binder_new(store, &b, NULL));
	CHECK_INT(binder_pending(b), ==, 0);
	CHECK_INT(binder_run(b, NULL), ==, 0);
	binder_free(b);
	store_close(store);
}

static void delete_pod(struct store *store, const char *name)
{
	struct store_request request = { STORE_DELETE, "pods", "default", name, NULL, 0 };
	CHECK_OK(store_apply(store, &request, NULL, NULL, NULL));
}

TEST(thousands_waiting_are_found_by_key_and_bound_in_budgeted_runs)
{
	struct store *store = open_store();
	char name[32];
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "n%03d", i);
		add_node(store, name, "8Gi");
	}
	CHECK_OK(store_commit(store, NULL));
	struct binder *b;
	CHECK_OK(binder_new(store, &b, NULL));
	store_set_change_hook(store, feed, b);
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "p%04d", i);
		add_pod(store, name, "10Mi");
	}
	CHECK_OK(store_commit(store, NULL));
	CHECK_INT(binder_pending(b), ==, 3000);
	/* Some go before their turn: every other one of the first hundred, and the last. */
	for (int i = 0; i < 100; i += 2) {
		snprintf(name, sizeof(name), "p%04d", i);
		delete_pod(store, name);
	}
	delete_pod(store, "p2999");
	CHECK_OK(store_commit(store, NULL));
	CHECK_INT(binder_pending(b), ==, 3000 - 51);
	int bound = 0, runs = 0;
	do {
		CHECK(++runs < 1000);
		bound += one_run(store, b);
	} while (binder_unfinished(b));
	CHECK_INT(bound, ==, 3000 - 51);
	CHECK(runs > 1); /* 2,949 bindings do not fit one run's budget */
	CHECK_INT(binder_pending(b), ==, 0);
	cleanup_free char *one = get(store, "pods", "default", "p1234");
	CHECK_CONTAINS(one, "\"nodeName\":\"n");
	CHECK_INT(round_trip(store, b), ==, 0); /* nothing left */
	binder_free(b);
	store_close(store);
}
