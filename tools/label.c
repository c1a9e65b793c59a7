/* `bramble label` and `bramble annotate` (see tools/label.h).
 *
 *   bramble label KIND NAME... | TYPE/NAME... | KIND (-l SELECTOR | --all) KEY=VALUE... KEY-... [--overwrite]
 *
 * Each object is read, the changes are checked against its labels or annotations, and a
 * JSON merge patch carrying the resourceVersion that was read is sent, so a change made
 * by someone else in between fails the command instead of being overwritten.
 */
#include "tools/label.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/object.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/kinds.h"
#include "tools/verbs.h"

bool label_is_change(const char *arg)
{
	size_t n = strlen(arg);
	return strchr(arg, '=') || (n > 1 && arg[n - 1] == '-');
}

int label_parse(int count, char **args, bool annotations, struct label_changes *ret, struct error *err)
{
	const char *what = annotations ? "annotation" : "label";
	memset(ret, 0, sizeof(*ret));
	for (int i = 0; i < count; i++) {
		const char *arg = args[i], *equals = strchr(arg, '=');
		if (ret->count >= LABEL_MAX_CHANGES)
			return error_set(err, E2BIG, "at most %d %s changes at once", LABEL_MAX_CHANGES, what);
		struct label_change *c = &ret->items[ret->count];
		size_t key_length = equals ? (size_t)(equals - arg) : strlen(arg) - 1;
		if (key_length >= sizeof(c->buffer))
			return error_set(err, EINVAL, "invalid %s spec: %s: the key is too long", what, arg);
		memcpy(c->buffer, arg, key_length);
		c->buffer[key_length] = '\0';
		c->key = c->buffer;
		c->value = equals ? equals + 1 : NULL;
		const char *problem = object_label_key_problem(c->key);
		if (problem)
			return error_set(err, EINVAL, "invalid %s spec: %s: %s", what, arg, problem);
		if (c->value && !annotations && (problem = object_label_value_problem(c->value)))
			return error_set(err, EINVAL, "invalid label value: \"%s\": %s", arg, problem);
		for (size_t k = 0; k < ret->count; k++) {
			if (strcmp(ret->items[k].key, c->key) != 0)
				continue;
			if (!ret->items[k].value != !c->value)
				return error_set(err, EINVAL,
				                 "can not both modify and remove %s %s in the same command",
				                 annotations ? "an annotation" : "a label", c->key);
			return error_set(err, EINVAL, "%s %s is given twice", what, c->key);
		}
		ret->count++;
	}
	if (ret->count == 0)
		return error_set(err, EINVAL, "at least one %s update is required", what);
	return 0;
}

int label_compute(const cJSON *map, const struct label_changes *changes, bool overwrite, bool annotations,
                  cJSON **ret_patch, bool *ret_removed_only, const char **ret_missing, struct error *err)
{
	*ret_patch = NULL;
	*ret_removed_only = true;
	*ret_missing = NULL;
	if (!overwrite) {
		for (size_t i = 0; i < changes->count; i++) {
			const struct label_change *c = &changes->items[i];
			const char *now = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(map, c->key));
			if (c->value && now && strcmp(now, c->value) != 0) {
				if (annotations)
					return error_set(
					        err, EEXIST,
					        "--overwrite is false but found the following declared annotation(s): "
					        "'%s' already has a value (%s)",
					        c->key, now);
				return error_set(err, EEXIST, "'%s' already has a value (%s), and --overwrite is false",
				                 c->key, now);
			}
		}
	}
	cJSON *patch = cJSON_CreateObject();
	for (size_t i = 0; i < changes->count; i++) {
		const struct label_change *c = &changes->items[i];
		const char *now = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(map, c->key));
		if (!c->value) {
			if (!now) {
				if (!*ret_missing)
					*ret_missing = c->key;
				continue;
			}
			cJSON_AddNullToObject(patch, c->key);
		} else if (!now || strcmp(now, c->value) != 0) {
			cJSON_AddStringToObject(patch, c->key, c->value);
			*ret_removed_only = false;
		}
	}
	if (!patch->child) {
		cJSON_Delete(patch);
		*ret_removed_only = false;
		return 0;
	}
	*ret_patch = patch;
	return 0;
}

