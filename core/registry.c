/* The image registry of the control plane. See registry.h for the API.
 *
 * Layout, under the registry's directory (<data-dir>/registry):
 *
 *   blobs/sha256/<hex>     manifests, configs and layers, named by the sha256 of their content
 *   uploads/<id>           one upload in progress (never read by anyone but its writer)
 *   index.json             {"references": {"<canonical reference>": {"<platform>": {entry}}}},
 *                          replaced with file_write_atomic
 *
 * An upload (registry_upload_begin -> registry_upload_write ... -> commit):
 *
 *   begin     refused when the blob is here (EEXIST: the client skips it) or over a limit
 *   write     chunk after chunk at the offset the upload is at, hashed on the way; writeback
 *             started per chunk so the final fdatasync is short
 *   commit    the declared size reached: digest compared, fdatasync, renamed into blobs/
 *   drop      on any failure (mismatch, too large, write error), abort, or idleness
 *
 * Invariants: every file under blobs/ has the digest its name says (it got there only by a
 * verified rename); a reference in the index names a manifest whose every blob is present
 * (registry_manifest_put checks, registry_gc keeps what any reference uses); nothing under
 * uploads/ outlives its upload (drop removes it, registry_open clears what a dead server left).
 * A push that dies between its blobs and its manifest leaves unreferenced blobs, which
 * registry_gc removes once older than REGISTRY_GC_GRACE_S (at start and after removals).
 */
#include "core/registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "core/authz.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define HEX_LENGTH 64
#define DIGEST_MAX 72
#define LAYERS_MAX 128
/* Free space an upload must leave on the server's filesystem: the store needs room too. */
#define REGISTRY_FREE_RESERVE (32ULL * 1024 * 1024)

struct upload {
	struct upload *next;
	char id[33];
	char digest[DIGEST_MAX];
	uint64_t size, received;
	int fd;
	char *path;
	mbedtls_sha256_context sha;
	uint64_t touched_ms;
};

struct registry {
	char *dir;
	uint64_t limit_bytes, blob_max;
	struct loop *loop;
	struct loop_timer *expiry_timer;
	cJSON *index;
	struct upload *uploads;
	size_t upload_count;
	uint64_t usage;    /* bytes under blobs/ */
	uint64_t reserved; /* bytes promised to uploads in progress */
};

/* --- small helpers ------------------------------------------------------------------------- */

static bool is_hex(const char *s, size_t length)
{
	for (size_t i = 0; i < length; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static const char *digest_hex(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest + 7) != HEX_LENGTH ||
	    !is_hex(digest + 7, HEX_LENGTH))
		return NULL;
	return digest + 7;
}

static void hex_of(const unsigned char sum[32], char out[HEX_LENGTH + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[sum[i] >> 4];
		out[2 * i + 1] = digits[sum[i] & 15];
	}
	out[HEX_LENGTH] = '\0';
}

static char *blob_path(const struct registry *r, const char *hex)
{
	return xasprintf("%s/blobs/sha256/%s", r->dir, hex);
}

static const char *json_string(const cJSON *object, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	return cJSON_IsString(item) ? item->valuestring : NULL;
}

static cJSON *references(struct registry *r)
{
	return cJSON_GetObjectItemCaseSensitive(r->index, "references");
}

/* A canonical reference: "host/path:tag", the characters Docker allows, no empty segment. */
static int check_reference(const char *reference, struct error *err)
{
	size_t length = strlen(reference);
	const char *slash = strchr(reference, '/'), *colon = strrchr(reference, ':');
	if (length == 0 || length >= REGISTRY_REFERENCE_MAX || !slash || !colon || colon < strrchr(reference, '/') ||
	    colon[1] == '\0' || strstr(reference, "//") || strstr(reference, "..") || reference[0] == '/')
		return error_set(err, EINVAL,
		                 "'%.80s' is not a canonical image reference (host/name:tag, as the client sends)",
		                 reference);
	for (const char *c = reference; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
		      *c == '_' || *c == '-' || *c == '/' || *c == ':'))
			return error_set(err, EINVAL, "'%.80s' is not an image reference: '%c' is not allowed",
			                 reference, *c);
	return 0;
}

static void platform_key(const char *arch, const char *variant, char *out, size_t size)
{
	snprintf(out, size, "%s%s%s", arch, variant && *variant ? "/" : "", variant ? variant : "");
}

static int index_save(struct registry *r, struct error *err)
{
	cleanup_free char *path = xasprintf("%s/index.json", r->dir);
	cleanup_free char *text = cJSON_PrintUnformatted(r->index);
	if (!text)
		abort(); /* cJSON fails only when out of memory */
	return file_write_atomic(path, text, strlen(text), 0600, err);
}

static int index_load(struct registry *r, struct error *err)
{
	cleanup_free char *path = xasprintf("%s/index.json", r->dir);
	cleanup_free char *text = NULL;
	if (access(path, F_OK) == 0) {
		int e = file_read(path, 16 * 1024 * 1024, &text, NULL, err);
		if (e < 0)
			return error_prefix(err, "image registry index");
		r->index = cJSON_Parse(text);
		if (!cJSON_IsObject(r->index)) {
			cJSON_Delete(r->index);
			r->index = NULL;
			return error_set(err, EINVAL, "image registry index %s is not valid JSON", path);
		}
	} else {
		r->index = cJSON_CreateObject();
	}
	if (!cJSON_IsObject(references(r))) {
		cJSON_DeleteItemFromObjectCaseSensitive(r->index, "references");
		cJSON_AddItemToObject(r->index, "references", cJSON_CreateObject());
	}
	return 0;
}

