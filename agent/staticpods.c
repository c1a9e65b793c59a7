/* Static pods from a directory of manifests. See staticpods.h.
 *
 * A manifest document becomes a static pod in this order: it must be a v1 Pod; Kubernetes'
 * defaults are applied and it is validated as the API server would (the error names the
 * field); it may not use ConfigMaps or Secrets (as in Kubernetes: a static pod cannot
 * depend on the API); then it is bound here: name <name>-<node>, namespace default unless
 * given, spec.nodeName, annotations kubernetes.io/config.source=file and
 * kubernetes.io/config.hash=<uid>, metadata.uid = a UUID-shaped sha256 of the node name,
 * the file name and the document's JSON. Two documents giving the same pod name: the
 * second is refused.
 */
#include "agent/staticpods.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>

#include "agent/podspec.h"
#include "core/object.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"
#include "tools/manifest.h"

static bool is_manifest_name(const char *name)
{
	size_t n = strlen(name);
	if (name[0] == '.')
		return false;
	static const char *const suffixes[] = { ".yaml", ".yml", ".json" };
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t s = strlen(suffixes[i]);
		if (n > s && strcmp(name + n - s, suffixes[i]) == 0)
			return true;
	}
	return false;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" from sha256(node \0 file \0 json). */
static void derive_uid(const char *node, const char *file, const char *json, char uid[37])
{
	unsigned char digest[32];
	mbedtls_sha256_context sha;
	mbedtls_sha256_init(&sha);
	mbedtls_sha256_starts(&sha, 0);
	mbedtls_sha256_update(&sha, (const unsigned char *)node, strlen(node) + 1);
	mbedtls_sha256_update(&sha, (const unsigned char *)file, strlen(file) + 1);
	mbedtls_sha256_update(&sha, (const unsigned char *)json, strlen(json));
	mbedtls_sha256_finish(&sha, digest);
	mbedtls_sha256_free(&sha);
	char *p = uid;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", digest[i]);
	}
	*p = '\0';
}

static void set_annotation(cJSON *object, const char *key, const char *value)
{
	cJSON *metadata = object_metadata(object);
	cJSON *annotations = cJSON_GetObjectItemCaseSensitive(metadata, "annotations");
	if (!cJSON_IsObject(annotations)) {
		cJSON_DeleteItemFromObjectCaseSensitive(metadata, "annotations");
		annotations = cJSON_AddObjectToObject(metadata, "annotations");
	}
	cJSON_DeleteItemFromObjectCaseSensitive(annotations, key);
	cJSON_AddStringToObject(annotations, key, value);
}

static void set_string(cJSON *parent, const char *key, const char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
	cJSON_AddStringToObject(parent, key, value);
}

/* One document into a static pod; -EINVAL with the reason in err. */
static int make_pod(const struct manifest_document *doc, const char *node, cJSON **ret_object, struct error *err)
{
	const cJSON *object = doc->object;
	const char *api_version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, "apiVersion"));
	const char *kind_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, "kind"));
	if (!api_version || !kind_name || strcmp(api_version, "v1") != 0 || strcmp(kind_name, "Pod") != 0)
		return error_set_field(err, EINVAL, "kind",
		                       "a static pod manifest holds kind Pod (apiVersion v1), not %s %s",
		                       api_version ? api_version : "?", kind_name ? kind_name : "?");
	const struct kind *kind = kind_lookup("v1", "Pod");
	cJSON *pod = cJSON_Duplicate(object, 1);
	cJSON *metadata = object_metadata(pod);
	const char *name = object_name(pod);
	if (!name || !name[0]) {
		cJSON_Delete(pod);
		return error_set_field(err, EINVAL, "metadata.name", "Required value");
	}
	cleanup_free char *full_name = xasprintf("%s-%s", name, node);
	set_string(metadata, "name", full_name);
	if (!object_namespace(pod))
		cJSON_AddStringToObject(metadata, "namespace", "default");
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	if (cJSON_IsObject(spec))
		set_string(spec, "nodeName", node);
	object_apply_defaults(kind, pod);
	int r = object_validate(kind, pod, err);
	if (r < 0) {
		cJSON_Delete(pod);
		return r;
	}
	cJSON *refs = podspec_config_refs(pod);
	bool uses_config = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(refs, "configmaps")) > 0 ||
	                   cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(refs, "secrets")) > 0;
	cJSON_Delete(refs);
	if (uses_config) {
		cJSON_Delete(pod);
		return error_set_field(err, EINVAL, "spec",
		                       "a static pod may not use ConfigMaps or Secrets (it must run without the API)");
	}
	char *json = cJSON_PrintUnformatted(doc->object);
	char uid[37];
	derive_uid(node, doc->source, json, uid);
	free(json);
	set_string(metadata, "uid", uid);
	set_annotation(pod, STATICPODS_SOURCE_ANNOTATION, "file");
	set_annotation(pod, STATICPODS_HASH_ANNOTATION, uid);
	*ret_object = pod;
	return 0;
}

