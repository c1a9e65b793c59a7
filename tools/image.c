/* `bramble image`: images on the cluster's control plane and in this board's store.
 *
 *   push FILE [-t NAME:TAG]   uploads every image of an OCI layout (directory or tar) or
 *                             docker archive to the control plane's registry (core/registry.h):
 *                             blobs it has already are skipped, the rest go in chunks, each
 *                             block-wise; the image is tagged (its manifest PUT) once all are
 *                             there, so a push that fails leaves no reference behind
 *   ls | rm REFERENCE         the control plane's images; with --local or --data-dir, the board's
 *   import FILE | gc          this board's store (<data-dir>/images, the one the agent uses;
 *                             each call locks it, so this may run beside a running agent)
 *
 * Progress (bytes and percent) goes to standard error on a terminal only. Exit codes: 0 done,
 * 1 an error (the archive's, the network's, the server's), 2 a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "agent/images.h"
#include "core/client.h"
#include "core/registry.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/verbs.h"

static void usage(FILE *out)
{
	fputs("usage: bramble image push FILE [-t NAME:TAG] [--config FILE]\n"
	      "       bramble image ls [--local | --data-dir DIR] [--config FILE]\n"
	      "       bramble image rm REFERENCE [--platform ARCH[/VARIANT]] [--local | --data-dir DIR]\n"
	      "       bramble image import FILE [--data-dir DIR] [--limit BYTES]\n"
	      "       bramble image gc [--data-dir DIR]\n"
	      "\n"
	      "push uploads an OCI image layout (directory or tar) or a `docker save` archive to the\n"
	      "cluster's control plane, from which agents pull what their pods need; ls and rm list and\n"
	      "remove the images there. import, gc, and ls/rm with --local or --data-dir work on this\n"
	      "board's own image store.\n"
	      "  -t, --tag NAME:TAG  push under this reference (default: the names in the archive)\n"
	      "  --platform P        rm: remove only this platform (amd64, arm64, arm/v7)\n"
	      "  --data-dir DIR      this board's store is DIR/images (default /var/lib/bramble)\n"
	      "  --local             this board's store, in the default data directory\n"
	      "  --limit BYTES       refuse an import that would make the store larger (K, M, G suffixes)\n",
	      out);
}

/* "64M" -> 67108864; -1 when it is not a size. */
static int parse_size(const char *text, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno || end == text || text[0] == '-')
		return -1;
	uint64_t unit = 1;
	if (*end == 'K' || *end == 'k')
		unit = 1024, end++;
	else if (*end == 'M' || *end == 'm')
		unit = 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		unit = 1024 * 1024 * 1024, end++;
	if (*end || value > UINT64_MAX / unit)
		return -1;
	*ret = value * unit;
	return 0;
}

static void human_size(uint64_t bytes, char *out, size_t size)
{
	if (bytes >= 1000 * 1000 * 1000)
		snprintf(out, size, "%.1fGB", (double)bytes / 1e9);
	else if (bytes >= 1000 * 1000)
		snprintf(out, size, "%.1fMB", (double)bytes / 1e6);
	else if (bytes >= 1000)
		snprintf(out, size, "%.1fkB", (double)bytes / 1e3);
	else
		snprintf(out, size, "%" PRIu64 "B", bytes);
}

static int list(struct images_store *store, struct error *err)
{
	struct images_entry *entries = NULL;
	size_t count = 0;
	int r = images_list(store, &entries, &count, err);
	if (r < 0)
		return r;
	printf("%-40s %-12s %-9s %s\n", "REFERENCE", "DIGEST", "SIZE", "ARCH");
	for (size_t i = 0; i < count; i++) {
		char size[32];
		human_size(entries[i].size, size, sizeof(size));
		printf("%-40s %-12.12s %-9s %s\n",
		       entries[i].reference[0] ? images_familiar_reference(entries[i].reference) : "<none>",
		       entries[i].digest + 7, size, entries[i].architecture);
	}
	free(entries);
	return 0;
}

