/* `bramble apply -f FILE|DIR|-`: create or replace objects from manifests.
 *
 * For each document: GET it; absent -> POST ("created"); present -> the current object
 * with the manifest's spec, data and other top-level fields and its labels/annotations
 * put in, Kubernetes' defaults applied; equal to the current one -> "unchanged", else
 * PUT with the current resourceVersion ("configured"). No three-way merge yet: what the
 * manifest leaves out is kept as the server has it. A failing document is reported with
 * its file, index and the server's field path, and the next one is tried; the exit code is
 * 1 when any failed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/client.h"
#include "core/object.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/clientconfig.h"
#include "tools/manifest.h"
#include "tools/verbs.h"

#define APPLY_MAX_FILES 64

static void usage(FILE *out)
{
	fputs("usage: bramble apply -f FILE|DIR|- [-f ...] [-n NAMESPACE] [--dry-run] [--config FILE]\n"
	      "\n"
	      "Creates the objects of the manifests (YAML or JSON, several documents a file; a directory:\n"
	      "its *.yaml, *.yml and *.json files) or updates the ones that exist.\n",
	      out);
}

/* The object to PUT: current, with what the manifest says put in. */
static cJSON *desired_from(const struct kind *kind, const cJSON *current, const cJSON *manifest)
{
	cJSON *desired = cJSON_Duplicate(current, 1);
	const cJSON *field;
	cJSON_ArrayForEach(field, manifest)
	{
		if (strcmp(field->string, "apiVersion") == 0 || strcmp(field->string, "kind") == 0 ||
		    strcmp(field->string, "metadata") == 0 || strcmp(field->string, "status") == 0)
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(desired, field->string);
		cJSON_AddItemToObject(desired, field->string, cJSON_Duplicate(field, 1));
	}
	const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(manifest, "metadata");
	cJSON *desired_metadata = object_metadata(desired);
	static const char *const replaced[] = { "labels", "annotations" };
	for (size_t i = 0; i < ARRAY_SIZE(replaced); i++) {
		const cJSON *given = cJSON_GetObjectItemCaseSensitive(metadata, replaced[i]);
		if (!given)
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(desired_metadata, replaced[i]);
		cJSON_AddItemToObject(desired_metadata, replaced[i], cJSON_Duplicate(given, 1));
	}
	object_apply_defaults(kind, desired);
	return desired;
}

struct apply_context {
	struct client *client;
	const char *namespace; /* -n, or NULL */
	bool dry_run;
};

static void report_server_error(const struct manifest_document *d, const char *action, const char *resource,
                                const char *name, const struct client_response *response)
{
	fprintf(stderr, "Error from server (%s): error when %s \"%s\" (document %d): %s \"%s\": %s\n",
	        response->reason[0] ? response->reason : "InternalError", action, d->source, d->index, resource, name,
	        response->message);
}

