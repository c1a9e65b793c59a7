/* Image pulls from the control plane. See imagepull.h.
 *
 * One `pull` per canonical reference at a time, shared by every container that waits for it
 * (its waiters). A pull runs on the agent's loop, one request in flight at a time:
 *
 *   LOOKUP    GET /registry/v1/images/<ref>: the platforms; the one this board runs is chosen
 *             (none: refused, naming the image's platforms and the board's). With Always, an
 *             image in the store with the same config digest ends the pull here.
 *   BLOBS     the manifest, then each config and layer blob the store lacks, chunk after chunk
 *             (GET /registry/v1/blobs/<digest>?offset=N, each answer block-wise), written to
 *             <store>/pulls/<n>/blobs/sha256/ and hashed on the way; a blob whose content does
 *             not hash to its digest is refused and ends the pull
 *   IMPORT    the pulled blobs form an OCI image layout named with the reference; a child process
 *             imports it (images_import: verified again, layers unpacked) so the loop never waits
 *             for an unpack, and reports its error through a pipe
 *   done      the pull directory removed, the waiters called, the outcome remembered (memo)
 *
 * Memory per pull: one chunk (REGISTRY_CHUNK) while it is handled. A failed pull leaves a memo
 * with a back-off: until it passes, containers asking for that image get ImagePullBackOff with
 * the last error instead of a new pull (pods sharing a missing image cause one pull, not one
 * each). A memo of a successful Always lookup lets the containers it woke use the image
 * without asking again (IMAGEPULL_FRESH_MS).
 */
#include "agent/imagepull.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mbedtls/sha256.h>

#include "agent/events.h"
#include "agent/images.h"
#include "core/link.h"
#include "core/registry.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define IMAGEPULL_FRESH_MS 5000
#define IMAGEPULL_MEMOS_MAX 64
#define IMAGEPULL_BLOBS_MAX 130 /* manifest, config, layers */

struct waiter {
	struct waiter *next;
	imagepull_done_fn fn;
	void *data;
	char *namespace, *pod, *uid, *container, *node; /* for Events; pod NULL: none */
	void (*progress)(void *data, const char *message);
	char image[IMAGES_REFERENCE_MAX]; /* as the pod names it */
};

enum pull_state { PULL_LOOKUP, PULL_BLOBS, PULL_IMPORT };

struct blob {
	char digest[IMAGES_DIGEST_MAX];
	uint64_t size;
};

struct pull {
	struct pull *next;
	struct imagepull *owner;
	char reference[IMAGES_REFERENCE_MAX]; /* canonical */
	bool always;
	struct waiter *waiters;
	enum pull_state state;
	char platform[48];
	char config[IMAGES_DIGEST_MAX];
	struct blob blobs[IMAGEPULL_BLOBS_MAX]; /* [0] the manifest */
	size_t blob_count, current, skipped;
	uint64_t offset;
	int fd;
	mbedtls_sha256_context sha;
	char *dir;
	uint64_t bytes, started_ms;
	uint64_t expected;    /* bytes of the blobs to fetch, once the manifest is in */
	uint64_t progress_ms; /* when progress was last reported */
	pid_t child;
	int report_fd;
};

/* What the last pull of a reference came to. */
struct memo {
	struct memo *next;
	char reference[IMAGES_REFERENCE_MAX];
	bool failed;
	char message[ERROR_MESSAGE_MAX];
	uint64_t until_ms;    /* failed: no new pull before */
	uint64_t backoff_ms;  /* failed: the next back-off */
	uint64_t verified_ms; /* succeeded: when */
};

struct imagepull {
	struct imagepull_options options;
	struct pull *pulls;
	struct memo *memos;
	char *dir; /* <store>/pulls */
	unsigned sequence;
};

static void fetch_next(struct pull *p);
static void fetch_chunk(struct pull *p);

/* --- memos ------------------------------------------------------------------------------- */

