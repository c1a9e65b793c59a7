/* libFuzzer target for the image registry's parsers: the bytes as an image manifest tagged
 * over blobs that are there (a config and a layer pushed at start), then as a config blob
 * that a manifest names. Nothing may crash, leak or read out of bounds; whatever fails leaves
 * the registry as it was. Seeds: tests/fuzz/corpus/registry/.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>

#include "core/registry.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The blobs the seed manifest names (tests/fuzz/corpus/registry/manifest.json). */
static const char config[] =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
        "\"diff_ids\":[\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"]}}";
static const char layer[] = "fuzz layer";

static struct registry *registry;
static char dir[64];

static void digest_of(const void *bytes, size_t length, char out[72])
{
	unsigned char sum[32];
	mbedtls_sha256(bytes, length, sum, 0);
	strcpy(out, "sha256:");
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", sum[i]);
}

static void put(const void *bytes, size_t length)
{
	char digest[72], id[33];
	bool done;
	uint64_t received;
	digest_of(bytes, length, digest);
	if (registry_upload_begin(registry, digest, length, id, NULL) == 0)
		registry_upload_write(registry, id, 0, bytes, length, &done, &received, NULL);
}

static void remove_dir(void)
{
	registry_free(registry);
	file_remove_tree(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!registry) {
		snprintf(dir, sizeof(dir), "/tmp/bramble-fuzz-registry-XXXXXX");
		if (!mkdtemp(dir))
			abort();
		struct registry_options options = { .dir = dir };
		if (registry_open(&options, &registry, NULL) < 0)
			abort();
		atexit(remove_dir);
		put(config, strlen(config));
		put(layer, strlen(layer));
	}
	struct error err = { 0 };
	/* The bytes as a manifest. */
	if (registry_manifest_put(registry, "docker.io/library/fuzz:1", (const char *)data, size, NULL, &err) == 0)
		registry_remove(registry, "docker.io/library/fuzz:1", NULL, &err);
	/* The bytes as a config blob. */
	if (size > 0 && size <= REGISTRY_MANIFEST_MAX) {
		char digest[72];
		digest_of(data, size, digest);
		put(data, size);
		char *manifest = xasprintf("{\"config\":{\"digest\":\"%s\",\"size\":%zu},\"layers\":[]}", digest, size);
		if (registry_manifest_put(registry, "docker.io/library/fuzz:2", manifest, strlen(manifest), NULL,
		                          &err) == 0)
			registry_remove(registry, "docker.io/library/fuzz:2", NULL, &err);
		free(manifest);
		registry_blob_remove(registry, digest, NULL);
	}
	cJSON_Delete(registry_list(registry));
	return 0;
}
