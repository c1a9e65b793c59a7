/* The image store.
 *
 * Layout, under the store's directory (the agent's data dir + "/images"):
 *
 *   lock                      flock()ed exclusively by every call that reads or changes the index,
 *                             blobs/ or layers/ (an import: only for its renames and index update)
 *   index.json                {"images": {"sha256:<config>": {record}}, "references": {"<canonical
 *                             reference>": "sha256:<config>"}}, replaced with file_write_atomic
 *   blobs/sha256/<hex>        manifests, configs and layers exactly as imported (the bytes an agent
 *                             pushes or pulls later), named by the sha256 of their content
 *   layers/<hex>/             a layer unpacked, named by its diff_id (sha256 of the uncompressed
 *                             tar), shared by every image that has it; whiteouts in overlayfs form
 *   tmp/import-XXXXXX/        one import in progress, flock()ed by it: src/ (an archive unpacked),
 *                             blobs/<hex>, layers/<hex>/
 *
 * Invariants: every file under blobs/ has the sha256 its name says and every directory under
 * layers/ is a complete unpack of a tar whose sha256 its name says (both are checked before they
 * are renamed into place); every digest the index names is present; anything under tmp/ belongs
 * to an import that is running (its directory is locked) or died (images_gc removes it).
 *
 * An import (images_import) works in its own directory without the store's lock, so the agent
 * resolves images while another is unpacked; it takes the lock to commit, and checks that what
 * it reused from the store is still there (an `image rm` may have run meanwhile):
 *
 *   open source         a directory is read in place; a tar is unpacked into tmp/src (extract_archive)
 *     -> collect        index.json (OCI) or manifest.json (docker) -> the images it holds
 *                       (collect_oci, collect_docker)
 *     -> fetch/verify   each blob is copied into tmp/blobs while its sha256 is computed, and
 *                       refused unless it matches (stage_blob); configs for another architecture
 *                       are set aside (check_architecture)
 *     -> unpack         each new layer into tmp/layers/<diff_id>, its uncompressed sha256 checked
 *                       against the config's diff_id (unpack_layer, apply_whiteouts)
 *     -> rename         syncfs, lock, reused blobs checked, new blobs and layers renamed into
 *                       place (commit)
 *     -> index update   the new index written atomically
 *
 * Any failure before the index update removes tmp/import-XXXXXX and whatever this import had
 * renamed into place, so the store is as it was.
 */
/* 64-bit offsets and inode numbers on 32-bit boards too: layers may hold files over 2 GiB, and
 * readdir would fail with EOVERFLOW on 64-bit directory cookies (ext4 under qemu-user). */
#define _FILE_OFFSET_BITS 64

#include "agent/images.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <mbedtls/sha256.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"

/* Bounds on what an archive may make us hold or do. */
#define IMAGES_JSON_MAX (1024 * 1024)      /* index.json, manifests, configs */
#define IMAGES_INDEX_MAX (8 * 1024 * 1024) /* the store's own index.json */
#define IMAGES_PER_ARCHIVE 64              /* manifests in one archive */
#define IMAGES_LAYERS_MAX 128              /* layers of one image (Docker allows 127) */
#define IMAGES_STRINGS_MAX 4096            /* entries of Env, Cmd, Entrypoint */
#define IMAGES_ARCHIVE_ENTRIES_MAX 100000  /* files in the outer archive */
#define IMAGES_LAYER_ENTRIES_MAX 1000000   /* files in one layer */
#define IMAGES_WHITEOUTS_MAX 100000        /* whiteouts in one layer */
#define IMAGES_COPY_CHUNK (64 * 1024)

#define HEX_LENGTH 64

/* ---- small helpers ------------------------------------------------------------------------ */

static void hex_of(const unsigned char sum[32], char out[HEX_LENGTH + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[sum[i] >> 4];
		out[2 * i + 1] = digits[sum[i] & 15];
	}
	out[HEX_LENGTH] = '\0';
}

static bool is_hex(const char *s, size_t length)
{
	for (size_t i = 0; i < length; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* "sha256:<64 lowercase hex>" -> pointer to the hex, else NULL. */
static const char *digest_hex(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest + 7) != HEX_LENGTH ||
	    !is_hex(digest + 7, HEX_LENGTH))
		return NULL;
	return digest + 7;
}

static char *short_digest(const char *digest, char out[13])
{
	const char *hex = strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
	snprintf(out, 13, "%s", hex);
	return out;
}

static bool path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static uint64_t usage_total; /* nftw passes no context; the store is used from one thread */

static int add_usage(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_F && S_ISREG(st->st_mode))
		usage_total += (uint64_t)st->st_size;
	return 0;
}

static uint64_t tree_usage(const char *path)
{
	usage_total = 0;
	if (path_exists(path))
		nftw(path, add_usage, 16, FTW_PHYS);
	return usage_total;
}

/* A path inside the archive's directory, refused if it names anything outside it. */
static char *source_path(const char *source_dir, const char *relative, struct error *err)
{
	if (!relative || !*relative || relative[0] == '/' || strlen(relative) > PATH_MAX / 2) {
		error_set(err, EINVAL, "'%s' is not a path inside the image archive", relative ? relative : "");
		return NULL;
	}
	cleanup_free char *path = xasprintf("%s/%s", source_dir, relative);
	char real_dir[PATH_MAX], real_path[PATH_MAX];
	if (!realpath(source_dir, real_dir)) {
		error_set_errno(err, errno, "%s", source_dir);
		return NULL;
	}
	if (!realpath(path, real_path)) {
		error_set_errno(err, errno, "%s (named in the image's manifest)", relative);
		return NULL;
	}
	size_t n = strlen(real_dir);
	if (strncmp(real_path, real_dir, n) != 0 || real_path[n] != '/') {
		error_set(err, EPERM, "%s points outside the image archive", relative);
		return NULL;
	}
	return steal_pointer(&path);
}

/* ---- architectures -------------------------------------------------------------------------- */

static void target_architecture(const char **ret_arch, const char **ret_variant)
{
	const char *target = BRAMBLE_TARGET;
	*ret_variant = "";
	if (strcmp(target, "x86_64") == 0)
		*ret_arch = "amd64";
	else if (strcmp(target, "arm64") == 0)
		*ret_arch = "arm64";
	else if (strcmp(target, "armhf") == 0)
		*ret_arch = "arm", *ret_variant = "v7";
	else if (strcmp(target, "armv6") == 0)
		*ret_arch = "arm", *ret_variant = "v6";
	else
		*ret_arch = target;
}

static void format_platform(char *out, size_t size, const char *arch, const char *variant)
{
	snprintf(out, size, "%s%s%s", arch, variant && *variant ? "/" : "", variant ? variant : "");
}

/* An ARMv7 board runs v6 and v5 images too; a config without a variant is taken as runnable,
 * as Docker does for images built before variants existed. */
static bool platform_runs(const struct images_store *store, const char *arch, const char *variant)
{
	if (strcmp(arch, store->arch) != 0)
		return false;
	if (strcmp(arch, "arm") != 0 || !variant || !*variant || !*store->variant)
		return true;
	return variant[0] == 'v' && store->variant[0] == 'v' && atoi(variant + 1) <= atoi(store->variant + 1);
}

bool images_runs_platform(const struct images_store *store, const char *arch, const char *variant)
{
	return arch && platform_runs(store, arch, variant ? variant : "");
}

void images_board_platform(const struct images_store *store, char *out, size_t size)
{
	format_platform(out, size, store->arch, store->variant);
}

/* ---- references ----------------------------------------------------------------------------- */

static bool is_tag_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
	       c == '-';
}

int images_normalize_reference(const char *reference, char ret[IMAGES_REFERENCE_MAX], struct error *err)
{
	size_t length = strlen(reference);
	if (length == 0 || length >= IMAGES_REFERENCE_MAX)
		return error_set(err, EINVAL, "'%.64s' is not an image reference", reference);
	if (strncmp(reference, "sha256:", 7) == 0) {
		if (!digest_hex(reference))
			return error_set(err, EINVAL, "'%s' is not a sha256 digest (sha256: and 64 hex digits)",
			                 reference);
		snprintf(ret, IMAGES_REFERENCE_MAX, "%s", reference);
		return 0;
	}
	if (strchr(reference, '@'))
		return error_set(err, EINVAL, "'%s': name@digest references are not supported; use sha256:<hex>",
		                 reference);
	char name[IMAGES_REFERENCE_MAX], tag[IMAGES_REFERENCE_MAX] = "latest";
	snprintf(name, sizeof(name), "%s", reference);
	char *slash = strrchr(name, '/'), *colon = strrchr(name, ':');
	if (colon && (!slash || colon > slash)) {
		*colon = '\0';
		snprintf(tag, sizeof(tag), "%s", colon + 1);
		if (!tag[0] || strlen(tag) > 128 || tag[0] == '.' || tag[0] == '-')
			return error_set(err, EINVAL, "'%s' has an invalid tag", reference);
		for (const char *c = tag; *c; c++)
			if (!is_tag_char(*c))
				return error_set(err, EINVAL, "'%s' has an invalid tag", reference);
	}
	/* The first component is a registry when it looks like a host name, as in Docker. */
	const char *domain = "docker.io", *path = name;
	char domain_buffer[IMAGES_REFERENCE_MAX];
	char *first_slash = strchr(name, '/');
	if (first_slash) {
		size_t n = (size_t)(first_slash - name);
		if (memchr(name, '.', n) || memchr(name, ':', n) || (n == 9 && strncmp(name, "localhost", 9) == 0)) {
			snprintf(domain_buffer, sizeof(domain_buffer), "%.*s", (int)n, name);
			domain = domain_buffer;
			path = first_slash + 1;
			if (strcmp(domain, "index.docker.io") == 0)
				domain = "docker.io";
		}
	}
	if (!*path || path[0] == '/' || path[strlen(path) - 1] == '/' || strstr(path, "//"))
		return error_set(err, EINVAL, "'%s' is not an image reference", reference);
	for (const char *c = path; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-' ||
		      *c == '/'))
			return error_set(err, EINVAL,
			                 "'%s' is not an image reference (names are lowercase letters, digits, "
			                 "'.', '_', '-' and '/')",
			                 reference);
	for (const char *c = domain; *c; c++)
		if (!(is_tag_char(*c) || *c == ':'))
			return error_set(err, EINVAL, "'%s' has an invalid registry name", reference);
	bool official = strcmp(domain, "docker.io") == 0 && !strchr(path, '/');
	int n = snprintf(ret, IMAGES_REFERENCE_MAX, "%s/%s%s:%s", domain, official ? "library/" : "", path, tag);
	if (n < 0 || n >= IMAGES_REFERENCE_MAX)
		return error_set(err, EINVAL, "'%.64s...' is longer than %d characters", reference,
		                 IMAGES_REFERENCE_MAX - 1);
	return 0;
}