static bool name_taken(const struct staticpods *pods, const cJSON *object)
{
	for (size_t i = 0; i < pods->count; i++)
		if (strcmp(object_name(pods->pods[i].object), object_name(object)) == 0 &&
		    strcmp(object_namespace(pods->pods[i].object), object_namespace(object)) == 0)
			return true;
	return false;
}

static void add_file(const char *path, const char *node, struct staticpods *pods)
{
	struct manifest manifest = { 0 };
	struct error err;
	if (manifest_read(path, &manifest, &err) < 0) {
		log_warnx("static pod manifest %s; not run", err.message); /* the message names the file */
		manifest_free(&manifest);
		return;
	}
	for (size_t i = 0; i < manifest.count; i++) {
		const struct manifest_document *doc = &manifest.documents[i];
		cJSON *object = NULL;
		if (make_pod(doc, node, &object, &err) < 0) {
			log_warnx("static pod %s: document %d (line %d): %s; not run", path, doc->index, doc->line,
			          err.message);
			continue;
		}
		if (name_taken(pods, object)) {
			log_warnx("static pod %s: document %d: metadata.name: pod %s is defined twice; not run", path,
			          doc->index, object_name(object));
			cJSON_Delete(object);
			continue;
		}
		if (pods->count >= STATICPODS_MAX) {
			log_warnx("static pod %s: document %d: more than %d static pods; not run", path, doc->index,
			          STATICPODS_MAX);
			cJSON_Delete(object);
			continue;
		}
		pods->pods = xrealloc(pods->pods, (pods->count + 1) * sizeof(*pods->pods));
		struct staticpod *p = &pods->pods[pods->count++];
		p->file = xstrdup(path);
		p->object = object;
		p->uid = object_string_at(object, "metadata.uid");
	}
	manifest_free(&manifest);
}

int staticpods_load(const char *dir, const char *node, struct staticpods *ret_pods, struct error *err)
{
	memset(ret_pods, 0, sizeof(*ret_pods));
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			log_warnx("static pods: directory %s does not exist; none run", dir);
			return 0;
		}
		return error_set_errno(err, errno, "static pods: cannot read the directory %s", dir);
	}
	char **names = NULL;
	size_t count = 0;
	struct dirent *entry;
	while ((entry = readdir(d)) && count < STATICPODS_MAX * 4) {
		if (!is_manifest_name(entry->d_name))
			continue;
		names = xrealloc(names, (count + 1) * sizeof(*names));
		names[count++] = xstrdup(entry->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof(*names), compare_names);
	size_t len = strlen(dir);
	for (size_t i = 0; i < count; i++) {
		cleanup_free char *path = xasprintf("%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", names[i]);
		add_file(path, node, ret_pods);
		free(names[i]);
	}
	free(names);
	return 0;
}

void staticpods_free(struct staticpods *pods)
{
	for (size_t i = 0; i < pods->count; i++) {
		free(pods->pods[i].file);
		cJSON_Delete(pods->pods[i].object);
	}
	free(pods->pods);
	memset(pods, 0, sizeof(*pods));
}

cJSON *staticpods_mirror(const cJSON *object, const char *node, const char *node_uid)
{
	cJSON *mirror = cJSON_Duplicate(object, 1);
	cJSON *metadata = object_metadata(mirror);
	const char *uid = object_string_at(object, "metadata.uid");
	set_annotation(mirror, STATICPODS_MIRROR_ANNOTATION, uid ? uid : "");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "uid");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "resourceVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "creationTimestamp");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "ownerReferences");
	cJSON_DeleteItemFromObjectCaseSensitive(mirror, "status");
	cJSON *owners = cJSON_AddArrayToObject(metadata, "ownerReferences");
	cJSON *owner = cJSON_CreateObject();
	cJSON_AddStringToObject(owner, "apiVersion", "v1");
	cJSON_AddStringToObject(owner, "kind", "Node");
	cJSON_AddStringToObject(owner, "name", node);
	cJSON_AddStringToObject(owner, "uid", node_uid ? node_uid : "");
	cJSON_AddBoolToObject(owner, "controller", true);
	cJSON_AddItemToArray(owners, owner);
	return mirror;
}

const char *staticpods_mirror_hash(const cJSON *pod)
{
	const cJSON *annotations =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "annotations");
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(annotations, STATICPODS_MIRROR_ANNOTATION));
}