/* --- the verbs ------------------------------------------------------------------------------ */

struct label_options {
	bool annotations;
	bool overwrite;
	bool list;
	const char *resource_version;
	struct label_changes changes;
};

static void usage_label(FILE *out)
{
	fputs("usage: bramble label KIND NAME... | TYPE/NAME... | KIND (-l SELECTOR | --all) KEY=VALUE... KEY-...\n"
	      "                     [--overwrite] [--list] [--resource-version RV] [-n NAMESPACE | -A] [--config "
	      "FILE]\n",
	      out);
}

static void usage_annotate(FILE *out)
{
	fputs("usage: bramble annotate KIND NAME... | TYPE/NAME... | KIND (-l SELECTOR | --all) KEY=VALUE... KEY-...\n"
	      "                        [--overwrite] [--resource-version RV] [-n NAMESPACE | -A] [--config FILE]\n",
	      out);
}

/* 0 done, 1 failed (printed), -1 the server is gone (printed). */
static int change_one(struct client *client, const struct label_options *o, const struct kind *kind, cJSON *object)
{
	struct error err = { 0 };
	char type[KINDS_NAME_MAX];
	kinds_type(kind, type, sizeof(type));
	const char *name = object_name(object), *namespace = object_namespace(object);
	const char *rv = object_string_at(object, "metadata.resourceVersion");
	if (o->resource_version && (!rv || strcmp(rv, o->resource_version) != 0)) {
		char resource[KINDS_NAME_MAX];
		kinds_resource(kind, resource, sizeof(resource));
		fprintf(stderr,
		        "Error from server (Conflict): Operation cannot be fulfilled on %s \"%s\": the object has been "
		        "modified; please apply your changes to the latest version and try again\n",
		        resource, name);
		return 1;
	}
	const char *field = o->annotations ? "annotations" : "labels";
	const cJSON *map =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"), field);
	if (o->list) {
		const cJSON *item;
		cJSON_ArrayForEach(item, map) printf("%s=%s\n", item->string, cJSON_GetStringValue(item) ?: "");
		return 0;
	}
	cJSON *patch = NULL;
	bool removed_only;
	const char *missing;
	if (label_compute(map, &o->changes, o->overwrite, o->annotations, &patch, &removed_only, &missing, &err) < 0)
		return cli_fail(&err);
	if (missing && !o->annotations)
		printf("label \"%s\" not found.\n", missing);
	const char *verb = o->annotations ? "annotated"
	                   : !patch       ? "not labeled"
	                   : removed_only ? "unlabeled"
	                                  : "labeled";
	if (!patch) {
		printf("%s/%s %s\n", type, name, verb);
		return 0;
	}
	cJSON *body = cJSON_CreateObject();
	cJSON *metadata = cJSON_AddObjectToObject(body, "metadata");
	if (rv)
		cJSON_AddStringToObject(metadata, "resourceVersion", rv);
	cJSON_AddItemToObject(metadata, field, patch);
	int r = cli_object_call(client, CLIENT_PATCH, kind, namespace, name, NULL, body, NULL, &err);
	cJSON_Delete(body);
	if (r < 0) {
		cli_print_error(&err);
		return strstr(err.message, CLI_SERVER_PREFIX) ? 1 : -1;
	}
	printf("%s/%s %s\n", type, name, verb);
	return 0;
}

