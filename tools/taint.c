/* `bramble taint nodes NAME... | node/NAME | nodes (-l SELECTOR | --all) KEY[=VALUE]:EFFECT...
 * KEY[:EFFECT]-... [--overwrite]` (see tools/taint.h). The Node's taints are replaced by a
 * JSON merge patch carrying the resourceVersion they were computed from. */
#include "tools/taint.h"

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

bool taint_is_spec(const char *arg)
{
	size_t n = strlen(arg);
	return strchr(arg, ':') || strchr(arg, '=') || (n > 1 && arg[n - 1] == '-');
}

static int check_effect(const char *effect, struct error *err)
{
	if (strcmp(effect, "NoSchedule") != 0 && strcmp(effect, "PreferNoSchedule") != 0 &&
	    strcmp(effect, "NoExecute") != 0)
		return error_set(err, EINVAL, "invalid taint effect: %s, unsupported taint effect", effect);
	return 0;
}

static void taint_text(const struct taint *t, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s%s%s", t->key, t->value[0] ? "=" : "", t->value, t->effect[0] ? ":" : "", t->effect);
}

/* "key[=value][:effect]" */
static int parse_one(const char *spec, size_t length, bool removal, struct taint *ret, struct error *err)
{
	memset(ret, 0, sizeof(*ret));
	char text[TAINT_TEXT_MAX * 2];
	if (length >= sizeof(text))
		return error_set(err, EINVAL, "invalid taint spec: %s: too long", spec);
	memcpy(text, spec, length);
	text[length] = '\0';
	char *colon = strchr(text, ':');
	if (colon) {
		*colon = '\0';
		if (strchr(colon + 1, ':'))
			return error_set(err, EINVAL, "invalid taint spec: %s", spec);
		int r = check_effect(colon + 1, err);
		if (r < 0)
			return r;
		snprintf(ret->effect, sizeof(ret->effect), "%s", colon + 1);
	}
	char *equals = strchr(text, '=');
	if (equals) {
		*equals = '\0';
		if (removal || !colon || strchr(equals + 1, '='))
			return error_set(err, EINVAL, "invalid taint spec: %s", spec);
		const char *problem = object_label_value_problem(equals + 1);
		if (problem)
			return error_set(err, EINVAL, "invalid taint spec: %s, %s", spec, problem);
		snprintf(ret->value, sizeof(ret->value), "%s", equals + 1);
	}
	const char *problem = object_label_key_problem(text);
	if (problem)
		return error_set(err, EINVAL, "invalid taint spec: %s, %s", spec, problem);
	snprintf(ret->key, sizeof(ret->key), "%s", text);
	if (!removal && !ret->effect[0])
		return error_set(err, EINVAL, "invalid taint spec: %s", spec);
	return 0;
}

int taint_parse(int count, char **args, struct taint_changes *ret, struct error *err)
{
	memset(ret, 0, sizeof(*ret));
	for (int i = 0; i < count; i++) {
		size_t n = strlen(args[i]);
		bool removal = n > 1 && args[i][n - 1] == '-';
		if ((removal ? ret->remove_count : ret->add_count) >= TAINT_MAX)
			return error_set(err, E2BIG, "at most %d taints at once", TAINT_MAX);
		struct taint *t = removal ? &ret->remove[ret->remove_count] : &ret->add[ret->add_count];
		int r = parse_one(args[i], removal ? n - 1 : n, removal, t, err);
		if (r < 0)
			return r;
		if (removal) {
			ret->remove_count++;
			continue;
		}
		for (size_t k = 0; k < ret->add_count; k++)
			if (strcmp(ret->add[k].key, t->key) == 0 && strcmp(ret->add[k].effect, t->effect) == 0)
				return error_set(err, EINVAL, "duplicated taints with the same key and effect: %s:%s",
				                 t->key, t->effect);
		ret->add_count++;
	}
	for (size_t i = 0; i < ret->remove_count; i++)
		for (size_t k = 0; k < ret->add_count; k++)
			if (strcmp(ret->remove[i].key, ret->add[k].key) == 0 &&
			    (!ret->remove[i].effect[0] || strcmp(ret->remove[i].effect, ret->add[k].effect) == 0))
				return error_set(err, EINVAL,
				                 "can not both modify and remove the following taint(s) in the same "
				                 "command: %s",
				                 ret->add[k].key);
	if (ret->add_count + ret->remove_count == 0)
		return error_set(err, EINVAL, "at least one taint update is required");
	return 0;
}

