/* `bramble delete`: kubectl's delete, by name, by selector, or from manifests.
 *
 *   bramble delete KIND NAME... | TYPE/NAME... | KIND -l SELECTOR | KIND --all | -f FILE|DIR|-
 *
 * Every object is deleted first (from manifests: Namespaces last, after the objects that
 * the same manifests put in them), then (--wait, on by default as in kubectl) each one is
 * waited for until it is gone: a pod bound to a node stays until its kubelet has stopped
 * it, a namespace until it is empty, an object with finalizers until they are done. The
 * wait follows the object with CoAP Observe; --timeout bounds it (0: no limit).
 * --grace-period N asks the server for gracePeriodSeconds=N (kubectl's rules: 0 becomes 1
 * unless --force; --force alone means 0; --now means 1).
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
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/kinds.h"
#include "tools/manifest.h"
#include "tools/verbs.h"

static void usage(FILE *out)
{
	fputs("usage: bramble delete KIND NAME... | TYPE/NAME... [-n NAMESPACE] [options]\n"
	      "       bramble delete KIND (-l SELECTOR | --all) [-n NAMESPACE | -A] [options]\n"
	      "       bramble delete -f FILE|DIR|- [options]\n"
	      "\n"
	      "options: --wait=true|false (default true: return once the objects are gone), --timeout DURATION,\n"
	      "         --grace-period SECONDS, --force, --now, --ignore-not-found, --cascade=background|\n"
	      "         foreground|orphan, --config FILE\n",
	      out);
}

struct deleted {
	const struct kind *kind;
	char *namespace;
	char *name;
	char *uid;
	bool pending; /* the server marked it (deletionTimestamp) and it is still there */
};

struct delete_context {
	struct client *client;
	bool ignore_not_found;
	long grace;          /* -1: the object's own */
	const char *cascade; /* propagationPolicy, or NULL */
	struct deleted *done;
	size_t done_count;
};

/* 0 deleted (or absent with --ignore-not-found), 1 failed, -1 the server is unreachable. */
static int delete_one(struct delete_context *c, const struct kind *kind, const char *namespace, const char *name,
                      const char *source)
{
	char type[KINDS_NAME_MAX], resource[KINDS_NAME_MAX];
	kinds_type(kind, type, sizeof(type));
	kinds_resource(kind, resource, sizeof(resource));
	struct buffer query = BUFFER_INIT;
	if (c->grace >= 0) {
		char grace[24];
		snprintf(grace, sizeof(grace), "%ld", c->grace);
		cli_query(&query, "gracePeriodSeconds", grace);
	}
	if (c->cascade)
		cli_query(&query, "propagationPolicy", c->cascade);
	struct error err = { 0 };
	cJSON *answer = NULL;
	int r = cli_object_call(c->client, CLIENT_DELETE, kind, namespace, name, query.data ? query.data + 1 : NULL,
	                        NULL, &answer, &err);
	buffer_free(&query);
	if (r == -ENOENT && c->ignore_not_found)
		return 0;
	if (r < 0) {
		bool server = strstr(err.message, CLI_SERVER_PREFIX) != NULL;
		if (source && server) {
			const char *colon = strstr(err.message, "): ");
			fprintf(stderr, "%.*s: error when deleting \"%s\": %s\n",
			        (int)(colon ? colon + 1 - err.message : 0), err.message, source,
			        colon ? colon + 3 : err.message);
		} else {
			cli_print_error(&err);
		}
		return server ? 1 : -1;
	}
	printf("%s \"%s\" deleted\n", type, name);
	fflush(stdout);
	c->done = xrealloc(c->done, (c->done_count + 1) * sizeof(*c->done));
	struct deleted *d = &c->done[c->done_count++];
	const char *uid = object_string_at(answer, "metadata.uid");
	*d = (struct deleted){ kind, namespace ? xstrdup(namespace) : NULL, xstrdup(name), uid ? xstrdup(uid) : NULL,
		               object_string_at(answer, "metadata.deletionTimestamp") != NULL };
	cJSON_Delete(answer);
	return 0;
}

