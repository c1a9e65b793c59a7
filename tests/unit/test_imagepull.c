/* Image pulls against a real API server with its registry, on one loop (as on a server board):
 * shared pulls, policies, back-off, corrupt blobs and foreign architectures. */
#include "agent/imagepull.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "agent/images.h"
#include "core/apiserver.h"
#include "core/link.h"
#include "core/registry.h"
#include "core/store.h"
#include "core/transport.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/loop.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const char admin_key[] = "imagepull-test-key-012345";

static int lookup(const char *identity, uint8_t *key, void *data)
{
	(void)data;
	if (strcmp(identity, "admin") != 0)
		return -ENOENT;
	memcpy(key, admin_key, sizeof(admin_key) - 1);
	return (int)sizeof(admin_key) - 1;
}

struct cluster {
	struct loop *loop;
	struct transport *transport;
	struct store *store;
	struct registry *registry;
	struct apiserver *apiserver;
	struct link *link;
	struct images_store images;
	struct imagepull *pulls;
};

static void digest_of(const void *data, size_t length, char out[72])
{
	unsigned char sum[32];
	mbedtls_sha256(data, length, sum, 0);
	strcpy(out, "sha256:");
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", sum[i]);
}

static void put_blob(struct registry *r, const void *data, size_t length, char digest[72])
{
	struct error err = { 0 };
	char id[33];
	digest_of(data, length, digest);
	int e = registry_upload_begin(r, digest, length, id, &err);
	if (e == -EEXIST)
		return;
	if (e < 0)
		unit_fail(__FILE__, __LINE__, "upload: %s", err.message);
	bool done = false;
	uint64_t received;
	for (size_t offset = 0; !done; offset += 1000) {
		size_t n = length - offset < 1000 ? length - offset : 1000;
		if (registry_upload_write(r, id, offset, (const char *)data + offset, n, &done, &received, &err) < 0)
			unit_fail(__FILE__, __LINE__, "upload: %s", err.message);
	}
}

/* A one-layer image pushed under reference: a tar holding /hello with content. The layer's
 * digest is returned in layer_digest. */
static void push_image(struct cluster *c, const char *reference, const char *arch, const char *content,
                       char layer_digest[72])
{
	static char tar[16384];
	size_t used = 0;
	struct archive *a = archive_write_new();
	archive_write_set_format_ustar(a);
	archive_write_open_memory(a, tar, sizeof(tar), &used);
	struct archive_entry *entry = archive_entry_new();
	archive_entry_set_pathname(entry, "hello");
	archive_entry_set_filetype(entry, AE_IFREG);
	archive_entry_set_perm(entry, 0644);
	archive_entry_set_size(entry, (la_int64_t)strlen(content));
	archive_write_header(a, entry);
	archive_write_data(a, content, strlen(content));
	archive_entry_free(entry);
	archive_write_close(a);
	archive_write_free(a);
	put_blob(c->registry, tar, used, layer_digest);
	char *config = xasprintf("{\"architecture\":\"%s\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/hello\"]},"
	                         "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
	                         arch, layer_digest);
	char config_digest[72];
	put_blob(c->registry, config, strlen(config), config_digest);
	char *manifest = xasprintf("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	                           "\"config\":{\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
	                           "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
	                           config_digest, strlen(config), layer_digest, used);
	struct error err = { 0 };
	if (registry_manifest_put(c->registry, reference, manifest, strlen(manifest), NULL, &err) < 0)
		unit_fail(__FILE__, __LINE__, "manifest: %s", err.message);
	free(config);
	free(manifest);
}