/* --- the cluster's registry ---------------------------------------------------------------- */

static int registry_call(struct client *client, enum client_method method, const char *path, const void *body,
                         size_t length, unsigned format, cJSON **ret_json, int *ret_code, struct error *err)
{
	struct client_response response;
	int r = client_request_format(client, method, path, body, length, format, &response, err);
	if (r < 0)
		return r;
	if (ret_code)
		*ret_code = response.code;
	if (response.code >= 400) {
		struct error parsed = { 0 };
		r = client_response_error(&response, &parsed);
		error_set(err, -r, "%s (%s): %s", CLI_SERVER_PREFIX,
		          response.reason[0] ? response.reason : "InternalError", parsed.message);
		client_response_clear(&response);
		return r;
	}
	if (ret_json)
		*ret_json = response.length ? cJSON_ParseWithLength(response.body, response.length) : NULL;
	client_response_clear(&response);
	return 0;
}

static void reference_path(struct buffer *path, const char *prefix, const char *canonical)
{
	buffer_printf(path, "%s%s", prefix, canonical);
}

struct push {
	struct client *client;
	char (*uploaded)[IMAGES_DIGEST_MAX]; /* blobs this push stored: removed again if it fails */
	size_t uploaded_count;
	uint64_t total, done; /* bytes of blobs to send, and sent or skipped */
	uint64_t sent, skipped;
	size_t blobs_sent, blobs_skipped;
	const char *what;
	uint64_t started_ms;
};

static void show_progress(struct push *p)
{
	double percent = p->total ? 100.0 * (double)p->done / (double)p->total : 100.0;
	char done[32], total[32];
	human_size(p->done, done, sizeof(done));
	human_size(p->total, total, sizeof(total));
	cli_progress("pushing %s: %s of %s (%.0f%%)", p->what, done, total, percent);
}

static int push_blob(struct push *p, const struct images_bundle_blob *blob, struct error *err)
{
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "digest", blob->digest);
	cJSON_AddNumberToObject(body, "size", (double)blob->size);
	cleanup_free char *text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	cJSON *answer = NULL;
	int r;
	/* Busy (another push sends this blob, or too many uploads at once): wait for it, up to 30 s. */
	for (int attempt = 0;; attempt++) {
		r = registry_call(p->client, CLIENT_POST, "/registry/v1/uploads", text, strlen(text),
		                  COAP_MEDIATYPE_APPLICATION_JSON, &answer, NULL, err);
		if (r != -EBUSY || attempt >= 60)
			break;
		usleep(500 * 1000);
	}
	if (r < 0)
		return error_prefix(err, "blob %s", blob->digest);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(answer, "exists"))) {
		cJSON_Delete(answer);
		p->done += blob->size;
		p->skipped += blob->size;
		p->blobs_skipped++;
		show_progress(p);
		return 0;
	}
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(answer, "upload"));
	const cJSON *chunk_item = cJSON_GetObjectItemCaseSensitive(answer, "chunk");
	size_t chunk = cJSON_IsNumber(chunk_item) && chunk_item->valuedouble >= 1024 &&
	                               chunk_item->valuedouble <= REGISTRY_CHUNK
	                       ? (size_t)chunk_item->valuedouble
	                       : REGISTRY_CHUNK;
	if (!id || strlen(id) > 40) {
		cJSON_Delete(answer);
		return error_set(err, EBADMSG, "the server's answer to an upload of %s names no upload", blob->digest);
	}
	cleanup_free char *upload = xasprintf("/registry/v1/uploads/%s", id);
	cJSON_Delete(answer);
	cleanup_close int fd = open(blob->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(err, errno, "%s", blob->path);
	cleanup_free char *buffer = xmalloc(chunk);
	uint64_t offset = 0;
	int code = 0;
	while (offset < blob->size || blob->size == 0) {
		ssize_t n = pread(fd, buffer, chunk, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n == 0 && offset < blob->size)) {
			r = error_set_errno(err, n < 0 ? errno : EIO, "reading %s", blob->path);
			break;
		}
		cleanup_free char *path = xasprintf("%s?offset=%" PRIu64, upload, offset);
		r = registry_call(p->client, CLIENT_PUT, path, buffer, (size_t)n,
		                  COAP_MEDIATYPE_APPLICATION_OCTET_STREAM, NULL, &code, err);
		if (r < 0) {
			error_prefix(err, "blob %s", blob->digest);
			break;
		}
		offset += (uint64_t)n;
		p->done += (uint64_t)n;
		p->sent += (uint64_t)n;
		show_progress(p);
		if (code == 201 || blob->size == 0)
			break;
	}
	if (r < 0) {
		/* Tell the server at once (it would drop the upload when idle anyway). */
		struct error ignored;
		registry_call(p->client, CLIENT_DELETE, upload, NULL, 0, COAP_MEDIATYPE_APPLICATION_JSON, NULL, NULL,
		              &ignored);
		return r;
	}
	if (code != 201)
		return error_set(err, EPROTO, "blob %s: the server did not confirm the upload", blob->digest);
	p->blobs_sent++;
	p->uploaded = xrealloc(p->uploaded, (p->uploaded_count + 1) * sizeof(*p->uploaded));
	snprintf(p->uploaded[p->uploaded_count++], IMAGES_DIGEST_MAX, "%s", blob->digest);
	return 0;
}

