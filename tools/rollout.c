/* `bramble rollout status|history|undo|restart|pause|resume` for Deployments, and the
 * rollout helpers `describe` shares (see tools/rollout.h).
 *
 * status follows the Deployment with CoAP Observe and judges each version of it as
 * kubectl's status viewer does; the Deployment controller writes the status it reads
 * (observedGeneration, updated/available replicas, the Progressing condition). undo,
 * restart, pause and resume are writes of the Deployment: undo a PUT carrying the
 * resourceVersion it was computed from (a concurrent change makes it fail rather than be
 * overwritten), the others JSON merge patches.
 */
#include "tools/rollout.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/client.h"
#include "core/object.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/describe.h"
#include "tools/kinds.h"
#include "tools/tabwriter.h"
#include "tools/verbs.h"

/* --- helpers ----------------------------------------------------------------------------- */

long long rollout_revision(const cJSON *object)
{
	const cJSON *annotations = cli_item(object, "metadata.annotations");
	const char *text =
	        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(annotations, ROLLOUT_REVISION_ANNOTATION));
	if (!text || !text[0])
		return 0;
	char *end;
	long long v = strtoll(text, &end, 10);
	return *end || v < 0 ? 0 : v;
}

int rollout_replicasets(struct client *client, const cJSON *deployment, cJSON *ret_items, struct error *err)
{
	const char *uid = object_string_at(deployment, "metadata.uid");
	cJSON *all = cJSON_CreateArray();
	int r = cli_list(client, kinds_resolve("replicasets"), object_namespace(deployment), NULL, NULL, all, NULL,
	                 err);
	cJSON *rs;
	while (r == 0 && (rs = all->child)) {
		cJSON_DetachItemViaPointer(all, rs);
		const cJSON *owner = cli_controller_of(rs);
		if (uid && owner && strcmp(cli_string(owner, "uid"), uid) == 0)
			cJSON_AddItemToArray(ret_items, rs);
		else
			cJSON_Delete(rs);
	}
	cJSON_Delete(all);
	return r;
}

static cJSON *without_hash(const cJSON *template)
{
	cJSON *copy = cJSON_Duplicate(template, 1);
	cJSON *labels = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(copy, "metadata"), "labels");
	cJSON_DeleteItemFromObjectCaseSensitive(labels, ROLLOUT_HASH_LABEL);
	if (labels && !labels->child)
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(copy, "metadata"), "labels");
	return copy;
}

bool rollout_template_equal(const cJSON *a, const cJSON *b)
{
	cJSON *x = without_hash(a), *y = without_hash(b);
	bool equal = (!x && !y) || (x && y && cJSON_Compare(x, y, 1));
	cJSON_Delete(x);
	cJSON_Delete(y);
	return equal;
}

const cJSON *rollout_new_replicaset(const cJSON *deployment, const cJSON *replicasets)
{
	const cJSON *template = cli_item(deployment, "spec.template"), *found = NULL, *rs;
	cJSON_ArrayForEach(rs, replicasets)
	{
		if (!rollout_template_equal(cli_item(rs, "spec.template"), template))
			continue;
		if (!found || strcmp(cli_string(rs, "metadata.creationTimestamp"),
		                     cli_string(found, "metadata.creationTimestamp")) < 0)
			found = rs;
	}
	return found;
}

static const cJSON *condition(const cJSON *object, const char *type)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, cli_item(object, "status.conditions"))
	{
		if (strcmp(cli_string(c, "type"), type) == 0)
			return c;
	}
	return NULL;
}

