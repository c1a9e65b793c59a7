#include "agent/podcache.h"

#include <errno.h>
#include <sys/stat.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const char node_key[] = "pi1-secret-key-123456";

static struct podcache *open_cache(const char *key)
{
	cleanup_free char *path = xasprintf("%s/podcache.db", unit_temp_dir());
	struct podcache_options options = {
		.path = path, .key_material = key, .key_material_length = strlen(key), .node_name = "pi-1"
	};
	struct podcache *cache = NULL;
	struct error err;
	CHECK_OK(podcache_open(&options, &cache, &err));
	return cache;
}

static cJSON *pod(const char *uid, const char *name, const char *rv, const char *phase)
{
	cleanup_free char *text = xasprintf(
	        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\","
	        "\"uid\":\"%s\",\"resourceVersion\":\"%s\"},\"spec\":{\"nodeName\":\"pi-1\",\"containers\":[{\"name\":"
	        "\"main\",\"image\":\"busybox:1.36\",\"env\":[{\"name\":\"P\",\"valueFrom\":{\"secretKeyRef\":{"
	        "\"name\":\"token\",\"key\":\"password\"}}}],\"envFrom\":[{\"configMapRef\":{\"name\":\"settings\"}}]}]"
	        "},"
	        "\"status\":{\"phase\":\"%s\",\"podIP\":\"10.42.0.%s\"}}",
	        name, uid, rv, phase, rv);
	return cJSON_Parse(text);
}

static cJSON *config(const char *kind, const char *name, const char *key, const char *value)
{
	cleanup_free char *text =
	        xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
	                  "\"default\"},\"data\":{\"%s\":\"%s\"}}",
	                  kind, name, key, value);
	return cJSON_Parse(text);
}

static char *file_text(void)
{
	/* The database and its WAL: everything SQLite wrote. */
	char *all = xstrdup("");
	const char *names[] = { "podcache.db", "podcache.db-wal" };
	for (size_t i = 0; i < 2; i++) {
		cleanup_free char *path = xasprintf("%s/%s", unit_temp_dir(), names[i]);
		char *data = NULL;
		size_t size = 0;
		if (file_read(path, 64 * 1024 * 1024, &data, &size, NULL) < 0)
			continue;
		for (size_t j = 0; j < size; j++)
			if (data[j] == '\0')
				data[j] = '.';
		char *joined = xasprintf("%s%.*s", all, (int)size, data);
		free(all);
		free(data);
		all = joined;
	}
	return all;
}

TEST(keeps_pods_configs_and_the_revision_across_opens)
{
	struct podcache *cache = open_cache(node_key);
	struct error err;
	cJSON *p = pod("u-1", "web", "7", "Running");
	cJSON *cm = config("ConfigMap", "settings", "greeting", "hello");
	cJSON *secret = config("Secret", "token", "password", "czNjcjN0LXZhbHVl");
	CHECK_OK(podcache_begin(cache, &err));
	CHECK_INT(podcache_pod_put(cache, p, &err), ==, 1);
	CHECK_INT(podcache_config_put(cache, false, cm, &err), ==, 1);
	CHECK_INT(podcache_config_put(cache, true, secret, &err), ==, 1);
	CHECK_OK(podcache_commit(cache, "7", false, &err));
	CHECK_INT(podcache_commits(cache), ==, 1);
	podcache_close(cache);

	cache = open_cache(node_key);
	cJSON *pods = NULL;
	char revision[PODCACHE_REVISION_MAX];
	CHECK_OK(podcache_load(cache, &pods, revision, &err));
	CHECK_STR(revision, "7");
	CHECK_INT(cJSON_GetArraySize(pods), ==, 1);
	cJSON *loaded = cJSON_GetArrayItem(pods, 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(loaded, "metadata"), "uid")), "u-1");
	/* Status reduced to its phase, no resourceVersion. */
	cJSON *status = cJSON_GetObjectItem(loaded, "status");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(status, "phase")), "Running");
	CHECK(!cJSON_GetObjectItem(status, "podIP"));
	CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(loaded, "metadata"), "resourceVersion"));

	cJSON *cfg = podcache_pod_config(cache, loaded);
	const cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "secrets"), "token");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "data"), "password")),
	          "czNjcjN0LXZhbHVl");
	const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "configmaps"), "settings");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "data"), "greeting")), "hello");
	cJSON_Delete(cfg);
	cJSON_Delete(pods);
	podcache_close(cache);
	cJSON_Delete(p);
	cJSON_Delete(cm);
	cJSON_Delete(secret);
}