static struct memo *memo_of(struct imagepull *ip, const char *reference, bool create)
{
	size_t count = 0;
	struct memo **last = &ip->memos;
	for (struct memo *m = ip->memos; m; m = m->next, count++)
		if (strcmp(m->reference, reference) == 0)
			return m;
	if (!create)
		return NULL;
	if (count >= IMAGEPULL_MEMOS_MAX) {
		/* Forget the oldest (the list's tail). */
		while ((*last)->next)
			last = &(*last)->next;
		free(*last);
		*last = NULL;
	}
	struct memo *m = xcalloc(1, sizeof(*m));
	snprintf(m->reference, sizeof(m->reference), "%s", reference);
	m->next = ip->memos;
	ip->memos = m;
	return m;
}

/* --- events ----------------------------------------------------------------------------------- */

static void waiter_free(struct waiter *w)
{
	free(w->namespace);
	free(w->pod);
	free(w->uid);
	free(w->container);
	free(w->node);
	free(w);
}

/* An Event about the pod a waiter stands for, as the kubelet's image manager writes them. */
static void record_event(struct imagepull *ip, const struct waiter *w, const char *type, const char *reason,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void record_event(struct imagepull *ip, const struct waiter *w, const char *type, const char *reason,
                         const char *fmt, ...)
{
	struct event_subject about = { w->namespace, w->pod, w->uid, w->container, w->node };
	va_list ap;
	va_start(ap, fmt);
	event_postv(ip->options.link, &about, type, reason, fmt, ap);
	va_end(ap);
}

/* --- ending a pull ------------------------------------------------------------------------- */

static void pull_free(struct pull *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->report_fd >= 0)
		close(p->report_fd);
	mbedtls_sha256_free(&p->sha);
	if (p->dir)
		file_remove_tree(p->dir);
	free(p->dir);
	while (p->waiters) {
		struct waiter *w = p->waiters;
		p->waiters = w->next;
		waiter_free(w);
	}
	free(p);
}

static void finish(struct pull *p, const struct error *err)
{
	struct imagepull *ip = p->owner;
	for (struct pull **slot = &ip->pulls; *slot; slot = &(*slot)->next)
		if (*slot == p) {
			*slot = p->next;
			break;
		}
	const char *name = images_familiar_reference(p->reference);
	struct memo *m = memo_of(ip, p->reference, true);
	uint64_t now = clock_monotonic_ms();
	if (err) {
		m->backoff_ms = m->failed && m->backoff_ms ? m->backoff_ms * 2 : ip->options.backoff_initial_ms;
		if (m->backoff_ms > ip->options.backoff_max_ms)
			m->backoff_ms = ip->options.backoff_max_ms;
		m->failed = true;
		m->until_ms = now + m->backoff_ms;
		snprintf(m->message, sizeof(m->message), "%s", err->message);
		log_warnx("image %s: pull failed: %s", name, err->message);
	} else {
		m->failed = false;
		m->backoff_ms = 0;
		m->verified_ms = now;
		if (p->state == PULL_IMPORT)
			log_info("image %s (%s): pulled %" PRIu64 " bytes in %" PRIu64
			         " ms (%zu blobs, %zu already here)",
			         name, p->platform, p->bytes, now - p->started_ms, p->blob_count, p->skipped);
	}
	/* The waiters may ask again from their callbacks: this pull is out of the list already. */
	struct waiter *w = p->waiters;
	p->waiters = NULL;
	while (w) {
		struct waiter *next = w->next;
		if (err)
			record_event(ip, w, "Warning", "Failed", "Failed to pull image \"%s\": %s", w->image,
			             err->message);
		else if (p->state == PULL_IMPORT)
			record_event(ip, w, "Normal", "Pulled",
			             "Successfully pulled image \"%s\" in %.3fs (%" PRIu64 " bytes)", w->image,
			             (double)(now - p->started_ms) / 1000.0, p->bytes);
		else
			record_event(ip, w, "Normal", "Pulled", "Container image \"%s\" already present on machine",
			             w->image);
		w->fn(w->data, "ErrImagePull", err);
		waiter_free(w);
		w = next;
	}
	pull_free(p);
}

static void fail(struct pull *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct pull *p, int code, const char *fmt, ...)
{
	struct error err = { .code = code };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	finish(p, &err);
}

/* --- requests ------------------------------------------------------------------------------- */