int rollout_status(const cJSON *deployment, long long revision, char *message, size_t size, bool *ret_done,
                   struct error *err)
{
	const char *name = cli_string(deployment, "metadata.name");
	*ret_done = false;
	if (revision > 0) {
		long long current = rollout_revision(deployment);
		if (current == 0)
			return error_set(err, EINVAL, "cannot get the revision of deployment \"%s\"", name);
		if (current != revision)
			return error_set(err, EINVAL,
			                 "desired revision (%lld) is different from the running revision (%lld)",
			                 revision, current);
	}
	long long generation = cli_number(deployment, "metadata.generation");
	if (!cli_item(deployment, "status.observedGeneration") ||
	    generation > cli_number(deployment, "status.observedGeneration")) {
		snprintf(message, size, "Waiting for deployment spec update to be observed...");
		return 0;
	}
	const cJSON *progressing = condition(deployment, "Progressing");
	if (progressing && strcmp(cli_string(progressing, "reason"), "ProgressDeadlineExceeded") == 0)
		return error_set(err, EINVAL, "deployment \"%s\" exceeded its progress deadline", name);
	long long replicas = cli_item(deployment, "spec.replicas") ? cli_number(deployment, "spec.replicas") : 1;
	long long updated = cli_number(deployment, "status.updatedReplicas");
	long long total = cli_number(deployment, "status.replicas");
	long long available = cli_number(deployment, "status.availableReplicas");
	if (updated < replicas)
		snprintf(message, size,
		         "Waiting for deployment \"%s\" rollout to finish: %lld out of %lld new replicas have been "
		         "updated...",
		         name, updated, replicas);
	else if (total > updated)
		snprintf(
		        message, size,
		        "Waiting for deployment \"%s\" rollout to finish: %lld old replicas are pending termination...",
		        name, total - updated);
	else if (available < updated)
		snprintf(message, size,
		         "Waiting for deployment \"%s\" rollout to finish: %lld of %lld updated replicas are "
		         "available...",
		         name, available, updated);
	else {
		snprintf(message, size, "deployment \"%s\" successfully rolled out", name);
		*ret_done = true;
	}
	return 0;
}

int rollout_find_revision(const cJSON *deployment, const cJSON *replicasets, long long to_revision,
                          const cJSON **ret_replicaset, struct error *err)
{
	const cJSON *latest = NULL, *previous = NULL, *rs;
	long long latest_revision = -1, previous_revision = -1;
	cJSON_ArrayForEach(rs, replicasets)
	{
		long long v = rollout_revision(rs);
		if (v <= 0)
			continue;
		if (to_revision > 0 && v == to_revision) {
			*ret_replicaset = rs;
			return 0;
		}
		if (latest_revision < v) {
			previous_revision = latest_revision;
			previous = latest;
			latest_revision = v;
			latest = rs;
		} else if (previous_revision < v) {
			previous_revision = v;
			previous = rs;
		}
	}
	if (to_revision > 0)
		return error_set(err, ENOENT, "unable to find specified revision %lld in history", to_revision);
	if (!previous)
		return error_set(err, ENOENT, "no rollout history found for deployment \"%s\"",
		                 cli_string(deployment, "metadata.name"));
	*ret_replicaset = previous;
	return 0;
}

static const char *const skipped_annotations[] = {
	"kubectl.kubernetes.io/last-applied-configuration",
	ROLLOUT_REVISION_ANNOTATION,
	"deployment.kubernetes.io/revision-history",
	"deployment.kubernetes.io/desired-replicas",
	"deployment.kubernetes.io/max-replicas",
	"deprecated.deployment.rollback.to",
};

static bool skipped(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(skipped_annotations); i++)
		if (strcmp(key, skipped_annotations[i]) == 0)
			return true;
	return false;
}

cJSON *rollout_undo(const cJSON *deployment, const cJSON *replicaset)
{
	cJSON *result = cJSON_Duplicate(deployment, 1);
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(result, "spec");
	cJSON_DeleteItemFromObjectCaseSensitive(spec, "template");
	cJSON_AddItemToObject(spec, "template", without_hash(cli_item(replicaset, "spec.template")));
	cJSON *annotations = cJSON_CreateObject();
	const cJSON *item;
	cJSON_ArrayForEach(item, cli_item(deployment, "metadata.annotations"))
	{
		if (skipped(item->string))
			cJSON_AddItemToObject(annotations, item->string, cJSON_Duplicate(item, 1));
	}
	cJSON_ArrayForEach(item, cli_item(replicaset, "metadata.annotations"))
	{
		if (!skipped(item->string))
			cJSON_AddItemToObject(annotations, item->string, cJSON_Duplicate(item, 1));
	}
	cJSON *metadata = object_metadata(result);
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "annotations");
	cJSON_AddItemToObject(metadata, "annotations", annotations);
	return result;
}

/* --- the verb ------------------------------------------------------------------------------ */

static void usage(FILE *out)
{
	fputs("usage: bramble rollout SUBCOMMAND deployment/NAME | deployment NAME [-n NAMESPACE] [--config FILE]\n"
	      "\n"
	      "  status   [-w=true|false] [--timeout DURATION] [--revision N]   wait until the rollout is done\n"
	      "  history  [--revision N]                                         the revisions, or one's template\n"
	      "  undo     [--to-revision N]                                      back to the previous (or that) "
	      "revision\n"
	      "  restart                                                         new pods for the same template\n"
	      "  pause | resume                                                  stop or go on rolling out changes\n",
	      out);
}

