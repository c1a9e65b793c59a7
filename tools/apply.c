/* `bramble apply -f FILE|DIR|-`: create or replace objects from manifests.
 *
 * For each document: GET it; absent -> POST ("created"); present -> the current object
 * with the manifest's spec, data and other top-level fields and its labels/annotations
 * put in, Kubernetes' defaults applied; equal to the current one -> "unchanged", else
 * PUT with the current resourceVersion ("configured"). No three-way merge yet: what the
 * manifest leaves out is kept as the server has it. A failing document is reported with
 * its file, index and the server's field path, and the next one is tried; the exit code is
 * 1 when any failed.
 *
 * --dry-run=client checks each object here, with the same defaults and validation the
 * server applies (core/object.c), and writes nothing; --dry-run=server sends the writes
 * with dryRun=All, which the API server validates, authorizes and answers without
 * storing.
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
#include "tools/apply.h"
#include "tools/cli.h"
#include "tools/kinds.h"
#include "tools/manifest.h"
#include "tools/verbs.h"

static void usage(FILE *out)
{
	fputs("usage: bramble apply -f FILE|DIR|- [-f ...] [-n NAMESPACE] [--dry-run=none|client|server]\n"
	      "                     [--config FILE]\n"
	      "\n"
	      "Creates the objects of the manifests (YAML or JSON, several documents a file; a directory:\n"
	      "its *.yaml, *.yml and *.json files) or updates the ones that exist.\n",
	      out);
}

int apply_parse_dry_run(const char *value, enum apply_dry_run *ret, struct error *err)
{
	if (!value || strcmp(value, "client") == 0)
		*ret = DRY_RUN_CLIENT; /* kubectl's bare --dry-run */
	else if (strcmp(value, "server") == 0)
		*ret = DRY_RUN_SERVER;
	else if (strcmp(value, "none") == 0)
		*ret = DRY_RUN_NONE;
	else
		return error_set(err, EINVAL,
		                 "Invalid dry-run value (%s). Must be \"none\", \"server\", or \"client\".", value);
	return 0;
}

const char *apply_dry_run_suffix(enum apply_dry_run dry_run)
{
	return dry_run == DRY_RUN_CLIENT ? " (dry run)" : dry_run == DRY_RUN_SERVER ? " (server dry run)" : "";
}

int apply_check_locally(const struct kind *kind, cJSON *object, struct error *err)
{
	object_apply_defaults(kind, object);
	return object_validate(kind, object, err);
}

/* What the control plane allocates and a manifest usually leaves out (a Service's
 * clusterIP and node ports) is kept as the server has it, as kubectl apply's merge does:
 * otherwise every apply of an unchanged Service would be "configured". */
static void keep_field(const cJSON *from, cJSON *to, const char *name)
{
	const cJSON *had = cJSON_GetObjectItemCaseSensitive(from, name);
	if (had && cJSON_IsObject(to) && !cJSON_GetObjectItemCaseSensitive(to, name))
		cJSON_AddItemToObject(to, name, cJSON_Duplicate(had, 1));
}

static void keep_allocated(const cJSON *current, cJSON *desired)
{
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(current, "kind")) ||
	    strcmp(cJSON_GetObjectItemCaseSensitive(current, "kind")->valuestring, "Service") != 0)
		return;
	const cJSON *had = cJSON_GetObjectItemCaseSensitive(current, "spec");
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(desired, "spec");
	if (!cJSON_IsObject(had) || !cJSON_IsObject(spec))
		return;
	static const char *const allocated[] = { "clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
		                                 "healthCheckNodePort" };
	for (size_t i = 0; i < sizeof(allocated) / sizeof(allocated[0]); i++)
		keep_field(had, spec, allocated[i]);
	/* node ports, for a Service that still has them: by the port's number and protocol, as
	 * Kubernetes matches them */
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "type"));
	if (!type || (strcmp(type, "NodePort") != 0 && strcmp(type, "LoadBalancer") != 0))
		return;
	const cJSON *port;
	cJSON_ArrayForEach(port, cJSON_GetObjectItemCaseSensitive(spec, "ports"))
	{
		const cJSON *old_port;
		cJSON_ArrayForEach(old_port, cJSON_GetObjectItemCaseSensitive(had, "ports"))
		{
			const cJSON *a = cJSON_GetObjectItemCaseSensitive(port, "port"),
			            *b = cJSON_GetObjectItemCaseSensitive(old_port, "port");
			const char *pa = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(port, "protocol")),
			           *pb = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(old_port, "protocol"));
			if (cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valueint == b->valueint &&
			    strcmp(pa ? pa : "TCP", pb ? pb : "TCP") == 0) {
				keep_field(old_port, (cJSON *)port, "nodePort");
				break;
			}
		}
	}
}