TEST(writes_nothing_when_only_status_or_revision_changed)
{
	struct podcache *cache = open_cache(node_key);
	struct error err;
	cJSON *p = pod("u-1", "web", "7", "Running");
	CHECK_INT(podcache_pod_put(cache, p, &err), ==, 1);
	CHECK_INT(podcache_commits(cache), ==, 1);
	cJSON_Delete(p);
	/* The kubelet's own status write comes back as a MODIFIED event with a new revision. */
	p = pod("u-1", "web", "9", "Running");
	CHECK_OK(podcache_begin(cache, &err));
	CHECK_INT(podcache_pod_put(cache, p, &err), ==, 0);
	CHECK_OK(podcache_commit(cache, "9", false, &err));
	CHECK_INT(podcache_commits(cache), ==, 1);
	cJSON *secret = config("Secret", "token", "password", "abc");
	CHECK_INT(podcache_config_put(cache, true, secret, &err), ==, 1);
	CHECK_INT(podcache_config_put(cache, true, secret, &err), ==, 0);
	CHECK_INT(podcache_commits(cache), ==, 2);
	/* A clean shutdown may insist on the revision; once. */
	CHECK_OK(podcache_begin(cache, &err));
	CHECK_OK(podcache_commit(cache, "9", true, &err));
	CHECK_INT(podcache_commits(cache), ==, 3);
	CHECK_OK(podcache_begin(cache, &err));
	CHECK_OK(podcache_commit(cache, "9", true, &err));
	CHECK_INT(podcache_commits(cache), ==, 3);
	/* A phase change is a change. */
	cJSON_Delete(p);
	p = pod("u-1", "web", "11", "Succeeded");
	CHECK_INT(podcache_pod_put(cache, p, &err), ==, 1);
	cJSON_Delete(p);
	cJSON_Delete(secret);
	podcache_close(cache);
}

TEST(secrets_are_not_readable_in_the_file)
{
	struct podcache *cache = open_cache(node_key);
	struct error err;
	cJSON *secret = config("Secret", "token", "password", "plain-text-password-xyz");
	cJSON *cm = config("ConfigMap", "settings", "greeting", "visible-greeting");
	CHECK_INT(podcache_config_put(cache, true, secret, &err), ==, 1);
	CHECK_INT(podcache_config_put(cache, false, cm, &err), ==, 1);
	podcache_close(cache);
	cleanup_free char *text = file_text();
	CHECK(strstr(text, "visible-greeting") != NULL); /* the check can see what is there */
	CHECK(strstr(text, "plain-text-password-xyz") == NULL);
	CHECK(strstr(text, "BPC1") != NULL);
	cJSON_Delete(secret);
	cJSON_Delete(cm);
}

TEST(a_changed_credential_cannot_read_old_secrets)
{
	struct podcache *cache = open_cache(node_key);
	struct error err;
	cJSON *p = pod("u-1", "web", "7", "Running");
	cJSON *secret = config("Secret", "token", "password", "abc");
	CHECK_OK(podcache_pod_put(cache, p, &err));
	CHECK_OK(podcache_config_put(cache, true, secret, &err));
	podcache_close(cache);
	cache = open_cache("another-key-entirely-0000");
	cJSON *cfg = podcache_pod_config(cache, p);
	CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "secrets"), "token"));
	cJSON_Delete(cfg);
	podcache_close(cache);
	cJSON_Delete(p);
	cJSON_Delete(secret);
}

TEST(forgets_configs_no_pod_uses)
{
	struct podcache *cache = open_cache(node_key);
	struct error err;
	cJSON *a = pod("u-1", "a", "7", "Running");
	cJSON *b = pod("u-2", "b", "8", "Running");
	cJSON *cm = config("ConfigMap", "settings", "greeting", "hello");
	CHECK_OK(podcache_pod_put(cache, a, &err));
	CHECK_OK(podcache_pod_put(cache, b, &err));
	CHECK_OK(podcache_config_put(cache, false, cm, &err));
	CHECK_OK(podcache_pod_delete(cache, "u-1", &err));
	cJSON *cfg = podcache_pod_config(cache, b);
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "configmaps"), "settings"));
	cJSON_Delete(cfg);
	CHECK_OK(podcache_pod_delete(cache, "u-2", &err));
	cfg = podcache_pod_config(cache, b);
	CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "configmaps"), "settings"));
	cJSON_Delete(cfg);
	cJSON *pods = NULL;
	char revision[PODCACHE_REVISION_MAX];
	CHECK_OK(podcache_load(cache, &pods, revision, &err));
	CHECK_INT(cJSON_GetArraySize(pods), ==, 0);
	CHECK_STR(revision, "");
	cJSON_Delete(pods);
	podcache_close(cache);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(cm);
}

TEST(refuses_a_file_that_is_not_a_cache)
{
	cleanup_free char *path = xasprintf("%s/podcache.db", unit_temp_dir());
	CHECK_OK(file_write_atomic(path, "not a database at all, just text\n", 33, 0600, NULL));
	struct podcache_options options = { .path = path, .key_material = "k", .key_material_length = 1 };
	struct podcache *cache = NULL;
	struct error err;
	CHECK_INT(podcache_open(&options, &cache, &err), <, 0);
	CHECK_CONTAINS(err.message, path);
}

TEST(a_second_agent_on_the_same_file_is_told_and_changes_nothing)
{
	struct podcache *first = open_cache(node_key);
	cleanup_free char *path = xasprintf("%s/podcache.db", unit_temp_dir());
	struct podcache_options options = {
		.path = path, .key_material = node_key, .key_material_length = strlen(node_key), .node_name = "pi-1"
	};
	struct podcache *second = NULL;
	struct error err;
	CHECK_INT(podcache_open(&options, &second, &err), ==, -EBUSY);
	CHECK_CONTAINS(err.message, "another agent");
	podcache_close(first);
}