struct rollout_target {
	struct client *client;
	const struct kind *kind;
	const char *namespace;
	const char *name;
	char type[KINDS_NAME_MAX];     /* "deployment.apps" */
	char resource[KINDS_NAME_MAX]; /* "deployments.apps" */
};

struct status_watch {
	long long revision;
	char last[ROLLOUT_MESSAGE_MAX];
	struct error *err;
	const char *name;
};

static int on_deployment(const cJSON *deployment, void *data)
{
	struct status_watch *w = data;
	if (!deployment)
		return error_set(w->err, ENOENT, "deployment \"%s\" was deleted while its rollout was watched",
		                 w->name);
	char message[ROLLOUT_MESSAGE_MAX];
	bool done;
	int r = rollout_status(deployment, w->revision, message, sizeof(message), &done, w->err);
	if (r < 0)
		return r;
	if (done) {
		cli_progress_end();
		printf("%s\n", message);
		return 1;
	}
	if (strcmp(message, w->last) != 0) {
		cli_progress("%s", message);
		snprintf(w->last, sizeof(w->last), "%s", message);
	}
	return 0;
}

static int status(struct rollout_target *t, bool watch, int64_t timeout_ms, long long revision)
{
	struct error err = { 0 };
	cJSON *deployment = NULL;
	if (cli_object_call(t->client, CLIENT_GET, t->kind, t->namespace, t->name, NULL, NULL, &deployment, &err) < 0)
		return cli_fail(&err);
	char message[ROLLOUT_MESSAGE_MAX];
	bool done;
	int r = rollout_status(deployment, revision, message, sizeof(message), &done, &err);
	cJSON_Delete(deployment);
	if (r < 0)
		return cli_fail(&err);
	if (done || !watch) {
		printf("%s\n", message);
		return CLI_OK;
	}
	struct status_watch w = { .revision = revision, .err = &err, .name = t->name };
	uint64_t deadline = timeout_ms > 0 ? clock_monotonic_ms() + (uint64_t)timeout_ms : 0;
	r = cli_follow(t->client, t->kind, t->namespace, t->name, deadline, on_deployment, &w, &err);
	if (r < 0)
		return cli_fail(&err);
	return CLI_OK;
}

static int compare_revisions(const void *a, const void *b)
{
	long long x = rollout_revision(*(const cJSON *const *)a), y = rollout_revision(*(const cJSON *const *)b);
	return x < y ? -1 : x > y;
}

static int history(struct rollout_target *t, const cJSON *deployment, const cJSON *replicasets, long long revision)
{
	size_t count = 0;
	const cJSON *rs;
	cJSON_ArrayForEach(rs, replicasets)
	{
		if (rollout_revision(rs) > 0)
			count++;
	}
	const cJSON **sorted = xcalloc(count + 1, sizeof(*sorted));
	count = 0;
	cJSON_ArrayForEach(rs, replicasets)
	{
		if (rollout_revision(rs) > 0)
			sorted[count++] = rs;
	}
	qsort(sorted, count, sizeof(*sorted), compare_revisions);
	(void)deployment;
	struct buffer out = BUFFER_INIT;
	int status = CLI_OK;
	if (revision > 0) {
		const cJSON *found = NULL;
		for (size_t i = 0; i < count; i++)
			if (rollout_revision(sorted[i]) == revision)
				found = sorted[i];
		if (!found) {
			fprintf(stderr, "error: unable to find the specified revision\n");
			status = CLI_ERROR;
			goto out;
		}
		cJSON *template = cJSON_Duplicate(cli_item(found, "spec.template"), 1);
		const char *cause = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		        cli_item(found, "metadata.annotations"), ROLLOUT_CHANGE_CAUSE_ANNOTATION));
		if (cause) {
			cJSON *metadata = object_metadata(template);
			cJSON *annotations = cJSON_GetObjectItemCaseSensitive(metadata, "annotations");
			if (!cJSON_IsObject(annotations))
				annotations = cJSON_AddObjectToObject(metadata, "annotations");
			cJSON_DeleteItemFromObjectCaseSensitive(annotations, ROLLOUT_CHANGE_CAUSE_ANNOTATION);
			cJSON_AddStringToObject(annotations, ROLLOUT_CHANGE_CAUSE_ANNOTATION, cause);
		}
		buffer_printf(&out, "%s/%s with revision #%lld\n", t->type, t->name, revision);
		describe_pod_template(template, &out);
		cJSON_Delete(template);
		goto out;
	}
	buffer_printf(&out, "%s/%s \n", t->type, t->name);
	if (count == 0) {
		buffer_append_string(&out, "No rollout history found.\n");
		goto out;
	}
	struct tabwriter w;
	tabwriter_init(&w, 0, 2, false);
	tabwriter_write(&w, "REVISION\tCHANGE-CAUSE\n");
	for (size_t i = 0; i < count; i++) {
		const char *cause = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		        cli_item(sorted[i], "metadata.annotations"), ROLLOUT_CHANGE_CAUSE_ANNOTATION));
		tabwriter_printf(&w, "%lld\t%s\n", rollout_revision(sorted[i]), cause && cause[0] ? cause : "<none>");
	}
	tabwriter_flush(&w, &out);
	tabwriter_free(&w);
	buffer_append_string(&out, "\n");
