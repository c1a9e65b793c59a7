#include "agent/staticpods.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/object.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static char *manifests_dir(void)
{
	char *dir = xasprintf("%s/manifests", unit_temp_dir());
	CHECK_OK(file_mkdir_p(dir, 0700, NULL));
	return dir;
}

static void write_manifest(const char *dir, const char *name, const char *text)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, name);
	CHECK_OK(file_write_atomic(path, text, strlen(text), 0600, NULL));
}

static const char web_yaml[] = "apiVersion: v1\n"
                               "kind: Pod\n"
                               "metadata:\n"
                               "  name: web\n"
                               "spec:\n"
                               "  containers:\n"
                               "  - name: main\n"
                               "    image: busybox:1.36\n"
                               "    command: [sleep, '1000']\n";

TEST(a_manifest_becomes_a_pod_bound_here_named_for_the_node)
{
	cleanup_free char *dir = manifests_dir();
	write_manifest(dir, "web.yaml", web_yaml);
	write_manifest(dir, "notes.txt", "not a manifest");
	struct staticpods pods;
	struct error err;
	CHECK_OK(staticpods_load(dir, "pi-1", &pods, &err));
	CHECK_INT(pods.count, ==, 1);
	const cJSON *pod = pods.pods[0].object;
	CHECK_STR(object_name(pod), "web-pi-1");
	CHECK_STR(object_namespace(pod), "default");
	CHECK_STR(object_string_at(pod, "spec.nodeName"), "pi-1");
	CHECK_STR(object_string_at(pod, "spec.restartPolicy"), "Always"); /* defaults applied */
	CHECK_INT(strlen(pods.pods[0].uid), ==, 36);
	const cJSON *annotations = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "annotations");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(annotations, "kubernetes.io/config.hash")),
	          pods.pods[0].uid);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(annotations, "kubernetes.io/config.source")), "file");
	cleanup_free char *first_uid = xstrdup(pods.pods[0].uid);
	staticpods_free(&pods);

	/* The same manifest: the same uid (its containers are adopted after a restart). */
	CHECK_OK(staticpods_load(dir, "pi-1", &pods, &err));
	CHECK_STR(pods.pods[0].uid, first_uid);
	staticpods_free(&pods);
	/* Another node or an edit: another pod. */
	CHECK_OK(staticpods_load(dir, "pi-2", &pods, &err));
	CHECK(strcmp(pods.pods[0].uid, first_uid) != 0);
	staticpods_free(&pods);
	write_manifest(dir, "web.yaml",
	               "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\"},"
	               "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox:1.37\"}]}}");
	CHECK_OK(staticpods_load(dir, "pi-1", &pods, &err));
	CHECK_INT(pods.count, ==, 1);
	CHECK(strcmp(pods.pods[0].uid, first_uid) != 0);
	staticpods_free(&pods);
}

TEST(a_bad_manifest_is_left_out_and_the_others_run)
{
	cleanup_free char *dir = manifests_dir();
	write_manifest(dir, "a-good.yaml", web_yaml);
	write_manifest(dir, "b-bad.yaml",
	               "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: main\n");
	write_manifest(dir, "c-broken.yaml", "apiVersion: v1\nkind: Pod\n\tmetadata: {\n");
	write_manifest(dir, "d-service.json",
	               "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"}}");
	write_manifest(dir, "e-secret.yaml",
	               "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sec\nspec:\n  containers:\n  - name: main\n"
	               "    image: busybox:1.36\n    envFrom:\n    - secretRef:\n        name: token\n");
	struct staticpods pods;
	struct error err;
	CHECK_OK(staticpods_load(dir, "pi-1", &pods, &err));
	CHECK_INT(pods.count, ==, 1);
	CHECK_STR(object_name(pods.pods[0].object), "web-pi-1");
	staticpods_free(&pods);
}

TEST(a_missing_directory_is_an_empty_set)
{
	cleanup_free char *dir = xasprintf("%s/absent", unit_temp_dir());
	struct staticpods pods;
	struct error err;
	CHECK_OK(staticpods_load(dir, "pi-1", &pods, &err));
	CHECK_INT(pods.count, ==, 0);
	staticpods_free(&pods);
}

TEST(the_mirror_pod_names_the_static_pod_and_is_owned_by_the_node)
{
	cleanup_free char *dir = manifests_dir();
	write_manifest(dir, "web.yaml", web_yaml);
	struct staticpods pods;
	struct error err;
	CHECK_OK(staticpods_load(dir, "pi-1", &pods, &err));
	cJSON *mirror = staticpods_mirror(pods.pods[0].object, "pi-1", "node-uid-1");
	CHECK_STR(staticpods_mirror_hash(mirror), pods.pods[0].uid);
	CHECK(!object_string_at(mirror, "metadata.uid"));
	const cJSON *owner =
	        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(mirror, "metadata"), "ownerReferences"), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "kind")), "Node");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "name")), "pi-1");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "uid")), "node-uid-1");
	CHECK(!staticpods_mirror_hash(pods.pods[0].object));
	CHECK_OK(object_validate(kind_lookup("v1", "Pod"), mirror, &err));
	cJSON_Delete(mirror);
	staticpods_free(&pods);
}