static int label_or_annotate(int argc, char **argv, bool annotations)
{
	enum { OPT_CONFIG = 256, OPT_OVERWRITE, OPT_ALL, OPT_LIST, OPT_RV };
	static const struct option long_options[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "all-namespaces", no_argument, NULL, 'A' },
		{ "selector", required_argument, NULL, 'l' },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "overwrite", no_argument, NULL, OPT_OVERWRITE },
		{ "list", no_argument, NULL, OPT_LIST },
		{ "resource-version", required_argument, NULL, OPT_RV },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	void (*usage)(FILE *) = annotations ? usage_annotate : usage_label;
	struct label_options o = { .annotations = annotations };
	const char *namespace = "default", *labels = NULL, *config = NULL;
	bool all = false, all_namespaces = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:Al:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			namespace
			= optarg;
			break;
		case 'A':
			all_namespaces = true;
			break;
		case 'l':
			labels = optarg;
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_OVERWRITE:
			o.overwrite = true;
			break;
		case OPT_LIST:
			if (annotations)
				return cli_usage_error(usage, "unknown flag: --list");
			o.list = true;
			break;
		case OPT_RV:
			o.resource_version = optarg;
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
	/* Resource arguments first, then the changes, as kubectl splits them. */
	char **rest = argv + optind;
	int count = argc - optind, resources = 0;
	char **resource_args = xcalloc((size_t)count + 1, sizeof(*resource_args));
	char **change_args = xcalloc((size_t)count + 1, sizeof(*change_args));
	int changes = 0;
	for (int i = 0; i < count; i++) {
		if (label_is_change(rest[i]))
			change_args[changes++] = rest[i];
		else
			resource_args[resources++] = rest[i];
	}
	struct error err = { 0 };
	struct kinds_selection *selection = xcalloc(1, sizeof(*selection));
	struct client *client = NULL;
	cJSON *items = cJSON_CreateArray();
	const struct kind **kinds = NULL;
	int status = CLI_OK;
	int r = kinds_select(resources, resource_args, selection, &err);
	if (r == -ENOENT) {
		status = cli_fail(&err);
		goto out;
	}
	if (r < 0) {
		status = cli_usage_error(usage, "%s", err.message);
		goto out;
	}
	bool by_selector = labels || all;
	if (by_selector == (selection->count > 0)) {
		status = cli_usage_error(usage, by_selector ? "names cannot be given together with -l or --all"
		                                            : "one or more resources must be specified as <resource> "
		                                              "<name> or <resource>/<name>, or with -l or --all");
		goto out;
	}
	if (!o.list && label_parse(changes, change_args, annotations, &o.changes, &err) < 0) {
		status = changes == 0 ? cli_usage_error(usage, "%s", err.message) : cli_fail(&err);
		goto out;
	}
	if (cli_connect(config, &client, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	if (by_selector) {
		if (cli_list(client, selection->kind, all_namespaces ? NULL : namespace, labels, NULL, items, NULL,
		             &err) < 0) {
			status = cli_fail(&err);
			goto out;
		}
		kinds = xcalloc((size_t)cJSON_GetArraySize(items) + 1, sizeof(*kinds));
		for (int i = 0; i < cJSON_GetArraySize(items); i++)
			kinds[i] = selection->kind;
		if (cJSON_GetArraySize(items) == 0)
			fputs("No resources found\n", stderr);
	} else {
		kinds = xcalloc(selection->count + 1, sizeof(*kinds));
		for (size_t i = 0; i < selection->count; i++) {
			cJSON *object = NULL;
			r = cli_object_call(client, CLIENT_GET, selection->kinds[i], namespace, selection->names[i],
			                    NULL, NULL, &object, &err);
			if (r < 0) {
				cli_print_error(&err);
				status = CLI_ERROR;
				if (r != -ENOENT)
					goto out;
				continue;
			}
			kinds[cJSON_GetArraySize(items)] = selection->kinds[i];
			cJSON_AddItemToArray(items, object);
		}
	}
	int i = 0;
	cJSON *object;
	cJSON_ArrayForEach(object, items)
	{
		r = change_one(client, &o, kinds[i++], object);
		if (r != 0)
			status = CLI_ERROR;
		if (r < 0)
			break;
	}
out:
	free(kinds);
	cJSON_Delete(items);
	client_close(client);
	free(selection);
	free(resource_args);
	free(change_args);
	return status;
}

int label_main(int argc, char **argv)
{
	return label_or_annotate(argc, argv, false);
}

int annotate_main(int argc, char **argv)
{
	return label_or_annotate(argc, argv, true);
}
