/* The control plane's image registry as a blob store: uploads verified and invisible until
 * complete, limits, references per platform, removal and collection. */
#include "core/registry.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static void digest_of(const void *data, size_t length, char out[72])
{
	unsigned char sum[32];
	mbedtls_sha256(data, length, sum, 0);
	strcpy(out, "sha256:");
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", sum[i]);
}

static struct registry *open_registry(uint64_t limit, uint64_t blob_max)
{
	char *dir = xasprintf("%s/registry", unit_temp_dir());
	struct registry_options options = { .dir = dir, .limit_bytes = limit, .blob_max = blob_max };
	struct registry *r = NULL;
	struct error err = { 0 };
	int e = registry_open(&options, &r, &err);
	free(dir);
	if (e < 0)
		unit_fail(__FILE__, __LINE__, "registry_open: %s", err.message);
	return r;
}

static size_t entries_in(const char *subdir)
{
	char *path = xasprintf("%s/registry/%s", unit_temp_dir(), subdir);
	DIR *dir = opendir(path);
	free(path);
	size_t n = 0;
	struct dirent *entry;
	while (dir && (entry = readdir(dir)))
		if (entry->d_name[0] != '.')
			n++;
	if (dir)
		closedir(dir);
	return n;
}

/* Uploads a whole blob in chunks of `chunk` bytes; returns the last call's result. */
static int upload(struct registry *r, const char *data, size_t length, size_t chunk, struct error *err)
{
	char digest[72], id[33];
	digest_of(data, length, digest);
	int e = registry_upload_begin(r, digest, length, id, err);
	if (e < 0)
		return e;
	uint64_t offset = 0, received = 0;
	bool done = false;
	while (!done) {
		size_t n = length - offset < chunk ? length - offset : chunk;
		e = registry_upload_write(r, id, offset, data + offset, n, &done, &received, err);
		if (e < 0)
			return e;
		offset += n;
	}
	return 0;
}

