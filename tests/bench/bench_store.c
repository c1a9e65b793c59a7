/* Store benchmark: figures only, no assertions (timing on a shared machine is not a test).
 *
 *   bench-store [DIR]     (default: a fresh directory under $TMPDIR or /tmp, removed after)
 *
 * 1. get/s and list throughput with 1,000 and 10,000 pods (~1.2 KB of JSON each) stored
 * 2. the process RSS (VmRSS) after loading 10,000 pods, and the database size
 * 3. creates/s with group commits of 1, 10 and 100 changes, not durable
 *    (synchronous=NORMAL) and durable (synchronous=FULL, fsync at every commit)
 */
#include "core/store.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "platform/error.h"
#include "platform/memory.h"

static const uint8_t bench_key[STORE_SECRET_KEY_SIZE] = "bench-key-bench-key-bench-key-32";

/* A pod as the API server would store it: ~1.2 KB unformatted. */
static const char pod_template[] =
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\",\"namespace\":\"default\","
        "\"uid\":\"6f1c1f0e-3b7a-4c1e-9d55-8f0f4f6b2a11\",\"generation\":1,"
        "\"creationTimestamp\":\"2024-05-01T12:00:00Z\",\"labels\":{\"app\":\"web\",\"tier\":\"frontend\","
        "\"pod-template-hash\":\"7d4b9c8f6\"},"
        "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"web-7d4b9c8f6\","
        "\"uid\":\"0b6a3c2e-5d4f-4e3a-8b1c-2a9d7e6f5c4b\",\"controller\":true}]},"
        "\"spec\":{\"nodeName\":\"pi-3\",\"restartPolicy\":\"Always\","
        "\"containers\":[{\"name\":\"web\",\"image\":\"registry.local/web:1.4.2\",\"command\":[\"/bin/web\"],"
        "\"args\":[\"--listen=:8080\"],\"ports\":[{\"name\":\"http\",\"containerPort\":8080,"
        "\"protocol\":\"TCP\"}],\"env\":[{\"name\":\"MODE\",\"value\":\"production\"}],"
        "\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":"
        "{\"cpu\":\"500m\",\"memory\":\"128Mi\"}},\"volumeMounts\":[{\"name\":\"config\",\"mountPath\":\"/etc/web\","
        "\"readOnly\":true}]}],\"volumes\":[{\"name\":\"config\",\"configMap\":{\"name\":\"web-config\"}}]},"
        "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.42.3.17\",\"hostIP\":\"192.168.1.23\","
        "\"startTime\":\"2024-05-01T12:00:02Z\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
        "\"lastTransitionTime\":\"2024-05-01T12:00:09Z\"}],\"containerStatuses\":[{\"name\":\"web\",\"ready\":true,"
        "\"restartCount\":0,\"image\":\"registry.local/web:1.4.2\",\"state\":{\"running\":{\"startedAt\":"
        "\"2024-05-01T12:00:05Z\"}}}]}}";

static cJSON *pod;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static long file_kib(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)(st.st_size / 1024) : 0;
}

static void fail(const char *what, const struct error *err)
{
	fprintf(stderr, "bench-store: %s: %s\n", what, err->message);
	exit(1);
}

static struct store *open_store(const char *path, bool durable)
{
	struct store_options options = { .path = path, .secret_key = bench_key, .durable = durable };
	struct store *store;
	struct error err = { 0 };
	if (store_open(&options, &store, &err) < 0)
		fail("store_open", &err);
	return store;
}

static void pod_name(char *buf, size_t size, unsigned i)
{
	snprintf(buf, size, "web-7d4b9c8f6-%06u", i);
}