static void cluster_start(struct cluster *c, const char *board_arch)
{
	struct error err = { 0 };
	memset(c, 0, sizeof(*c));
	CHECK_OK(loop_new(&c->loop));
	static const uint8_t secret[STORE_SECRET_KEY_SIZE] = { 1 };
	char path[512], registry_dir[512], images_dir[512], uri[64], address[32];
	snprintf(path, sizeof(path), "%s/store.db", unit_temp_dir());
	snprintf(registry_dir, sizeof(registry_dir), "%s/registry", unit_temp_dir());
	snprintf(images_dir, sizeof(images_dir), "%s/images", unit_temp_dir());
	struct store_options store_options = { .path = path, .secret_key = secret };
	struct registry_options registry_options = { .dir = registry_dir, .loop = c->loop };
	if (store_open(&store_options, &c->store, &err) < 0 || transport_new(c->loop, &c->transport, &err) < 0 ||
	    registry_open(&registry_options, &c->registry, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	transport_set_psk_lookup(c->transport, lookup, NULL);
	struct apiserver_options options = { .registry = c->registry, .no_controllers = true, .no_scheduler = true };
	if (apiserver_new(c->transport, c->store, &options, &c->apiserver, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	snprintf(address, sizeof(address), "127.0.0.1:%u", unit_free_udp_port());
	snprintf(uri, sizeof(uri), "coaps://%s", address);
	if (transport_listen_dtls(c->transport, address, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	struct link_options link_options = { .servers = { uri }, .identity = "admin", .key = admin_key };
	CHECK_OK(link_new(c->loop, &link_options, &c->link, &err));
	uint64_t deadline = clock_monotonic_ms() + 10000;
	while (!link_is_up(c->link) && clock_monotonic_ms() < deadline)
		loop_run_once(c->loop, 50);
	CHECK(link_is_up(c->link));
	CHECK_OK(images_open(&c->images, images_dir, 0, board_arch, NULL, &err));
	struct imagepull_options pull_options = {
		.loop = c->loop, .link = c->link, .store = &c->images, .backoff_initial_ms = 60000, .progress_ms = 1
	};
	c->pulls = imagepull_new(&pull_options);
}

static void cluster_stop(struct cluster *c)
{
	link_free(c->link);
	imagepull_free(c->pulls);
	images_close(&c->images);
	apiserver_free(c->apiserver);
	registry_free(c->registry);
	transport_free(c->transport);
	store_close(c->store);
	loop_free(c->loop);
}

struct waiting {
	int calls;
	char reason[48];
	char message[ERROR_MESSAGE_MAX];
	bool failed;
};

static void on_done(void *data, const char *reason, const struct error *err)
{
	struct waiting *w = data;
	w->calls++;
	w->failed = err != NULL;
	snprintf(w->reason, sizeof(w->reason), "%s", reason ? reason : "");
	snprintf(w->message, sizeof(w->message), "%s", err ? err->message : "");
}

static int progress_reports;
static char progress_message[256];

static void on_progress(void *data, const char *message)
{
	(void)data;
	progress_reports++;
	snprintf(progress_message, sizeof(progress_message), "%s", message);
}

static void run_until_called(struct cluster *c, const struct waiting *w)
{
	uint64_t deadline = clock_monotonic_ms() + 15000;
	while (w->calls == 0 && clock_monotonic_ms() < deadline)
		loop_run_once(c->loop, 50);
	if (w->calls == 0)
		unit_fail(__FILE__, __LINE__, "the pull did not end within 15 s");
}

static size_t pull_dirs(struct cluster *c)
{
	char *path = xasprintf("%s/pulls", c->images.dir);
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

TEST(a_missing_image_is_pulled_once_for_every_waiter)
{
	struct cluster c;
	cluster_start(&c, "amd64");
	char layer[72];
	push_image(&c, "docker.io/library/hello:1.0", "amd64", "hello from the control plane\n", layer);
	struct waiting first = { 0 }, second = { 0 };
	struct error err = { 0 };
	const char *reason = NULL;
	struct imagepull_who who = { "default", "web", "uid-1", "main", "board", on_progress };
	CHECK_INT(imagepull_ensure(c.pulls, "hello:1.0", NULL, &who, on_done, &first, &reason, &err), ==, -EINPROGRESS);
	CHECK_CONTAINS(err.message, "Pulling image \"hello:1.0\"");
	CHECK_INT(imagepull_ensure(c.pulls, "hello:1.0", NULL, NULL, on_done, &second, &reason, &err), ==,
	          -EINPROGRESS);
	CHECK_INT(imagepull_ensure(c.pulls, "hello:1.0", NULL, NULL, on_done, &second, &reason, &err), ==,
	          -EINPROGRESS);
	CHECK_INT(imagepull_active(c.pulls), ==, 1); /* shared */
	run_until_called(&c, &first);
	CHECK_INT(first.calls, ==, 1);
	CHECK(!first.failed);
	CHECK_INT(second.calls, ==, 1); /* once, though it asked twice */
	CHECK(!second.failed);
	CHECK_INT(imagepull_active(c.pulls), ==, 0);
	CHECK_INT(pull_dirs(&c), ==, 0);
	CHECK(progress_reports > 0);
	CHECK_CONTAINS(progress_message, "Pulling image \"hello:1.0\": ");
	CHECK_CONTAINS(progress_message, "B of "); /* how far depends on the clock: reports are throttled */
	struct images_image image = { 0 };
	CHECK_OK(images_resolve(&c.images, "hello:1.0", &image, &err));
	CHECK_INT(image.layer_count, ==, 1);
	char *hello = xasprintf("%s/hello", image.layers[0]);
	char *text = NULL;
	CHECK_OK(file_read(hello, 100, &text, NULL, &err));
	CHECK_STR(text, "hello from the control plane\n");
	free(text);
	free(hello);
	images_image_free(&image);
	/* IfNotPresent (the default for a tag other than latest): the store is enough now. */
	CHECK_INT(imagepull_ensure(c.pulls, "hello:1.0", NULL, NULL, on_done, &first, &reason, &err), ==, 0);
	cluster_stop(&c);
}

TEST(never_uses_the_store_only)
{
	struct cluster c;
	cluster_start(&c, "amd64");
	char layer[72];
	push_image(&c, "docker.io/library/hello:1.0", "amd64", "hi\n", layer);
	struct waiting w = { 0 };
	struct error err = { 0 };
	const char *reason = NULL;
	CHECK_INT(imagepull_ensure(c.pulls, "hello:1.0", "Never", NULL, on_done, &w, &reason, &err), ==, -ENOENT);
	CHECK_STR(reason, "ErrImageNeverPull");
	CHECK_CONTAINS(err.message, "Container image \"hello:1.0\" is not present with pull policy of Never");
	CHECK_INT(imagepull_active(c.pulls), ==, 0);
	CHECK_INT(imagepull_ensure(c.pulls, "hello:1.0", "Sometimes", NULL, on_done, &w, &reason, &err), ==, -EINVAL);
	CHECK_INT(imagepull_ensure(c.pulls, "Not A Name", NULL, NULL, on_done, &w, &reason, &err), ==, -EINVAL);
	CHECK_STR(reason, "InvalidImageName");
	cluster_stop(&c);
}

TEST(an_image_not_on_the_control_plane_fails_then_backs_off)
{
	struct cluster c;
	cluster_start(&c, "amd64");
	struct waiting w = { 0 };
	struct error err = { 0 };
	const char *reason = NULL;
	CHECK_INT(imagepull_ensure(c.pulls, "nosuch:2", NULL, NULL, on_done, &w, &reason, &err), ==, -EINPROGRESS);
	run_until_called(&c, &w);
	CHECK(w.failed);
	CHECK_STR(w.reason, "ErrImagePull");
	CHECK_CONTAINS(w.message, "no image nosuch:2 on the control plane");
	/* Asked again within the back-off: no new pull, the last error repeated. */
	CHECK_INT(imagepull_ensure(c.pulls, "nosuch:2", NULL, NULL, on_done, &w, &reason, &err), ==, -EAGAIN);
	CHECK_STR(reason, "ImagePullBackOff");
	CHECK_CONTAINS(err.message, "Back-off pulling image \"nosuch:2\": no image nosuch:2");
	CHECK_INT(imagepull_active(c.pulls), ==, 0);
	cluster_stop(&c);
}

TEST(a_corrupt_blob_is_refused_with_its_digest)
{
	struct cluster c;
	cluster_start(&c, "amd64");
	char layer[72];
	push_image(&c, "docker.io/library/hello:1.0", "amd64", "content that will be damaged\n", layer);
	char *path = xasprintf("%s/registry/blobs/sha256/%s", unit_temp_dir(), layer + 7);
	FILE *f = fopen(path, "r+b");
	CHECK(f != NULL);
	fseek(f, 10, SEEK_SET);
	int byte = fgetc(f);
	fseek(f, 10, SEEK_SET);
	fputc(byte ^ 0xff, f);
	fclose(f);
	free(path);
	struct waiting w = { 0 };
	struct error err = { 0 };
	const char *reason = NULL;
	CHECK_INT(imagepull_ensure(c.pulls, "hello:1.0", NULL, NULL, on_done, &w, &reason, &err), ==, -EINPROGRESS);
	run_until_called(&c, &w);
	CHECK(w.failed);
	CHECK_CONTAINS(w.message, layer);
	CHECK_CONTAINS(w.message, "is corrupt");
	CHECK_INT(images_resolve(&c.images, "hello:1.0", &(struct images_image){ 0 }, NULL), ==, -ENOENT);
	CHECK_INT(images_has_blob(&c.images, layer), ==, 0);
	CHECK_INT(pull_dirs(&c), ==, 0);
	cluster_stop(&c);
}

TEST(an_image_for_another_architecture_is_refused_naming_both)
{
	struct cluster c;
	cluster_start(&c, "arm64");
	char layer[72];
	push_image(&c, "docker.io/library/hello:1.0", "amd64", "x\n", layer);
	struct waiting w = { 0 };
	struct error err = { 0 };
	const char *reason = NULL;
	CHECK_INT(imagepull_ensure(c.pulls, "hello:1.0", NULL, NULL, on_done, &w, &reason, &err), ==, -EINPROGRESS);
	run_until_called(&c, &w);
	CHECK(w.failed);
	CHECK_CONTAINS(w.message, "image hello:1.0 is for amd64; this board is arm64");
	cluster_stop(&c);
}

TEST(always_asks_the_control_plane_and_keeps_an_identical_image)
{
	struct cluster c;
	cluster_start(&c, "amd64");
	char layer[72];
	push_image(&c, "docker.io/library/hello:latest", "amd64", "v1\n", layer);
	struct waiting w = { 0 };
	struct error err = { 0 };
	const char *reason = NULL;
	/* ":latest" defaults to Always. */
	CHECK_INT(imagepull_ensure(c.pulls, "hello", NULL, NULL, on_done, &w, &reason, &err), ==, -EINPROGRESS);
	run_until_called(&c, &w);
	CHECK(!w.failed);
	/* Right after: the lookup that woke the waiters stands. */
	CHECK_INT(imagepull_ensure(c.pulls, "hello", NULL, NULL, on_done, &w, &reason, &err), ==, 0);
	/* IfNotPresent does not ask at all; Always does once that has gone stale (5 s): then the
	 * same digest means nothing to fetch. */
	CHECK_INT(imagepull_ensure(c.pulls, "hello:latest", "IfNotPresent", NULL, on_done, &w, &reason, &err), ==, 0);
	cluster_stop(&c);
}