TEST(an_upload_in_chunks_becomes_a_verified_blob)
{
	struct registry *r = open_registry(0, 0);
	struct error err = { 0 };
	static const char content[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	char digest[72], id[33];
	digest_of(content, sizeof(content) - 1, digest);
	CHECK(!registry_blob_exists(r, digest));
	CHECK_INT(registry_upload_begin(r, digest, sizeof(content) - 1, id, &err), ==, 0);
	CHECK_INT(registry_upload_count(r), ==, 1);
	bool done = true;
	uint64_t received = 0;
	CHECK_INT(registry_upload_write(r, id, 0, content, 10, &done, &received, &err), ==, 0);
	CHECK(!done);
	CHECK_INT(received, ==, 10);
	CHECK(!registry_blob_exists(r, digest)); /* not visible while partial */
	/* A chunk at the wrong offset is refused; the upload goes on. */
	CHECK_INT(registry_upload_write(r, id, 5, content + 5, 5, &done, &received, &err), ==, -ESTALE);
	CHECK_CONTAINS(err.message, "is at offset 10");
	CHECK_INT(registry_upload_write(r, id, 10, content + 10, sizeof(content) - 11, &done, &received, &err), ==, 0);
	CHECK(done);
	CHECK(registry_blob_exists(r, digest));
	CHECK_INT(registry_upload_count(r), ==, 0);
	CHECK_INT(entries_in("uploads"), ==, 0);
	CHECK_INT(registry_usage(r), ==, sizeof(content) - 1);
	/* Read back in pieces, mapped: the tail shorter than asked for, past the end refused, at
	 * an offset that is not page-aligned, and at the end. */
	struct registry_mapping *m = NULL;
	CHECK_INT(registry_blob_map(r, digest, 30, 100, &m, &err), ==, 0);
	CHECK_INT(m->length, ==, 6);
	CHECK_INT(m->total, ==, 36);
	CHECK(memcmp(m->data, "uvwxyz", 6) == 0);
	registry_mapping_free(m);
	CHECK_INT(registry_blob_map(r, digest, 37, 100, &m, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "past the end");
	CHECK_INT(registry_blob_map(r, digest, 3, 5, &m, &err), ==, 0);
	CHECK_INT(m->length, ==, 5);
	CHECK_INT(m->total, ==, 36);
	CHECK(memcmp(m->data, "34567", 5) == 0);
	registry_mapping_free(m);
	CHECK_INT(registry_blob_map(r, digest, 36, 5, &m, &err), ==, 0);
	CHECK_INT(m->length, ==, 0);
	registry_mapping_free(m);
	CHECK_INT(registry_blob_map(r, "sha256:nothex", 0, 5, &m, &err), ==, -EINVAL);
	/* Pushing it again: the client is told it is there. */
	CHECK_INT(registry_upload_begin(r, digest, sizeof(content) - 1, id, &err), ==, -EEXIST);
	registry_free(r);
}

TEST(a_digest_mismatch_leaves_nothing)
{
	struct registry *r = open_registry(0, 0);
	struct error err = { 0 };
	char digest[72], id[33];
	digest_of("what was announced", 18, digest);
	CHECK_INT(registry_upload_begin(r, digest, 18, id, &err), ==, 0);
	bool done;
	uint64_t received;
	CHECK_INT(registry_upload_write(r, id, 0, "what arrived here!", 18, &done, &received, &err), ==, -EBADMSG);
	CHECK_CONTAINS(err.message, "digest mismatch");
	CHECK_CONTAINS(err.message, digest);
	CHECK(!registry_blob_exists(r, digest));
	CHECK_INT(entries_in("uploads"), ==, 0);
	CHECK_INT(entries_in("blobs/sha256"), ==, 0);
	CHECK_INT(registry_upload_count(r), ==, 0);
	/* The upload is gone: a late chunk is told so. */
	CHECK_INT(registry_upload_write(r, id, 18, "x", 1, &done, &received, &err), ==, -ENOENT);
	registry_free(r);
}

TEST(oversized_uploads_are_refused_and_dropped)
{
	struct registry *r = open_registry(100, 64);
	struct error err = { 0 };
	char digest[72], id[33];
	char big[80];
	memset(big, 'x', sizeof(big));
	digest_of(big, sizeof(big), digest);
	CHECK_INT(registry_upload_begin(r, digest, sizeof(big), id, &err), ==, -EFBIG);
	CHECK_CONTAINS(err.message, "up to 64");
	/* More bytes than announced: refused, and the upload is dropped. */
	digest_of(big, 40, digest);
	CHECK_INT(registry_upload_begin(r, digest, 40, id, &err), ==, 0);
	bool done;
	uint64_t received;
	CHECK_INT(registry_upload_write(r, id, 0, big, 50, &done, &received, &err), ==, -EFBIG);
	CHECK_CONTAINS(err.message, "more than the 40 bytes announced");
	CHECK_INT(entries_in("uploads"), ==, 0);
	CHECK_INT(registry_upload_count(r), ==, 0);
	/* The registry's limit counts blobs and uploads in progress. */
	CHECK_INT(upload(r, big, 60, 16, &err), ==, 0);
	digest_of(big + 1, 50, digest);
	CHECK_INT(registry_upload_begin(r, digest, 50, id, &err), ==, -EFBIG);
	CHECK_CONTAINS(err.message, "limit of 100 bytes");
	registry_free(r);
}

TEST(abandoned_and_idle_uploads_are_removed)
{
	struct registry *r = open_registry(0, 0);
	struct error err = { 0 };
	char digest[72], id[33];
	bool done;
	uint64_t received;
	digest_of("abcdef", 6, digest);
	CHECK_INT(registry_upload_begin(r, digest, 6, id, &err), ==, 0);
	CHECK_INT(registry_upload_write(r, id, 0, "abc", 3, &done, &received, &err), ==, 0);
	CHECK_INT(entries_in("uploads"), ==, 1);
	CHECK_INT(registry_upload_abort(r, id, &err), ==, 0);
	CHECK_INT(entries_in("uploads"), ==, 0);
	CHECK_INT(registry_upload_begin(r, digest, 6, id, &err), ==, 0);
	CHECK_INT(registry_upload_expire(r, 60000), ==, 0); /* not idle yet */
	CHECK_INT(registry_upload_expire(r, 0), ==, 1);
	CHECK_INT(entries_in("uploads"), ==, 0);
	/* An upload a dead server left behind is cleared when the registry opens. */
	CHECK_INT(registry_upload_begin(r, digest, 6, id, &err), ==, 0);
	char *partial = xasprintf("%s/registry/uploads/%s", unit_temp_dir(), id);
	CHECK(access(partial, F_OK) == 0);
	registry_free(r); /* drops it too; leave one as a crash would */
	CHECK_INT(file_write_atomic(partial, "abc", 3, 0600, &err), ==, 0);
	r = open_registry(0, 0);
	CHECK(access(partial, F_OK) != 0);
	free(partial);
	registry_free(r);
}

/* Pushes config and one layer, returns the manifest text (caller frees). */
static char *push_image(struct registry *r, const char *arch, const char *layer_text, char config_digest[72])
{
	struct error err = { 0 };
	char *config = xasprintf("{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
	                         "\"diff_ids\":[\"sha256:%064d\"]}}",
	                         arch, 0);
	char layer_digest[72];
	digest_of(config, strlen(config), config_digest);
	digest_of(layer_text, strlen(layer_text), layer_digest);
	int e = upload(r, config, strlen(config), 7, &err);
	if (e < 0 && e != -EEXIST)
		unit_fail(__FILE__, __LINE__, "config upload: %s", err.message);
	e = upload(r, layer_text, strlen(layer_text), 4, &err);
	if (e < 0 && e != -EEXIST)
		unit_fail(__FILE__, __LINE__, "layer upload: %s", err.message);
	char *manifest = xasprintf("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	                           "\"config\":{\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"digest\":\"%s\","
	                           "\"size\":%zu}]}",
	                           config_digest, strlen(config), layer_digest, strlen(layer_text));
	free(config);
	return manifest;
}

TEST(manifests_tag_images_per_platform)
{
	struct registry *r = open_registry(0, 0);
	struct error err = { 0 };
	char config[72];
	char *manifest = push_image(r, "amd64", "layer for amd64", config);
	cJSON *entry = NULL;
	CHECK_INT(registry_manifest_put(r, "docker.io/library/busybox:1.36", manifest, strlen(manifest), &entry, &err),
	          ==, 0);
	char manifest_digest[72];
	digest_of(manifest, strlen(manifest), manifest_digest);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(entry, "manifest")), manifest_digest);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(entry, "platform")), "amd64");
	CHECK(registry_blob_exists(r, manifest_digest));
	cJSON_Delete(entry);
	free(manifest);
	/* The same name for another architecture: a second platform. */
	char arm_config[72];
	manifest = push_image(r, "arm64", "layer for arm64", arm_config);
	CHECK_INT(registry_manifest_put(r, "docker.io/library/busybox:1.36", manifest, strlen(manifest), NULL, &err),
	          ==, 0);
	free(manifest);
	cJSON *found = NULL;
	CHECK_INT(registry_lookup(r, "docker.io/library/busybox:1.36", &found, &err), ==, 0);
	cJSON *platforms = cJSON_GetObjectItem(found, "platforms");
	CHECK_INT(cJSON_GetArraySize(platforms), ==, 2);
	char *text = cJSON_PrintUnformatted(found);
	CHECK_CONTAINS(text, "\"platform\":\"amd64\"");
	CHECK_CONTAINS(text, "\"platform\":\"arm64\"");
	CHECK_CONTAINS(text, config);
	CHECK(!strstr(text, "blobs")); /* internal */
	free(text);
	cJSON_Delete(found);
	CHECK_INT(registry_lookup(r, "docker.io/library/nginx:1", &found, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "bramble image push");
	/* The index survives a restart. */
	registry_free(r);
	r = open_registry(0, 0);
	cJSON *list = registry_list(r);
	CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(list, "images")), ==, 2);
	cJSON_Delete(list);
	registry_free(r);
}