/* Waits for what was deleted and is still there; 0, or the exit code. */
static int wait_for_all(struct delete_context *c, int64_t timeout_ms)
{
	uint64_t deadline = timeout_ms > 0 ? clock_monotonic_ms() + (uint64_t)timeout_ms : 0;
	size_t pending = 0;
	for (size_t i = 0; i < c->done_count; i++)
		pending += c->done[i].pending;
	size_t left = pending;
	for (size_t i = 0; i < c->done_count; i++) {
		struct deleted *d = &c->done[i];
		if (!d->pending)
			continue;
		char type[KINDS_NAME_MAX];
		kinds_type(d->kind, type, sizeof(type));
		cli_progress("waiting for %s/%s to be gone (%zu of %zu left)...", type, d->name, left, pending);
		struct error err = { 0 };
		int r = cli_wait_deleted(c->client, d->kind, d->namespace, d->name, d->uid, deadline, &err);
		if (r < 0)
			return cli_fail(&err);
		left--;
	}
	cli_progress_end();
	return CLI_OK;
}

static bool parse_bool(const char *value, bool *ret)
{
	if (!value || strcmp(value, "true") == 0)
		*ret = true;
	else if (strcmp(value, "false") == 0)
		*ret = false;
	else
		return false;
	return true;
}