const char *images_familiar_reference(const char *canonical)
{
	if (strncmp(canonical, "docker.io/library/", 18) == 0)
		return canonical + 18;
	if (strncmp(canonical, "docker.io/", 10) == 0)
		return canonical + 10;
	return canonical;
}

/* ---- the store: open, lock, index ------------------------------------------------------------ */

int images_open(struct images_store *store, const char *dir, uint64_t limit_bytes, const char *arch,
                const char *variant, struct error *err)
{
	memset(store, 0, sizeof(*store));
	const char *target_arch, *target_variant;
	target_architecture(&target_arch, &target_variant);
	store->arch = arch ? arch : target_arch;
	store->variant = arch ? (variant ? variant : "") : target_variant;
	store->limit_bytes = limit_bytes;
	if (strlen(dir) > PATH_MAX / 4)
		return error_set(err, ENAMETOOLONG, "image store directory %.64s... is too long", dir);
	static const char *const subdirs[] = { "blobs/sha256", "layers", "tmp" };
	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
		cleanup_free char *path = xasprintf("%s/%s", dir, subdirs[i]);
		int r = file_mkdir_p(path, 0700, err);
		if (r < 0) {
			error_prefix(err, "image store");
			return r;
		}
	}
	store->dir = xstrdup(dir);
	return 0;
}

void images_close(struct images_store *store)
{
	if (!store)
		return;
	free(store->dir);
	store->dir = NULL;
}

static int store_lock(struct images_store *store, struct error *err)
{
	cleanup_free char *path = xasprintf("%s/lock", store->dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_set_errno(err, errno, "image store lock %s", path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return error_set_errno(err, e, "locking %s", path);
		}
	}
	return fd;
}

static void store_unlock(int *fd)
{
	if (*fd >= 0)
		close(*fd); /* releases the flock */
}

#define cleanup_lock __attribute__((cleanup(store_unlock)))

static void cleanup_json_func(cJSON **json)
{
	cJSON_Delete(*json);
}
#define cleanup_json __attribute__((cleanup(cleanup_json_func)))

static int index_load(struct images_store *store, cJSON **ret_index, struct error *err)
{
	cleanup_free char *path = xasprintf("%s/index.json", store->dir);
	cleanup_free char *text = NULL;
	cJSON *index = NULL;
	if (!path_exists(path)) {
		index = cJSON_CreateObject();
	} else {
		int r = file_read(path, IMAGES_INDEX_MAX, &text, NULL, err);
		if (r < 0) {
			error_prefix(err, "image store index");
			return r;
		}
		index = cJSON_Parse(text);
		if (!index || !cJSON_IsObject(index)) {
			cJSON_Delete(index);
			return error_set(err, EINVAL, "image store index %s is not valid JSON", path);
		}
	}
	if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(index, "images")))
		cJSON_AddItemToObject(index, "images", cJSON_CreateObject());
	if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(index, "references")))
		cJSON_AddItemToObject(index, "references", cJSON_CreateObject());
	*ret_index = index;
	return 0;
}

static int index_save(struct images_store *store, cJSON *index, struct error *err)
{
	cleanup_free char *path = xasprintf("%s/index.json", store->dir);
	cleanup_free char *text = cJSON_Print(index);
	if (!text)
		abort(); /* cJSON fails only when out of memory */
	return file_write_atomic(path, text, strlen(text), 0600, err);
}

static cJSON *index_images(cJSON *index)
{
	return cJSON_GetObjectItemCaseSensitive(index, "images");
}

static cJSON *index_references(cJSON *index)
{
	return cJSON_GetObjectItemCaseSensitive(index, "references");
}

/* ---- hashing and copying blobs -------------------------------------------------------------- */

struct import {
	struct images_store *store;
	const char *input;   /* what the user named, for messages */
	char *tmp;           /* tmp/import-XXXXXX */
	char *source;        /* the directory the archive's files are read from */
	bool source_is_ours; /* source lies in tmp or the store's pulls/: blobs are hard-linked, not copied */
	uint64_t usage;      /* of the store before this import */
	uint64_t added;      /* bytes this import adds */
	char **renamed;      /* paths this import renamed into the store, removed again on failure */
	size_t renamed_count;
};

static int check_limit(struct import *imp, uint64_t more, struct error *err)
{
	imp->added += more;
	if (imp->store->limit_bytes && imp->usage + imp->added > imp->store->limit_bytes)
		return error_set(err, ENOSPC,
		                 "importing %s would exceed the image store's disk limit of %llu bytes "
		                 "(%llu in use, the import needs at least %llu more); remove images with "
		                 "`bramble image rm`",
		                 imp->input, (unsigned long long)imp->store->limit_bytes,
		                 (unsigned long long)imp->usage, (unsigned long long)imp->added);
	return 0;
}

/* Copies a blob into tmp/blobs/<hex>, computing its sha256 on the way; refuses it unless the
 * digest is `expected` (when given) and it fits in max_size. */
static int stage_blob(struct import *imp, const char *source, const char *what, const char *expected, uint64_t max_size,
                      char ret_digest[IMAGES_DIGEST_MAX], struct error *err)
{
	const char *expected_hex = expected && *expected ? digest_hex(expected) : NULL;
	if (expected && *expected && !expected_hex)
		return error_set(err, EINVAL, "%s: '%.80s' is not a sha256 digest", what, expected);
	if (expected_hex) {
		cleanup_free char *stored = xasprintf("%s/blobs/sha256/%s", imp->store->dir, expected_hex);
		cleanup_free char *staged = xasprintf("%s/blobs/%s", imp->tmp, expected_hex);
		if (path_exists(stored) || path_exists(staged)) {
			snprintf(ret_digest, IMAGES_DIGEST_MAX, "%s",
			         expected); /* content-addressed: already verified */
			return 0;
		}
	}
	cleanup_close int in = open(source, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0)
		return error_set_errno(err, errno, "%s: %s", what, source);
	struct stat st;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode))
		return error_set(err, EINVAL, "%s: %s is not a regular file", what, source);
	if ((uint64_t)st.st_size > max_size)
		return error_set(err, EFBIG, "%s: %s is larger than the limit of %llu bytes", what, source,
		                 (unsigned long long)max_size);
	cleanup_free char *partial = xasprintf("%s/blobs/partial", imp->tmp);
	/* A source that is ours (an archive unpacked in tmp, a pull's directory in the store) is
	 * linked, not copied: it is read once for its digest and nothing is written twice. */
	unlink(partial);
	struct stat source_st;
	bool linked = imp->source_is_ours && lstat(source, &source_st) == 0 && S_ISREG(source_st.st_mode) &&
	              link(source, partial) == 0;
	if (linked && chmod(partial, 0644) < 0)
		return error_set_errno(err, errno, "%s: %s", what, partial);
	cleanup_close int out = linked ? -1 : open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (!linked && out < 0)
		return error_set_errno(err, errno, "creating %s", partial);
	mbedtls_sha256_context sha;
	mbedtls_sha256_init(&sha);
	mbedtls_sha256_starts(&sha, 0);
	cleanup_free char *buffer = xmalloc(IMAGES_COPY_CHUNK);
	uint64_t total = 0;
	int r = 0;
	for (;;) {
		ssize_t n = read(in, buffer, IMAGES_COPY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = error_set_errno(err, errno, "%s: reading %s", what, source);
			break;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		mbedtls_sha256_update(&sha, (const unsigned char *)buffer, (size_t)n);
		if (linked)
			continue;
		r = file_write_all(out, buffer, (size_t)n);
		if (r < 0) {
			r = error_set_errno(err, -r, "%s: writing %s", what, partial);
			break;
		}
	}
	unsigned char sum[32];
	mbedtls_sha256_finish(&sha, sum);
	mbedtls_sha256_free(&sha);
	if (r == 0 && !linked && fsync(out) < 0)
		r = error_set_errno(err, errno, "%s: writing %s", what, partial);
	if (r < 0)
		return r;
	char hex[HEX_LENGTH + 1];
	hex_of(sum, hex);
	if (expected_hex && strcmp(hex, expected_hex) != 0)
		return error_set(err, EBADMSG, "%s: digest mismatch in %s: expected sha256:%s, content is sha256:%s",
		                 what, source, expected_hex, hex);
	cleanup_free char *staged = xasprintf("%s/blobs/%s", imp->tmp, hex);
	cleanup_free char *stored = xasprintf("%s/blobs/sha256/%s", imp->store->dir, hex);
	if (!path_exists(stored) && !path_exists(staged)) {
		r = check_limit(imp, total, err);
		if (r < 0)
			return r;
	}
	if (rename(partial, staged) < 0)
		return error_set_errno(err, errno, "%s: renaming %s", what, partial);
	snprintf(ret_digest, IMAGES_DIGEST_MAX, "sha256:%s", hex);
	return 0;
}

/* Where a blob of this import is: staged in tmp, or already in the store. */
static char *blob_path(struct import *imp, const char *digest)
{
	const char *hex = digest_hex(digest);
	char *staged = xasprintf("%s/blobs/%s", imp->tmp, hex);
	if (path_exists(staged))
		return staged;
	free(staged);
	return xasprintf("%s/blobs/sha256/%s", imp->store->dir, hex);
}

static int read_json_blob(struct import *imp, const char *digest, const char *what, cJSON **ret_json, struct error *err)
{
	cleanup_free char *path = blob_path(imp, digest);
	cleanup_free char *text = NULL;
	int r = file_read(path, IMAGES_JSON_MAX, &text, NULL, err);
	if (r < 0) {
		error_prefix(err, "%s", what);
		return r;
	}
	cJSON *json = cJSON_Parse(text);
	if (!json || !cJSON_IsObject(json)) {
		cJSON_Delete(json);
		return error_set(err, EINVAL, "%s (%s) is not a JSON object", what, digest);
	}
	*ret_json = json;
	return 0;
}

