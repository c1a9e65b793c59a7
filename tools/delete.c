/* `bramble delete KIND NAME... | -f FILE|DIR|-`: delete objects, as kubectl delete does. */
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

#define DELETE_MAX_FILES 64

static void usage(FILE *out)
{
	fputs("usage: bramble delete KIND NAME... [-n NAMESPACE] [--ignore-not-found] [--config FILE]\n"
	      "       bramble delete -f FILE|DIR|- [--ignore-not-found] [--config FILE]\n",
	      out);
}

/* Returns 0 deleted (or absent with ignore), 1 failed, -1 the server is unreachable. */
static int delete_one(struct client *client, const struct kind *kind, const char *namespace, const char *name,
                      const char *source, bool ignore_not_found)
{
	char type[128], resource[128];
	get_type_name(kind, type, sizeof(type));
	get_resource_name(kind, resource, sizeof(resource));
	cleanup_free char *path = get_object_path(kind, kind->namespaced ? namespace : NULL, name);
	struct client_response response;
	struct error err = { 0 };
	if (client_request(client, CLIENT_DELETE, path, NULL, 0, &response, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.message);
		return -1;
	}
	int r = 0;
	if (response.code == 404 && ignore_not_found) {
		r = 0;
	} else if (response.code == 404) {
		if (source)
			fprintf(stderr,
			        "Error from server (NotFound): error when deleting \"%s\": %s \"%s\" not found\n",
			        source, resource, name);
		else
			fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n", resource, name);
		r = 1;
	} else if (response.code >= 400) {
		fprintf(stderr, "Error from server (%s): %s\n", response.reason[0] ? response.reason : "InternalError",
		        response.message);
		r = 1;
	} else {
		printf("%s \"%s\" deleted\n", type, name);
	}
	client_response_clear(&response);
	return r;
}

int delete_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "ignore-not-found", no_argument, NULL, 'i' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *files[DELETE_MAX_FILES];
	size_t file_count = 0;
	const char *config = NULL, *namespace = NULL;
	bool ignore_not_found = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:n:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (file_count >= DELETE_MAX_FILES) {
				fprintf(stderr, "error: at most %d -f options\n", DELETE_MAX_FILES);
				return 1;
			}
			files[file_count++] = optarg;
			break;
		case 'n':
			namespace
			= optarg;
			break;
		case 'i':
			ignore_not_found = true;
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
	const struct kind *kind = NULL;
	if (file_count == 0) {
		if (optind + 2 > argc) {
			fputs("error: you must specify a kind and at least one name, or -f FILE\n", stderr);
			usage(stderr);
			return 1;
		}
		kind = get_resolve_kind(argv[optind]);
		if (!kind) {
			fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", argv[optind]);
			return 1;
		}
	} else if (optind < argc) {
		fputs("error: names cannot be given together with -f\n", stderr);
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
	struct client *client = NULL;
	if (clientconfig_connect(config, &client, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.message);
		manifest_free(&manifest);
		return 1;
	}
	int failed = 0;
	if (kind) {
		for (int i = optind + 1; i < argc; i++) {
			int r = delete_one(client, kind, namespace ? namespace : "default", argv[i], NULL,
			                   ignore_not_found);
			failed |= r != 0;
			if (r < 0)
				break;
		}
	}
	for (size_t i = 0; i < manifest.count; i++) {
		struct manifest_document *d = &manifest.documents[i];
		const char *api_version =
		        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d->object, "apiVersion"));
		const char *kind_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d->object, "kind"));
		const struct kind *k = kind_lookup(api_version, kind_name);
		const char *name = object_name(d->object);
		if (!k || !name) {
			fprintf(stderr, "error: %s: document %d: %s\n", d->source, d->index,
			        !k ? "a kind Bramble does not serve" : "metadata.name: Required value");
			failed = 1;
			continue;
		}
		const char *own = object_namespace(d->object);
		int r = delete_one(client, k,
		                   own         ? own
		                   : namespace ? namespace
		                               : "default",
		                   name, d->source, ignore_not_found);
		failed |= r != 0;
		if (r < 0)
			break;
	}
	client_close(client);
	manifest_free(&manifest);
	return failed;
}