static bool answer_ok(struct pull *p, const struct client_response *response, const struct error *err, const char *what)
{
	if (!response) {
		fail(p, err ? err->code : EIO, "cannot %s from the control plane: %s", what,
		     err ? err->message : "no answer");
		return false;
	}
	if (response->code >= 400) {
		struct error server = { 0 };
		client_response_error(response, &server);
		fail(p, server.code ? server.code : EIO, "%s", server.message);
		return false;
	}
	return true;
}

/* --- import ------------------------------------------------------------------------------------ */

static void on_import_done(struct loop *loop, pid_t pid, int status, void *data)
{
	(void)loop;
	(void)pid;
	struct pull *p = data;
	p->child = 0;
	char message[ERROR_MESSAGE_MAX] = "";
	ssize_t n = read(p->report_fd, message, sizeof(message) - 1);
	if (n > 0)
		message[n] = '\0';
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		finish(p, NULL);
		return;
	}
	if (!message[0])
		snprintf(message, sizeof(message), "the import ended with status %d", status);
	fail(p, EIO, "%s", message);
}

static int write_layout(struct pull *p, struct error *err)
{
	cleanup_free char *layout = xasprintf("%s/oci-layout", p->dir);
	static const char version[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	int r = file_write_atomic(layout, version, sizeof(version) - 1, 0600, err);
	if (r < 0)
		return r;
	cJSON *index = cJSON_CreateObject();
	cJSON_AddNumberToObject(index, "schemaVersion", 2);
	cJSON *manifests = cJSON_AddArrayToObject(index, "manifests");
	cJSON *descriptor = cJSON_CreateObject();
	cJSON_AddStringToObject(descriptor, "mediaType", "application/vnd.oci.image.manifest.v1+json");
	cJSON_AddStringToObject(descriptor, "digest", p->blobs[0].digest);
	cJSON_AddNumberToObject(descriptor, "size", (double)p->blobs[0].size);
	cJSON *annotations = cJSON_AddObjectToObject(descriptor, "annotations");
	cJSON_AddStringToObject(annotations, "io.containerd.image.name", p->reference);
	cJSON_AddItemToArray(manifests, descriptor);
	cleanup_free char *text = cJSON_PrintUnformatted(index);
	cJSON_Delete(index);
	cleanup_free char *path = xasprintf("%s/index.json", p->dir);
	return file_write_atomic(path, text, strlen(text), 0600, err);
}

static void start_import(struct pull *p)
{
	struct error err = { 0 };
	p->state = PULL_IMPORT;
	if (write_layout(p, &err) < 0) {
		fail(p, err.code, "%s", err.message);
		return;
	}
	int report[2];
	if (pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0) {
		fail(p, errno, "cannot import: pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(report[0]);
		close(report[1]);
		fail(p, e, "cannot import: fork: %s", strerror(e));
		return;
	}
	if (pid == 0) {
		/* The child: unpacking may take seconds; the agent's loop goes on meanwhile. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct error child_err = { 0 };
		int r = images_import(p->owner->options.store, p->dir, &child_err);
		if (r < 0)
			(void)!write(report[1], child_err.message, strlen(child_err.message));
		_exit(r < 0 ? 1 : 0);
	}
	close(report[1]);
	p->report_fd = report[0];
	p->child = pid;
	loop_watch_child(p->owner->options.loop, pid, on_import_done, p);
}

/* --- blobs --------------------------------------------------------------------------------------- */

static bool listed(const struct pull *p, const char *digest)
{
	for (size_t i = 0; i < p->blob_count; i++)
		if (strcmp(p->blobs[i].digest, digest) == 0)
			return true;
	return false;
}

static int add_blob(struct pull *p, const cJSON *descriptor, const char *what, struct error *err)
{
	const char *digest = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(descriptor, "digest"));
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(descriptor, "size");
	if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71 || !cJSON_IsNumber(size) ||
	    size->valuedouble < 0)
		return error_set(err, EINVAL, "manifest %s: the %s has no sha256 digest and size", p->blobs[0].digest,
		                 what);
	if (listed(p, digest))
		return 0;
	if (images_has_blob(p->owner->options.store, digest)) {
		p->skipped++;
		return 0;
	}
	if (p->blob_count >= IMAGEPULL_BLOBS_MAX)
		return error_set(err, EFBIG, "manifest %s names more than %d blobs", p->blobs[0].digest,
		                 IMAGEPULL_BLOBS_MAX - 1);
	snprintf(p->blobs[p->blob_count].digest, IMAGES_DIGEST_MAX, "%s", digest);
	p->blobs[p->blob_count++].size = (uint64_t)size->valuedouble;
	return 0;
}

/* The manifest is in: the config and the layers the store lacks are fetched next. */
static int read_manifest(struct pull *p, struct error *err)
{
	cleanup_free char *path = xasprintf("%s/blobs/sha256/%s", p->dir, p->blobs[0].digest + 7);
	cleanup_free char *text = NULL;
	int r = file_read(path, REGISTRY_MANIFEST_MAX, &text, NULL, err);
	if (r < 0)
		return r;
	cJSON *manifest = cJSON_Parse(text);
	const cJSON *config = cJSON_GetObjectItemCaseSensitive(manifest, "config");
	const cJSON *layers = cJSON_GetObjectItemCaseSensitive(manifest, "layers");
	if (!cJSON_IsObject(config) || !cJSON_IsArray(layers)) {
		cJSON_Delete(manifest);
		return error_set(err, EINVAL, "manifest %s is not an image manifest", p->blobs[0].digest);
	}
	r = add_blob(p, config, "config", err);
	const cJSON *layer;
	cJSON_ArrayForEach(layer, layers)
	{
		if (r == 0)
			r = add_blob(p, layer, "layer", err);
	}
	cJSON_Delete(manifest);
	p->expected = p->bytes;
	for (size_t i = 1; i < p->blob_count; i++)
		p->expected += p->blobs[i].size;
	return r;
}

static void blob_done(struct pull *p)
{
	struct blob *b = &p->blobs[p->current];
	unsigned char sum[32];
	char hex[65];
	mbedtls_sha256_finish(&p->sha, sum);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
	close(p->fd);
	p->fd = -1;
	cleanup_free char *partial = xasprintf("%s/blobs/sha256/partial", p->dir);
	if (strcmp(hex, b->digest + 7) != 0) {
		fail(p, EBADMSG,
		     "blob %s from the control plane is corrupt: its content is sha256:%s; refused (push the image "
		     "again)",
		     b->digest, hex);
		return;
	}
	cleanup_free char *path = xasprintf("%s/blobs/sha256/%s", p->dir, b->digest + 7);
	if (rename(partial, path) < 0) {
		fail(p, errno, "storing blob %s: %s", b->digest, strerror(errno));
		return;
	}
	if (p->current == 0) {
		struct error err = { 0 };
		if (read_manifest(p, &err) < 0) {
			fail(p, err.code, "%s", err.message);
			return;
		}
	}
	p->current++;
	fetch_next(p);
}

static void human_size(uint64_t bytes, char *out, size_t size)
{
	if (bytes >= 1000 * 1000)
		snprintf(out, size, "%.1fMB", (double)bytes / 1e6);
	else if (bytes >= 1000)
		snprintf(out, size, "%.1fkB", (double)bytes / 1e3);
	else
		snprintf(out, size, "%" PRIu64 "B", bytes);
}

/* Tells the waiters how far the pull is, at most every progress_ms. */
static void report_progress(struct pull *p)
{
	uint64_t now = clock_monotonic_ms();
	if (!p->expected || now - p->progress_ms < p->owner->options.progress_ms)
		return;
	p->progress_ms = now;
	char done[32], total[32];
	human_size(p->bytes, done, sizeof(done));
	human_size(p->expected, total, sizeof(total));
	for (struct waiter *w = p->waiters; w; w = w->next) {
		if (!w->progress)
			continue;
		char message[IMAGES_REFERENCE_MAX + 96];
		snprintf(message, sizeof(message), "Pulling image \"%s\": %s of %s (%d%%)", w->image, done, total,
		         (int)(100 * p->bytes / p->expected));
		w->progress(w->data, message);
	}
}

static void on_chunk(const struct client_response *response, const struct error *err, void *data)
{
	struct pull *p = data;
	struct blob *b = &p->blobs[p->current];
	char what[96];
	snprintf(what, sizeof(what), "fetch blob %s", b->digest);
	if (!answer_ok(p, response, err, what))
		return;
	if (p->offset + response->length > b->size) {
		fail(p, EBADMSG,
		     "blob %s from the control plane is larger than the %" PRIu64 " bytes the manifest says", b->digest,
		     b->size);
		return;
	}
	if (response->length == 0 && p->offset < b->size) {
		fail(p, EBADMSG, "blob %s from the control plane ends at %" PRIu64 " bytes; the manifest says %" PRIu64,
		     b->digest, p->offset, b->size);
		return;
	}
	if (response->length) {
		int r = file_write_all(p->fd, response->body, response->length);
		if (r < 0) {
			fail(p, -r, "writing blob %s in %s: %s", b->digest, p->dir, strerror(-r));
			return;
		}
		mbedtls_sha256_update(&p->sha, (const unsigned char *)response->body, response->length);
		p->offset += response->length;
		p->bytes += response->length;
		report_progress(p);
	}
	if (p->offset == b->size)
		blob_done(p);
	else
		fetch_chunk(p);
}

static void fetch_chunk(struct pull *p)
{
	struct blob *b = &p->blobs[p->current];
	char path[160];
	snprintf(path, sizeof(path), "/registry/v1/blobs/%s?offset=%" PRIu64, b->digest, p->offset);
	struct error err = { 0 };
	if (link_request(p->owner->options.link, CLIENT_GET, path, NULL, 0, on_chunk, p, &err) < 0)
		fail(p, err.code, "cannot fetch blob %s from the control plane: %s", b->digest, err.message);
}

static void fetch_next(struct pull *p)
{
	if (p->current >= p->blob_count) {
		start_import(p);
		return;
	}
	struct blob *b = &p->blobs[p->current];
	cleanup_free char *partial = xasprintf("%s/blobs/sha256/partial", p->dir);
	p->fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (p->fd < 0) {
		fail(p, errno, "cannot pull blob %s into %s: %s", b->digest, p->dir, strerror(errno));
		return;
	}
	mbedtls_sha256_free(&p->sha);
	mbedtls_sha256_init(&p->sha);
	mbedtls_sha256_starts(&p->sha, 0);
	p->offset = 0;
	if (b->size == 0)
		blob_done(p);
	else
		fetch_chunk(p);
}

/* --- lookup ---------------------------------------------------------------------------------------- */

static void on_lookup(const struct client_response *response, const struct error *err, void *data)
{
	struct pull *p = data;
	const char *name = images_familiar_reference(p->reference);
	if (response && response->code == 404) {
		fail(p, ENOENT, "no image %s on the control plane (push it there with `bramble image push FILE`)",
		     name);
		return;
	}
	if (!answer_ok(p, response, err, "look the image up"))
		return;
	cJSON *json = cJSON_ParseWithLength(response->body, response->length);
	const cJSON *platform, *chosen = NULL;
	struct buffer offered = BUFFER_INIT;
	cJSON_ArrayForEach(platform, cJSON_GetObjectItemCaseSensitive(json, "platforms"))
	{
		const char *arch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(platform, "architecture"));
		const char *variant = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(platform, "variant"));
		const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(platform, "platform"));
		if (!arch)
			continue;
		if (!chosen && images_runs_platform(p->owner->options.store, arch, variant))
			chosen = platform;
		buffer_printf(&offered, "%s%s", offered.length ? ", " : "", key ? key : arch);
	}
	if (!chosen) {
		char board[48];
		images_board_platform(p->owner->options.store, board, sizeof(board));
		fail(p, ENOEXEC, "image %s is for %s; this board is %s", name,
		     offered.length ? offered.data : "no platform", board);
		buffer_free(&offered);
		cJSON_Delete(json);
		return;
	}
	buffer_free(&offered);
	const char *manifest = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(chosen, "manifest"));
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(chosen, "manifestSize");
	const char *config = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(chosen, "config"));
	const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(chosen, "platform"));
	if (!manifest || strlen(manifest) != 71 || !cJSON_IsNumber(size) || !config) {
		cJSON_Delete(json);
		fail(p, EBADMSG, "the control plane's answer for image %s names no manifest", name);
		return;
	}
	snprintf(p->blobs[0].digest, IMAGES_DIGEST_MAX, "%s", manifest);
	p->blobs[0].size = (uint64_t)size->valuedouble;
	p->blob_count = 1;
	snprintf(p->config, sizeof(p->config), "%s", config);
	snprintf(p->platform, sizeof(p->platform), "%s", key ? key : "");
	cJSON_Delete(json);
	if (p->always) {
		/* Always: the image in the store is the one the name means now? Then nothing to pull. */
		struct images_image image = { 0 };
		bool same = images_resolve(p->owner->options.store, p->reference, &image, NULL) == 0 &&
		            strcmp(image.digest, p->config) == 0;
		images_image_free(&image);
		if (same) {
			finish(p, NULL);
			return;
		}
	}
	p->state = PULL_BLOBS;
	p->dir = xasprintf("%s/%u", p->owner->dir, ++p->owner->sequence);
	cleanup_free char *blobs = xasprintf("%s/blobs/sha256", p->dir);
	file_remove_tree(p->dir);
	struct error mkdir_err = { 0 };
	if (file_mkdir_p(blobs, 0700, &mkdir_err) < 0) {
		fail(p, mkdir_err.code, "%s", mkdir_err.message);
		return;
	}
	log_info("image %s (%s): pulling from the control plane", name, p->platform);
	fetch_next(p);
}