static uint64_t blobs_usage(struct registry *r)
{
	cleanup_free char *dir_path = xasprintf("%s/blobs/sha256", r->dir);
	DIR *dir = opendir(dir_path);
	uint64_t total = 0;
	if (!dir)
		return 0;
	struct dirent *entry;
	while ((entry = readdir(dir))) {
		struct stat st;
		if (entry->d_name[0] != '.' && fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	closedir(dir);
	return total;
}

/* --- uploads ------------------------------------------------------------------------------- */

static struct upload **find_upload(struct registry *r, const char *id)
{
	for (struct upload **u = &r->uploads; *u; u = &(*u)->next)
		if (strcmp((*u)->id, id) == 0)
			return u;
	return NULL;
}

static void drop_upload(struct registry *r, struct upload **slot)
{
	struct upload *u = *slot;
	*slot = u->next;
	if (u->fd >= 0)
		close(u->fd);
	unlink(u->path);
	free(u->path);
	mbedtls_sha256_free(&u->sha);
	r->reserved -= u->size;
	r->upload_count--;
	free(u);
}

bool registry_blob_exists(struct registry *r, const char *digest)
{
	const char *hex = digest_hex(digest);
	if (!hex)
		return false;
	cleanup_free char *path = blob_path(r, hex);
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

size_t registry_upload_count(const struct registry *r)
{
	return r->upload_count;
}

uint64_t registry_usage(const struct registry *r)
{
	return r->usage;
}

int registry_upload_begin(struct registry *r, const char *digest, uint64_t size, char ret_id[33], struct error *err)
{
	if (!digest_hex(digest))
		return error_set(err, EINVAL, "'%.80s' is not a sha256 digest (sha256: and 64 hex digits)",
		                 digest ? digest : "");
	if (registry_blob_exists(r, digest))
		return error_set(err, EEXIST, "blob %s is already in the registry", digest);
	if (size > r->blob_max)
		return error_set(err, EFBIG, "blob %s is %" PRIu64 " bytes; the registry takes blobs up to %" PRIu64,
		                 digest, size, r->blob_max);
	if (r->limit_bytes && r->usage + r->reserved + size > r->limit_bytes)
		return error_set(err, EFBIG,
		                 "blob %s (%" PRIu64 " bytes) would exceed the registry's limit of %" PRIu64
		                 " bytes (%" PRIu64 " in use); remove images with `bramble image rm`",
		                 digest, size, r->limit_bytes, r->usage + r->reserved);
	struct statvfs vfs;
	cleanup_free char *uploads = xasprintf("%s/uploads", r->dir);
	if (statvfs(uploads, &vfs) == 0 &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < size + r->reserved + REGISTRY_FREE_RESERVE)
		return error_set(err, EFBIG,
		                 "blob %s (%" PRIu64 " bytes) does not fit on the server's disk (%" PRIu64
		                 " bytes free)",
		                 digest, size, (uint64_t)vfs.f_bavail * vfs.f_frsize);
	for (struct upload *u = r->uploads; u; u = u->next)
		if (strcmp(u->digest, digest) == 0)
			return error_set(err, EBUSY, "blob %s is being uploaded already; try again shortly", digest);
	if (r->upload_count >= REGISTRY_UPLOADS_MAX)
		return error_set(err, EBUSY, "%d uploads are in progress; try again shortly", REGISTRY_UPLOADS_MAX);
	uint8_t random[16];
	if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
		return error_set_errno(err, errno, "getrandom");
	struct upload *u = xcalloc(1, sizeof(*u));
	for (int i = 0; i < 16; i++)
		snprintf(u->id + 2 * i, 3, "%02x", random[i]);
	snprintf(u->digest, sizeof(u->digest), "%s", digest);
	u->size = size;
	u->path = xasprintf("%s/uploads/%s", r->dir, u->id);
	u->fd = open(u->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (u->fd < 0) {
		int e = errno;
		free(u->path);
		free(u);
		return error_set_errno(err, e, "creating an upload in %s", uploads);
	}
	mbedtls_sha256_init(&u->sha);
	mbedtls_sha256_starts(&u->sha, 0);
	u->touched_ms = clock_monotonic_ms();
	u->next = r->uploads;
	r->uploads = u;
	r->upload_count++;
	r->reserved += size;
	snprintf(ret_id, 33, "%s", u->id);
	return 0;
}

static int commit_upload(struct registry *r, struct upload *u, struct error *err)
{
	unsigned char sum[32];
	char hex[HEX_LENGTH + 1];
	mbedtls_sha256_finish(&u->sha, sum);
	hex_of(sum, hex);
	if (strcmp(hex, u->digest + 7) != 0)
		return error_set(err, EBADMSG,
		                 "digest mismatch: the upload was announced as %s, its content is sha256:%s", u->digest,
		                 hex);
	if (fdatasync(u->fd) < 0)
		return error_set_errno(err, errno, "writing blob %s", u->digest);
	close(u->fd);
	u->fd = -1;
	cleanup_free char *to = blob_path(r, hex);
	if (rename(u->path, to) < 0)
		return error_set_errno(err, errno, "storing blob %s", u->digest);
	cleanup_free char *dir_path = xasprintf("%s/blobs/sha256", r->dir);
	int dir = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir >= 0) {
		fsync(dir);
		close(dir);
	}
	r->usage += u->size;
	return 0;
}

int registry_upload_write(struct registry *r, const char *id, uint64_t offset, const void *data, size_t length,
                          bool *ret_done, uint64_t *ret_received, struct error *err)
{
	*ret_done = false;
	struct upload **slot = find_upload(r, id);
	if (!slot)
		return error_set(err, ENOENT, "no upload %.40s (finished, abandoned, or idle for more than %d s)", id,
		                 REGISTRY_UPLOAD_IDLE_MS / 1000);
	struct upload *u = *slot;
	if (offset != u->received) {
		*ret_received = u->received;
		return error_set(err, ESTALE, "upload %s is at offset %" PRIu64 ", not %" PRIu64, id, u->received,
		                 offset);
	}
	int rc = 0;
	if (u->received + length > u->size) {
		rc = error_set(err, EFBIG, "blob %s: more than the %" PRIu64 " bytes announced; upload dropped",
		               u->digest, u->size);
		goto drop;
	}
	if (length > 0) {
		ssize_t n = pwrite(u->fd, data, length, (off_t)offset);
		if (n != (ssize_t)length) {
			rc = error_set_errno(err, n < 0 ? errno : ENOSPC, "writing blob %s", u->digest);
			goto drop;
		}
		mbedtls_sha256_update(&u->sha, data, length);
		/* Start writeback now: the commit's fdatasync then has little left to wait for. */
		sync_file_range(u->fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
		u->received += length;
	}
	u->touched_ms = clock_monotonic_ms();
	*ret_received = u->received;
	if (u->received < u->size)
		return 0;
	rc = commit_upload(r, u, err);
	if (rc == 0)
		*ret_done = true;
drop:
	drop_upload(r, slot);
	return rc;
}

int registry_upload_abort(struct registry *r, const char *id, struct error *err)
{
	struct upload **slot = find_upload(r, id);
	if (!slot)
		return error_set(err, ENOENT, "no upload %.40s", id);
	drop_upload(r, slot);
	return 0;
}

int registry_upload_expire(struct registry *r, uint64_t idle_ms)
{
	uint64_t now = clock_monotonic_ms();
	int dropped = 0;
	struct upload **slot = &r->uploads;
	while (*slot) {
		if (now - (*slot)->touched_ms >= idle_ms) {
			log_info("registry: upload of %s idle for %llu s: dropped", (*slot)->digest,
			         (unsigned long long)((now - (*slot)->touched_ms) / 1000));
			drop_upload(r, slot);
			dropped++;
		} else {
			slot = &(*slot)->next;
		}
	}
	return dropped;
}

/* --- reading blobs ------------------------------------------------------------------------- */

/* Opens a stored blob for reading from offset: its descriptor and size, or why not. */
static int open_blob(struct registry *r, const char *digest, uint64_t offset, int *ret_fd, uint64_t *ret_total,
                     struct error *err)
{
	const char *hex = digest_hex(digest);
	if (!hex)
		return error_set(err, EINVAL, "'%.80s' is not a sha256 digest", digest);
	cleanup_free char *path = blob_path(r, hex);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? error_set(err, ENOENT, "blob %s is not in the registry", digest)
		                       : error_set_errno(err, errno, "reading blob %s", digest);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = error_set_errno(err, errno, "reading blob %s", digest);
		close(fd);
		return e;
	}
	uint64_t total = (uint64_t)st.st_size;
	if (offset > total) {
		close(fd);
		return error_set(err, EINVAL, "offset %" PRIu64 " is past the end of blob %s (%" PRIu64 " bytes)",
		                 offset, digest, total);
	}
	*ret_fd = fd;
	*ret_total = total;
	return 0;
}

int registry_blob_map(struct registry *r, const char *digest, uint64_t offset, size_t max,
                      struct registry_mapping **ret_mapping, struct error *err)
{
	uint64_t total = 0;
	cleanup_close int fd = -1;
	int opened = open_blob(r, digest, offset, &fd, &total, err);
	if (opened < 0)
		return opened;
	struct registry_mapping *m = xcalloc(1, sizeof(*m));
	m->total = total;
	m->length = total - offset < max ? (size_t)(total - offset) : max;
	if (m->length > 0) {
		uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
		uint64_t start = offset - offset % page;
		m->map_length = (size_t)(offset - start) + m->length;
		m->base = mmap(NULL, m->map_length, PROT_READ, MAP_SHARED, fd, (off_t)start);
		if (m->base == MAP_FAILED) {
			int e = errno;
			free(m);
			return error_set_errno(err, e, "reading blob %s", digest);
		}
		m->data = (const uint8_t *)m->base + (offset - start);
	}
	*ret_mapping = m;
	return 0;
}

void registry_mapping_free(struct registry_mapping *m)
{
	if (!m)
		return;
	if (m->base)
		munmap(m->base, m->map_length);
	free(m);
}

static int read_blob_whole(struct registry *r, const char *digest, size_t max, char **ret_text, size_t *ret_length,
                           struct error *err)
{
	cleanup_free char *path = blob_path(r, digest_hex(digest));
	return file_read(path, max, ret_text, ret_length, err);
}

/* --- manifests and references -------------------------------------------------------------- */

static int blob_size(struct registry *r, const char *digest, uint64_t *ret)
{
	cleanup_free char *path = blob_path(r, digest_hex(digest));
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	*ret = (uint64_t)st.st_size;
	return 0;
}

/* A descriptor of the manifest: its blob must be here with the size it states. */
static int check_descriptor(struct registry *r, const cJSON *descriptor, const char *what, char ret[DIGEST_MAX],
                            uint64_t *ret_size, struct error *err)
{
	const char *digest = json_string(descriptor, "digest");
	if (!digest_hex(digest))
		return error_set(err, EINVAL, "manifest: %s has no sha256 digest", what);
	uint64_t size = 0;
	if (blob_size(r, digest, &size) < 0)
		return error_set(err, EINVAL, "manifest: %s %s was not pushed (upload its blobs first)", what, digest);
	const cJSON *declared = cJSON_GetObjectItemCaseSensitive(descriptor, "size");
	if (cJSON_IsNumber(declared) && declared->valuedouble != (double)size)
		return error_set(err, EINVAL, "manifest: %s %s is %" PRIu64 " bytes, the manifest says %.0f", what,
		                 digest, size, declared->valuedouble);
	snprintf(ret, DIGEST_MAX, "%s", digest);
	*ret_size = size;
	return 0;
}

static int write_blob(struct registry *r, const char *hex, const char *data, size_t length, struct error *err)
{
	cleanup_free char *path = blob_path(r, hex);
	if (access(path, F_OK) == 0)
		return 0;
	int e = file_write_atomic(path, data, length, 0600, err);
	if (e == 0)
		r->usage += length;
	return e;
}

int registry_manifest_put(struct registry *r, const char *reference, const char *manifest, size_t length,
                          cJSON **ret_entry, struct error *err)
{
	int e = check_reference(reference, err);
	if (e < 0)
		return e;
	if (length == 0 || length > REGISTRY_MANIFEST_MAX)
		return error_set(err, length ? EFBIG : EINVAL, "the manifest must be 1 to %d bytes of JSON",
		                 REGISTRY_MANIFEST_MAX);
	cJSON *json = cJSON_ParseWithLength(manifest, length);
	if (!cJSON_IsObject(json)) {
		cJSON_Delete(json);
		return error_set(err, EINVAL, "the manifest is not a JSON object");
	}
	cJSON *entry = NULL;
	cleanup_free char *config_text = NULL;
	cJSON *config = NULL;
	const char *type = json_string(json, "mediaType");
	if (type && strcmp(type, "application/vnd.oci.image.manifest.v1+json") != 0 &&
	    strcmp(type, "application/vnd.docker.distribution.manifest.v2+json") != 0) {
		e = error_set(err, EINVAL, "manifest: media type %s is not an image manifest (push one per platform)",
		              type);
		goto out;
	}
	char config_digest[DIGEST_MAX];
	uint64_t config_size, total = 0;
	if ((e = check_descriptor(r, cJSON_GetObjectItemCaseSensitive(json, "config"), "config", config_digest,
	                          &config_size, err)) < 0)
		goto out;
	total += config_size;
	const cJSON *layers = cJSON_GetObjectItemCaseSensitive(json, "layers");
	if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) > LAYERS_MAX) {
		e = error_set(err, EINVAL, "manifest: layers must be a list of at most %d", LAYERS_MAX);
		goto out;
	}
	entry = cJSON_CreateObject();
	cJSON *blobs = cJSON_CreateArray();
	cJSON_AddItemToArray(blobs, cJSON_CreateString(config_digest));
	const cJSON *layer;
	int n = 0;
	cJSON_ArrayForEach(layer, layers)
	{
		char what[32], digest[DIGEST_MAX];
		uint64_t size;
		snprintf(what, sizeof(what), "layer %d", n++);
		if ((e = check_descriptor(r, layer, what, digest, &size, err)) < 0) {
			cJSON_Delete(blobs);
			goto out;
		}
		total += size;
		cJSON_AddItemToArray(blobs, cJSON_CreateString(digest));
	}
	if ((e = read_blob_whole(r, config_digest, REGISTRY_MANIFEST_MAX, &config_text, NULL, err)) < 0) {
		cJSON_Delete(blobs);
		error_prefix(err, "manifest: config %s", config_digest);
		goto out;
	}
	config = cJSON_Parse(config_text);
	const char *arch = json_string(config, "architecture");
	const char *variant = json_string(config, "variant");
	const char *os = json_string(config, "os");
	const cJSON *diff_ids =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(config, "rootfs"), "diff_ids");
	if (!cJSON_IsObject(config) || !arch || !*arch) {
		cJSON_Delete(blobs);
		e = error_set(err, EINVAL, "config %s is not an image config (no architecture)", config_digest);
		goto out;
	}
	if (cJSON_GetArraySize(diff_ids) != cJSON_GetArraySize(layers)) {
		cJSON_Delete(blobs);
		e = error_set(err, EINVAL, "config %s lists %d diff_ids, the manifest %d layers", config_digest,
		              cJSON_GetArraySize(diff_ids), cJSON_GetArraySize(layers));
		goto out;
	}
	unsigned char sum[32];
	char hex[HEX_LENGTH + 1], manifest_digest[DIGEST_MAX];
	mbedtls_sha256((const unsigned char *)manifest, length, sum, 0);
	hex_of(sum, hex);
	snprintf(manifest_digest, sizeof(manifest_digest), "sha256:%s", hex);
	if ((e = write_blob(r, hex, manifest, length, err)) < 0) {
		cJSON_Delete(blobs);
		goto out;
	}
	cJSON_InsertItemInArray(blobs, 0, cJSON_CreateString(manifest_digest));
	char platform[64], now[32];
	platform_key(arch, variant, platform, sizeof(platform));
	time_t t = time(NULL);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	cJSON_AddStringToObject(entry, "architecture", arch);
	cJSON_AddStringToObject(entry, "variant", variant ? variant : "");
	cJSON_AddStringToObject(entry, "os", os ? os : "");
	cJSON_AddStringToObject(entry, "manifest", manifest_digest);
	cJSON_AddNumberToObject(entry, "manifestSize", (double)length);
	cJSON_AddStringToObject(entry, "config", config_digest);
	cJSON_AddNumberToObject(entry, "size", (double)total);
	cJSON_AddStringToObject(entry, "pushed", now);
	cJSON_AddItemToObject(entry, "blobs", blobs);
	cJSON *platforms = cJSON_GetObjectItemCaseSensitive(references(r), reference);
	cJSON *before = NULL;
	if (!platforms) {
		platforms = cJSON_AddObjectToObject(references(r), reference);
	} else {
		before = cJSON_DetachItemFromObjectCaseSensitive(platforms, platform);
	}
	cJSON_AddItemToObject(platforms, platform, cJSON_Duplicate(entry, true));
	if ((e = index_save(r, err)) < 0) {
		/* Leave the index as it was in memory too. */
		cJSON_DeleteItemFromObjectCaseSensitive(platforms, platform);
		if (before)
			cJSON_AddItemToObject(platforms, platform, before);
		else if (!platforms->child)
			cJSON_DeleteItemFromObjectCaseSensitive(references(r), reference);
		before = NULL;
		goto out;
	}
	cJSON_Delete(before);
	cJSON_AddStringToObject(entry, "reference", reference);
	cJSON_AddStringToObject(entry, "platform", platform);
	cJSON_DeleteItemFromObjectCaseSensitive(entry, "blobs");
	if (ret_entry) {
		*ret_entry = entry;
		entry = NULL;
	}
out:
	cJSON_Delete(entry);
	cJSON_Delete(config);
	cJSON_Delete(json);
	return e < 0 ? e : 0;
}