/* ---- unpacking ------------------------------------------------------------------------------ */

/* The tar stream of a layer comes through zlib, which passes plain data through unchanged: the
 * sha256 of what it yields is the layer's diff_id, gzip or not, in the same single pass. */
struct layer_reader {
	gzFile gz;
	mbedtls_sha256_context sha;
	char buffer[IMAGES_COPY_CHUNK];
	uint64_t bytes;
};

static la_ssize_t layer_read(struct archive *archive, void *data, const void **ret_buffer)
{
	struct layer_reader *reader = data;
	int n = gzread(reader->gz, reader->buffer, sizeof(reader->buffer));
	if (n < 0) {
		int code;
		const char *message = gzerror(reader->gz, &code);
		archive_set_error(archive, code == Z_ERRNO ? errno : EIO, "corrupt compressed data (%s)", message);
		return -1;
	}
	mbedtls_sha256_update(&reader->sha, (const unsigned char *)reader->buffer, (size_t)n);
	reader->bytes += (uint64_t)n;
	*ret_buffer = reader->buffer;
	return n;
}

/* Refuses paths that could name something outside the directory unpacked into. */
static int check_entry_path(const char *path, const char *what, const char *kind, struct error *err)
{
	if (strlen(path) >= PATH_MAX / 2)
		return error_set(err, ENAMETOOLONG, "%s: %s '%.64s...' is too long", what, kind, path);
	if (path[0] == '/')
		return error_set(err, EPERM, "%s: %s '%s' is an absolute path; refused", what, kind, path);
	for (const char *p = path; *p;) {
		const char *end = strchrnul(p, '/');
		if (end - p == 2 && p[0] == '.' && p[1] == '.')
			return error_set(err, EPERM, "%s: %s '%s' contains '..'; refused", what, kind, path);
		p = *end ? end + 1 : end;
	}
	return 0;
}

struct whiteout {
	char *path; /* relative to the layer, the whiteout entry itself (".../.wh.name") */
};

/* Opens the directory that holds `path` (relative to root), creating missing directories,
 * never following a symlink: a whiteout cannot be used to write outside the layer. */
static int open_parent(int root, const char *path, const char **ret_name)
{
	int fd = dup(root);
	if (fd < 0)
		return -errno;
	char component[NAME_MAX + 1];
	const char *p = path;
	for (;;) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		if (!*end) {
			*ret_name = p;
			return fd;
		}
		size_t n = (size_t)(end - p);
		if (n > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(component, p, n);
		component[n] = '\0';
		if (strcmp(component, ".") != 0) {
			if (mkdirat(fd, component, 0755) < 0 && errno != EEXIST) {
				int e = errno;
				close(fd);
				return -e;
			}
			int next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int e = errno;
			close(fd);
			if (next < 0)
				return -e;
			fd = next;
		}
		p = end + 1;
	}
}

/* `.wh..wh..opq` makes its directory opaque; `.wh.<name>` hides <name> of lower layers: in
 * overlayfs these are the trusted.overlay.opaque=y xattr and a 0/0 character device. */
static int apply_whiteouts(int root, struct whiteout *whiteouts, size_t count, const char *what, struct error *err)
{
	for (size_t i = 0; i < count; i++) {
		const char *path = whiteouts[i].path, *name = NULL;
		int fd = open_parent(root, path, &name);
		if (fd < 0)
			return error_set_errno(err, -fd, "%s: whiteout '%s'", what, path);
		int r = 0;
		if (strcmp(name, ".wh..wh..opq") == 0) {
			if (fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0)
				r = error_set_errno(err, errno, "%s: marking the directory of '%s' opaque (needs root)",
				                    what, path);
		} else {
			const char *hidden = name + 4;
			if (!*hidden || strcmp(hidden, ".") == 0 || strcmp(hidden, "..") == 0 ||
			    strlen(hidden) > NAME_MAX)
				r = error_set(err, EINVAL, "%s: whiteout '%s' names no file", what, path);
			else if (mknodat(fd, hidden, S_IFCHR | 0, makedev(0, 0)) < 0)
				r = error_set_errno(err, errno, "%s: whiteout '%s' (needs root)", what, path);
		}
		close(fd);
		if (r < 0)
			return r;
	}
	return 0;
}

static int archive_failure(struct archive *archive, const char *what, const char *entry, struct error *err)
{
	int code = archive_errno(archive) > 0 ? archive_errno(archive) : EINVAL;
	const char *message = archive_error_string(archive);
	char detail[160] = "";
	/* libarchive says "Write failed"; the user needs to see why (a full disk). */
	if (archive_errno(archive) > 0 && (!message || !strstr(message, strerror(code))))
		snprintf(detail, sizeof(detail), " (%s)", strerror(code));
	if (entry)
		return error_set(err, code, "%s: '%s': %s%s", what, entry, message ? message : "unpacking failed",
		                 detail);
	return error_set(err, code, "%s: %s%s", what, message ? message : "unpacking failed", detail);
}

static void cleanup_read_func(struct archive **archive)
{
	if (*archive)
		archive_read_free(*archive);
}

static void cleanup_write_func(struct archive **archive)
{
	if (*archive)
		archive_write_free(*archive);
}

#define cleanup_archive_read __attribute__((cleanup(cleanup_read_func)))
#define cleanup_archive_write __attribute__((cleanup(cleanup_write_func)))

struct unpack {
	const char *what;   /* for messages: "layer sha256:..." */
	bool layer;         /* a layer (whiteouts, owners, devices skipped) or the outer archive */
	struct import *imp; /* limits; NULL for the outer archive */
	size_t max_entries;
	struct whiteout *whiteouts;
	size_t whiteout_count;
};