cJSON *apply_desired(const struct kind *kind, const cJSON *current, const cJSON *manifest)
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
	/* Labels are the manifest's; annotations are merged into the current ones, since
	 * controllers keep theirs there (deployment.kubernetes.io/revision). */
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(metadata, "labels");
	if (labels) {
		cJSON_DeleteItemFromObjectCaseSensitive(desired_metadata, "labels");
		cJSON_AddItemToObject(desired_metadata, "labels", cJSON_Duplicate(labels, 1));
	}
	const cJSON *annotations = cJSON_GetObjectItemCaseSensitive(metadata, "annotations");
	if (cJSON_IsObject(annotations)) {
		cJSON *merged = cJSON_GetObjectItemCaseSensitive(desired_metadata, "annotations");
		if (!cJSON_IsObject(merged)) {
			cJSON_DeleteItemFromObjectCaseSensitive(desired_metadata, "annotations");
			merged = cJSON_AddObjectToObject(desired_metadata, "annotations");
		}
		const cJSON *item;
		cJSON_ArrayForEach(item, annotations)
		{
			cJSON_DeleteItemFromObjectCaseSensitive(merged, item->string);
			cJSON_AddItemToObject(merged, item->string, cJSON_Duplicate(item, 1));
		}
	}
	keep_allocated(current, desired);
	object_apply_defaults(kind, desired);
	return desired;
}

struct apply_context {
	struct client *client;
	const char *namespace; /* -n, or NULL */
	enum apply_dry_run dry_run;
};

/* "Error from server (Invalid): error when creating "x.yaml" (document 2): configmaps "bad": <why>" */
static void report(const struct manifest_document *d, const char *action, const char *resource, const char *name,
                   const struct error *err)
{
	const char *message = err->message;
	const char *server = strncmp(message, CLI_SERVER_PREFIX, strlen(CLI_SERVER_PREFIX)) == 0 ? message : NULL;
	const char *colon = server ? strstr(server, "): ") : NULL;
	if (colon)
		fprintf(stderr, "%.*s: error when %s \"%s\" (document %d): %s \"%s\": %s\n", (int)(colon + 1 - message),
		        message, action, d->source, d->index, resource, name, colon + 3);
	else
		fprintf(stderr, "error: %s: document %d: %s \"%s\": %s\n", d->source, d->index, resource, name,
		        message);
}