static cJSON *public_entry(const char *reference, const cJSON *platform)
{
	cJSON *row = cJSON_Duplicate(platform, true);
	cJSON_DeleteItemFromObjectCaseSensitive(row, "blobs");
	cJSON_AddStringToObject(row, "platform", platform->string);
	if (reference)
		cJSON_AddStringToObject(row, "reference", reference);
	return row;
}

int registry_lookup(struct registry *r, const char *reference, cJSON **ret_json, struct error *err)
{
	const cJSON *platforms = cJSON_GetObjectItemCaseSensitive(references(r), reference);
	if (!platforms || !platforms->child)
		return error_set(err, ENOENT,
		                 "image %s is not in the registry (push it with `bramble image push FILE`)", reference);
	cJSON *out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "reference", reference);
	cJSON *list = cJSON_AddArrayToObject(out, "platforms");
	const cJSON *platform;
	cJSON_ArrayForEach(platform, platforms)
	{
		cJSON_AddItemToArray(list, public_entry(NULL, platform));
	}
	*ret_json = out;
	return 0;
}

static int compare_rows(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	int c = strcmp(json_string(x, "reference"), json_string(y, "reference"));
	return c ? c : strcmp(json_string(x, "platform"), json_string(y, "platform"));
}

cJSON *registry_list(struct registry *r)
{
	size_t count = 0, capacity = 16;
	cJSON **rows = xcalloc(capacity, sizeof(*rows));
	const cJSON *reference, *platform;
	cJSON_ArrayForEach(reference, references(r))
	{
		cJSON_ArrayForEach(platform, reference)
		{
			if (count == capacity)
				rows = xrealloc(rows, (capacity *= 2) * sizeof(*rows));
			rows[count++] = public_entry(reference->string, platform);
		}
	}
	qsort(rows, count, sizeof(*rows), compare_rows);
	cJSON *out = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(out, "images");
	for (size_t i = 0; i < count; i++)
		cJSON_AddItemToArray(list, rows[i]);
	free(rows);
	return out;
}