out:
	fputs(out.data ? out.data : "", stdout);
	buffer_free(&out);
	free(sorted);
	return status;
}

static int undo(struct rollout_target *t, const cJSON *deployment, const cJSON *replicasets, long long to_revision)
{
	struct error err = { 0 };
	const cJSON *rs = NULL;
	if (rollout_find_revision(deployment, replicasets, to_revision, &rs, &err) < 0)
		return cli_fail(&err);
	if (cJSON_IsTrue(cli_item(deployment, "spec.paused"))) {
		fprintf(stderr,
		        "error: you cannot rollback a paused deployment; resume it first with 'bramble rollout resume "
		        "%s/%s' and try again\n",
		        t->type, t->name);
		return CLI_ERROR;
	}
	long long revision = rollout_revision(rs);
	if (rollout_template_equal(cli_item(rs, "spec.template"), cli_item(deployment, "spec.template"))) {
		printf("%s/%s skipped rollback (current template already matches revision %lld)\n", t->type, t->name,
		       revision);
		return CLI_OK;
	}
	cJSON *rolled_back = rollout_undo(deployment, rs);
	int r = cli_object_call(t->client, CLIENT_PUT, t->kind, t->namespace, t->name, NULL, rolled_back, NULL, &err);
	cJSON_Delete(rolled_back);
	if (r < 0)
		return cli_fail(&err);
	printf("%s/%s rolled back\n", t->type, t->name);
	return CLI_OK;
}