/* Creates pods first..first+count-1, committing every `group` changes. */
static void create_pods(struct store *store, unsigned first, unsigned count, unsigned group)
{
	struct error err = { 0 };
	for (unsigned i = first; i < first + count; i++) {
		char name[64];
		pod_name(name, sizeof(name), i);
		cJSON *o = cJSON_Duplicate(pod, true);
		cJSON_ReplaceItemInObject(cJSON_GetObjectItem(o, "metadata"), "name", cJSON_CreateString(name));
		struct store_request request = { STORE_CREATE, "pods", "default", name, o, 0 };
		if (store_apply(store, &request, NULL, NULL, &err) < 0)
			fail("store_apply", &err);
		cJSON_Delete(o);
		if (store_pending(store) >= group && store_commit(store, &err) < 0)
			fail("store_commit", &err);
	}
	if (store_commit(store, &err) < 0)
		fail("store_commit", &err);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void bench_creates(const char *dir)
{
	printf("== creates of pod-sized objects, one per store_apply\n");
	printf("%-9s %6s %8s %12s %10s\n", "mode", "group", "creates", "creates/s", "commits/s");
	static const unsigned groups[] = { 1, 10, 100 };
	for (int durable = 0; durable <= 1; durable++) {
		for (size_t g = 0; g < ARRAY_SIZE(groups); g++) {
			unsigned count = groups[g] == 1 ? 2000 : 10000;
			char *path = xasprintf("%s/creates-%d-%u.db", dir, durable, groups[g]);
			struct store *store = open_store(path, durable);
			double start = now();
			create_pods(store, 0, count, groups[g]);
			double seconds = now() - start;
			store_close(store);
			printf("%-9s %6u %8u %12.0f %10.0f\n", durable ? "durable" : "normal", groups[g], count,
			       count / seconds, count / groups[g] / seconds);
			free(path);
		}
	}
}

static int count_object(const char *object, size_t length, void *data)
{
	size_t *bytes = data;
	*bytes += length;
	return 0;
}

static void bench_reads(struct store *store, unsigned stored)
{
	struct error err = { 0 };
	unsigned gets = 20000;
	unsigned seed = 7;
	double start = now();
	for (unsigned i = 0; i < gets; i++) {
		char name[64], *json;
		pod_name(name, sizeof(name), (unsigned)rand_r(&seed) % stored);
		if (store_get(store, "pods", "default", name, &json, &err) < 0)
			fail("store_get", &err);
		free(json);
	}
	double get_seconds = now() - start;

	/* Full listings, as a client paging with limit=500 does. */
	int rounds = stored >= 10000 ? 3 : 20;
	size_t bytes = 0;
	start = now();
	for (int round = 0; round < rounds; round++) {
		char *next = NULL;
		do {
			char *from = next;
			if (store_list(store, "pods", "default", from, 500, count_object, &bytes, &next, &err) < 0)
				fail("store_list", &err);
			free(from);
		} while (next);
	}
	double list_seconds = now() - start;
	printf("%6u pods: %8.0f get/s   full list (pages of 500): %6.1f ms, %8.0f objects/s, %6.1f MB/s\n", stored,
	       gets / get_seconds, list_seconds / rounds * 1000, (double)stored * rounds / list_seconds,
	       (double)bytes / list_seconds / 1e6);
}

int main(int argc, char **argv)
{
	pod = cJSON_Parse(pod_template);
	if (!pod) {
		fprintf(stderr, "bench-store: the pod template does not parse\n");
		return 1;
	}
	char dir[256];
	bool remove_dir = argc < 2;
	if (argc >= 2) {
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	} else {
		const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(dir, sizeof(dir), "%s/bramble-bench-store.XXXXXX", base);
		if (!mkdtemp(dir)) {
			fprintf(stderr, "bench-store: mkdtemp %s: %s\n", dir, strerror(errno));
			return 1;
		}
	}
	char version[64];
	store_library_version(version, sizeof(version));
	printf("store benchmark in %s (%s), pods of %zu bytes of JSON\n\n", dir, version, strlen(pod_template));

	/* Memory first, while the heap holds nothing from earlier stores. */
	printf("== reads (cache 2 MiB, not durable)\n");
	long rss_before = rss_kib();
	char *path = xasprintf("%s/reads.db", dir);
	struct store *store = open_store(path, false);
	create_pods(store, 0, 1000, 100);
	bench_reads(store, 1000);
	create_pods(store, 1000, 9000, 100);
	long rss_loaded = rss_kib();
	bench_reads(store, 10000);

	printf("\n== memory\n");
	printf("RSS before opening the store: %ld kB\n", rss_before);
	printf("RSS after loading 10,000 pods: %ld kB\n", rss_loaded);
	printf("RSS after the reads above: %ld kB\n", rss_kib());
	char *wal = xasprintf("%s-wal", path);
	printf("database: %ld kB, WAL: %ld kB\n", file_kib(path), file_kib(wal));
	store_close(store);
	printf("database after close (checkpointed): %ld kB\n", file_kib(path));
	free(wal);
	free(path);

	printf("\n");
	bench_creates(dir);
	cJSON_Delete(pod);
	if (remove_dir)
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