static bool blob_referenced(struct registry *r, const char *hex)
{
	const cJSON *reference, *platform, *blob;
	cJSON_ArrayForEach(reference, references(r))
	{
		cJSON_ArrayForEach(platform, reference)
		{
			cJSON_ArrayForEach(blob, cJSON_GetObjectItemCaseSensitive(platform, "blobs"))
			{
				const char *digest = cJSON_GetStringValue(blob);
				if (digest && digest_hex(digest) && strcmp(digest + 7, hex) == 0)
					return true;
			}
		}
	}
	return false;
}

int registry_gc(struct registry *r, int64_t grace_s, struct error *err)
{
	cleanup_free char *dir_path = xasprintf("%s/blobs/sha256", r->dir);
	DIR *dir = opendir(dir_path);
	if (!dir)
		return error_set_errno(err, errno, "%s", dir_path);
	time_t now = time(NULL);
	int removed = 0;
	struct dirent *entry;
	while ((entry = readdir(dir))) {
		if (entry->d_name[0] == '.')
			continue;
		struct stat st;
		if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		bool ours = strlen(entry->d_name) == HEX_LENGTH && is_hex(entry->d_name, HEX_LENGTH);
		if (ours && (blob_referenced(r, entry->d_name) || now - st.st_mtime < grace_s))
			continue;
		if (unlinkat(dirfd(dir), entry->d_name, 0) == 0) {
			removed++;
			if (S_ISREG(st.st_mode))
				r->usage -= r->usage >= (uint64_t)st.st_size ? (uint64_t)st.st_size : r->usage;
		}
	}
	closedir(dir);
	return removed;
}