static int push(const char *file, const char *tag, struct error *err)
{
	char tag_canonical[IMAGES_REFERENCE_MAX] = "";
	if (tag) {
		int r = images_normalize_reference(tag, tag_canonical, err);
		if (r < 0)
			return r;
		if (strncmp(tag_canonical, "sha256:", 7) == 0)
			return error_set(err, EINVAL, "--tag needs a name (NAME:TAG), not a digest");
	}
	struct images_bundle bundle;
	const char *scratch = getenv("TMPDIR");
	int r = images_bundle_open(file, scratch && *scratch ? scratch : NULL, &bundle, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < bundle.count; i++)
		if (!tag && bundle.images[i].reference_count == 0) {
			images_bundle_close(&bundle);
			return error_set(err, EINVAL, "%s: an image (%s) has no name; give one with --tag NAME:TAG",
			                 file, bundle.images[i].platform);
		}
	struct client *client = NULL;
	if ((r = cli_connect(NULL, &client, err)) < 0) {
		images_bundle_close(&bundle);
		return r;
	}
	struct push p = { .client = client, .started_ms = clock_monotonic_ms() };
	/* Every distinct blob once. */
	for (size_t i = 0; i < bundle.count; i++)
		for (size_t b = 0; b < bundle.images[i].blob_count; b++) {
			bool seen = false;
			for (size_t j = 0; j <= i && !seen; j++)
				for (size_t c = 0; c < (j == i ? b : bundle.images[j].blob_count) && !seen; c++)
					seen = strcmp(bundle.images[j].blobs[c].digest,
					              bundle.images[i].blobs[b].digest) == 0;
			if (!seen)
				p.total += bundle.images[i].blobs[b].size;
		}
	for (size_t i = 0; i < bundle.count && r == 0; i++) {
		struct images_bundle_image *image = &bundle.images[i];
		const char *name = tag ? tag_canonical : image->references[0];
		char what[IMAGES_REFERENCE_MAX + 64];
		snprintf(what, sizeof(what), "%s (%s)", images_familiar_reference(name), image->platform);
		p.what = what;
		for (size_t b = 0; b < image->blob_count && r == 0; b++)
			r = push_blob(&p, &image->blobs[b], err);
		/* The blobs are all there: the names now (a manifest PUT each). */
		size_t names = tag ? 1 : image->reference_count;
		for (size_t n = 0; n < names && r == 0; n++) {
			const char *reference = tag ? tag_canonical : image->references[n];
			struct buffer path = BUFFER_INIT;
			reference_path(&path, "/registry/v1/images/", reference);
			cJSON *entry = NULL;
			r = registry_call(client, CLIENT_PUT, path.data, image->manifest, image->manifest_length,
			                  COAP_MEDIATYPE_APPLICATION_JSON, &entry, NULL, err);
			buffer_free(&path);
			if (r < 0) {
				error_prefix(err, "tagging %s", images_familiar_reference(reference));
				break;
			}
			cli_progress_end();
			const char *manifest =
			        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "manifest"));
			char size[32];
			human_size(image->size, size, sizeof(size));
			printf("%s %s %s %s\n", images_familiar_reference(reference), image->platform,
			       manifest ? manifest : "?", size);
			cJSON_Delete(entry);
		}
	}
	cli_progress_end();
	/* A push that failed leaves no blob of its own behind (those no image uses). */
	for (size_t i = 0; r < 0 && i < p.uploaded_count; i++) {
		cleanup_free char *path = xasprintf("/registry/v1/blobs/%s", p.uploaded[i]);
		struct error ignored;
		registry_call(client, CLIENT_DELETE, path, NULL, 0, COAP_MEDIATYPE_APPLICATION_JSON, NULL, NULL,
		              &ignored);
	}
	free(p.uploaded);
	if (r == 0 && cli_interactive()) {
		double seconds = (double)(clock_monotonic_ms() - p.started_ms) / 1000.0;
		char sent[32], skipped[32];
		human_size(p.sent, sent, sizeof(sent));
		human_size(p.skipped, skipped, sizeof(skipped));
		fprintf(stderr, "sent %zu blobs (%s) in %.1fs, %zu already there (%s)\n", p.blobs_sent, sent, seconds,
		        p.blobs_skipped, skipped);
	}
	client_close(client);
	images_bundle_close(&bundle);
	return r;
}