int delete_main(int argc, char **argv)
{
	enum {
		OPT_IGNORE = 256,
		OPT_CONFIG,
		OPT_WAIT,
		OPT_TIMEOUT,
		OPT_GRACE,
		OPT_FORCE,
		OPT_NOW,
		OPT_ALL,
		OPT_CASCADE
	};
	static const struct option long_options[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "all-namespaces", no_argument, NULL, 'A' },
		{ "selector", required_argument, NULL, 'l' },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "ignore-not-found", no_argument, NULL, OPT_IGNORE },
		{ "wait", optional_argument, NULL, OPT_WAIT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "grace-period", required_argument, NULL, OPT_GRACE },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "now", no_argument, NULL, OPT_NOW },
		{ "cascade", required_argument, NULL, OPT_CASCADE },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_files files = { 0 };
	const char *config = NULL, *namespace = NULL, *labels = NULL;
	bool wait = true, force = false, now = false, all = false, all_namespaces = false;
	int64_t timeout_ms = 0;
	struct delete_context c = { .grace = -1 };
	struct error err = { 0 };
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:n:Al:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (cli_files_add(&files, optarg, &err) < 0)
				return cli_usage_error(NULL, "%s", err.message);
			break;
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
		case OPT_IGNORE:
			c.ignore_not_found = true;
			break;
		case OPT_WAIT:
			if (!parse_bool(optarg, &wait))
				return cli_usage_error(NULL, "--wait takes true or false, not '%s'", optarg);
			break;
		case OPT_TIMEOUT:
			if (cli_parse_duration(optarg, &timeout_ms, &err) < 0)
				return cli_usage_error(NULL, "--timeout: %s", err.message);
			break;
		case OPT_GRACE: {
			char *end;
			long grace = strtol(optarg, &end, 10);
			if (!optarg[0] || *end || grace < -1 || grace > 100000000)
				return cli_usage_error(
				        NULL,
				        "--grace-period takes a number of seconds (-1: the object's own), not '%s'",
				        optarg);
			c.grace = grace;
			break;
		}
		case OPT_FORCE:
			force = true;
			break;
		case OPT_NOW:
			now = true;
			break;
		case OPT_CASCADE:
			if (strcmp(optarg, "background") == 0 || strcmp(optarg, "true") == 0)
				c.cascade = "Background";
			else if (strcmp(optarg, "foreground") == 0)
				c.cascade = "Foreground";
			else if (strcmp(optarg, "orphan") == 0 || strcmp(optarg, "false") == 0)
				c.cascade = "Orphan";
			else
				return cli_usage_error(
				        NULL, "--cascade must be \"background\", \"foreground\", or \"orphan\"");
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
	if (now && c.grace >= 0)
		return cli_usage_error(NULL, "--now and --grace-period cannot be specified together");
	if (now)
		c.grace = 1;
	if (force && c.grace < 0)
		c.grace = 0;
	else if (c.grace == 0 && !force)
		c.grace = 1; /* kubectl: an immediate deletion needs --force */
	struct kinds_selection *selection = xcalloc(1, sizeof(*selection));
	int status = CLI_OK;
	struct manifest manifest = { 0 };
	cJSON *items = cJSON_CreateArray();
	bool by_selector = labels || all;
	if (files.count > 0) {
		if (optind < argc || by_selector) {
			status = cli_usage_error(usage, "names, -l and --all cannot be given together with -f");
			goto out;
		}
		if (cli_files_read(&files, &manifest, &err) < 0) {
			status = cli_fail(&err);
			goto out;
		}
	} else {
		int r = kinds_select(argc - optind, argv + optind, selection, &err);
		if (r == -ENOENT) {
			status = cli_fail(&err);
			goto out;
		}
		if (r < 0) {
			status = cli_usage_error(usage, "%s", err.message);
			goto out;
		}
		if (by_selector && selection->count > 0) {
			status = cli_usage_error(usage, "names cannot be given together with -l or --all");
			goto out;
		}
		if (!by_selector && selection->count == 0) {
			status = cli_usage_error(usage,
			                         "resource(s) were provided, but no name was specified: give names, "
			                         "-l SELECTOR or --all");
			goto out;
		}
	}
	if (all_namespaces && !by_selector) {
		status = cli_usage_error(usage, "-A deletes by -l or --all only");
		goto out;
	}
	if (cli_connect(config, &c.client, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	if (force)
		fputs("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
		      "terminated. The resource may continue to run on the cluster indefinitely.\n",
		      stderr);
	const char *default_namespace = namespace ? namespace : "default";
	if (by_selector) {
		if (cli_list(c.client, selection->kind, all_namespaces ? NULL : default_namespace, labels, NULL, items,
		             NULL, &err) < 0) {
			status = cli_fail(&err);
			goto out;
		}
		if (cJSON_GetArraySize(items) == 0)
			fputs("No resources found\n", stderr);
		const cJSON *object;
		cJSON_ArrayForEach(object, items)
		{
			int r = delete_one(&c, selection->kind, object_namespace(object), object_name(object), NULL);
			if (r != 0)
				status = CLI_ERROR;
			if (r < 0)
				goto out;
		}
	}
	for (size_t i = 0; !by_selector && i < selection->count; i++) {
		int r = delete_one(&c, selection->kinds[i], default_namespace, selection->names[i], NULL);
		if (r != 0)
			status = CLI_ERROR;
		if (r < 0)
			goto out;
	}
	/* Namespaces after everything else: what the same manifests put in them is gone by then,
	 * so they can go at once. */
	for (size_t k = 0; k < 2 * manifest.count; k++) {
		struct manifest_document *d = &manifest.documents[k % manifest.count];
		struct cli_target target;
		if (cli_document_target(d, namespace, &target, &err) < 0) {
			if (k < manifest.count) {
				cli_print_error(&err);
				status = CLI_ERROR;
			}
			continue;
		}
		if ((strcmp(target.kind->name, "Namespace") == 0) != (k >= manifest.count))
			continue;
		int r = delete_one(&c, target.kind, target.namespace, target.name, d->source);
		if (r != 0)
			status = CLI_ERROR;
		if (r < 0)
			goto out;
	}
	if (wait) {
		int r = wait_for_all(&c, timeout_ms);
		if (r != CLI_OK)
			status = r;
	}
out:
	for (size_t i = 0; i < c.done_count; i++) {
		free(c.done[i].namespace);
		free(c.done[i].name);
		free(c.done[i].uid);
	}
	free(c.done);
	client_close(c.client);
	cJSON_Delete(items);
	manifest_free(&manifest);
	free(selection);
	return status;
}
