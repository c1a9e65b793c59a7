/* `bramble scale --replicas N deployment/NAME | KIND NAME... | KIND -l SELECTOR`: sets
 * spec.replicas of Deployments and ReplicaSets with a JSON merge patch (Bramble has no
 * /scale subresource). --current-replicas and --resource-version are preconditions, as in
 * kubectl: the patch then carries the resourceVersion the check was made on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/object.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/kinds.h"
#include "tools/verbs.h"

static void usage(FILE *out)
{
	fputs("usage: bramble scale --replicas N (deployment/NAME... | KIND NAME... | KIND -l SELECTOR | KIND --all)\n"
	      "                     [--current-replicas N] [--resource-version RV] [-n NAMESPACE] [--config FILE]\n"
	      "\n"
	      "Sets the number of replicas of Deployments and ReplicaSets.\n",
	      out);
}

static bool scalable(const struct kind *kind)
{
	return strcmp(kind->name, "Deployment") == 0 || strcmp(kind->name, "ReplicaSet") == 0;
}

static int parse_count(const char *text, long *ret)
{
	char *end;
	long v = strtol(text, &end, 10);
	if (!text[0] || *end || v < 0 || v > 1000000)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* 0 scaled, 1 failed (printed), -1 the server is gone (printed). */
static int scale_one(struct client *client, const struct kind *kind, const cJSON *object, long replicas, long current,
                     const char *resource_version)
{
	struct error err = { 0 };
	char type[KINDS_NAME_MAX];
	kinds_type(kind, type, sizeof(type));
	const char *name = object_name(object), *rv = object_string_at(object, "metadata.resourceVersion");
	long now = cli_item(object, "spec.replicas") ? (long)cli_number(object, "spec.replicas") : 1;
	if (current >= 0 && now != current) {
		fprintf(stderr, "error: Expected replicas to be %ld, was %ld\n", current, now);
		return 1;
	}
	if (resource_version && (!rv || strcmp(rv, resource_version) != 0)) {
		char resource[KINDS_NAME_MAX];
		kinds_resource(kind, resource, sizeof(resource));
		fprintf(stderr,
		        "Error from server (Conflict): Operation cannot be fulfilled on %s \"%s\": the object has been "
		        "modified; please apply your changes to the latest version and try again\n",
		        resource, name);
		return 1;
	}
	cJSON *patch = cJSON_CreateObject();
	if ((current >= 0 || resource_version) && rv)
		cJSON_AddStringToObject(cJSON_AddObjectToObject(patch, "metadata"), "resourceVersion", rv);
	cJSON_AddNumberToObject(cJSON_AddObjectToObject(patch, "spec"), "replicas", (double)replicas);
	int r = cli_object_call(client, CLIENT_PATCH, kind, object_namespace(object), name, NULL, patch, NULL, &err);
	cJSON_Delete(patch);
	if (r < 0) {
		cli_print_error(&err);
		return strstr(err.message, CLI_SERVER_PREFIX) ? 1 : -1;
	}
	printf("%s/%s scaled\n", type, name);
	return 0;
}

int scale_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_REPLICAS, OPT_CURRENT, OPT_RV, OPT_ALL };
	static const struct option long_options[] = {
		{ "replicas", required_argument, NULL, OPT_REPLICAS },
		{ "current-replicas", required_argument, NULL, OPT_CURRENT },
		{ "resource-version", required_argument, NULL, OPT_RV },
		{ "namespace", required_argument, NULL, 'n' },
		{ "selector", required_argument, NULL, 'l' },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *namespace = "default", *labels = NULL, *config = NULL, *resource_version = NULL;
	long replicas = -1, current = -1;
	bool all = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:l:h", long_options, NULL)) != -1) {
		switch (opt) {
		case OPT_REPLICAS:
			if (parse_count(optarg, &replicas) < 0)
				return cli_usage_error(NULL, "--replicas takes a number of replicas, not '%s'", optarg);
			break;
		case OPT_CURRENT:
			if (parse_count(optarg, &current) < 0)
				return cli_usage_error(NULL, "--current-replicas takes a number of replicas, not '%s'",
				                       optarg);
			break;
		case OPT_RV:
			resource_version = optarg;
			break;
		case 'n':
			namespace
			= optarg;
			break;
		case 'l':
			labels = optarg;
			break;
		case OPT_ALL:
			all = true;
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
	if (replicas < 0)
		return cli_usage_error(usage, "required flag(s) \"replicas\" not set");
	struct error err = { 0 };
	struct kinds_selection *selection = xcalloc(1, sizeof(*selection));
	int r = kinds_select(argc - optind, argv + optind, selection, &err);
	bool by_selector = labels || all;
	if (r == 0 && by_selector == (selection->count > 0))
		r = error_set(&err, EINVAL,
		              by_selector ? "names cannot be given together with -l or --all"
		                          : "give what to scale: deployment/NAME, KIND NAME, or KIND -l SELECTOR");
	if (r < 0) {
		free(selection);
		return r == -ENOENT ? cli_fail(&err) : cli_usage_error(usage, "%s", err.message);
	}
	for (size_t i = 0; i <= selection->count; i++) {
		const struct kind *kind = i < selection->count ? selection->kinds[i] : selection->kind;
		if (kind && !scalable(kind)) {
			char resource[KINDS_NAME_MAX];
			kinds_resource(kind, resource, sizeof(resource));
			free(selection);
			fprintf(stderr,
			        "error: cannot scale %s: only deployments and replicasets have replicas to scale\n",
			        resource);
			return CLI_ERROR;
		}
	}
	struct client *client = NULL;
	if (cli_connect(config, &client, &err) < 0) {
		free(selection);
		return cli_fail(&err);
	}
	int status = CLI_OK;
	cJSON *items = cJSON_CreateArray();
	if (by_selector) {
		if (cli_list(client, selection->kind, namespace, labels, NULL, items, NULL, &err) < 0)
			status = cli_fail(&err);
		else if (cJSON_GetArraySize(items) == 0)
			fputs("No resources found\n", stderr);
		const cJSON *object;
		cJSON_ArrayForEach(object, items)
		{
			r = scale_one(client, selection->kind, object, replicas, current, resource_version);
			if (r != 0)
				status = CLI_ERROR;
			if (r < 0)
				break;
		}
	}
	for (size_t i = 0; i < selection->count; i++) {
		cJSON *object = NULL;
		r = cli_object_call(client, CLIENT_GET, selection->kinds[i], namespace, selection->names[i], NULL, NULL,
		                    &object, &err);
		if (r < 0) {
			status = cli_fail(&err);
			if (r != -ENOENT)
				break;
			continue;
		}
		r = scale_one(client, selection->kinds[i], object, replicas, current, resource_version);
		cJSON_Delete(object);
		if (r != 0)
			status = CLI_ERROR;
		if (r < 0)
			break;
	}
	cJSON_Delete(items);
	client_close(client);
	free(selection);
	return status;
}