TEST(a_manifest_naming_a_missing_or_wrong_blob_is_refused)
{
	struct registry *r = open_registry(0, 0);
	struct error err = { 0 };
	char config[72];
	char *manifest = push_image(r, "amd64", "some layer", config);
	/* A layer that was never pushed. */
	char *missing =
	        xasprintf("{\"config\":{\"digest\":\"%s\"},\"layers\":[{\"digest\":\"sha256:%064d\"}]}", config, 7);
	CHECK_INT(registry_manifest_put(r, "docker.io/library/app:1", missing, strlen(missing), NULL, &err), ==,
	          -EINVAL);
	CHECK_CONTAINS(err.message, "was not pushed");
	CHECK_INT(registry_lookup(r, "docker.io/library/app:1", &(cJSON *){ NULL }, NULL), ==, -ENOENT);
	free(missing);
	/* A size that does not match the blob. */
	char *wrong = xasprintf("{\"config\":{\"digest\":\"%s\",\"size\":1}, \"layers\":[]}", config);
	CHECK_INT(registry_manifest_put(r, "docker.io/library/app:1", wrong, strlen(wrong), NULL, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "the manifest says 1");
	free(wrong);
	/* An index is not an image manifest; a reference must be canonical. */
	static const char index[] = "{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}";
	CHECK_INT(registry_manifest_put(r, "docker.io/library/app:1", index, strlen(index), NULL, &err), ==, -EINVAL);
	CHECK_INT(registry_manifest_put(r, "busybox", manifest, strlen(manifest), NULL, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "canonical");
	CHECK_INT(registry_manifest_put(r, "docker.io/library/../x:1", manifest, strlen(manifest), NULL, &err), ==,
	          -EINVAL);
	cJSON *list = registry_list(r);
	CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(list, "images")), ==, 0);
	cJSON_Delete(list);
	free(manifest);
	registry_free(r);
}