int registry_blob_remove(struct registry *r, const char *digest, struct error *err)
{
	const char *hex = digest_hex(digest);
	if (!hex)
		return error_set(err, EINVAL, "'%.80s' is not a sha256 digest", digest);
	if (blob_referenced(r, hex))
		return error_set(err, EBUSY, "blob %s is used by an image; remove the image instead", digest);
	cleanup_free char *path = blob_path(r, hex);
	struct stat st;
	if (stat(path, &st) < 0 || unlink(path) < 0)
		return errno == ENOENT ? error_set(err, ENOENT, "blob %s is not in the registry", digest)
		                       : error_set_errno(err, errno, "removing blob %s", digest);
	r->usage -= r->usage >= (uint64_t)st.st_size ? (uint64_t)st.st_size : r->usage;
	return 0;
}

int registry_remove(struct registry *r, const char *reference, const char *platform, struct error *err)
{
	cJSON *platforms = cJSON_GetObjectItemCaseSensitive(references(r), reference);
	if (!platforms)
		return error_set(err, ENOENT, "image %s is not in the registry", reference);
	cJSON *saved = cJSON_Duplicate(platforms, true);
	if (platform) {
		if (!cJSON_GetObjectItemCaseSensitive(platforms, platform)) {
			cJSON_Delete(saved);
			return error_set(err, ENOENT, "image %s has no %s platform in the registry", reference,
			                 platform);
		}
		cJSON_DeleteItemFromObjectCaseSensitive(platforms, platform);
	}
	if (!platform || !platforms->child)
		cJSON_DeleteItemFromObjectCaseSensitive(references(r), reference);
	int e = index_save(r, err);
	if (e < 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(references(r), reference);
		cJSON_AddItemToObject(references(r), reference, saved);
		return e;
	}
	cJSON_Delete(saved);
	/* Blobs pushed within the grace period may belong to a push in progress: kept for now. */
	registry_gc(r, REGISTRY_GC_GRACE_S, NULL);
	return 0;
}