static cJSON *taint_json(const struct taint *t)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "key", t->key);
	if (t->value[0])
		cJSON_AddStringToObject(o, "value", t->value);
	cJSON_AddStringToObject(o, "effect", t->effect);
	return o;
}

static bool matches(const cJSON *taint, const char *key, const char *effect)
{
	return strcmp(cli_string(taint, "key"), key) == 0 &&
	       (!effect[0] || strcmp(cli_string(taint, "effect"), effect) == 0);
}

int taint_apply(const char *node_name, const cJSON *taints, const struct taint_changes *changes, bool overwrite,
                cJSON **ret_taints, enum taint_outcome *ret_outcome, struct error *err)
{
	if (!overwrite) {
		struct buffer existing = BUFFER_INIT;
		for (size_t i = 0; i < changes->add_count; i++) {
			const cJSON *old;
			cJSON_ArrayForEach(old, taints)
			{
				if (matches(old, changes->add[i].key, changes->add[i].effect))
					buffer_printf(&existing, "%s%s", existing.length ? "," : "",
					              changes->add[i].key);
			}
		}
		if (existing.length) {
			int r = error_set(
			        err, EEXIST,
			        "node %s already has %s taint(s) with same effect(s) and --overwrite is false",
			        node_name, existing.data);
			buffer_free(&existing);
			return r;
		}
	}
	/* kubectl: the new taints, then the old ones not replaced by one of them. */
	cJSON *result = cJSON_CreateArray();
	for (size_t i = 0; i < changes->add_count; i++)
		cJSON_AddItemToArray(result, taint_json(&changes->add[i]));
	int old_count = 0;
	const cJSON *old;
	cJSON_ArrayForEach(old, taints)
	{
		old_count++;
		bool replaced = false;
		for (size_t i = 0; i < changes->add_count && !replaced; i++)
			replaced = matches(old, changes->add[i].key, changes->add[i].effect);
		if (!replaced)
			cJSON_AddItemToArray(result, cJSON_Duplicate(old, 1));
	}
	bool added = old_count != cJSON_GetArraySize(result), removed = false;
	struct buffer missing = BUFFER_INIT;
	for (size_t i = 0; i < changes->remove_count; i++) {
		const struct taint *t = &changes->remove[i];
		removed = false;
		for (cJSON *item = result->child, *next; item; item = next) {
			next = item->next;
			if (matches(item, t->key, t->effect)) {
				cJSON_Delete(cJSON_DetachItemViaPointer(result, item));
				removed = true;
			}
		}
		if (!removed) {
			char text[TAINT_TEXT_MAX * 2];
			taint_text(t, text, sizeof(text));
			buffer_printf(&missing, "%staint \"%s\" not found", missing.length ? ", " : "", text);
		}
	}
	*ret_outcome = (added && removed) || overwrite ? TAINT_MODIFIED : added ? TAINT_TAINTED : TAINT_UNTAINTED;
	*ret_taints = result;
	int r = 0;
	if (missing.length)
		r = error_set(err, ENOENT, "%s", missing.data);
	buffer_free(&missing);
	return r;
}