/* --- the API ----------------------------------------------------------------------------------------- */

struct imagepull *imagepull_new(const struct imagepull_options *options)
{
	struct imagepull *ip = xcalloc(1, sizeof(*ip));
	ip->options = *options;
	if (!ip->options.backoff_initial_ms)
		ip->options.backoff_initial_ms = 10000;
	if (!ip->options.backoff_max_ms)
		ip->options.backoff_max_ms = 300000;
	if (!ip->options.progress_ms)
		ip->options.progress_ms = 1000;
	ip->dir = xasprintf("%s/pulls", options->store->dir);
	file_remove_tree(ip->dir); /* pulls of an agent that died: their blobs were never imported */
	return ip;
}

void imagepull_free(struct imagepull *ip)
{
	if (!ip)
		return;
	while (ip->pulls) {
		struct pull *p = ip->pulls;
		ip->pulls = p->next;
		if (p->child > 0) {
			kill(p->child, SIGKILL);
			waitpid(p->child, NULL, 0);
		}
		pull_free(p);
	}
	while (ip->memos) {
		struct memo *m = ip->memos;
		ip->memos = m->next;
		free(m);
	}
	file_remove_tree(ip->dir);
	free(ip->dir);
	free(ip);
}

unsigned imagepull_active(const struct imagepull *ip)
{
	unsigned n = 0;
	for (const struct pull *p = ip->pulls; p; p = p->next)
		n++;
	return n;
}