/* --- life ---------------------------------------------------------------------------------- */

static void schedule_expiry(struct registry *r);

static void on_expiry(struct loop *loop, void *data)
{
	(void)loop;
	struct registry *r = data;
	r->expiry_timer = NULL;
	registry_upload_expire(r, REGISTRY_UPLOAD_IDLE_MS);
	schedule_expiry(r);
}

/* A timer only while uploads are in progress: an idle control plane has none. */
static void schedule_expiry(struct registry *r)
{
	if (!r->loop || r->expiry_timer || !r->uploads)
		return;
	r->expiry_timer = loop_add_timer(r->loop, REGISTRY_UPLOAD_IDLE_MS / 4, on_expiry, r);
}

int registry_open(const struct registry_options *options, struct registry **ret_registry, struct error *err)
{
	struct registry *r = xcalloc(1, sizeof(*r));
	r->dir = xstrdup(options->dir);
	r->limit_bytes = options->limit_bytes;
	r->blob_max = options->blob_max ? options->blob_max : REGISTRY_DEFAULT_BLOB_MAX;
	r->loop = options->loop;
	cleanup_free char *blobs = xasprintf("%s/blobs/sha256", r->dir);
	cleanup_free char *uploads = xasprintf("%s/uploads", r->dir);
	int e;
	/* Uploads of a previous run cannot be resumed: nobody holds their hash state. */
	file_remove_tree(uploads);
	if ((e = file_mkdir_p(blobs, 0700, err)) < 0 || (e = file_mkdir_p(uploads, 0700, err)) < 0 ||
	    (e = index_load(r, err)) < 0) {
		error_prefix(err, "image registry");
		registry_free(r);
		return e;
	}
	r->usage = blobs_usage(r);
	registry_gc(r, REGISTRY_GC_GRACE_S, NULL);
	*ret_registry = r;
	return 0;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	while (r->uploads)
		drop_upload(r, &r->uploads);
	if (r->expiry_timer)
		loop_cancel_timer(r->loop, r->expiry_timer);
	cJSON_Delete(r->index);
	free(r->dir);
	free(r);
}

/* --- CoAP ---------------------------------------------------------------------------------- */

struct call {
	struct registry *registry;
	coap_resource_t *resource;
	coap_session_t *session;
	const coap_pdu_t *request;
	const coap_string_t *query;
	coap_pdu_t *response;
};

static void release_buffer(coap_session_t *session, void *data)
{
	(void)session;
	free(data);
}

static void release_mapping(coap_session_t *session, void *data)
{
	(void)session;
	registry_mapping_free(data);
}

static void reply_data(struct call *c, coap_pdu_code_t code, uint16_t format, void *data, size_t length)
{
	coap_pdu_set_code(c->response, code);
	if (!coap_add_data_large_response(c->resource, c->session, c->request, c->response, c->query, format, -1, 0,
	                                  length, data, release_buffer, data))
		coap_pdu_set_code(c->response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
}

static void reply_json(struct call *c, coap_pdu_code_t code, cJSON *json)
{
	char *text = cJSON_PrintUnformatted(json);
	cJSON_Delete(json);
	reply_data(c, code, COAP_MEDIATYPE_APPLICATION_JSON, text, strlen(text));
}

static void reply_error(struct call *c, int e, const struct error *err)
{
	coap_pdu_code_t code;
	const char *reason;
	switch (-e) {
	case EINVAL:
	case EBADMSG:
		code = COAP_RESPONSE_CODE(400), reason = "BadRequest";
		break;
	case EPERM:
	case EACCES:
		code = COAP_RESPONSE_CODE(403), reason = "Forbidden";
		break;
	case ENOENT:
		code = COAP_RESPONSE_CODE(404), reason = "NotFound";
		break;
	case ENOTSUP:
		code = COAP_RESPONSE_CODE(405), reason = "MethodNotAllowed";
		break;
	case ESTALE:
		code = COAP_RESPONSE_CODE(409), reason = "Conflict";
		break;
	case EFBIG:
		code = COAP_RESPONSE_CODE(413), reason = "RequestEntityTooLarge";
		break;
	case EBUSY:
		code = COAP_RESPONSE_CODE(429), reason = "TooManyRequests";
		break;
	default:
		code = COAP_RESPONSE_CODE(500), reason = "InternalError";
	}
	if (-e == EBADMSG)
		reason = "DigestMismatch";
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "reason", reason);
	cJSON_AddStringToObject(body, "message", err && err->message[0] ? err->message : strerror(-e));
	reply_json(c, code, body);
}