static int cluster_list(struct error *err)
{
	struct client *client = NULL;
	int r = cli_connect(NULL, &client, err);
	if (r < 0)
		return r;
	cJSON *answer = NULL;
	r = registry_call(client, CLIENT_GET, "/registry/v1/images", NULL, 0, COAP_MEDIATYPE_APPLICATION_JSON, &answer,
	                  NULL, err);
	client_close(client);
	if (r < 0)
		return r;
	printf("%-40s %-9s %-12s %-9s %s\n", "REFERENCE", "PLATFORM", "DIGEST", "SIZE", "PUSHED");
	const cJSON *row;
	cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(answer, "images"))
	{
		const char *reference = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "reference"));
		const char *platform = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "platform"));
		const char *digest = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "manifest"));
		const char *pushed = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "pushed"));
		const cJSON *size = cJSON_GetObjectItemCaseSensitive(row, "size");
		char text[32];
		human_size(cJSON_IsNumber(size) ? (uint64_t)size->valuedouble : 0, text, sizeof(text));
		printf("%-40s %-9s %-12.12s %-9s %s\n", reference ? images_familiar_reference(reference) : "?",
		       platform ? platform : "?", digest && strlen(digest) > 7 ? digest + 7 : "?", text,
		       pushed ? pushed : "");
	}
	cJSON_Delete(answer);
	return 0;
}

static int cluster_remove(const char *reference, const char *platform, struct error *err)
{
	char canonical[IMAGES_REFERENCE_MAX];
	int r = images_normalize_reference(reference, canonical, err);
	if (r < 0)
		return r;
	struct client *client = NULL;
	if ((r = cli_connect(NULL, &client, err)) < 0)
		return r;
	struct buffer path = BUFFER_INIT;
	reference_path(&path, "/registry/v1/images/", canonical);
	if (platform)
		cli_query(&path, "platform", platform);
	r = registry_call(client, CLIENT_DELETE, path.data, NULL, 0, COAP_MEDIATYPE_APPLICATION_JSON, NULL, NULL, err);
	buffer_free(&path);
	client_close(client);
	if (r == 0)
		printf("removed %s%s%s from the cluster\n", images_familiar_reference(canonical), platform ? " " : "",
		       platform ? platform : "");
	return r;
}