/* 0 applied, 1 this document failed (reported), -1 the server is gone (reported). */
static int apply_document(struct apply_context *a, struct manifest_document *d)
{
	struct cli_target target;
	struct error err = { 0 };
	if (cli_document_target(d, a->namespace, &target, &err) < 0) {
		cli_print_error(&err);
		return 1;
	}
	const struct kind *kind = target.kind;
	char type[KINDS_NAME_MAX], resource[KINDS_NAME_MAX];
	kinds_type(kind, type, sizeof(type));
	kinds_resource(kind, resource, sizeof(resource));
	const char *query = a->dry_run == DRY_RUN_SERVER ? "dryRun=All" : NULL;
	const char *suffix = apply_dry_run_suffix(a->dry_run);
	cJSON *object = cJSON_Duplicate(d->object, 1);
	if (kind->namespaced) {
		cJSON_DeleteItemFromObjectCaseSensitive(object_metadata(object), "namespace");
		cJSON_AddStringToObject(object_metadata(object), "namespace", target.namespace);
	}
	cJSON *current = NULL, *desired = NULL;
	int failed = 1;
	int r = cli_object_call(a->client, CLIENT_GET, kind, target.namespace, target.name, NULL, NULL, &current, &err);
	if (r == -ENOENT) {
		if (a->dry_run == DRY_RUN_CLIENT && (r = apply_check_locally(kind, object, &err)) < 0) {
			report(d, "checking (--dry-run=client)", resource, target.name, &err);
			goto out;
		}
		if (a->dry_run != DRY_RUN_CLIENT) {
			cleanup_free char *collection = kinds_path(kind, target.namespace, NULL);
			cleanup_free char *path = query ? xasprintf("%s?%s", collection, query) : NULL;
			r = cli_call(a->client, CLIENT_POST, path ? path : collection, object, NULL, &err);
			if (r < 0 && !strstr(err.message, CLI_SERVER_PREFIX)) {
				cli_print_error(&err);
				failed = -1;
				goto out;
			}
			if (r < 0) {
				report(d, "creating", resource, target.name, &err);
				goto out;
			}
		}
		printf("%s/%s created%s\n", type, target.name, suffix);
		failed = 0;
		goto out;
	}
	if (r < 0) {
		if (!strstr(err.message, CLI_SERVER_PREFIX)) {
			cli_print_error(&err);
			failed = -1;
		} else {
			report(d, "retrieving current configuration of", resource, target.name, &err);
		}
		goto out;
	}
	desired = apply_desired(kind, current, object);
	bool unchanged = cJSON_Compare(desired, current, 1);
	if (unchanged) {
		printf("%s/%s unchanged%s\n", type, target.name, suffix);
		failed = 0;
		goto out;
	}
	if (a->dry_run == DRY_RUN_CLIENT) {
		if ((r = object_validate(kind, desired, &err)) < 0) {
			report(d, "checking (--dry-run=client)", resource, target.name, &err);
			goto out;
		}
	} else {
		r = cli_object_call(a->client, CLIENT_PUT, kind, target.namespace, target.name, query, desired, NULL,
		                    &err);
		if (r < 0 && !strstr(err.message, CLI_SERVER_PREFIX)) {
			cli_print_error(&err);
			failed = -1;
			goto out;
		}
		if (r < 0) {
			report(d, "applying", resource, target.name, &err);
			goto out;
		}
	}
	printf("%s/%s configured%s\n", type, target.name, suffix);
	failed = 0;
out:
	cJSON_Delete(object);
	cJSON_Delete(current);
	cJSON_Delete(desired);
	return failed;
}

int apply_main(int argc, char **argv)
{
	enum { OPT_DRY_RUN = 256, OPT_CONFIG };
	static const struct option long_options[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "dry-run", optional_argument, NULL, OPT_DRY_RUN },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_files files = { 0 };
	const char *config = NULL;
	struct apply_context a = { 0 };
	struct error err = { 0 };
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:n:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (cli_files_add(&files, optarg, &err) < 0)
				return cli_usage_error(NULL, "%s", err.message);
			break;
		case 'n':
			a.namespace = optarg;
			break;
		case OPT_DRY_RUN:
			if (apply_parse_dry_run(optarg, &a.dry_run, &err) < 0)
				return cli_usage_error(NULL, "%s", err.message);
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			usage(stderr);
			return CLI_USAGE;
		}
	}
	if (files.count == 0)
		return cli_usage_error(usage, "must specify one of -f");
	if (optind < argc)
		return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
	struct manifest manifest = { 0 };
	if (cli_files_read(&files, &manifest, &err) < 0) {
		manifest_free(&manifest);
		return cli_fail(&err);
	}
	if (manifest.count == 0) {
		manifest_free(&manifest);
		fputs("error: no objects passed to apply\n", stderr);
		return CLI_ERROR;
	}
	if (cli_connect(config, &a.client, &err) < 0) {
		manifest_free(&manifest);
		return cli_fail(&err);
	}
	int status = CLI_OK;
	for (size_t i = 0; i < manifest.count; i++) {
		int r = apply_document(&a, &manifest.documents[i]);
		if (r != 0)
			status = CLI_ERROR;
		if (r < 0)
			break;
	}
	client_close(a.client);
	manifest_free(&manifest);
	return status;
}