/* Returns 0 when applied, 1 when this document failed (reported). */
static int apply_document(struct apply_context *a, struct manifest_document *d)
{
	cJSON *object = d->object;
	const char *api_version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, "apiVersion"));
	const char *kind_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, "kind"));
	const struct kind *kind = kind_lookup(api_version, kind_name);
	if (!kind) {
		fprintf(stderr,
		        "error: %s: document %d: no matches for kind \"%s\" in version \"%s\" (Bramble does not "
		        "serve it)\n",
		        d->source, d->index, kind_name, api_version);
		return 1;
	}
	const char *name = object_name(object);
	if (!name || !name[0]) {
		fprintf(stderr, "error: %s: document %d: metadata.name: Required value\n", d->source, d->index);
		return 1;
	}
	const char *namespace = NULL;
	if (kind->namespaced) {
		const char *own = object_namespace(object);
		if (own && a->namespace && strcmp(own, a->namespace) != 0) {
			fprintf(stderr,
			        "error: %s: document %d: the namespace from the provided object \"%s\" does not match "
			        "the "
			        "namespace \"%s\". You must pass '--namespace=%s' to perform this operation.\n",
			        d->source, d->index, own, a->namespace, own);
			return 1;
		}
		namespace = own ? own : a->namespace ? a->namespace : "default";
	}
	char type[128], resource[128];
	get_type_name(kind, type, sizeof(type));
	get_resource_name(kind, resource, sizeof(resource));
	cleanup_free char *path = get_object_path(kind, namespace, name);
	cleanup_free char *collection = get_object_path(kind, namespace, NULL);
	struct client_response current = { 0 }, response = { 0 };
	struct error err = { 0 };
	int failed = 1;
	if (client_request(a->client, CLIENT_GET, path, NULL, 0, &current, &err) < 0) {
		fprintf(stderr, "error: %s: document %d: %s\n", d->source, d->index, err.message);
		return -1; /* the server is gone: no use trying the others */
	}
	const char *suffix = a->dry_run ? " (dry run)" : "";
	if (current.code == 404) {
		if (a->dry_run) {
			printf("%s/%s created%s\n", type, name, suffix);
			failed = 0;
			goto out;
		}
		char *body = cJSON_PrintUnformatted(object);
		int r = client_request(a->client, CLIENT_POST, collection, body, strlen(body), &response, &err);
		free(body);
		if (r < 0) {
			fprintf(stderr, "error: %s: document %d: %s\n", d->source, d->index, err.message);
			failed = -1;
		} else if (response.code >= 400) {
			report_server_error(d, "creating", resource, name, &response);
		} else {
			printf("%s/%s created\n", type, name);
			failed = 0;
		}
		goto out;
	}
	if (current.code >= 400) {
		report_server_error(d, "retrieving current configuration of", resource, name, &current);
		goto out;
	}
	cJSON *now = cJSON_ParseWithLength(current.body, current.length);
	if (!cJSON_IsObject(now)) {
		cJSON_Delete(now);
		fprintf(stderr, "error: %s: document %d: the server's %s \"%s\" is not JSON\n", d->source, d->index,
		        resource, name);
		goto out;
	}
	cJSON *desired = desired_from(kind, now, object);
	bool unchanged = cJSON_Compare(desired, now, 1);
	cJSON_Delete(now);
	if (unchanged || a->dry_run) {
		printf("%s/%s %s%s\n", type, name, unchanged ? "unchanged" : "configured", suffix);
		cJSON_Delete(desired);
		failed = 0;
		goto out;
	}
	char *body = cJSON_PrintUnformatted(desired);
	cJSON_Delete(desired);
	int r = client_request(a->client, CLIENT_PUT, path, body, strlen(body), &response, &err);
	free(body);
	if (r < 0) {
		fprintf(stderr, "error: %s: document %d: %s\n", d->source, d->index, err.message);
		failed = -1;
	} else if (response.code >= 400) {
		report_server_error(d, "applying", resource, name, &response);
	} else {
		printf("%s/%s configured\n", type, name);
		failed = 0;
	}
out:
	client_response_clear(&current);
	client_response_clear(&response);
	return failed;
}

int apply_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "filename", required_argument, NULL, 'f' }, { "namespace", required_argument, NULL, 'n' },
		{ "dry-run", optional_argument, NULL, 'd' },  { "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
	};
	const char *files[APPLY_MAX_FILES];
	size_t file_count = 0;
	const char *config = NULL;
	struct apply_context a = { 0 };
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:n:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (file_count >= APPLY_MAX_FILES) {
				fprintf(stderr, "error: at most %d -f options\n", APPLY_MAX_FILES);
				return 1;
			}
			files[file_count++] = optarg;
			break;
		case 'n':
			a.namespace = optarg;
			break;
		case 'd':
			if (optarg && strcmp(optarg, "client") != 0 && strcmp(optarg, "server") != 0 &&
			    strcmp(optarg, "none") != 0) {
				fprintf(stderr,
				        "error: Invalid dry-run value (%s). Must be \"none\", \"server\", or "
				        "\"client\".\n",
				        optarg);
				return 1;
			}
			a.dry_run = !optarg || strcmp(optarg, "none") != 0;
			break;
		case 'c':
			config = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (file_count == 0 || optind < argc) {
		fputs(file_count ? "error: unexpected arguments\n" : "error: must specify one of -f\n", stderr);
		usage(stderr);
		return 1;
	}
	struct manifest manifest = { 0 };
	struct error err = { 0 };
	for (size_t i = 0; i < file_count; i++) {
		if (manifest_read(files[i], &manifest, &err) < 0) {
			fprintf(stderr, "error: %s\n", err.message);
			manifest_free(&manifest);
			return 1;
		}
	}
	if (manifest.count == 0) {
		fputs("error: no objects passed to apply\n", stderr);
		manifest_free(&manifest);
		return 1;
	}
	if (clientconfig_connect(config, &a.client, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.message);
		manifest_free(&manifest);
		return 1;
	}
	int failed = 0;
	for (size_t i = 0; i < manifest.count; i++) {
		int r = apply_document(&a, &manifest.documents[i]);
		if (r != 0)
			failed = 1;
		if (r < 0)
			break;
	}
	client_close(a.client);
	manifest_free(&manifest);
	return failed;
}