/* restart, pause, resume: a merge patch, with the resourceVersion the check was made on. */
static int patch(struct rollout_target *t, const cJSON *deployment, const char *subcommand)
{
	struct error err = { 0 };
	bool paused = cJSON_IsTrue(cli_item(deployment, "spec.paused"));
	cJSON *change = cJSON_CreateObject();
	cJSON *metadata = cJSON_AddObjectToObject(change, "metadata");
	cJSON_AddStringToObject(metadata, "resourceVersion", cli_string(deployment, "metadata.resourceVersion"));
	cJSON *spec = cJSON_AddObjectToObject(change, "spec");
	const char *done;
	int status = CLI_OK;
	if (strcmp(subcommand, "restart") == 0) {
		if (paused) {
			fputs("error: can't restart paused deployment (run rollout resume first)\n", stderr);
			status = CLI_ERROR;
			goto out;
		}
		char now[32];
		time_t t_now = time(NULL);
		struct tm tm;
		strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S%z", localtime_r(&t_now, &tm));
		/* RFC 3339 wants the zone as +hh:mm. */
		size_t n = strlen(now);
		if (n > 5 && (now[n - 5] == '+' || now[n - 5] == '-')) {
			memmove(now + n - 1, now + n - 2, 3);
			now[n - 2] = ':';
		}
		cJSON *template_metadata =
		        cJSON_AddObjectToObject(cJSON_AddObjectToObject(spec, "template"), "metadata");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(template_metadata, "annotations"),
		                        ROLLOUT_RESTARTED_AT_ANNOTATION, now);
		done = "restarted";
	} else if (strcmp(subcommand, "pause") == 0) {
		if (paused) {
			fprintf(stderr, "error: %s \"%s\" is already paused\n", t->resource, t->name);
			status = CLI_ERROR;
			goto out;
		}
		cJSON_AddTrueToObject(spec, "paused");
		done = "paused";
	} else {
		if (!paused) {
			fprintf(stderr, "error: %s \"%s\" is not paused\n", t->resource, t->name);
			status = CLI_ERROR;
			goto out;
		}
		cJSON_AddNullToObject(spec, "paused");
		done = "resumed";
	}
	if (cli_object_call(t->client, CLIENT_PATCH, t->kind, t->namespace, t->name, NULL, change, NULL, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	printf("%s/%s %s\n", t->type, t->name, done);
out:
	cJSON_Delete(change);
	return status;
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

static int parse_revision(const char *text, long long *ret)
{
	char *end;
	long long v = strtoll(text, &end, 10);
	if (!text[0] || *end || v < 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

int rollout_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_TIMEOUT, OPT_REVISION, OPT_TO_REVISION };
	static const struct option long_options[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "revision", required_argument, NULL, OPT_REVISION },
		{ "to-revision", required_argument, NULL, OPT_TO_REVISION },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	const char *subcommand = argv[1];
	static const char *const subcommands[] = { "status", "history", "undo", "restart", "pause", "resume" };
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
		known |= strcmp(subcommand, subcommands[i]) == 0;
	if (!known)
		return cli_usage_error(usage, "unknown rollout subcommand '%s'", subcommand);
	const char *namespace = "default", *config = NULL;
	bool watch = true;
	int64_t timeout_ms = 0;
	long long revision = 0, to_revision = 0;
	struct error err = { 0 };
	int opt;
	optind = 1;
	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, "n:w::h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			namespace
			= optarg;
			break;
		case 'w':
			if (!parse_bool(optarg && optarg[0] == '=' ? optarg + 1 : optarg, &watch))
				return cli_usage_error(NULL, "--watch takes true or false, not '%s'", optarg);
			break;
		case OPT_TIMEOUT:
			if (cli_parse_duration(optarg, &timeout_ms, &err) < 0)
				return cli_usage_error(NULL, "--timeout: %s", err.message);
			break;
		case OPT_REVISION:
			if (parse_revision(optarg, &revision) < 0)
				return cli_usage_error(NULL, "--revision takes a revision number, not '%s'", optarg);
			break;
		case OPT_TO_REVISION:
			if (parse_revision(optarg, &to_revision) < 0)
				return cli_usage_error(NULL, "--to-revision takes a revision number, not '%s'", optarg);
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
	struct kinds_selection *selection = xcalloc(1, sizeof(*selection));
	int r = kinds_select(argc - optind, argv + optind, selection, &err);
	if (r == 0 && selection->count != 1)
		r = error_set(&err, EINVAL, "rollout %s takes one deployment: deployment/NAME or deployment NAME",
		              subcommand);
	if (r < 0) {
		free(selection);
		return r == -ENOENT ? cli_fail(&err) : cli_usage_error(usage, "%s", err.message);
	}
	struct rollout_target t = { .kind = selection->kinds[0], .namespace = namespace, .name = selection->names[0] };
	free(selection);
	kinds_type(t.kind, t.type, sizeof(t.type));
	kinds_resource(t.kind, t.resource, sizeof(t.resource));
	if (strcmp(t.kind->name, "Deployment") != 0) {
		fprintf(stderr, "error: no %s has been implemented for %s (Bramble rolls out Deployments)\n",
		        strcmp(subcommand, "status") == 0 ? "status viewer" : "rollout support", t.resource);
		return CLI_ERROR;
	}
	if (cli_connect(config, &t.client, &err) < 0)
		return cli_fail(&err);
	int status_code;
	if (strcmp(subcommand, "status") == 0) {
		status_code = status(&t, watch, timeout_ms, revision);
		client_close(t.client);
		return status_code;
	}
	cJSON *deployment = NULL, *replicasets = cJSON_CreateArray();
	if (cli_object_call(t.client, CLIENT_GET, t.kind, namespace, t.name, NULL, NULL, &deployment, &err) < 0) {
		status_code = cli_fail(&err);
		goto out;
	}
	bool needs_history = strcmp(subcommand, "history") == 0 || strcmp(subcommand, "undo") == 0;
	if (needs_history && rollout_replicasets(t.client, deployment, replicasets, &err) < 0) {
		status_code = cli_fail(&err);
		goto out;
	}
	if (strcmp(subcommand, "history") == 0)
		status_code = history(&t, deployment, replicasets, revision);
	else if (strcmp(subcommand, "undo") == 0)
		status_code = undo(&t, deployment, replicasets, to_revision);
	else
		status_code = patch(&t, deployment, subcommand);
out:
	cJSON_Delete(deployment);
	cJSON_Delete(replicasets);
	client_close(t.client);
	return status_code;
}