/* Unpacks the tar read through `archive` into the current directory. */
static int unpack_entries(struct unpack *u, struct archive *archive, struct error *err)
{
	cleanup_archive_write struct archive *disk = archive_write_disk_new();
	int flags = ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
	            ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME;
	if (u->layer && geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER; /* numeric ids: no name lookups, the layer's own /etc counts */
	archive_write_disk_set_options(disk, flags);
	size_t entries = 0;
	for (;;) {
		struct archive_entry *entry;
		int r = archive_read_next_header(archive, &entry);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return archive_failure(archive, u->what, NULL, err);
		if (++entries > u->max_entries)
			return error_set(err, EFBIG, "%s: more than %zu entries", u->what, u->max_entries);
		const char *path = archive_entry_pathname(entry);
		if (!path)
			return error_set(err, EINVAL, "%s: an entry without a name", u->what);
		r = check_entry_path(path, u->what, "entry", err);
		if (r < 0)
			return r;
		const char *hardlink = archive_entry_hardlink(entry);
		if (hardlink) {
			r = check_entry_path(hardlink, u->what, "hard link target", err);
			if (r < 0)
				return r;
		}
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		mode_t type = archive_entry_filetype(entry);
		if (u->layer && strncmp(base, ".wh.", 4) == 0) {
			if (u->whiteout_count >= IMAGES_WHITEOUTS_MAX)
				return error_set(err, EFBIG, "%s: more than %d whiteouts", u->what,
				                 IMAGES_WHITEOUTS_MAX);
			u->whiteouts = xrealloc(u->whiteouts, (u->whiteout_count + 1) * sizeof(*u->whiteouts));
			u->whiteouts[u->whiteout_count++].path = xstrdup(path);
			continue;
		}
		/* Pods get their own minimal /dev; the outer archive holds only files. */
		if (type == AE_IFCHR || type == AE_IFBLK ||
		    (!u->layer && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && !hardlink))
			continue;
		if (u->imp && archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0) {
			r = check_limit(u->imp, (uint64_t)archive_entry_size(entry), err);
			if (r < 0)
				return r;
		}
		r = archive_write_header(disk, entry);
		if (r < ARCHIVE_WARN)
			return archive_failure(disk, u->what, path, err);
		if (archive_entry_size(entry) > 0 && !hardlink) {
			const void *block;
			size_t size;
			la_int64_t offset;
			while ((r = archive_read_data_block(archive, &block, &size, &offset)) == ARCHIVE_OK) {
				if (archive_write_data_block(disk, block, size, offset) < ARCHIVE_OK)
					return archive_failure(disk, u->what, path, err);
			}
			if (r != ARCHIVE_EOF)
				return archive_failure(archive, u->what, path, err);
		}
		if (archive_write_finish_entry(disk) < ARCHIVE_WARN)
			return archive_failure(disk, u->what, path, err);
	}
	if (archive_write_close(disk) < ARCHIVE_WARN)
		return archive_failure(disk, u->what, NULL, err);
	return 0;
}

/* Runs unpack_entries with `dir` as the working directory: archive_write_disk resolves every
 * path (and hard link target) against it, and its SECURE flags refuse absolute paths. */
static int unpack_in(struct unpack *u, struct archive *archive, const char *dir, struct error *err)
{
	cleanup_close int saved = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (saved < 0)
		return error_set_errno(err, errno, "opening the working directory");
	if (chdir(dir) < 0)
		return error_set_errno(err, errno, "%s", dir);
	int r = unpack_entries(u, archive, err);
	if (fchdir(saved) < 0 && r == 0)
		r = error_set_errno(err, errno, "returning to the working directory");
	return r;
}

static void free_whiteouts(struct unpack *u)
{
	for (size_t i = 0; i < u->whiteout_count; i++)
		free(u->whiteouts[i].path);
	free(u->whiteouts);
}

/* Unpacks a layer blob into tmp/layers/<diff_id hex>, unless it is unpacked already, and checks
 * that the uncompressed tar has that sha256. */
static int unpack_layer(struct import *imp, const char *blob_digest, const char *diff_id, struct error *err)
{
	const char *diff_hex = digest_hex(diff_id);
	char what[128], short_blob[13];
	snprintf(what, sizeof(what), "layer sha256:%s", short_digest(blob_digest, short_blob));
	if (!diff_hex)
		return error_set(err, EINVAL, "%s: the config's diff_id '%.80s' is not a sha256 digest", what, diff_id);
	cleanup_free char *stored = xasprintf("%s/layers/%s", imp->store->dir, diff_hex);
	cleanup_free char *dir = xasprintf("%s/layers/%s", imp->tmp, diff_hex);
	if (path_exists(stored) || path_exists(dir))
		return 0;
	if (mkdir(dir, 0755) < 0)
		return error_set_errno(err, errno, "%s: creating %s", what, dir);
	cleanup_free char *path = blob_path(imp, blob_digest);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(err, errno, "%s: %s", what, path);
	struct layer_reader *reader = xcalloc(1, sizeof(*reader));
	reader->gz = gzdopen(fd, "rb");
	if (!reader->gz)
		abort(); /* zlib fails only when out of memory */
	mbedtls_sha256_init(&reader->sha);
	mbedtls_sha256_starts(&reader->sha, 0);
	struct unpack u = { .what = what, .layer = true, .imp = imp, .max_entries = IMAGES_LAYER_ENTRIES_MAX };
	int r;
	{
		cleanup_archive_read struct archive *archive = archive_read_new();
		archive_read_support_format_tar(archive);
		archive_read_support_filter_gzip(archive);
		archive_read_support_filter_none(archive);
		if (archive_read_open(archive, reader, NULL, layer_read, NULL) != ARCHIVE_OK)
			r = archive_failure(archive, what, NULL, err);
		else
			r = unpack_in(&u, archive, dir, err);
	}
	/* The tar's end-of-archive blocks and padding count for the diff_id too. */
	while (r == 0) {
		int n = gzread(reader->gz, reader->buffer, sizeof(reader->buffer));
		if (n < 0) {
			int code;
			r = error_set(err, EIO, "%s: corrupt compressed data (%s)", what, gzerror(reader->gz, &code));
		} else if (n == 0) {
			break;
		} else {
			mbedtls_sha256_update(&reader->sha, (const unsigned char *)reader->buffer, (size_t)n);
		}
	}
	unsigned char sum[32];
	mbedtls_sha256_finish(&reader->sha, sum);
	mbedtls_sha256_free(&reader->sha);
	gzclose(reader->gz);
	free(reader);
	if (r == 0) {
		char hex[HEX_LENGTH + 1];
		hex_of(sum, hex);
		if (strcmp(hex, diff_hex) != 0)
			r = error_set(err, EBADMSG,
			              "%s: digest mismatch: the config's diff_id is sha256:%s, the uncompressed "
			              "layer is sha256:%s",
			              what, diff_hex, hex);
	}
	if (r == 0) {
		cleanup_close int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (root < 0)
			r = error_set_errno(err, errno, "%s", dir);
		else
			r = apply_whiteouts(root, u.whiteouts, u.whiteout_count, what, err);
	}
	free_whiteouts(&u);
	return r;
}

/* Unpacks an image archive (tar, maybe gzip) into tmp/src. */
static int extract_archive(struct import *imp, const char *path, struct error *err)
{
	cleanup_free char *dir = xasprintf("%s/src", imp->tmp);
	if (mkdir(dir, 0700) < 0)
		return error_set_errno(err, errno, "creating %s", dir);
	cleanup_archive_read struct archive *archive = archive_read_new();
	archive_read_support_format_tar(archive);
	archive_read_support_filter_gzip(archive);
	archive_read_support_filter_none(archive);
	char what[PATH_MAX / 2];
	snprintf(what, sizeof(what), "%s", path);
	if (archive_read_open_filename(archive, path, IMAGES_COPY_CHUNK) != ARCHIVE_OK)
		return archive_failure(archive, what, NULL, err);
	struct unpack u = { .what = what, .layer = false, .max_entries = IMAGES_ARCHIVE_ENTRIES_MAX };
	int r = unpack_in(&u, archive, dir, err);
	free_whiteouts(&u);
	if (r < 0)
		return r;
	imp->source = steal_pointer(&dir);
	imp->source_is_ours = true;
	return 0;
}

/* ---- what an archive holds -------------------------------------------------------------------- */

struct candidate {
	char **references; /* canonical */
	size_t reference_count;
	char manifest[IMAGES_DIGEST_MAX]; /* OCI: the manifest blob; docker: "" */
	char config[IMAGES_DIGEST_MAX];
	char *config_source;  /* docker: a file to stage */
	char **layer_sources; /* docker: files to stage */
	char (*layers)[IMAGES_DIGEST_MAX];
	size_t layer_count;
};

struct candidates {
	struct candidate items[IMAGES_PER_ARCHIVE];
	size_t count;
};

static void candidate_free(struct candidate *c)
{
	for (size_t i = 0; i < c->reference_count; i++)
		free(c->references[i]);
	free(c->references);
	free(c->config_source);
	for (size_t i = 0; c->layer_sources && i < c->layer_count; i++)
		free(c->layer_sources[i]);
	free(c->layer_sources);
	free(c->layers);
}

static void add_reference(struct candidate *c, const char *reference)
{
	char canonical[IMAGES_REFERENCE_MAX];
	if (images_normalize_reference(reference, canonical, NULL) < 0 || strncmp(canonical, "sha256:", 7) == 0)
		return; /* a name we cannot use: the image is still reachable by digest */
	if (c->reference_count >= 64)
		return;
	c->references = xrealloc(c->references, (c->reference_count + 1) * sizeof(char *));
	c->references[c->reference_count++] = xstrdup(canonical);
}

static const char *json_string(const cJSON *object, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	return cJSON_IsString(item) ? item->valuestring : NULL;
}

static bool media_type_is(const char *type, const char *oci, const char *docker)
{
	return type && (strcmp(type, oci) == 0 || strcmp(type, docker) == 0);
}

#define OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* Stages a blob named by an OCI descriptor from blobs/sha256/<hex> of the layout. */
static int stage_descriptor(struct import *imp, const cJSON *descriptor, const char *what, uint64_t max_size,
                            char ret_digest[IMAGES_DIGEST_MAX], struct error *err)
{
	const char *digest = json_string(descriptor, "digest");
	const char *hex = digest_hex(digest);
	if (!hex)
		return error_set(err, EINVAL, "%s in %s: descriptor without a sha256 digest", what, imp->input);
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(descriptor, "size");
	if (cJSON_IsNumber(size) && size->valuedouble > (double)max_size)
		return error_set(err, EFBIG, "%s %s in %s: larger than the limit of %llu bytes", what, digest,
		                 imp->input, (unsigned long long)max_size);
	cleanup_free char *relative = xasprintf("blobs/sha256/%s", hex);
	cleanup_free char *path = NULL;
	struct error source_err;
	char stored[PATH_MAX];
	snprintf(stored, sizeof(stored), "%s/blobs/sha256/%s", imp->store->dir, hex);
	if (!path_exists(stored)) {
		path = source_path(imp->source, relative, &source_err);
		if (!path)
			return error_set(err, ENOENT, "%s %s is missing from %s (%s)", what, digest, imp->input,
			                 source_err.message);
	}
	char label[256];
	snprintf(label, sizeof(label), "%s %s in %s", what, digest, imp->input);
	int r = stage_blob(imp, path ? path : stored, label, digest, max_size, ret_digest, err);
	if (r < 0)
		return r;
	if (cJSON_IsNumber(size)) {
		cleanup_free char *staged = blob_path(imp, ret_digest);
		struct stat st;
		if (stat(staged, &st) == 0 && (double)st.st_size != size->valuedouble)
			return error_set(err, EBADMSG, "%s: size is %lld bytes, the descriptor says %.0f", label,
			                 (long long)st.st_size, size->valuedouble);
	}
	return 0;
}

static int collect_manifest(struct import *imp, const cJSON *descriptor, struct candidates *out, struct error *err)
{
	if (out->count >= IMAGES_PER_ARCHIVE)
		return error_set(err, EFBIG, "%s holds more than %d images", imp->input, IMAGES_PER_ARCHIVE);
	struct candidate *c = &out->items[out->count];
	memset(c, 0, sizeof(*c));
	out->count++;
	int r = stage_descriptor(imp, descriptor, "manifest", IMAGES_JSON_MAX, c->manifest, err);
	if (r < 0)
		return r;
	const cJSON *annotations = cJSON_GetObjectItemCaseSensitive(descriptor, "annotations");
	const char *full = json_string(annotations, "io.containerd.image.name");
	const char *name = json_string(annotations, "org.opencontainers.image.ref.name");
	if (full)
		add_reference(c, full);
	else if (name)
		add_reference(c, name);
	cleanup_json cJSON *manifest = NULL;
	r = read_json_blob(imp, c->manifest, "manifest", &manifest, err);
	if (r < 0)
		return r;
	const cJSON *config = cJSON_GetObjectItemCaseSensitive(manifest, "config");
	if (!cJSON_IsObject(config))
		return error_set(err, EINVAL, "manifest %s in %s has no config", c->manifest, imp->input);
	const char *config_digest = json_string(config, "digest");
	if (!digest_hex(config_digest))
		return error_set(err, EINVAL, "manifest %s in %s: config has no sha256 digest", c->manifest,
		                 imp->input);
	snprintf(c->config, sizeof(c->config), "%s", config_digest);
	const cJSON *layers = cJSON_GetObjectItemCaseSensitive(manifest, "layers");
	int count = cJSON_GetArraySize(layers);
	if (!cJSON_IsArray(layers) || count > IMAGES_LAYERS_MAX)
		return error_set(err, EINVAL, "manifest %s in %s: layers must be a list of at most %d", c->manifest,
		                 imp->input, IMAGES_LAYERS_MAX);
	c->layers = xcalloc((size_t)count + 1, sizeof(*c->layers));
	const cJSON *layer;
	cJSON_ArrayForEach(layer, layers)
	{
		const char *type = json_string(layer, "mediaType");
		if (type && strstr(type, "zstd"))
			return error_set(err, ENOTSUP, "manifest %s in %s: zstd-compressed layers are not supported",
			                 c->manifest, imp->input);
		const char *digest = json_string(layer, "digest");
		if (!digest_hex(digest))
			return error_set(err, EINVAL, "manifest %s in %s: a layer without a sha256 digest", c->manifest,
			                 imp->input);
		snprintf(c->layers[c->layer_count++], IMAGES_DIGEST_MAX, "%s", digest);
	}
	return 0;
}

static int collect_index(struct import *imp, const cJSON *index, int depth, struct candidates *out, struct error *err)
{
	const cJSON *manifests = cJSON_GetObjectItemCaseSensitive(index, "manifests");
	if (!cJSON_IsArray(manifests) || cJSON_GetArraySize(manifests) > IMAGES_PER_ARCHIVE)
		return error_set(err, EINVAL, "%s: the index must list at most %d manifests", imp->input,
		                 IMAGES_PER_ARCHIVE);
	const cJSON *descriptor;
	cJSON_ArrayForEach(descriptor, manifests)
	{
		const char *type = json_string(descriptor, "mediaType");
		int r;
		if (media_type_is(type, OCI_INDEX, DOCKER_LIST)) {
			if (depth >= 2)
				return error_set(err, ELOOP, "%s: image indexes nested too deep", imp->input);
			char digest[IMAGES_DIGEST_MAX];
			r = stage_descriptor(imp, descriptor, "image index", IMAGES_JSON_MAX, digest, err);
			if (r < 0)
				return r;
			cleanup_json cJSON *nested = NULL;
			r = read_json_blob(imp, digest, "image index", &nested, err);
			if (r < 0)
				return r;
			/* The names are on the outer descriptor: carry them to the nested manifests. */
			size_t first = out->count;
			r = collect_index(imp, nested, depth + 1, out, err);
			if (r < 0)
				return r;
			const cJSON *annotations = cJSON_GetObjectItemCaseSensitive(descriptor, "annotations");
			const char *full = json_string(annotations, "io.containerd.image.name");
			const char *name = full ? full : json_string(annotations, "org.opencontainers.image.ref.name");
			for (size_t i = first; name && i < out->count; i++)
				add_reference(&out->items[i], name);
		} else if (!type || media_type_is(type, OCI_MANIFEST, DOCKER_MANIFEST)) {
			r = collect_manifest(imp, descriptor, out, err);
			if (r < 0)
				return r;
		} /* other artifacts (attestations, signatures) are not images */
	}
	return 0;
}

/* Reads and parses a JSON file of the input (bounded by IMAGES_JSON_MAX); *ret_json may be
 * NULL when the text is not JSON: the caller says what it expected. */
static int read_input_json(struct import *imp, const char *path, cJSON **ret_json, struct error *err)
{
	cleanup_free char *text = NULL;
	int r = file_read(path, IMAGES_JSON_MAX, &text, NULL, err);
	if (r < 0) {
		error_prefix(err, "%s", imp->input);
		return r;
	}
	*ret_json = cJSON_Parse(text);
	return 0;
}

static int collect_oci(struct import *imp, const char *index_path, struct candidates *out, struct error *err)
{
	cleanup_json cJSON *index = NULL;
	int r = read_input_json(imp, index_path, &index, err);
	if (r < 0)
		return r;
	if (!cJSON_IsObject(index))
		return error_set(err, EINVAL, "%s: index.json is not a JSON object", imp->input);
	return collect_index(imp, index, 0, out, err);
}

/* docker save: manifest.json is [{"Config": "<file>", "RepoTags": [...], "Layers": ["<file>", ...]}]. */
static int collect_docker(struct import *imp, const char *manifest_path, struct candidates *out, struct error *err)
{
	cleanup_json cJSON *manifest = NULL;
	int r = read_input_json(imp, manifest_path, &manifest, err);
	if (r < 0)
		return r;
	if (!cJSON_IsArray(manifest) || cJSON_GetArraySize(manifest) > IMAGES_PER_ARCHIVE)
		return error_set(err, EINVAL, "%s: manifest.json must be a list of at most %d images", imp->input,
		                 IMAGES_PER_ARCHIVE);
	const cJSON *image;
	cJSON_ArrayForEach(image, manifest)
	{
		struct candidate *c = &out->items[out->count];
		memset(c, 0, sizeof(*c));
		out->count++;
		const char *config = json_string(image, "Config");
		if (!config)
			return error_set(err, EINVAL, "%s: manifest.json: an image without Config", imp->input);
		struct error source_err;
		c->config_source = source_path(imp->source, config, &source_err);
		if (!c->config_source)
			return error_set(err, ENOENT, "config %s is missing from %s (%s)", config, imp->input,
			                 source_err.message);
		const cJSON *tag;
		cJSON_ArrayForEach(tag, cJSON_GetObjectItemCaseSensitive(image, "RepoTags"))
		{
			if (cJSON_IsString(tag))
				add_reference(c, tag->valuestring);
		}
		const cJSON *layers = cJSON_GetObjectItemCaseSensitive(image, "Layers");
		int count = cJSON_GetArraySize(layers);
		if (!cJSON_IsArray(layers) || count > IMAGES_LAYERS_MAX)
			return error_set(err, EINVAL, "%s: manifest.json: Layers must be a list of at most %d",
			                 imp->input, IMAGES_LAYERS_MAX);
		c->layers = xcalloc((size_t)count + 1, sizeof(*c->layers));
		c->layer_sources = xcalloc((size_t)count + 1, sizeof(char *));
		const cJSON *layer;
		cJSON_ArrayForEach(layer, layers)
		{
			if (!cJSON_IsString(layer))
				return error_set(err, EINVAL, "%s: manifest.json: a layer that is not a file name",
				                 imp->input);
			char *source = source_path(imp->source, layer->valuestring, &source_err);
			if (!source)
				return error_set(err, ENOENT, "layer %s is missing from %s (%s)", layer->valuestring,
				                 imp->input, source_err.message);
			c->layer_sources[c->layer_count++] = source;
		}
	}
	return 0;
}

/* Newer `docker save` names files blobs/sha256/<hex>, older ones <hex>.json or <hex>/layer.tar: a
 * digest the name states is checked; otherwise the content's own digest is the name. */
static void digest_from_name(const char *path, char out[IMAGES_DIGEST_MAX])
{
	out[0] = '\0';
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (strlen(base) >= HEX_LENGTH && is_hex(base, HEX_LENGTH) &&
	    (base[HEX_LENGTH] == '\0' || strcmp(base + HEX_LENGTH, ".json") == 0))
		snprintf(out, IMAGES_DIGEST_MAX, "sha256:%.64s", base);
}

/* ---- configs ---------------------------------------------------------------------------------- */

static char **string_list(const cJSON *array)
{
	int count = cJSON_IsArray(array) ? cJSON_GetArraySize(array) : 0;
	if (count > IMAGES_STRINGS_MAX)
		count = IMAGES_STRINGS_MAX;
	char **list = xcalloc((size_t)count + 1, sizeof(char *));
	int n = 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, array)
	{
		if (n < count && cJSON_IsString(item))
			list[n++] = xstrdup(item->valuestring);
	}
	return list;
}