/* The value of key in a raw query ("offset=12&platform=arm64"), percent escapes not decoded
 * (the values this module takes have none). */
static bool query_value(const coap_string_t *query, const char *key, char *out, size_t size)
{
	if (!query || !query->s)
		return false;
	size_t key_length = strlen(key);
	const char *p = (const char *)query->s, *end = p + query->length;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) > key_length && strncmp(p, key, key_length) == 0 && p[key_length] == '=') {
			size_t n = (size_t)(stop - p - (ptrdiff_t)key_length - 1);
			if (n >= size)
				return false;
			memcpy(out, p + key_length + 1, n);
			out[n] = '\0';
			return true;
		}
		p = stop + 1;
	}
	return false;
}

static int query_offset(const coap_string_t *query, uint64_t *ret, struct error *err)
{
	char text[24];
	*ret = 0;
	if (!query_value(query, "offset", text, sizeof(text)))
		return 0;
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-')
		return error_set(err, EINVAL, "offset '%s' is not a number of bytes", text);
	*ret = value;
	return 0;
}

static void body_of(const coap_pdu_t *request, const uint8_t **ret_data, size_t *ret_length)
{
	size_t length = 0, offset = 0, total = 0;
	const uint8_t *data = NULL;
	if (!coap_get_data_large(request, &length, &data, &offset, &total))
		length = 0;
	*ret_data = data;
	*ret_length = length;
}

static void serve_uploads(struct call *c, coap_pdu_code_t method, const char *id)
{
	struct registry *r = c->registry;
	struct error err = { 0 };
	const uint8_t *data;
	size_t length;
	body_of(c->request, &data, &length);
	if (method == COAP_REQUEST_CODE_POST && !*id) {
		cJSON *json = length ? cJSON_ParseWithLength((const char *)data, length) : NULL;
		const char *digest = json_string(json, "digest");
		const cJSON *size = cJSON_GetObjectItemCaseSensitive(json, "size");
		if (!digest || !cJSON_IsNumber(size) || size->valuedouble < 0) {
			cJSON_Delete(json);
			error_set(&err, EINVAL, "an upload starts with {\"digest\": \"sha256:...\", \"size\": BYTES}");
			reply_error(c, -EINVAL, &err);
			return;
		}
		char upload[33];
		int e = registry_upload_begin(r, digest, (uint64_t)size->valuedouble, upload, &err);
		cJSON_Delete(json);
		if (e == -EEXIST) {
			cJSON *out = cJSON_CreateObject();
			cJSON_AddBoolToObject(out, "exists", true);
			reply_json(c, COAP_RESPONSE_CODE(204), out);
			return;
		}
		if (e < 0) {
			reply_error(c, e, &err);
			return;
		}
		schedule_expiry(r);
		cJSON *out = cJSON_CreateObject();
		cJSON_AddStringToObject(out, "upload", upload);
		cJSON_AddNumberToObject(out, "chunk", REGISTRY_CHUNK);
		reply_json(c, COAP_RESPONSE_CODE(201), out);
		return;
	}
	if (method == COAP_REQUEST_CODE_PUT && *id) {
		uint64_t offset, received = 0;
		bool done;
		int e = query_offset(c->query, &offset, &err);
		if (e == 0 && length > REGISTRY_CHUNK)
			e = error_set(&err, EFBIG, "a chunk is at most %d bytes", REGISTRY_CHUNK);
		if (e == 0)
			e = registry_upload_write(r, id, offset, data, length, &done, &received, &err);
		if (e < 0) {
			reply_error(c, e, &err);
			return;
		}
		cJSON *out = cJSON_CreateObject();
		cJSON_AddNumberToObject(out, "offset", (double)received);
		reply_json(c, done ? COAP_RESPONSE_CODE(201) : COAP_RESPONSE_CODE(204), out);
		return;
	}
	if (method == COAP_REQUEST_CODE_DELETE && *id) {
		int e = registry_upload_abort(r, id, &err);
		if (e < 0)
			reply_error(c, e, &err);
		else
			coap_pdu_set_code(c->response, COAP_RESPONSE_CODE(202));
		return;
	}
	error_set(&err, ENOTSUP, "uploads: POST /registry/v1/uploads, PUT or DELETE /registry/v1/uploads/ID");
	reply_error(c, -ENOTSUP, &err);
}