/* --- the verb -------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fputs("usage: bramble taint nodes NAME... | node/NAME... | nodes (-l SELECTOR | --all)\n"
	      "                     KEY[=VALUE]:EFFECT... KEY[:EFFECT]-... [--overwrite] [--config FILE]\n"
	      "\n"
	      "EFFECT is NoSchedule, PreferNoSchedule or NoExecute; KEY- removes every taint of KEY.\n",
	      out);
}

int taint_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_OVERWRITE, OPT_ALL };
	static const struct option long_options[] = {
		{ "selector", required_argument, NULL, 'l' },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "overwrite", no_argument, NULL, OPT_OVERWRITE },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *labels = NULL, *config = NULL;
	bool all = false, overwrite = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "l:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'l':
			labels = optarg;
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_OVERWRITE:
			overwrite = true;
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
	int count = argc - optind, resources = 0, specs = 0;
	char **resource_args = xcalloc((size_t)count + 1, sizeof(char *));
	char **spec_args = xcalloc((size_t)count + 1, sizeof(char *));
	for (int i = 0; i < count; i++) {
		char *arg = argv[optind + i];
		if (taint_is_spec(arg) && !(i == 0 && strchr(arg, '/')))
			spec_args[specs++] = arg;
		else
			resource_args[resources++] = arg;
	}
	struct error err = { 0 };
	struct kinds_selection *selection = xcalloc(1, sizeof(*selection));
	struct taint_changes *changes = xcalloc(1, sizeof(*changes));
	struct client *client = NULL;
	cJSON *nodes = cJSON_CreateArray();
	int status = CLI_OK;
	int r = kinds_select(resources, resource_args, selection, &err);
	if (r == 0) {
		for (size_t i = 0; i < selection->count; i++)
			if (strcmp(selection->kinds[i]->name, "Node") != 0)
				r = error_set(&err, EINVAL, "taints apply to nodes only");
		if (selection->kind && strcmp(selection->kind->name, "Node") != 0)
			r = error_set(&err, EINVAL, "taints apply to nodes only");
	}
	if (r == 0 && (labels || all) == (selection->count > 0))
		r = error_set(&err, EINVAL,
		              (labels || all) ? "names cannot be given together with -l or --all"
		                              : "give the nodes: nodes NAME..., node/NAME, or -l/--all");
	if (r < 0) {
		status = r == -ENOENT ? cli_fail(&err) : cli_usage_error(usage, "%s", err.message);
		goto out;
	}
	if (taint_parse(specs, spec_args, changes, &err) < 0) {
		status = specs == 0 ? cli_usage_error(usage, "%s", err.message) : cli_fail(&err);
		goto out;
	}
	if (cli_connect(config, &client, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	const struct kind *node_kind = kinds_resolve("nodes");
	if (labels || all) {
		if (cli_list(client, node_kind, NULL, labels, NULL, nodes, NULL, &err) < 0) {
			status = cli_fail(&err);
			goto out;
		}
	} else {
		for (size_t i = 0; i < selection->count; i++) {
			cJSON *node = NULL;
			if (cli_object_call(client, CLIENT_GET, node_kind, NULL, selection->names[i], NULL, NULL, &node,
			                    &err) < 0) {
				status = cli_fail(&err);
				goto out;
			}
			cJSON_AddItemToArray(nodes, node);
		}
	}
	const cJSON *node;
	cJSON_ArrayForEach(node, nodes)
	{
		const char *name = object_name(node);
		cJSON *taints = NULL;
		enum taint_outcome outcome;
		r = taint_apply(name, cli_item(node, "spec.taints"), changes, overwrite, &taints, &outcome, &err);
		if (r < 0) {
			cJSON_Delete(taints);
			status = cli_fail(&err);
			continue; /* kubectl changes nothing on a node where a removal failed */
		}
		cJSON *patch = cJSON_CreateObject();
		cJSON_AddStringToObject(cJSON_AddObjectToObject(patch, "metadata"), "resourceVersion",
		                        cli_string(node, "metadata.resourceVersion"));
		cJSON *spec = cJSON_AddObjectToObject(patch, "spec");
		if (cJSON_GetArraySize(taints) == 0) {
			cJSON_Delete(taints);
			cJSON_AddNullToObject(spec, "taints");
		} else {
			cJSON_AddItemToObject(spec, "taints", taints);
		}
		r = cli_object_call(client, CLIENT_PATCH, node_kind, NULL, name, NULL, patch, NULL, &err);
		cJSON_Delete(patch);
		if (r < 0) {
			status = cli_fail(&err);
			continue;
		}
		static const char *const outcomes[] = { "tainted", "untainted", "modified" };
		printf("node/%s %s\n", name, outcomes[outcome]);
	}
out:
	cJSON_Delete(nodes);
	client_close(client);
	free(changes);
	free(selection);
	free(resource_args);
	free(spec_args);
	return status;
}
