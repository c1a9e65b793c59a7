/* `bramble patch KIND NAME | TYPE/NAME -p PATCH [--type merge] [--subresource status]`:
 * a JSON merge patch (RFC 7386) sent as CoAP PATCH, as kubectl patch --type merge does.
 * Strategic merge and JSON patches are Kubernetes' own formats the API server does not
 * take; they are refused by name. */
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
#include "tools/manifest.h"
#include "tools/verbs.h"

static void usage(FILE *out)
{
	fputs("usage: bramble patch KIND NAME | TYPE/NAME -p PATCH [--type merge] [--subresource status]\n"
	      "                     [-n NAMESPACE] [--config FILE]\n"
	      "\n"
	      "Changes an object with a JSON merge patch (JSON or YAML): null removes a field.\n",
	      out);
}

/* The object without what every write changes, to tell whether the patch changed anything. */
static void strip_bookkeeping(cJSON *object)
{
	cJSON *metadata = cJSON_GetObjectItemCaseSensitive(object, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "resourceVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "generation");
}

int patch_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_TYPE, OPT_SUBRESOURCE };
	static const struct option long_options[] = {
		{ "patch", required_argument, NULL, 'p' },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "subresource", required_argument, NULL, OPT_SUBRESOURCE },
		{ "namespace", required_argument, NULL, 'n' },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *namespace = "default", *config = NULL, *text = NULL;
	bool status_subresource = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:n:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'p':
			text = optarg;
			break;
		case OPT_TYPE:
			if (strcmp(optarg, "merge") != 0)
				return cli_usage_error(
				        NULL, "--type %s: Bramble takes JSON merge patches (--type merge)", optarg);
			break;
		case OPT_SUBRESOURCE:
			if (strcmp(optarg, "status") != 0)
				return cli_usage_error(NULL, "--subresource must be status");
			status_subresource = true;
			break;
		case 'n':
			namespace
			= optarg;
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
	if (!text)
		return cli_usage_error(usage, "must specify -p to patch");
	struct error err = { 0 };
	struct kinds_selection *selection = xcalloc(1, sizeof(*selection));
	int r = kinds_select(argc - optind, argv + optind, selection, &err);
	if (r == 0 && selection->count != 1)
		r = error_set(&err, EINVAL, "patch takes one object: KIND NAME or TYPE/NAME");
	if (r < 0) {
		free(selection);
		return r == -ENOENT ? cli_fail(&err) : cli_usage_error(usage, "%s", err.message);
	}
	const struct kind *kind = selection->kinds[0];
	const char *name = selection->names[0];
	free(selection);
	/* The patch may be JSON or YAML, as kubectl reads it. */
	cJSON *patch = NULL;
	if (manifest_parse_value("the patch", text, strlen(text), &patch, &err) < 0)
		return cli_fail(&err);
	if (!cJSON_IsObject(patch)) {
		cJSON_Delete(patch);
		fputs("error: the patch must be a JSON object, like '{\"spec\":{\"replicas\":3}}'\n", stderr);
		return CLI_ERROR;
	}
	struct client *client = NULL;
	if (cli_connect(config, &client, &err) < 0) {
		cJSON_Delete(patch);
		return cli_fail(&err);
	}
	char type[KINDS_NAME_MAX];
	kinds_type(kind, type, sizeof(type));
	cJSON *before = NULL, *after = NULL;
	int status = CLI_OK;
	cleanup_free char *path = kinds_path(kind, kind->namespaced ? namespace : NULL, name);
	cleanup_free char *target = status_subresource ? xasprintf("%s/status", path) : xstrdup(path);
	if (cli_object_call(client, CLIENT_GET, kind, namespace, name, NULL, NULL, &before, &err) < 0 ||
	    cli_call(client, CLIENT_PATCH, target, patch, NULL, &err) < 0 ||
	    /* A write's answer may be cut to fit one datagram: read the object whole. */
	    cli_object_call(client, CLIENT_GET, kind, namespace, name, NULL, NULL, &after, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	strip_bookkeeping(before);
	strip_bookkeeping(after);
	printf("%s/%s patched%s\n", type, name, after && cJSON_Compare(before, after, 1) ? " (no change)" : "");
out:
	cJSON_Delete(patch);
	cJSON_Delete(before);
	cJSON_Delete(after);
	client_close(client);
	return status;
}