static void free_list(char **list)
{
	for (size_t i = 0; list && list[i]; i++)
		free(list[i]);
	free(list);
}

void images_image_free(struct images_image *image)
{
	if (!image)
		return;
	free(image->architecture);
	free(image->variant);
	free(image->os);
	free_list(image->entrypoint);
	free_list(image->cmd);
	free_list(image->env);
	free(image->working_dir);
	free(image->user);
	free_list(image->layers);
	memset(image, 0, sizeof(*image));
}

static char *string_or_empty(const cJSON *object, const char *key)
{
	const char *s = json_string(object, key);
	return xstrdup(s ? s : "");
}

static void parse_config(const cJSON *json, struct images_image *image)
{
	image->architecture = string_or_empty(json, "architecture");
	image->variant = string_or_empty(json, "variant");
	image->os = string_or_empty(json, "os");
	const cJSON *config = cJSON_GetObjectItemCaseSensitive(json, "config");
	image->entrypoint = string_list(cJSON_GetObjectItemCaseSensitive(config, "Entrypoint"));
	image->cmd = string_list(cJSON_GetObjectItemCaseSensitive(config, "Cmd"));
	image->env = string_list(cJSON_GetObjectItemCaseSensitive(config, "Env"));
	image->working_dir = string_or_empty(config, "WorkingDir");
	image->user = string_or_empty(config, "User");
}

static int check_architecture(const struct images_store *store, const struct images_image *image, const char *name,
                              struct error *err)
{
	char image_platform[64], board_platform[64];
	format_platform(image_platform, sizeof(image_platform), image->architecture, image->variant);
	format_platform(board_platform, sizeof(board_platform), store->arch, store->variant);
	if (*image->os && strcmp(image->os, "linux") != 0)
		return error_set(err, ENOEXEC, "image %s is for %s; this board runs linux", name, image->os);
	if (!platform_runs(store, image->architecture, image->variant))
		return error_set(err, ENOEXEC, "image %s is for %s; this board is %s", name,
		                 *image_platform ? image_platform : "an unnamed architecture", board_platform);
	return 0;
}

/* ---- import ------------------------------------------------------------------------------------ */

struct accepted {
	struct candidate *candidate;
	char (*diff_ids)[IMAGES_DIGEST_MAX];
	char architecture[32];
	uint64_t size;
};

static void note_renamed(struct import *imp, const char *path)
{
	imp->renamed = xrealloc(imp->renamed, (imp->renamed_count + 1) * sizeof(char *));
	imp->renamed[imp->renamed_count++] = xstrdup(path);
}

static int move_into_place(struct import *imp, const char *from, const char *to, struct error *err)
{
	if (!path_exists(from) || path_exists(to))
		return 0; /* already in the store: identical by construction */
	if (rename(from, to) < 0)
		return error_set_errno(err, errno, "renaming %s to %s", from, to);
	note_renamed(imp, to);
	return 0;
}

static int move_blob(struct import *imp, const char *digest, struct error *err)
{
	const char *hex = digest_hex(digest);
	cleanup_free char *from = xasprintf("%s/blobs/%s", imp->tmp, hex);
	cleanup_free char *to = xasprintf("%s/blobs/sha256/%s", imp->store->dir, hex);
	return move_into_place(imp, from, to, err);
}

/* Fetches, verifies and unpacks one image; sets *ret_accepted unless it is for another
 * architecture, in which case the error is set and 0 returned. */
