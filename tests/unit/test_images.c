/* 64-bit offsets and inode numbers on 32-bit boards too: layers may hold files over 2 GiB, and
 * readdir would fail with EOVERFLOW on 64-bit directory cookies (ext4 under qemu-user). */
#define _FILE_OFFSET_BITS 64

#include "agent/images.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/sha256.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

/* ---- building test images in memory --------------------------------------------------------- */

struct tar_entry {
	const char *path;
	char type;        /* 'f' file, 'd' directory, 's' symlink, 'h' hard link, 'c' character device */
	const char *data; /* file content, or link target */
};

#define TAR_MAX (1024 * 1024)

struct blob {
	char *data;
	size_t size;
};

static struct blob tar_build(const struct tar_entry *entries, size_t count)
{
	struct blob out = { xmalloc(TAR_MAX), 0 };
	struct archive *a = archive_write_new();
	CHECK_OK(archive_write_set_format_pax_restricted(a));
	CHECK_INT(archive_write_open_memory(a, out.data, TAR_MAX, &out.size), ==, ARCHIVE_OK);
	for (size_t i = 0; i < count; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, entries[i].path);
		archive_entry_set_mtime(e, 1700000000, 0);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		switch (entries[i].type) {
		case 'f':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_size(e, (la_int64_t)strlen(entries[i].data));
			break;
		case 'd':
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
			break;
		case 's':
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_perm(e, 0777);
			archive_entry_set_symlink(e, entries[i].data);
			break;
		case 'h':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_hardlink(e, entries[i].data);
			break;
		case 'c':
			archive_entry_set_filetype(e, AE_IFCHR);
			archive_entry_set_perm(e, 0666);
			archive_entry_set_rdev(e, makedev(1, 3));
			break;
		}
		CHECK_INT(archive_write_header(a, e), ==, ARCHIVE_OK);
		if (entries[i].type == 'f')
			CHECK_INT(archive_write_data(a, entries[i].data, strlen(entries[i].data)), ==,
			          strlen(entries[i].data));
		archive_entry_free(e);
	}
	CHECK_INT(archive_write_close(a), ==, ARCHIVE_OK);
	archive_write_free(a);
	return out;
}