TEST(removal_and_collection_keep_what_others_use)
{
	struct registry *r = open_registry(0, 0);
	struct error err = { 0 };
	char config[72];
	char *manifest = push_image(r, "amd64", "shared layer", config);
	CHECK_INT(registry_manifest_put(r, "docker.io/library/a:1", manifest, strlen(manifest), NULL, &err), ==, 0);
	CHECK_INT(registry_manifest_put(r, "docker.io/library/b:1", manifest, strlen(manifest), NULL, &err), ==, 0);
	size_t blobs = entries_in("blobs/sha256");
	CHECK_INT(blobs, ==, 3);
	char orphan[72];
	CHECK_INT(upload(r, "left by a failed push", 21, 8, &err), ==, 0);
	digest_of("left by a failed push", 21, orphan);
	CHECK_INT(registry_blob_remove(r, orphan, &err), ==, 0);
	CHECK(!registry_blob_exists(r, orphan));
	CHECK_INT(registry_blob_remove(r, config, &err), ==, -EBUSY); /* a:1 and b:1 use it */
	CHECK_INT(registry_remove(r, "docker.io/library/a:1", NULL, &err), ==, 0);
	CHECK_INT(registry_gc(r, 0, &err), ==, 0); /* b:1 uses them all */
	CHECK_INT(entries_in("blobs/sha256"), ==, 3);
	CHECK_INT(registry_remove(r, "docker.io/library/b:1", "arm64", &err), ==, -ENOENT);
	CHECK_INT(registry_remove(r, "docker.io/library/b:1", "amd64", &err), ==, 0);
	CHECK_INT(registry_remove(r, "docker.io/library/b:1", NULL, &err), ==, -ENOENT);
	/* Unreferenced now, but young: a push in progress may be about to use them. */
	CHECK_INT(entries_in("blobs/sha256"), ==, 3);
	CHECK_INT(registry_gc(r, 0, &err), ==, 3);
	CHECK_INT(entries_in("blobs/sha256"), ==, 0);
	CHECK_INT(registry_usage(r), ==, 0);
	free(manifest);
	registry_free(r);
}