static int import_candidate(struct import *imp, struct candidate *c, struct accepted *ret, bool *ret_foreign,
                            struct error *err)
{
	char name[IMAGES_REFERENCE_MAX], short_config[13];
	*ret_foreign = false;
	if (c->config_source) {
		char expected[IMAGES_DIGEST_MAX];
		digest_from_name(c->config_source, expected);
		cleanup_free char *label =
		        xasprintf("config %s in %s", c->config_source + strlen(imp->source) + 1, imp->input);
		int r = stage_blob(imp, c->config_source, label, expected, IMAGES_JSON_MAX, c->config, err);
		if (r < 0)
			return r;
	} else {
		cleanup_json cJSON *descriptor = cJSON_CreateObject();
		cJSON_AddStringToObject(descriptor, "digest", c->config);
		int r = stage_descriptor(imp, descriptor, "config", IMAGES_JSON_MAX, c->config, err);
		if (r < 0)
			return r;
	}
	if (c->reference_count)
		snprintf(name, sizeof(name), "%s", images_familiar_reference(c->references[0]));
	else
		snprintf(name, sizeof(name), "sha256:%s", short_digest(c->config, short_config));
	cleanup_json cJSON *json = NULL;
	int r = read_json_blob(imp, c->config, "config", &json, err);
	if (r < 0)
		return r;
	struct images_image image = { 0 };
	parse_config(json, &image);
	r = check_architecture(imp->store, &image, name, err);
	snprintf(ret->architecture, sizeof(ret->architecture), "%s", image.architecture);
	images_image_free(&image);
	if (r < 0) {
		*ret_foreign = true;
		return 0;
	}
	const cJSON *diff_ids =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "rootfs"), "diff_ids");
	if (!cJSON_IsArray(diff_ids) || (size_t)cJSON_GetArraySize(diff_ids) != c->layer_count)
		return error_set(err, EINVAL, "config %s of %s: rootfs.diff_ids lists %d layers, the manifest %zu",
		                 c->config, name, cJSON_GetArraySize(diff_ids), c->layer_count);
	ret->candidate = c;
	ret->diff_ids = xcalloc(c->layer_count + 1, sizeof(*ret->diff_ids));
	for (size_t i = 0; i < c->layer_count; i++) {
		const cJSON *diff_id = cJSON_GetArrayItem(diff_ids, (int)i);
		if (!cJSON_IsString(diff_id) || !digest_hex(diff_id->valuestring))
			return error_set(err, EINVAL, "config %s of %s: diff_id %zu is not a sha256 digest", c->config,
			                 name, i);
		snprintf(ret->diff_ids[i], IMAGES_DIGEST_MAX, "%s", diff_id->valuestring);
		if (c->layer_sources) {
			/* docker save: a plain layer's digest is its diff_id; a gzip one's is stated
			 * by its name at best, else it is what its content hashes to. */
			char expected[IMAGES_DIGEST_MAX];
			digest_from_name(c->layer_sources[i], expected);
			cleanup_free char *label =
			        xasprintf("layer %s in %s", c->layer_sources[i] + strlen(imp->source) + 1, imp->input);
			r = stage_blob(imp, c->layer_sources[i], label, expected, UINT64_MAX, c->layers[i], err);
		} else {
			cleanup_json cJSON *descriptor = cJSON_CreateObject();
			cJSON_AddStringToObject(descriptor, "digest", c->layers[i]);
			r = stage_descriptor(imp, descriptor, "layer", UINT64_MAX, c->layers[i], err);
		}
		if (r < 0)
			return r;
		r = unpack_layer(imp, c->layers[i], ret->diff_ids[i], err);
		if (r < 0) {
			error_prefix(err, "image %s", name);
			return r;
		}
	}
	/* The image's size: its config and layer blobs, as `docker images` counts. */
	const char *digests[IMAGES_LAYERS_MAX + 1];
	digests[0] = c->config;
	for (size_t i = 0; i < c->layer_count; i++)
		digests[i + 1] = c->layers[i];
	for (size_t i = 0; i <= c->layer_count; i++) {
		cleanup_free char *path = blob_path(imp, digests[i]);
		struct stat st;
		if (stat(path, &st) == 0)
			ret->size += (uint64_t)st.st_size;
	}
	return 0;
}

static cJSON *string_array(char (*items)[IMAGES_DIGEST_MAX], size_t count)
{
	cJSON *array = cJSON_CreateArray();
	for (size_t i = 0; i < count; i++)
		cJSON_AddItemToArray(array, cJSON_CreateString(items[i]));
	return array;
}

/* What an import took from the store instead of bringing it must still be there: the import
 * ran without the store's lock, and an `image rm` may have collected it meanwhile. */
static int check_present(struct import *imp, const struct accepted *a, struct error *err)
{
	const struct candidate *c = a->candidate;
	for (size_t i = 0; i <= c->layer_count + 1; i++) {
		const char *digest = i == 0 ? c->manifest : i == 1 ? c->config : c->layers[i - 2];
		if (!*digest)
			continue;
		cleanup_free char *path = blob_path(imp, digest);
		if (!path_exists(path))
			return error_set(err, EAGAIN,
			                 "blob %s left the image store during the import of %s; import again", digest,
			                 imp->input);
	}
	for (size_t i = 0; i < c->layer_count; i++) {
		const char *hex = digest_hex(a->diff_ids[i]);
		cleanup_free char *staged = xasprintf("%s/layers/%s", imp->tmp, hex);
		cleanup_free char *stored = xasprintf("%s/layers/%s", imp->store->dir, hex);
		if (!path_exists(staged) && !path_exists(stored))
			return error_set(err, EAGAIN,
			                 "layer %s left the image store during the import of %s; import again",
			                 a->diff_ids[i], imp->input);
	}
	return 0;
}