int image_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_LOCAL, OPT_PLATFORM };
	static const struct option long_options[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "limit", required_argument, NULL, 'l' },
		{ "tag", required_argument, NULL, 't' },
		{ "local", no_argument, NULL, OPT_LOCAL },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data_dir = "/var/lib/bramble", *tag = NULL, *platform = NULL;
	bool local = false;
	uint64_t limit = 0;
	int opt;
	optind = 0; /* reinitialise getopt: options may come before or after the command */
	while ((opt = getopt_long(argc, argv, "ht:", long_options, NULL)) != -1) {
		switch (opt) {
		case 'd':
			data_dir = optarg;
			local = true;
			break;
		case 'l':
			if (parse_size(optarg, &limit) < 0) {
				fprintf(stderr, "bramble image: --limit '%s' is not a size (bytes, or with K, M, G)\n",
				        optarg);
				return 2;
			}
			break;
		case 't':
			tag = optarg;
			break;
		case OPT_LOCAL:
			local = true;
			break;
		case OPT_PLATFORM:
			platform = optarg;
			break;
		case OPT_CONFIG:
			setenv("BRAMBLE_CONFIG", optarg, 1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *command = argv[optind];
	int operands = argc - optind - 1;
	const char *operand = operands > 0 ? argv[optind + 1] : NULL;
	bool needs_operand =
	        strcmp(command, "import") == 0 || strcmp(command, "rm") == 0 || strcmp(command, "push") == 0;
	bool known = needs_operand || strcmp(command, "ls") == 0 || strcmp(command, "gc") == 0;
	if (!known) {
		fprintf(stderr, "bramble image: unknown command '%s'\n", command);
		usage(stderr);
		return 2;
	}
	if (operands != (needs_operand ? 1 : 0)) {
		fprintf(stderr, "bramble image %s: %s\n", command,
		        needs_operand ? "takes exactly one argument" : "takes no arguments");
		usage(stderr);
		return 2;
	}
	if (tag && strcmp(command, "push") != 0) {
		fprintf(stderr, "bramble image %s: --tag is for push\n", command);
		return 2;
	}
	if (strcmp(command, "push") == 0 && local) {
		fprintf(stderr,
		        "bramble image push: pushes to the cluster; use `bramble image import` for this board\n");
		return 2;
	}

	struct error err = { 0 };
	int r;
	bool cluster =
	        strcmp(command, "push") == 0 || ((strcmp(command, "ls") == 0 || strcmp(command, "rm") == 0) && !local);
	if (cluster) {
		if (strcmp(command, "push") == 0)
			r = push(operand, tag, &err);
		else if (strcmp(command, "ls") == 0)
			r = cluster_list(&err);
		else
			r = cluster_remove(operand, platform, &err);
		if (r < 0) {
			cli_progress_end();
			cli_print_error(&err);
			return 1;
		}
		fflush(stdout);
		return 0;
	}

	struct images_store store;
	cleanup_free char *dir = xasprintf("%s/images", data_dir);
	r = images_open(&store, dir, limit, NULL, NULL, &err);
	if (r == 0) {
		if (strcmp(command, "import") == 0) {
			r = images_import(&store, operand, &err);
			if (r == 0)
				r = list(&store, &err);
		} else if (strcmp(command, "ls") == 0) {
			r = list(&store, &err);
		} else if (strcmp(command, "rm") == 0) {
			r = images_rm(&store, operand, &err);
			if (r == 0)
				printf("removed %s\n", operand);
		} else {
			r = images_gc(&store, &err);
		}
	}
	images_close(&store);
	if (r < 0) {
		fprintf(stderr, "bramble image %s: %s\n", command, err.message);
		return 1;
	}
	return 0;
}