static void serve_images(struct call *c, coap_pdu_code_t method, const char *reference)
{
	struct registry *r = c->registry;
	struct error err = { 0 };
	int e;
	if (method == COAP_REQUEST_CODE_GET && !*reference) {
		reply_json(c, COAP_RESPONSE_CODE(205), registry_list(r));
		return;
	}
	if (method == COAP_REQUEST_CODE_GET) {
		cJSON *json;
		if ((e = registry_lookup(r, reference, &json, &err)) < 0)
			reply_error(c, e, &err);
		else
			reply_json(c, COAP_RESPONSE_CODE(205), json);
		return;
	}
	if (method == COAP_REQUEST_CODE_PUT && *reference) {
		const uint8_t *data;
		size_t length;
		body_of(c->request, &data, &length);
		cJSON *entry;
		if ((e = registry_manifest_put(r, reference, (const char *)data, length, &entry, &err)) < 0) {
			reply_error(c, e, &err);
			return;
		}
		log_info("registry: %s (%s) pushed: manifest %s", reference, json_string(entry, "platform"),
		         json_string(entry, "manifest"));
		reply_json(c, COAP_RESPONSE_CODE(201), entry);
		return;
	}
	if (method == COAP_REQUEST_CODE_DELETE && *reference) {
		char platform[64];
		bool one = query_value(c->query, "platform", platform, sizeof(platform));
		/* "arm/v7" arrives escaped in a query. */
		char *escaped = strstr(platform, "%2F");
		if (one && escaped) {
			*escaped = '/';
			memmove(escaped + 1, escaped + 3, strlen(escaped + 3) + 1);
		}
		if ((e = registry_remove(r, reference, one ? platform : NULL, &err)) < 0)
			reply_error(c, e, &err);
		else
			coap_pdu_set_code(c->response, COAP_RESPONSE_CODE(202));
		return;
	}
	error_set(&err, ENOTSUP, "images: GET, PUT (a manifest) or DELETE /registry/v1/images/REFERENCE");
	reply_error(c, -ENOTSUP, &err);
}

static void serve_blob(struct call *c, coap_pdu_code_t method, const char *digest)
{
	struct error err = { 0 };
	if (method == COAP_REQUEST_CODE_DELETE) {
		int e = registry_blob_remove(c->registry, digest, &err);
		if (e < 0)
			reply_error(c, e, &err);
		else
			coap_pdu_set_code(c->response, COAP_RESPONSE_CODE(202));
		return;
	}
	if (method != COAP_REQUEST_CODE_GET) {
		error_set(&err, ENOTSUP, "blobs are read with GET (and DELETEd when no image uses them)");
		reply_error(c, -ENOTSUP, &err);
		return;
	}
	uint64_t offset;
	struct registry_mapping *m = NULL;
	int e = query_offset(c->query, &offset, &err);
	if (e == 0)
		e = registry_blob_map(c->registry, digest, offset, REGISTRY_CHUNK, &m, &err);
	if (e < 0) {
		reply_error(c, e, &err);
		return;
	}
	/* libcoap keeps a block-wise answer for seconds after its last block (for retransmissions):
	 * a mapping of the file costs page cache the kernel may reclaim, not a copy on the heap. */
	coap_pdu_set_code(c->response, COAP_RESPONSE_CODE(205));
	if (m->length == 0) {
		registry_mapping_free(m);
		return;
	}
	if (!coap_add_data_large_response(c->resource, c->session, c->request, c->response, c->query,
	                                  COAP_MEDIATYPE_APPLICATION_OCTET_STREAM, -1, 0, m->length, m->data,
	                                  release_mapping, m))
		coap_pdu_set_code(c->response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
}

bool registry_serve(struct registry *registry, const char *path, const char *identity, coap_resource_t *resource,
                    coap_session_t *session, const coap_pdu_t *request, const coap_string_t *query,
                    coap_pdu_t *response)
{
	if (strncmp(path, REGISTRY_PATH_PREFIX, strlen(REGISTRY_PATH_PREFIX)) != 0)
		return false;
	struct call c = { registry, resource, session, request, query, response };
	struct error err = { 0 };
	coap_pdu_code_t method = coap_pdu_get_code(request);
	bool admin = !identity[0] || strcmp(identity, "admin") == 0;
	if (!registry) {
		error_set(&err, ENOENT, "this server keeps no image registry");
		reply_error(&c, -ENOENT, &err);
		return true;
	}
	registry_upload_expire(registry, REGISTRY_UPLOAD_IDLE_MS);
	if (!admin && !(authz_node_name(identity) && method == COAP_REQUEST_CODE_GET)) {
		error_set(&err, EPERM, "%s may not %s images: %s", identity[0] ? identity : "(anonymous)",
		          method == COAP_REQUEST_CODE_GET ? "read" : "push or remove",
		          authz_node_name(identity) ? "nodes may only read images"
		                                    : "only admins and nodes use the registry");
		reply_error(&c, -EPERM, &err);
		return true;
	}
	const char *rest = path + strlen(REGISTRY_PATH_PREFIX);
	if (strcmp(rest, "v1/images") == 0 || strncmp(rest, "v1/images/", 10) == 0)
		serve_images(&c, method, rest[9] ? rest + 10 : "");
	else if (strcmp(rest, "v1/uploads") == 0 || strncmp(rest, "v1/uploads/", 11) == 0)
		serve_uploads(&c, method, rest[10] ? rest + 11 : "");
	else if (strncmp(rest, "v1/blobs/", 9) == 0)
		serve_blob(&c, method, rest + 9);
	else {
		error_set(&err, ENOENT, "no such registry path /%s (see /registry/v1/images)", path);
		reply_error(&c, -ENOENT, &err);
	}
	return true;
}