static struct blob gzip_blob(struct blob in)
{
	z_stream z = { 0 };
	CHECK_INT(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
	struct blob out = { xmalloc(in.size + 1024), 0 };
	z.next_in = (unsigned char *)in.data;
	z.avail_in = (unsigned)in.size;
	z.next_out = (unsigned char *)out.data;
	z.avail_out = (unsigned)(in.size + 1024);
	CHECK_INT(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
	out.size = z.total_out;
	deflateEnd(&z);
	return out;
}

static void sha256_hex(const void *data, size_t size, char out[65])
{
	unsigned char sum[32];
	mbedtls_sha256(data, size, sum, 0);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", sum[i]);
}

static void write_file(const char *path, const void *data, size_t size)
{
	CHECK_OK(file_write_atomic(path, data, size, 0644, NULL));
}

struct layer_spec {
	const struct tar_entry *entries;
	size_t count;
	bool gzip;
};

struct image_spec {
	const char *arch;
	const char *variant;
	const char *reference; /* OCI: ref.name annotation; docker: a RepoTag */
	const struct layer_spec *layers;
	size_t layer_count;
	bool bad_diff_id;    /* the config states a wrong diff_id for the first layer */
	bool truncate_layer; /* layer blobs are cut in half (their digests those of the halves) */
};

struct built {
	char config[72];
	char layers[8][72];
	char diff_ids[8][72];
	char layer_hex[8][65];
};

static char *config_json(const struct image_spec *spec, struct built *b)
{
	char diff_ids[8 * 80] = "";
	for (size_t i = 0; i < spec->layer_count; i++) {
		size_t n = strlen(diff_ids);
		snprintf(diff_ids + n, sizeof(diff_ids) - n, "%s\"%s\"", i ? "," : "",
		         spec->bad_diff_id && i == 0
		                 ? "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		                 : b->diff_ids[i]);
	}
	return xasprintf("{\"architecture\":\"%s\",%s%s%s\"os\":\"linux\","
	                 "\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
	                 "\"Env\":[\"PATH=/bin\",\"GREETING=hello\"],\"WorkingDir\":\"/srv\",\"User\":\"1000:1000\"},"
	                 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
	                 spec->arch, spec->variant ? "\"variant\":\"" : "", spec->variant ? spec->variant : "",
	                 spec->variant ? "\"," : "", diff_ids);
}

/* The layers' tars (and their gzip forms), digests and diff_ids. */
static struct blob *build_layers(const struct image_spec *spec, struct built *b)
{
	struct blob *blobs = xcalloc(spec->layer_count, sizeof(*blobs));
	for (size_t i = 0; i < spec->layer_count; i++) {
		struct blob tar = tar_build(spec->layers[i].entries, spec->layers[i].count);
		char hex[65];
		sha256_hex(tar.data, tar.size, hex);
		snprintf(b->diff_ids[i], 72, "sha256:%s", hex);
		if (spec->layers[i].gzip) {
			blobs[i] = gzip_blob(tar);
			free(tar.data);
		} else {
			blobs[i] = tar;
		}
		if (spec->truncate_layer)
			blobs[i].size /= 2;
		sha256_hex(blobs[i].data, blobs[i].size, b->layer_hex[i]);
		snprintf(b->layers[i], 72, "sha256:%s", b->layer_hex[i]);
	}
	return blobs;
}

static void write_blob(const char *dir, const void *data, size_t size, char ret_hex[65])
{
	sha256_hex(data, size, ret_hex);
	cleanup_free char *path = xasprintf("%s/blobs/sha256/%s", dir, ret_hex);
	write_file(path, data, size);
}

/* An OCI image layout in directory dir. */
static void make_oci(const char *dir, const struct image_spec *spec, struct built *b)
{
	cleanup_free char *blobs_dir = xasprintf("%s/blobs/sha256", dir);
	CHECK_OK(file_mkdir_p(blobs_dir, 0755, NULL));
	struct blob *layers = build_layers(spec, b);
	char hex[65];
	for (size_t i = 0; i < spec->layer_count; i++) {
		write_blob(dir, layers[i].data, layers[i].size, hex);
		free(layers[i].data);
	}
	free(layers);
	cleanup_free char *config = config_json(spec, b);
	write_blob(dir, config, strlen(config), hex);
	snprintf(b->config, sizeof(b->config), "sha256:%s", hex);
	char layer_list[8 * 200] = "";
	for (size_t i = 0; i < spec->layer_count; i++) {
		size_t n = strlen(layer_list);
		snprintf(layer_list + n, sizeof(layer_list) - n,
		         "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar%s\",\"digest\":\"%s\"}",
		         i ? "," : "", spec->layers[i].gzip ? "+gzip" : "", b->layers[i]);
	}
	cleanup_free char *manifest =
	        xasprintf("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest."
	                  "v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config."
	                  "v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[%s]}",
	                  b->config, strlen(config), layer_list);
	char manifest_hex[65];
	write_blob(dir, manifest, strlen(manifest), manifest_hex);
	cleanup_free char *index = xasprintf(
	        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	        "\"digest\":\"sha256:%s\",\"size\":%zu%s%s%s}]}",
	        manifest_hex, strlen(manifest),
	        spec->reference ? ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"" : "",
	        spec->reference ? spec->reference : "", spec->reference ? "\"}" : "");
	cleanup_free char *index_path = xasprintf("%s/index.json", dir);
	write_file(index_path, index, strlen(index));
	cleanup_free char *layout_path = xasprintf("%s/oci-layout", dir);
	write_file(layout_path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
}

/* A `docker save` archive (a tar file) at path, tagged with spec->reference and "extra". */
static void make_docker(const char *path, const struct image_spec *spec, const char *extra, struct built *b)
{
	struct blob *layers = build_layers(spec, b);
	cleanup_free char *config = config_json(spec, b);
	char hex[65];
	sha256_hex(config, strlen(config), hex);
	snprintf(b->config, sizeof(b->config), "sha256:%s", hex);
	char names[8][80];
	char layer_list[8 * 100] = "";
	for (size_t i = 0; i < spec->layer_count; i++) {
		snprintf(names[i], sizeof(names[i]), "%.64s/layer.tar", b->layer_hex[i]);
		size_t n = strlen(layer_list);
		snprintf(layer_list + n, sizeof(layer_list) - n, "%s\"%s\"", i ? "," : "", names[i]);
	}
	cleanup_free char *config_name = xasprintf("%s.json", hex);
	cleanup_free char *manifest = xasprintf("[{\"Config\":\"%s\",\"RepoTags\":[\"%s\",\"%s\"],\"Layers\":[%s]}]",
	                                        config_name, spec->reference, extra, layer_list);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	CHECK_INT(archive_write_open_filename(a, path), ==, ARCHIVE_OK);
	struct {
		const char *name;
		const char *data;
		size_t size;
	} files[10] = { { "manifest.json", manifest, strlen(manifest) }, { config_name, config, strlen(config) } };
	size_t count = 2;
	for (size_t i = 0; i < spec->layer_count; i++, count++)
		files[count].name = names[i], files[count].data = layers[i].data, files[count].size = layers[i].size;
	for (size_t i = 0; i < count; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, files[i].name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)files[i].size);
		CHECK_INT(archive_write_header(a, e), ==, ARCHIVE_OK);
		CHECK_INT(archive_write_data(a, files[i].data, files[i].size), ==, files[i].size);
		archive_entry_free(e);
	}
	CHECK_INT(archive_write_close(a), ==, ARCHIVE_OK);
	archive_write_free(a);
	for (size_t i = 0; i < spec->layer_count; i++)
		free(layers[i].data);
	free(layers);
}

/* ---- checking the store ---------------------------------------------------------------------- */

static const struct tar_entry busybox_files[] = {
	{ "bin", 'd', NULL },
	{ "bin/busybox", 'f', "#!fake busybox\n" },
	{ "bin/sh", 's', "/bin/busybox" },
	{ "etc", 'd', NULL },
	{ "etc/passwd", 'f', "root:x:0:0:root:/root:/bin/sh\n" },
	{ "etc/old", 'f', "to be hidden\n" },
	{ "var", 'd', NULL },
	{ "var/cache", 'd', NULL },
	{ "var/cache/a", 'f', "cached\n" },
};

static const struct layer_spec busybox_layer[] = { { busybox_files, ARRAY_SIZE(busybox_files), true } };

static struct image_spec busybox(const char *arch)
{
	return (struct image_spec){
		.arch = arch, .reference = "busybox:latest", .layers = busybox_layer, .layer_count = 1
	};
}

static char *temp_path(const char *name)
{
	return xasprintf("%s/%s", unit_temp_dir(), name);
}

static void open_store(struct images_store *store, uint64_t limit)
{
	cleanup_free char *dir = temp_path("store");
	CHECK_OK(images_open(store, dir, limit, "amd64", NULL, NULL));
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return (size_t)-1;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static size_t store_count(struct images_store *store, const char *subdir)
{
	cleanup_free char *path = xasprintf("%s/%s", store->dir, subdir);
	return count_entries(path);
}

/* Nothing of a failed import is left: no blobs, no layers, no temporary directory, no images. */
static void check_store_empty(struct images_store *store)
{
	CHECK_INT(store_count(store, "blobs/sha256"), ==, 0);
	CHECK_INT(store_count(store, "layers"), ==, 0);
	CHECK_INT(store_count(store, "tmp"), ==, 0);
	struct images_entry *entries;
	size_t count;
	CHECK_OK(images_list(store, &entries, &count, NULL));
	CHECK_INT(count, ==, 0);
	free(entries);
}

static int import_layer(struct images_store *store, const struct tar_entry *entries, size_t count, bool gzip,
                        struct error *err)
{
	struct layer_spec layer = { entries, count, gzip };
	struct image_spec spec = { .arch = "amd64", .reference = "bad", .layers = &layer, .layer_count = 1 };
	cleanup_free char *dir = temp_path("oci-bad");
	struct built b;
	make_oci(dir, &spec, &b);
	return images_import(store, dir, err);
}

/* ---- tests ---------------------------------------------------------------------------------------- */

TEST(references_are_normalized_as_docker_does)
{
	static const char *const cases[][2] = {
		{ "busybox", "docker.io/library/busybox:latest" },
		{ "busybox:1.36", "docker.io/library/busybox:1.36" },
		{ "docker.io/library/busybox:latest", "docker.io/library/busybox:latest" },
		{ "index.docker.io/library/busybox", "docker.io/library/busybox:latest" },
		{ "bramble/agent:v1.0", "docker.io/bramble/agent:v1.0" },
		{ "ghcr.io/a/b/c:1", "ghcr.io/a/b/c:1" },
		{ "localhost:5000/pi", "localhost:5000/pi:latest" },
		{ "localhost/pi:x", "localhost/pi:x" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char out[IMAGES_REFERENCE_MAX];
		CHECK_OK(images_normalize_reference(cases[i][0], out, NULL));
		CHECK_STR(out, cases[i][1]);
	}
	static const char *const bad[] = { "",     "BusyBox",           "busybox:",   "busybox:-x",
		                           "a//b", "busybox@sha256:00", "sha256:abc", "/busybox" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char out[IMAGES_REFERENCE_MAX];
		struct error err = { 0 };
		CHECK_INT(images_normalize_reference(bad[i], out, &err), ==, -EINVAL);
		CHECK(err.message[0] != '\0');
	}
	CHECK_STR(images_familiar_reference("docker.io/library/busybox:1.36"), "busybox:1.36");
	CHECK_STR(images_familiar_reference("docker.io/bramble/agent:v1"), "bramble/agent:v1");
	CHECK_STR(images_familiar_reference("ghcr.io/a:1"), "ghcr.io/a:1");
}

TEST(default_architecture_is_the_build_target)
{
	struct images_store store;
	cleanup_free char *dir = temp_path("store");
	CHECK_OK(images_open(&store, dir, 0, NULL, NULL, NULL));
	const char *expected = strcmp(BRAMBLE_TARGET, "x86_64") == 0  ? "amd64"
	                       : strcmp(BRAMBLE_TARGET, "arm64") == 0 ? "arm64"
	                                                              : "arm";
	CHECK_STR(store.arch, expected);
	CHECK_STR(store.variant, strcmp(BRAMBLE_TARGET, "armhf") == 0   ? "v7"
	                         : strcmp(BRAMBLE_TARGET, "armv6") == 0 ? "v6"
	                                                                : "");
	images_close(&store);
}

TEST(oci_layout_imports_and_resolves_by_every_reference)
{
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *dir = temp_path("oci");
	struct image_spec spec = busybox("amd64");
	struct built b;
	make_oci(dir, &spec, &b);
	struct error err = { 0 };
	CHECK_OK(images_import(&store, dir, &err));

	char prefix[20];
	snprintf(prefix, sizeof(prefix), "%.12s", b.config + 7);
	const char *references[] = { "busybox", "busybox:latest", "docker.io/library/busybox:latest", b.config,
		                     prefix };
	for (size_t i = 0; i < ARRAY_SIZE(references); i++) {
		struct images_image image;
		CHECK_OK(images_resolve(&store, references[i], &image, &err));
		CHECK_STR(image.digest, b.config);
		CHECK_STR(image.architecture, "amd64");
		CHECK_STR(image.os, "linux");
		CHECK_STR(image.entrypoint[0], "/bin/sh");
		CHECK_STR(image.entrypoint[1], "-c");
		CHECK(image.entrypoint[2] == NULL);
		CHECK_STR(image.cmd[0], "echo hi");
		CHECK_STR(image.env[1], "GREETING=hello");
		CHECK_STR(image.working_dir, "/srv");
		CHECK_STR(image.user, "1000:1000");
		CHECK_INT(image.layer_count, ==, 1);
		cleanup_free char *file = xasprintf("%s/etc/passwd", image.layers[0]);
		cleanup_free char *text = NULL;
		CHECK_OK(file_read(file, 1024, &text, NULL, NULL));
		CHECK_STR(text, "root:x:0:0:root:/root:/bin/sh\n");
		char link[64] = "";
		cleanup_free char *sh = xasprintf("%s/bin/sh", image.layers[0]);
		CHECK_INT(readlink(sh, link, sizeof(link) - 1), ==, 12);
		CHECK_STR(link, "/bin/busybox");
		cleanup_free char *expected_dir = xasprintf("%s/layers/%s", store.dir, b.diff_ids[0] + 7);
		CHECK_STR(image.layers[0], expected_dir);
		images_image_free(&image);
	}
	/* Every blob is kept under its digest: manifest, config, layer. */
	CHECK_INT(store_count(&store, "blobs/sha256"), ==, 3);
	cleanup_free char *layer_blob = xasprintf("%s/blobs/sha256/%s", store.dir, b.layer_hex[0]);
	CHECK(access(layer_blob, F_OK) == 0);
	CHECK_INT(store_count(&store, "tmp"), ==, 0);

	struct images_image image;
	CHECK_INT(images_resolve(&store, "busybox:1.36", &image, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "no image busybox:1.36");
	images_close(&store);
}

TEST(importing_twice_shares_blobs_and_layers)
{
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *dir = temp_path("oci");
	struct image_spec spec = busybox("amd64");
	struct built b;
	make_oci(dir, &spec, &b);
	CHECK_OK(images_import(&store, dir, NULL));
	CHECK_OK(images_import(&store, dir, NULL));
	CHECK_INT(store_count(&store, "blobs/sha256"), ==, 3);
	CHECK_INT(store_count(&store, "layers"), ==, 1);
	images_close(&store);
}

TEST(docker_archive_with_plain_layers_and_two_tags)
{
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *path = temp_path("busybox.tar");
	struct layer_spec plain = { busybox_files, ARRAY_SIZE(busybox_files), false };
	struct image_spec spec = { .arch = "amd64", .reference = "busybox:1.36", .layers = &plain, .layer_count = 1 };
	struct built b;
	make_docker(path, &spec, "ghcr.io/pi/busybox:v2", &b);
	struct error err = { 0 };
	CHECK_OK(images_import(&store, path, &err));
	/* A plain layer's digest is its diff_id. */
	CHECK_STR(b.layers[0], b.diff_ids[0]);
	struct images_entry *entries;
	size_t count;
	CHECK_OK(images_list(&store, &entries, &count, NULL));
	CHECK_INT(count, ==, 2);
	CHECK_STR(entries[0].reference, "docker.io/library/busybox:1.36");
	CHECK_STR(entries[1].reference, "ghcr.io/pi/busybox:v2");
	CHECK_STR(entries[0].digest, b.config);
	CHECK_STR(entries[0].architecture, "amd64");
	CHECK(entries[0].size > 1000);
	free(entries);
	struct images_image image;
	CHECK_OK(images_resolve(&store, "ghcr.io/pi/busybox:v2", &image, NULL));
	CHECK_STR(image.cmd[0], "echo hi");
	images_image_free(&image);
	CHECK_INT(store_count(&store, "tmp"), ==, 0);
	images_close(&store);
}

TEST(gzip_docker_layers_are_verified_against_the_diff_id)
{
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *path = temp_path("gz.tar");
	struct image_spec spec = busybox("amd64");
	spec.bad_diff_id = true;
	struct built b;
	make_docker(path, &spec, "other", &b);
	struct error err = { 0 };
	CHECK_INT(images_import(&store, path, &err), ==, -EBADMSG);
	CHECK_CONTAINS(err.message, "digest mismatch");
	CHECK_CONTAINS(err.message, "diff_id");
	check_store_empty(&store);
	images_close(&store);
}

TEST(whiteouts_become_overlayfs_whiteouts)
{
	static const struct tar_entry upper[] = {
		{ "etc", 'd', NULL },
		{ "etc/.wh.old", 'f', "" },
		{ "var/cache/.wh..wh..opq", 'f', "" },
		{ "var/cache/b", 'f', "new\n" },
	};
	struct layer_spec layers[] = { { busybox_files, ARRAY_SIZE(busybox_files), true },
		                       { upper, ARRAY_SIZE(upper), false } };
	struct image_spec spec = { .arch = "amd64", .reference = "layered", .layers = layers, .layer_count = 2 };
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *dir = temp_path("oci");
	struct built b;
	make_oci(dir, &spec, &b);
	struct error err = { 0 };
	CHECK_OK(images_import(&store, dir, &err));
	struct images_image image;
	CHECK_OK(images_resolve(&store, "layered", &image, &err));
	CHECK_INT(image.layer_count, ==, 2);
	cleanup_free char *whiteout = xasprintf("%s/etc/old", image.layers[1]);
	struct stat st;
	CHECK_OK(lstat(whiteout, &st));
	CHECK(S_ISCHR(st.st_mode));
	CHECK_INT(st.st_rdev, ==, makedev(0, 0));
	cleanup_free char *marker = xasprintf("%s/etc/.wh.old", image.layers[1]);
	CHECK(lstat(marker, &st) < 0);
	cleanup_free char *opaque_dir = xasprintf("%s/var/cache", image.layers[1]);
	char value[8] = "";
	CHECK_INT(getxattr(opaque_dir, "trusted.overlay.opaque", value, sizeof(value)), ==, 1);
	CHECK_INT(value[0], ==, 'y');
	cleanup_free char *opq = xasprintf("%s/var/cache/.wh..wh..opq", image.layers[1]);
	CHECK(lstat(opq, &st) < 0);
	/* The lower layer is untouched. */
	cleanup_free char *lower = xasprintf("%s/etc/old", image.layers[0]);
	CHECK_OK(lstat(lower, &st));
	CHECK(S_ISREG(st.st_mode));
	images_image_free(&image);
	images_close(&store);
}

TEST(device_nodes_in_layers_are_skipped)
{
	static const struct tar_entry files[] = { { "dev", 'd', NULL }, { "dev/null", 'c', NULL }, { "ok", 'f', "x" } };
	struct images_store store;
	open_store(&store, 0);
	struct error err = { 0 };
	CHECK_OK(import_layer(&store, files, ARRAY_SIZE(files), false, &err));
	struct images_image image;
	CHECK_OK(images_resolve(&store, "bad", &image, NULL));
	cleanup_free char *dev = xasprintf("%s/dev/null", image.layers[0]);
	cleanup_free char *ok = xasprintf("%s/ok", image.layers[0]);
	CHECK(access(dev, F_OK) < 0);
	CHECK(access(ok, F_OK) == 0);
	images_image_free(&image);
	images_close(&store);
}

TEST(escape_dotdot_entry_is_refused)
{
	static const struct tar_entry files[] = { { "etc", 'd', NULL }, { "../../escaped-dotdot", 'f', "pwned" } };
	struct images_store store;
	open_store(&store, 0);
	struct error err = { 0 };
	CHECK_INT(import_layer(&store, files, ARRAY_SIZE(files), true, &err), ==, -EPERM);
	CHECK_CONTAINS(err.message, "'../../escaped-dotdot' contains '..'");
	cleanup_free char *outside = xasprintf("%s/escaped-dotdot", unit_temp_dir());
	CHECK(access(outside, F_OK) < 0);
	check_store_empty(&store);
	images_close(&store);
}

TEST(escape_absolute_path_is_refused)
{
	cleanup_free char *target = temp_path("escaped-absolute");
	struct tar_entry files[] = { { target, 'f', "pwned" } };
	struct images_store store;
	open_store(&store, 0);
	struct error err = { 0 };
	CHECK_INT(import_layer(&store, files, ARRAY_SIZE(files), false, &err), ==, -EPERM);
	CHECK_CONTAINS(err.message, "is an absolute path");
	CHECK(access(target, F_OK) < 0);
	check_store_empty(&store);
	images_close(&store);
}

TEST(escape_through_a_symlink_is_refused)
{
	cleanup_free char *outside = temp_path("outside");
	CHECK_OK(mkdir(outside, 0755));
	struct tar_entry files[] = { { "link", 's', outside }, { "link/pwned", 'f', "pwned" } };
	struct images_store store;
	open_store(&store, 0);
	struct error err = { 0 };
	CHECK(import_layer(&store, files, ARRAY_SIZE(files), false, &err) < 0);
	CHECK_CONTAINS(err.message, "'link/pwned'");
	CHECK_INT(count_entries(outside), ==, 0);
	check_store_empty(&store);

	/* A relative symlink climbing out, then a file through it. */
	struct tar_entry relative[] = { { "up", 's', "../../../../../../../.." }, { "up/tmp/pwned", 'f', "x" } };
	CHECK(import_layer(&store, relative, ARRAY_SIZE(relative), false, &err) < 0);
	CHECK_CONTAINS(err.message, "'up/tmp/pwned'");
	check_store_empty(&store);
	images_close(&store);
}

TEST(symlinks_pointing_out_are_contained)
{
	/* A symlink's target is resolved in the container's root, never followed while unpacking. */
	struct tar_entry files[] = { { "passwd", 's', "/etc/passwd" }, { "up", 's', "../../.." } };
	struct images_store store;
	open_store(&store, 0);
	struct error err = { 0 };
	CHECK_OK(import_layer(&store, files, ARRAY_SIZE(files), false, &err));
	struct images_image image;
	CHECK_OK(images_resolve(&store, "bad", &image, NULL));
	cleanup_free char *link = xasprintf("%s/passwd", image.layers[0]);
	struct stat st;
	CHECK_OK(lstat(link, &st));
	CHECK(S_ISLNK(st.st_mode));
	images_image_free(&image);
	images_close(&store);
}

TEST(escape_hardlinks_are_refused)
{
	cleanup_free char *outside = temp_path("secret");
	write_file(outside, "secret", 6);
	struct tar_entry dotdot[] = { { "copy", 'h', "../../../../../../../../etc/passwd" } };
	struct images_store store;
	open_store(&store, 0);
	struct error err = { 0 };
	CHECK_INT(import_layer(&store, dotdot, ARRAY_SIZE(dotdot), false, &err), ==, -EPERM);
	CHECK_CONTAINS(err.message, "hard link target");
	check_store_empty(&store);

	struct tar_entry absolute[] = { { "copy", 'h', outside } };
	CHECK_INT(import_layer(&store, absolute, ARRAY_SIZE(absolute), false, &err), ==, -EPERM);
	CHECK_CONTAINS(err.message, "hard link target");
	check_store_empty(&store);

	/* Through a symlink in the layer. */
	struct tar_entry via_symlink[] = { { "dir", 's', unit_temp_dir() }, { "copy", 'h', "dir/secret" } };
	CHECK(import_layer(&store, via_symlink, ARRAY_SIZE(via_symlink), false, &err) < 0);
	CHECK_CONTAINS(err.message, "'copy'");
	check_store_empty(&store);
	struct stat st;
	CHECK_OK(stat(outside, &st));
	CHECK_INT(st.st_nlink, ==, 1);
	images_close(&store);
}

TEST(digest_mismatch_is_refused)
{
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *dir = temp_path("oci");
	struct image_spec spec = busybox("amd64");
	struct built b;
	make_oci(dir, &spec, &b);
	/* Flip a byte of the layer blob. */
	cleanup_free char *layer = xasprintf("%s/blobs/sha256/%s", dir, b.layer_hex[0]);
	int fd = open(layer, O_RDWR);
	CHECK(fd >= 0);
	CHECK_INT(pwrite(fd, "X", 1, 20), ==, 1);
	close(fd);
	struct error err = { 0 };
	CHECK_INT(images_import(&store, dir, &err), ==, -EBADMSG);
	CHECK_CONTAINS(err.message, "digest mismatch");
	CHECK_CONTAINS(err.message, b.layer_hex[0]);
	check_store_empty(&store);
	images_close(&store);
}

TEST(missing_layer_and_config_are_named)
{
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *dir = temp_path("oci");
	struct image_spec spec = busybox("amd64");
	struct built b;
	make_oci(dir, &spec, &b);
	cleanup_free char *layer = xasprintf("%s/blobs/sha256/%s", dir, b.layer_hex[0]);
	CHECK_OK(unlink(layer));
	struct error err = { 0 };
	CHECK_INT(images_import(&store, dir, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "layer sha256:");
	CHECK_CONTAINS(err.message, "is missing from");
	check_store_empty(&store);

	cleanup_free char *config = xasprintf("%s/blobs/sha256/%s", dir, b.config + 7);
	CHECK_OK(unlink(config));
	CHECK_INT(images_import(&store, dir, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "config sha256:");
	check_store_empty(&store);

	cleanup_free char *missing = temp_path("no-such-image.tar");
	CHECK_INT(images_import(&store, missing, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "no-such-image.tar");
	check_store_empty(&store);
	images_close(&store);
}

TEST(corrupt_and_truncated_archives_are_refused)
{
	struct images_store store;
	open_store(&store, 0);
	struct error err = { 0 };
	cleanup_free char *garbage = temp_path("garbage.tar");
	char noise[4096];
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (char)(i * 7919 % 251);
	write_file(garbage, noise, sizeof(noise));
	CHECK(images_import(&store, garbage, &err) < 0);
	CHECK_CONTAINS(err.message, "garbage.tar");
	check_store_empty(&store);

	/* A docker archive cut in half. */
	cleanup_free char *path = temp_path("busybox.tar");
	struct image_spec spec = busybox("amd64");
	struct built b;
	make_docker(path, &spec, "x", &b);
	struct stat st;
	CHECK_OK(stat(path, &st));
	CHECK_OK(truncate(path, st.st_size / 2));
	CHECK(images_import(&store, path, &err) < 0);
	CHECK_CONTAINS(err.message, "busybox.tar");
	check_store_empty(&store);

	/* An OCI layout whose gzip layer is cut short (its digest is that of the short blob). */
	cleanup_free char *dir = temp_path("oci");
	spec.truncate_layer = true;
	make_oci(dir, &spec, &b);
	CHECK(images_import(&store, dir, &err) < 0);
	CHECK_CONTAINS(err.message, "layer sha256:");
	check_store_empty(&store);
	images_close(&store);
}

TEST(image_for_another_architecture_is_refused_naming_both)
{
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *dir = temp_path("oci");
	struct image_spec spec = busybox("arm64");
	spec.reference = "busybox:1.36";
	struct built b;
	make_oci(dir, &spec, &b);
	struct error err = { 0 };
	CHECK_INT(images_import(&store, dir, &err), ==, -ENOEXEC);
	CHECK_STR(err.message, "image busybox:1.36 is for arm64; this board is amd64");
	check_store_empty(&store);
	images_close(&store);

	/* An ARMv6 board refuses ARMv7 images and runs ARMv6 ones. */
	cleanup_free char *store_dir = temp_path("store-arm");
	CHECK_OK(images_open(&store, store_dir, 0, "arm", "v6", NULL));
	cleanup_free char *v7 = temp_path("oci-v7");
	spec = busybox("arm");
	spec.variant = "v7";
	make_oci(v7, &spec, &b);
	CHECK_INT(images_import(&store, v7, &err), ==, -ENOEXEC);
	CHECK_STR(err.message, "image busybox:latest is for arm/v7; this board is arm/v6");
	cleanup_free char *v6 = temp_path("oci-v6");
	spec.variant = "v6";
	make_oci(v6, &spec, &b);
	CHECK_OK(images_import(&store, v6, &err));
	images_close(&store);
}

TEST(rm_removes_names_then_the_image_and_gc_its_blobs)
{
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *path = temp_path("busybox.tar");
	struct image_spec spec = busybox("amd64");
	struct built b;
	make_docker(path, &spec, "busybox:1.36", &b);
	CHECK_OK(images_import(&store, path, NULL));
	/* A second image sharing the layer. */
	static const struct tar_entry extra[] = { { "hello", 'f', "hi\n" } };
	struct layer_spec layers[] = { busybox_layer[0], { extra, ARRAY_SIZE(extra), false } };
	struct image_spec second = { .arch = "amd64", .reference = "hello", .layers = layers, .layer_count = 2 };
	cleanup_free char *dir = temp_path("oci");
	struct built b2;
	make_oci(dir, &second, &b2);
	CHECK_OK(images_import(&store, dir, NULL));
	CHECK_INT(store_count(&store, "layers"), ==, 2);

	struct error err = { 0 };
	CHECK_OK(images_rm(&store, "busybox", &err));
	struct images_image image;
	CHECK_OK(images_resolve(&store, "busybox:1.36", &image, NULL)); /* still named */
	images_image_free(&image);
	CHECK_OK(images_rm(&store, "busybox:1.36", &err));
	CHECK_INT(images_resolve(&store, b.config, &image, &err), ==, -ENOENT);
	CHECK_INT(store_count(&store, "layers"), ==, 2);       /* the shared layer stays */
	CHECK_INT(store_count(&store, "blobs/sha256"), ==, 4); /* hello: manifest, config, 2 layers */

	CHECK_INT(images_rm(&store, "busybox", &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "no image busybox:latest");
	CHECK_OK(images_rm(&store, b2.config, &err));
	check_store_empty(&store);
	images_close(&store);
}

TEST(gc_removes_leftovers_and_keeps_what_is_used)
{
	struct images_store store;
	open_store(&store, 0);
	cleanup_free char *dir = temp_path("oci");
	struct image_spec spec = busybox("amd64");
	struct built b;
	make_oci(dir, &spec, &b);
	CHECK_OK(images_import(&store, dir, NULL));
	/* What a crash mid-import leaves: a temporary directory, a blob and a layer nobody names. */
	cleanup_free char *tmp = xasprintf("%s/tmp/import-dead/blobs", store.dir);
	CHECK_OK(file_mkdir_p(tmp, 0700, NULL));
	cleanup_free char *orphan = xasprintf("%s/blobs/sha256/%064d", store.dir, 0);
	write_file(orphan, "x", 1);
	cleanup_free char *layer = xasprintf("%s/layers/%064d/etc", store.dir, 1);
	CHECK_OK(file_mkdir_p(layer, 0755, NULL));
	CHECK_OK(images_gc(&store, NULL));
	CHECK_INT(store_count(&store, "tmp"), ==, 0);
	CHECK_INT(store_count(&store, "blobs/sha256"), ==, 3);
	CHECK_INT(store_count(&store, "layers"), ==, 1);
	struct images_image image;
	CHECK_OK(images_resolve(&store, "busybox", &image, NULL));
	CHECK(access(image.layers[0], F_OK) == 0);
	images_image_free(&image);
	images_close(&store);
}

TEST(disk_limit_refuses_an_import_naming_limit_and_usage)
{
	struct images_store store;
	open_store(&store, 1000);
	cleanup_free char *dir = temp_path("oci");
	struct image_spec spec = busybox("amd64");
	struct built b;
	make_oci(dir, &spec, &b);
	struct error err = { 0 };
	CHECK_INT(images_import(&store, dir, &err), ==, -ENOSPC);
	CHECK_CONTAINS(err.message, "disk limit of 1000 bytes");
	CHECK_CONTAINS(err.message, "0 in use");
	check_store_empty(&store);
	images_close(&store);
	open_store(&store, 100000);
	CHECK_OK(images_import(&store, dir, &err));
	images_close(&store);
}

TEST(disk_full_during_unpack_leaves_nothing)
{
	if (geteuid() != 0)
		return; /* mounting a small tmpfs needs root; CI runs as root */
	cleanup_free char *mnt = temp_path("small");
	CHECK_OK(mkdir(mnt, 0755));
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k") < 0)
		return; /* no mount rights here (a container): nothing to simulate with */
	/* One layer with a file larger than the filesystem. */
	char *big = xmalloc(400 * 1024 + 1);
	for (size_t i = 0; i < 400 * 1024; i++)
		big[i] = (char)('a' + (i * 2654435761u >> 13) % 26); /* incompressible enough to not fit */
	big[400 * 1024] = '\0';
	struct tar_entry files[] = { { "big", 'f', big } };
	struct layer_spec layer = { files, 1, true };
	struct image_spec spec = { .arch = "amd64", .reference = "big", .layers = &layer, .layer_count = 1 };
	cleanup_free char *dir = temp_path("oci");
	struct built b;
	make_oci(dir, &spec, &b);
	cleanup_free char *store_dir = xasprintf("%s/images", mnt);
	struct images_store store;
	struct error err = { 0 };
	int r = images_open(&store, store_dir, 0, "amd64", NULL, &err);
	int import = r < 0 ? r : images_import(&store, dir, &err);
	size_t blobs = store_count(&store, "blobs/sha256"), layers = store_count(&store, "layers"),
	       tmp = store_count(&store, "tmp");
	images_close(&store);
	umount2(mnt, MNT_DETACH);
	free(big);
	CHECK_OK(r);
	CHECK_INT(import, ==, -ENOSPC);
	CHECK_CONTAINS(err.message, "No space left on device");
	CHECK_INT(blobs + layers + tmp, ==, 0);
}

TEST(gc_leaves_an_import_in_progress_alone)
{
	struct images_store store;
	open_store(&store, 0);
	/* An import runs without the store's lock, holding its own directory locked. */
	cleanup_free char *live = xasprintf("%s/tmp/import-live", store.dir);
	CHECK_OK(file_mkdir_p(live, 0700, NULL));
	int fd = open(live, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(flock(fd, LOCK_EX) == 0);
	CHECK_OK(images_gc(&store, NULL));
	CHECK_INT(store_count(&store, "tmp"), ==, 1);
	close(fd); /* the import died */
	CHECK_OK(images_gc(&store, NULL));
	CHECK_INT(store_count(&store, "tmp"), ==, 0);
	images_close(&store);
}

TEST(an_archive_s_blobs_are_linked_into_the_store_as_plain_files)
{
	struct images_store store;
	open_store(&store, 0);
	struct image_spec spec = busybox("amd64");
	struct built b;
	struct blob *layers = build_layers(&spec, &b);
	cleanup_free char *config = config_json(&spec, &b);
	char config_hex[65];
	sha256_hex(config, strlen(config), config_hex);
	/* docker save, but the layer named in manifest.json is a symlink to the real file: the
	 * store must get a file (not the link), readable, with the content's digest. */
	cleanup_free char *manifest = xasprintf(
	        "[{\"Config\":\"%s.json\",\"RepoTags\":[\"linked:1\"],\"Layers\":[\"l/layer.tar\"]}]", config_hex);
	cleanup_free char *config_name = xasprintf("%s.json", config_hex);
	cleanup_free char *path = temp_path("linked.tar");
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	CHECK_INT(archive_write_open_filename(a, path), ==, ARCHIVE_OK);
	struct {
		const char *name, *data, *target;
		size_t size;
		mode_t mode;
	} files[] = {
		{ "manifest.json", manifest, NULL, strlen(manifest), 0644 },
		{ config_name, config, NULL, strlen(config), 0600 },
		{ "real.tar", layers[0].data, NULL, layers[0].size, 04755 },
		{ "l/layer.tar", NULL, "../real.tar", 0, 0777 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, files[i].name);
		archive_entry_set_filetype(e, files[i].target ? AE_IFLNK : AE_IFREG);
		archive_entry_set_perm(e, files[i].mode);
		if (files[i].target)
			archive_entry_set_symlink(e, files[i].target);
		archive_entry_set_size(e, (la_int64_t)files[i].size);
		CHECK_INT(archive_write_header(a, e), ==, ARCHIVE_OK);
		if (files[i].size)
			CHECK_INT(archive_write_data(a, files[i].data, files[i].size), ==, files[i].size);
		archive_entry_free(e);
	}
	CHECK_INT(archive_write_close(a), ==, ARCHIVE_OK);
	archive_write_free(a);
	free(layers[0].data);
	free(layers);
	struct error err = { 0 };
	CHECK_INT(images_import(&store, path, &err), ==, 0);
	cleanup_free char *blob = xasprintf("%s/blobs/sha256/%s", store.dir, b.layer_hex[0]);
	struct stat st;
	CHECK(lstat(blob, &st) == 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_INT(st.st_mode & 07777, ==, 0644);
	cleanup_free char *stored_config = xasprintf("%s/blobs/sha256/%s", store.dir, config_hex);
	CHECK(lstat(stored_config, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
	CHECK_INT(store_count(&store, "tmp"), ==, 0);
	struct images_image image;
	CHECK_OK(images_resolve(&store, "linked:1", &image, NULL));
	images_image_free(&image);
	images_close(&store);
}