static int commit(struct import *imp, struct accepted *accepted, size_t count, struct error *err)
{
	cleanup_close int dir = open(imp->store->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* One syncfs for every file unpacked: after the renames a crash cannot leave a layer torn. */
	if (dir < 0 || syncfs(dir) < 0)
		return error_set_errno(err, errno, "syncing %s", imp->store->dir);
	/* The store's lock for the renames and the index only: readers wait milliseconds, not an unpack. */
	cleanup_lock int lock = store_lock(imp->store, err);
	if (lock < 0)
		return lock;
	cleanup_json cJSON *index = NULL;
	int r = index_load(imp->store, &index, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < count; i++) {
		struct candidate *c = accepted[i].candidate;
		/* An image already here (the same config, maybe compressed differently) keeps its
		 * blobs: only its names are added. */
		bool known = cJSON_GetObjectItemCaseSensitive(index_images(index), c->config) != NULL;
		if (!known && (r = check_present(imp, &accepted[i], err)) < 0)
			return r;
		for (size_t n = 0; n < c->reference_count; n++) {
			cJSON_DeleteItemFromObjectCaseSensitive(index_references(index), c->references[n]);
			cJSON_AddStringToObject(index_references(index), c->references[n], c->config);
		}
		if (known)
			continue;
		if (*c->manifest && (r = move_blob(imp, c->manifest, err)) < 0)
			return r;
		if ((r = move_blob(imp, c->config, err)) < 0)
			return r;
		for (size_t l = 0; l < c->layer_count; l++) {
			if ((r = move_blob(imp, c->layers[l], err)) < 0)
				return r;
			const char *hex = digest_hex(accepted[i].diff_ids[l]);
			cleanup_free char *from = xasprintf("%s/layers/%s", imp->tmp, hex);
			cleanup_free char *to = xasprintf("%s/layers/%s", imp->store->dir, hex);
			if ((r = move_into_place(imp, from, to, err)) < 0)
				return r;
		}
		cJSON *record = cJSON_CreateObject();
		cJSON_AddStringToObject(record, "manifest", c->manifest);
		cJSON_AddItemToObject(record, "layers", string_array(c->layers, c->layer_count));
		cJSON_AddItemToObject(record, "diffIds", string_array(accepted[i].diff_ids, c->layer_count));
		cJSON_AddStringToObject(record, "architecture", accepted[i].architecture);
		cJSON_AddNumberToObject(record, "size", (double)accepted[i].size);
		cJSON_AddItemToObject(index_images(index), c->config, record);
	}
	return index_save(imp->store, index, err);
}

int images_import(struct images_store *store, const char *path, struct error *err)
{
	cleanup_close int busy = -1; /* held on tmp/import-XXXXXX: images_gc leaves it alone */
	struct stat st;
	if (stat(path, &st) < 0)
		return error_set_errno(err, errno, "image archive %s", path);
	struct import imp = { .store = store, .input = path };
	struct candidates *candidates = xcalloc(1, sizeof(*candidates));
	struct accepted *accepted = xcalloc(IMAGES_PER_ARCHIVE, sizeof(*accepted));
	size_t accepted_count = 0;
	struct error foreign = { 0 };
	cleanup_free char *blobs = NULL, *layers = NULL, *oci_index = NULL, *docker_manifest = NULL;
	int r = images_usage(store, &imp.usage, err);
	if (r < 0)
		goto out;
	imp.tmp = xasprintf("%s/tmp/import-XXXXXX", store->dir);
	if (!mkdtemp(imp.tmp)) {
		r = error_set_errno(err, errno, "creating %s", imp.tmp);
		free(imp.tmp);
		imp.tmp = NULL;
		goto out;
	}
	busy = open(imp.tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (busy < 0 || flock(busy, LOCK_EX) < 0) {
		r = error_set_errno(err, errno, "locking %s", imp.tmp);
		goto out;
	}
	blobs = xasprintf("%s/blobs", imp.tmp);
	layers = xasprintf("%s/layers", imp.tmp);
	if (mkdir(blobs, 0700) < 0 || mkdir(layers, 0700) < 0) {
		r = error_set_errno(err, errno, "creating %s", layers);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		imp.source = xstrdup(path);
		/* A layout a pull wrote into the store (agent/imagepull.c) is the store's to link from. */
		cleanup_free char *pulls = xasprintf("%s/pulls/", store->dir);
		imp.source_is_ours = strncmp(path, pulls, strlen(pulls)) == 0;
	} else {
		r = extract_archive(&imp, path, err);
		if (r < 0)
			goto out;
	}
	oci_index = xasprintf("%s/index.json", imp.source);
	docker_manifest = xasprintf("%s/manifest.json", imp.source);
	if (path_exists(oci_index)) {
		r = collect_oci(&imp, oci_index, candidates, err);
	} else if (path_exists(docker_manifest)) {
		r = collect_docker(&imp, docker_manifest, candidates, err);
	} else {
		r = error_set(err, EINVAL,
		              "%s is neither an OCI image layout (no index.json) nor a docker save archive "
		              "(no manifest.json)",
		              path);
	}
	if (r < 0)
		goto out;
	for (size_t i = 0; i < candidates->count; i++) {
		bool is_foreign;
		struct error candidate_err = { 0 };
		r = import_candidate(&imp, &candidates->items[i], &accepted[accepted_count], &is_foreign,
		                     &candidate_err);
		if (r < 0) {
			if (err)
				*err = candidate_err;
			goto out;
		}
		if (is_foreign) {
			if (!foreign.code)
				foreign = candidate_err;
			continue;
		}
		accepted_count++;
	}
	if (accepted_count == 0) {
		if (foreign.code) {
			r = -foreign.code;
			if (err)
				*err = foreign;
		} else {
			r = error_set(err, EINVAL, "%s holds no image", path);
		}
		goto out;
	}
	r = commit(&imp, accepted, accepted_count, err);
out:
	if (r < 0) {
		/* Leave the store as it was: nothing this import renamed into place is referenced. */
		for (size_t i = 0; i < imp.renamed_count; i++)
			file_remove_tree(imp.renamed[i]);
	}
	for (size_t i = 0; i < imp.renamed_count; i++)
		free(imp.renamed[i]);
	free(imp.renamed);
	if (imp.tmp)
		file_remove_tree(imp.tmp);
	free(imp.tmp);
	free(imp.source);
	for (size_t i = 0; i < candidates->count; i++)
		candidate_free(&candidates->items[i]);
	free(candidates);
	for (size_t i = 0; i < IMAGES_PER_ARCHIVE; i++)
		free(accepted[i].diff_ids);
	free(accepted);
	return r < 0 ? r : 0;
}

/* ---- bundles: what `bramble image push` sends ------------------------------------------------ */

static bool file_is_gzip(const char *path)
{
	unsigned char magic[2] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, magic, sizeof(magic));
	close(fd);
	return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

static void bundle_blob(struct import *imp, struct images_bundle_blob *blob, const char *digest)
{
	snprintf(blob->digest, sizeof(blob->digest), "%s", digest);
	blob->path = blob_path(imp, digest);
	struct stat st;
	blob->size = stat(blob->path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* A docker archive has no manifest blob: one is written as an OCI image manifest. */
static char *docker_manifest_json(const struct images_bundle_image *image)
{
	cJSON *manifest = cJSON_CreateObject();
	cJSON_AddNumberToObject(manifest, "schemaVersion", 2);
	cJSON_AddStringToObject(manifest, "mediaType", OCI_MANIFEST);
	cJSON *config = cJSON_AddObjectToObject(manifest, "config");
	cJSON_AddStringToObject(config, "mediaType", "application/vnd.oci.image.config.v1+json");
	cJSON_AddStringToObject(config, "digest", image->blobs[0].digest);
	cJSON_AddNumberToObject(config, "size", (double)image->blobs[0].size);
	cJSON *layers = cJSON_AddArrayToObject(manifest, "layers");
	for (size_t i = 1; i < image->blob_count; i++) {
		cJSON *layer = cJSON_CreateObject();
		cJSON_AddStringToObject(layer, "mediaType",
		                        file_is_gzip(image->blobs[i].path)
		                                ? "application/vnd.oci.image.layer.v1.tar+gzip"
		                                : "application/vnd.oci.image.layer.v1.tar");
		cJSON_AddStringToObject(layer, "digest", image->blobs[i].digest);
		cJSON_AddNumberToObject(layer, "size", (double)image->blobs[i].size);
		cJSON_AddItemToArray(layers, layer);
	}
	char *text = cJSON_PrintUnformatted(manifest);
	cJSON_Delete(manifest);
	return text;
}

/* Stages and verifies one image's config and layers (not unpacked) and describes it. */
static int bundle_candidate(struct import *imp, struct candidate *c, struct images_bundle_image *ret, struct error *err)
{
	int r;
	if (c->config_source) {
		char expected[IMAGES_DIGEST_MAX];
		digest_from_name(c->config_source, expected);
		cleanup_free char *label =
		        xasprintf("config %s in %s", c->config_source + strlen(imp->source) + 1, imp->input);
		r = stage_blob(imp, c->config_source, label, expected, IMAGES_JSON_MAX, c->config, err);
	} else {
		cleanup_json cJSON *descriptor = cJSON_CreateObject();
		cJSON_AddStringToObject(descriptor, "digest", c->config);
		r = stage_descriptor(imp, descriptor, "config", IMAGES_JSON_MAX, c->config, err);
	}
	if (r < 0)
		return r;
	cleanup_json cJSON *json = NULL;
	if ((r = read_json_blob(imp, c->config, "config", &json, err)) < 0)
		return r;
	struct images_image image = { 0 };
	parse_config(json, &image);
	if (!*image.architecture) {
		images_image_free(&image);
		return error_set(err, EINVAL, "config %s in %s names no architecture", c->config, imp->input);
	}
	format_platform(ret->platform, sizeof(ret->platform), image.architecture, image.variant);
	images_image_free(&image);
	const cJSON *diff_ids =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "rootfs"), "diff_ids");
	if (!cJSON_IsArray(diff_ids) || (size_t)cJSON_GetArraySize(diff_ids) != c->layer_count)
		return error_set(err, EINVAL, "config %s in %s: rootfs.diff_ids lists %d layers, the manifest %zu",
		                 c->config, imp->input, cJSON_GetArraySize(diff_ids), c->layer_count);
	for (size_t i = 0; i < c->layer_count; i++) {
		if (c->layer_sources) {
			char expected[IMAGES_DIGEST_MAX];
			digest_from_name(c->layer_sources[i], expected);
			cleanup_free char *label =
			        xasprintf("layer %s in %s", c->layer_sources[i] + strlen(imp->source) + 1, imp->input);
			r = stage_blob(imp, c->layer_sources[i], label, expected, UINT64_MAX, c->layers[i], err);
		} else {
			cleanup_json cJSON *descriptor = cJSON_CreateObject();
			cJSON_AddStringToObject(descriptor, "digest", c->layers[i]);
			r = stage_descriptor(imp, descriptor, "layer", UINT64_MAX, c->layers[i], err);
		}
		if (r < 0)
			return r;
	}
	ret->references = xcalloc(c->reference_count + 1, sizeof(char *));
	for (size_t i = 0; i < c->reference_count; i++)
		ret->references[ret->reference_count++] = xstrdup(c->references[i]);
	ret->blobs = xcalloc(c->layer_count + 1, sizeof(*ret->blobs));
	bundle_blob(imp, &ret->blobs[ret->blob_count++], c->config);
	for (size_t i = 0; i < c->layer_count; i++)
		bundle_blob(imp, &ret->blobs[ret->blob_count++], c->layers[i]);
	for (size_t i = 0; i < ret->blob_count; i++)
		ret->size += ret->blobs[i].size;
	if (*c->manifest) {
		cleanup_free char *path = blob_path(imp, c->manifest);
		if ((r = file_read(path, IMAGES_JSON_MAX, &ret->manifest, &ret->manifest_length, err)) < 0)
			return r;
	} else {
		ret->manifest = docker_manifest_json(ret);
		ret->manifest_length = strlen(ret->manifest);
	}
	return 0;
}

int images_bundle_open(const char *path, const char *scratch_dir, struct images_bundle *ret_bundle, struct error *err)
{
	memset(ret_bundle, 0, sizeof(*ret_bundle));
	struct stat st;
	if (stat(path, &st) < 0)
		return error_set_errno(err, errno, "image archive %s", path);
	/* A store of its own in scratch_dir: nothing is "already stored", every blob is read. */
	cleanup_free char *dir = xasprintf("%s/bramble-push-XXXXXX", scratch_dir ? scratch_dir : "/tmp");
	if (!mkdtemp(dir))
		return error_set_errno(err, errno, "creating a scratch directory in %s",
		                       scratch_dir ? scratch_dir : "/tmp");
	struct images_store store;
	int r = images_open(&store, dir, 0, "none", "", err);
	if (r < 0) {
		file_remove_tree(dir);
		return r;
	}
	struct import imp = { .store = &store, .input = path };
	struct candidates *candidates = xcalloc(1, sizeof(*candidates));
	cleanup_free char *oci_index = NULL, *docker_manifest = NULL, *blobs = NULL;
	imp.tmp = xasprintf("%s/tmp/push", dir);
	blobs = xasprintf("%s/blobs", imp.tmp);
	if (mkdir(imp.tmp, 0700) < 0 || mkdir(blobs, 0700) < 0) {
		r = error_set_errno(err, errno, "creating %s", blobs);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		imp.source = xstrdup(path);
	} else if ((r = extract_archive(&imp, path, err)) < 0) {
		goto out;
	}
	oci_index = xasprintf("%s/index.json", imp.source);
	docker_manifest = xasprintf("%s/manifest.json", imp.source);
	if (path_exists(oci_index))
		r = collect_oci(&imp, oci_index, candidates, err);
	else if (path_exists(docker_manifest))
		r = collect_docker(&imp, docker_manifest, candidates, err);
	else
		r = error_set(err, EINVAL,
		              "%s is neither an OCI image layout (no index.json) nor a docker save archive "
		              "(no manifest.json)",
		              path);
	if (r < 0)
		goto out;
	if (candidates->count == 0) {
		r = error_set(err, EINVAL, "%s holds no image", path);
		goto out;
	}
	ret_bundle->images = xcalloc(candidates->count, sizeof(*ret_bundle->images));
	for (size_t i = 0; i < candidates->count; i++) {
		r = bundle_candidate(&imp, &candidates->items[i], &ret_bundle->images[ret_bundle->count++], err);
		if (r < 0)
			goto out;
	}
	ret_bundle->dir = steal_pointer(&dir);
out:
	for (size_t i = 0; i < candidates->count; i++)
		candidate_free(&candidates->items[i]);
	free(candidates);
	free(imp.tmp);
	free(imp.source);
	images_close(&store);
	if (r < 0) {
		file_remove_tree(dir);
		images_bundle_close(ret_bundle);
	}
	return r < 0 ? r : 0;
}

void images_bundle_close(struct images_bundle *bundle)
{
	if (!bundle)
		return;
	for (size_t i = 0; i < bundle->count; i++) {
		struct images_bundle_image *image = &bundle->images[i];
		for (size_t n = 0; n < image->reference_count; n++)
			free(image->references[n]);
		free(image->references);
		for (size_t n = 0; n < image->blob_count; n++)
			free(image->blobs[n].path);
		free(image->blobs);
		free(image->manifest);
	}
	free(bundle->images);
	if (bundle->dir)
		file_remove_tree(bundle->dir);
	free(bundle->dir);
	memset(bundle, 0, sizeof(*bundle));
}

int images_has_blob(struct images_store *store, const char *digest)
{
	const char *hex = digest_hex(digest);
	if (!hex)
		return 0;
	cleanup_free char *path = xasprintf("%s/blobs/sha256/%s", store->dir, hex);
	return path_exists(path);
}

/* ---- lookups, listing, removal ------------------------------------------------------------------ */

/* The config digest a reference names, or -ENOENT. */
static int find_image(cJSON *index, const char *reference, char ret[IMAGES_DIGEST_MAX], struct error *err)
{
	const char *hex = strncmp(reference, "sha256:", 7) == 0 ? reference + 7 : reference;
	size_t hex_length = strlen(hex);
	if (hex_length >= 12 && hex_length <= HEX_LENGTH && is_hex(hex, hex_length)) {
		const cJSON *image, *found = NULL;
		cJSON_ArrayForEach(image, index_images(index))
		{
			if (strncmp(image->string + 7, hex, hex_length) == 0) {
				if (found)
					return error_set(err, EINVAL, "%s names more than one image; give more digits",
					                 reference);
				found = image;
			}
		}
		if (found) {
			snprintf(ret, IMAGES_DIGEST_MAX, "%s", found->string);
			return 0;
		}
		if (hex != reference)
			return error_set(err, ENOENT, "no image %s in the store", reference);
	}
	char canonical[IMAGES_REFERENCE_MAX];
	int r = images_normalize_reference(reference, canonical, err);
	if (r < 0)
		return r;
	const char *digest = json_string(index_references(index), canonical);
	if (!digest || !cJSON_GetObjectItemCaseSensitive(index_images(index), digest))
		return error_set(err, ENOENT, "no image %s in the store (import it with `bramble image import FILE`)",
		                 images_familiar_reference(canonical));
	snprintf(ret, IMAGES_DIGEST_MAX, "%s", digest);
	return 0;
}

int images_resolve(struct images_store *store, const char *reference, struct images_image *ret_image, struct error *err)
{
	cleanup_lock int lock = store_lock(store, err);
	if (lock < 0)
		return lock;
	cleanup_json cJSON *index = NULL;
	int r = index_load(store, &index, err);
	if (r < 0)
		return r;
	char digest[IMAGES_DIGEST_MAX];
	r = find_image(index, reference, digest, err);
	if (r < 0)
		return r;
	const cJSON *record = cJSON_GetObjectItemCaseSensitive(index_images(index), digest);
	cleanup_free char *path = xasprintf("%s/blobs/sha256/%s", store->dir, digest_hex(digest));
	cleanup_free char *text = NULL;
	r = file_read(path, IMAGES_JSON_MAX, &text, NULL, err);
	if (r < 0) {
		error_prefix(err, "image %s", reference);
		return r;
	}
	cleanup_json cJSON *json = cJSON_Parse(text);
	if (!cJSON_IsObject(json))
		return error_set(err, EINVAL, "image %s: config %s is not JSON", reference, path);
	struct images_image image = { 0 };
	snprintf(image.digest, sizeof(image.digest), "%s", digest);
	parse_config(json, &image);
	const cJSON *diff_ids = cJSON_GetObjectItemCaseSensitive(record, "diffIds");
	int count = cJSON_GetArraySize(diff_ids);
	image.layers = xcalloc((size_t)count + 1, sizeof(char *));
	const cJSON *diff_id;
	cJSON_ArrayForEach(diff_id, diff_ids)
	{
		const char *hex = digest_hex(cJSON_GetStringValue(diff_id));
		if (hex)
			image.layers[image.layer_count++] = xasprintf("%s/layers/%s", store->dir, hex);
	}
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(record, "size");
	image.size = cJSON_IsNumber(size) ? (uint64_t)size->valuedouble : 0;
	*ret_image = image;
	return 0;
}

static int compare_entries(const void *a, const void *b)
{
	const struct images_entry *x = a, *y = b;
	int r = strcmp(x->reference, y->reference);
	return r ? r : strcmp(x->digest, y->digest);
}

int images_list(struct images_store *store, struct images_entry **ret_entries, size_t *ret_count, struct error *err)
{
	cleanup_lock int lock = store_lock(store, err);
	if (lock < 0)
		return lock;
	cleanup_json cJSON *index = NULL;
	int r = index_load(store, &index, err);
	if (r < 0)
		return r;
	size_t capacity = (size_t)cJSON_GetArraySize(index_references(index)) +
	                  (size_t)cJSON_GetArraySize(index_images(index)) + 1;
	struct images_entry *entries = xcalloc(capacity, sizeof(*entries));
	size_t count = 0;
	const cJSON *image;
	cJSON_ArrayForEach(image, index_images(index))
	{
		struct images_entry row = { 0 };
		const char *arch = json_string(image, "architecture");
		const cJSON *size = cJSON_GetObjectItemCaseSensitive(image, "size");
		snprintf(row.digest, sizeof(row.digest), "%s", image->string);
		snprintf(row.architecture, sizeof(row.architecture), "%s", arch ? arch : "");
		row.size = cJSON_IsNumber(size) ? (uint64_t)size->valuedouble : 0;
		bool named = false;
		const cJSON *reference;
		cJSON_ArrayForEach(reference, index_references(index))
		{
			if (count < capacity && cJSON_IsString(reference) &&
			    strcmp(reference->valuestring, image->string) == 0) {
				entries[count] = row;
				snprintf(entries[count++].reference, IMAGES_REFERENCE_MAX, "%s", reference->string);
				named = true;
			}
		}
		if (!named && count < capacity)
			entries[count++] = row;
	}
	qsort(entries, count, sizeof(*entries), compare_entries);
	*ret_entries = entries;
	*ret_count = count;
	return 0;
}

static int gc_locked(struct images_store *store, cJSON *index, struct error *err);

int images_rm(struct images_store *store, const char *reference, struct error *err)
{
	cleanup_lock int lock = store_lock(store, err);
	if (lock < 0)
		return lock;
	cleanup_json cJSON *index = NULL;
	int r = index_load(store, &index, err);
	if (r < 0)
		return r;
	char digest[IMAGES_DIGEST_MAX], canonical[IMAGES_REFERENCE_MAX];
	r = find_image(index, reference, digest, err);
	if (r < 0)
		return r;
	/* A name removes that name, and the image with its last one; a digest removes the image. */
	bool by_name = images_normalize_reference(reference, canonical, NULL) == 0 &&
	               strncmp(canonical, "sha256:", 7) != 0 && json_string(index_references(index), canonical) != NULL;
	if (by_name)
		cJSON_DeleteItemFromObjectCaseSensitive(index_references(index), canonical);
	bool still_named = false;
	cJSON *item = index_references(index)->child;
	while (item) {
		cJSON *next = item->next;
		if (cJSON_IsString(item) && strcmp(item->valuestring, digest) == 0) {
			if (by_name)
				still_named = true;
			else
				cJSON_DeleteItemFromObjectCaseSensitive(index_references(index), item->string);
		}
		item = next;
	}
	if (!still_named)
		cJSON_DeleteItemFromObjectCaseSensitive(index_images(index), digest);
	r = index_save(store, index, err);
	if (r < 0)
		return r;
	return gc_locked(store, index, err);
}

static bool referenced(cJSON *index, const char *key, const char *hex)
{
	const cJSON *image;
	cJSON_ArrayForEach(image, index_images(index))
	{
		if (strcmp(key, "config") == 0) {
			if (strcmp(image->string + 7, hex) == 0)
				return true;
			const char *manifest = json_string(image, "manifest");
			if (manifest && digest_hex(manifest) && strcmp(manifest + 7, hex) == 0)
				return true;
		}
		const char *array = strcmp(key, "config") == 0 ? "layers" : "diffIds";
		const cJSON *digest;
		cJSON_ArrayForEach(digest, cJSON_GetObjectItemCaseSensitive(image, array))
		{
			const char *d = cJSON_GetStringValue(digest);
			if (d && digest_hex(d) && strcmp(d + 7, hex) == 0)
				return true;
		}
	}
	return false;
}

/* Removes every entry of dir that is not referenced (key "config": blobs; "diffIds": layers). */
static int sweep(struct images_store *store, cJSON *index, const char *subdir, const char *key, struct error *err)
{
	cleanup_free char *path = xasprintf("%s/%s", store->dir, subdir);
	DIR *dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? 0 : error_set_errno(err, errno, "%s", path);
	int r = 0;
	struct dirent *entry;
	for (;;) {
		errno = 0;
		entry = readdir(dir);
		if (!entry) {
			if (errno && r == 0)
				r = error_set_errno(err, errno, "reading %s", path);
			break;
		}
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		if (key && strlen(entry->d_name) == HEX_LENGTH && referenced(index, key, entry->d_name))
			continue;
		if (!key) {
			/* An import in progress holds its directory locked (from right after mkdtemp: a
			 * gc in that instant makes the import fail cleanly, nothing worse). */
			int fd = openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			bool busy = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0;
			if (fd >= 0)
				close(fd);
			if (busy)
				continue;
		}
		cleanup_free char *victim = xasprintf("%s/%s", path, entry->d_name);
		int e = file_remove_tree(victim);
		if (e < 0 && r == 0)
			r = error_set_errno(err, -e, "removing %s", victim);
	}
	closedir(dir);
	return r;
}

static int gc_locked(struct images_store *store, cJSON *index, struct error *err)
{
	int r = sweep(store, index, "blobs/sha256", "config", err);
	if (r == 0)
		r = sweep(store, index, "layers", "diffIds", err);
	if (r == 0)
		r = sweep(store, index, "tmp", NULL, err); /* imports that died: theirs is unlocked */
	return r;
}

int images_gc(struct images_store *store, struct error *err)
{
	cleanup_lock int lock = store_lock(store, err);
	if (lock < 0)
		return lock;
	cleanup_json cJSON *index = NULL;
	int r = index_load(store, &index, err);
	if (r < 0)
		return r;
	return gc_locked(store, index, err);
}

int images_usage(struct images_store *store, uint64_t *ret_bytes, struct error *err)
{
	cleanup_free char *blobs = xasprintf("%s/blobs", store->dir);
	cleanup_free char *layers = xasprintf("%s/layers", store->dir);
	uint64_t total = tree_usage(blobs);
	total += tree_usage(layers);
	*ret_bytes = total;
	return 0;
}