void imagepull_cancel(struct imagepull *ip, void *data)
{
	if (!ip)
		return;
	for (struct pull *p = ip->pulls; p; p = p->next)
		for (struct waiter **w = &p->waiters; *w;) {
			if ((*w)->data == data) {
				struct waiter *gone = *w;
				*w = gone->next;
				waiter_free(gone);
			} else {
				w = &(*w)->next;
			}
		}
}

static char *copy_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void add_waiter(struct pull *p, const char *image, const struct imagepull_who *who, imagepull_done_fn done,
                       void *data)
{
	for (struct waiter *w = p->waiters; w; w = w->next)
		if (w->data == data && w->fn == done)
			return;
	struct waiter *w = xcalloc(1, sizeof(*w));
	w->fn = done;
	w->data = data;
	snprintf(w->image, sizeof(w->image), "%s", image);
	if (who && who->pod && who->namespace) {
		w->namespace = xstrdup(who->namespace);
		w->pod = xstrdup(who->pod);
		w->uid = copy_or_null(who->uid);
		w->container = copy_or_null(who->container);
		w->node = copy_or_null(who->node);
	}
	w->progress = who ? who->progress : NULL;
	w->next = p->waiters;
	p->waiters = w;
	record_event(p->owner, w, "Normal", "Pulling", "Pulling image \"%s\"", image);
}

/* Kubernetes' default: Always for ":latest" (and no tag), IfNotPresent otherwise. */
static const char *default_policy(const char *image)
{
	const char *slash = strrchr(image, '/');
	const char *colon = strrchr(slash ? slash : image, ':');
	return !colon || strcmp(colon, ":latest") == 0 ? "Always" : "IfNotPresent";
}

int imagepull_ensure(struct imagepull *ip, const char *image, const char *policy, const struct imagepull_who *who,
                     imagepull_done_fn done, void *data, const char **ret_reason, struct error *err)
{
	char canonical[IMAGES_REFERENCE_MAX];
	*ret_reason = "InvalidImageName";
	int r = images_normalize_reference(image, canonical, err);
	if (r < 0)
		return r;
	if (!policy || !*policy)
		policy = strncmp(canonical, "sha256:", 7) == 0 ? "IfNotPresent" : default_policy(image);
	bool never = strcmp(policy, "Never") == 0, always = strcmp(policy, "Always") == 0;
	if (!never && !always && strcmp(policy, "IfNotPresent") != 0)
		return error_set(err, EINVAL, "imagePullPolicy %s is not Always, IfNotPresent or Never", policy);
	struct images_image local = { 0 };
	bool present = images_resolve(ip->options.store, image, &local, NULL) == 0;
	images_image_free(&local);
	struct memo *memo = memo_of(ip, canonical, false);
	uint64_t now = clock_monotonic_ms();
	if (never) {
		if (present)
			return 0;
		*ret_reason = "ErrImageNeverPull";
		return error_set(err, ENOENT, "Container image \"%s\" is not present with pull policy of Never", image);
	}
	if (present && !always)
		return 0;
	if (present && always) {
		if (memo && !memo->failed && now - memo->verified_ms < IMAGEPULL_FRESH_MS)
			return 0;
		if (!link_is_up(ip->options.link)) {
			/* Edge autonomy: with the control plane away, the image the board has is used. */
			log_info("image %s: the control plane is not reachable; using the image on this board", image);
			return 0;
		}
	}
	if (strncmp(canonical, "sha256:", 7) == 0) {
		*ret_reason = "ErrImagePull";
		return error_set(err, ENOENT, "no image %s on this board (images are pulled by name:tag)", image);
	}
	for (struct pull *p = ip->pulls; p; p = p->next)
		if (strcmp(p->reference, canonical) == 0) {
			add_waiter(p, image, who, done, data);
			return error_set(err, EINPROGRESS, "Pulling image \"%s\"", image);
		}
	if (memo && memo->failed && now < memo->until_ms) {
		*ret_reason = "ImagePullBackOff";
		return error_set(err, EAGAIN, "Back-off pulling image \"%s\": %s", image, memo->message);
	}
	struct pull *p = xcalloc(1, sizeof(*p));
	p->owner = ip;
	p->fd = p->report_fd = -1;
	snprintf(p->reference, sizeof(p->reference), "%s", canonical);
	p->always = always;
	p->started_ms = now;
	mbedtls_sha256_init(&p->sha);
	char path[IMAGES_REFERENCE_MAX + 32];
	snprintf(path, sizeof(path), "/registry/v1/images/%s", canonical);
	struct error link_err = { 0 };
	if (link_request(ip->options.link, CLIENT_GET, path, NULL, 0, on_lookup, p, &link_err) < 0) {
		/* Not connected: nothing to share; the memo holds the next attempt back. */
		struct memo *m = memo_of(ip, canonical, true);
		m->backoff_ms = m->failed && m->backoff_ms ? m->backoff_ms * 2 : ip->options.backoff_initial_ms;
		if (m->backoff_ms > ip->options.backoff_max_ms)
			m->backoff_ms = ip->options.backoff_max_ms;
		m->failed = true;
		m->until_ms = now + m->backoff_ms;
		snprintf(m->message, sizeof(m->message), "the control plane is not reachable (%s)", link_err.message);
		pull_free(p);
		*ret_reason = "ErrImagePull";
		return error_set(err, ENOTCONN, "cannot pull image %s: the control plane is not reachable (%s)", image,
		                 link_err.message);
	}
	p->next = ip->pulls;
	ip->pulls = p;
	add_waiter(p, image, who, done, data);
	return error_set(err, EINPROGRESS, "Pulling image \"%s\"", image);
}
