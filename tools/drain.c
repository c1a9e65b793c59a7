/* `bramble cordon|uncordon NODE...` and `bramble drain NODE`.
 *
 * cordon and uncordon set or clear the Node's spec.unschedulable with a merge patch. drain
 * cordons, lists the node's pods (fieldSelector spec.nodeName), judges each as kubectl's
 * drain filters do (tools/drain.h: mirror pods are left alone; DaemonSet-managed pods need
 * --ignore-daemonsets, pods no controller manages need --force, pods with emptyDir volumes
 * need --delete-emptydir-data), deletes the deletable ones (DELETE with
 * --grace-period; Bramble has no eviction API or PodDisruptionBudgets yet) and waits,
 * with Observe, until each is gone. --timeout bounds the whole drain (0: no limit, as in
 * kubectl); progress goes to a terminal only. The node stays cordoned when the drain
 * fails, as with kubectl.
 */
#include "tools/drain.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/object.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/kinds.h"
#include "tools/verbs.h"

#define MIRROR_ANNOTATION "kubernetes.io/config.mirror"

enum drain_verdict drain_judge(const cJSON *pod, bool daemonset_exists, const struct drain_options *o,
                               const char **ret_reason)
{
	*ret_reason = "";
	const cJSON *annotations = cli_item(pod, "metadata.annotations");
	if (cJSON_GetObjectItemCaseSensitive(annotations, MIRROR_ANNOTATION))
		return DRAIN_SKIP;
	const char *phase = cli_string(pod, "status.phase");
	bool finished = strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0;
	const cJSON *owner = cli_controller_of(pod);
	if (owner && strcmp(cli_string(owner, "kind"), "DaemonSet") == 0 && !finished) {
		if (!daemonset_exists) {
			*ret_reason = "Pods of a DaemonSet that no longer exists (use --force to override)";
			if (!o->force)
				return DRAIN_REFUSE;
			*ret_reason = "deleting Pods of a DaemonSet that no longer exists";
			return DRAIN_DELETE_WARN;
		}
		if (!o->ignore_daemonsets) {
			*ret_reason = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
			return DRAIN_REFUSE;
		}
		*ret_reason = "ignoring DaemonSet-managed Pods";
		return DRAIN_SKIP_WARN;
	}
	enum drain_verdict verdict = DRAIN_DELETE;
	if (!owner && !finished) {
		if (!o->force) {
			*ret_reason = "Pods declare no controller (use --force to override)"; /* kubectl's words */
			return DRAIN_REFUSE;
		}
		*ret_reason = "deleting Pods that declare no controller";
		verdict = DRAIN_DELETE_WARN;
	}
	const cJSON *volume;
	cJSON_ArrayForEach(volume, cli_item(pod, "spec.volumes"))
	{
		if (!cJSON_GetObjectItemCaseSensitive(volume, "emptyDir") || finished)
			continue;
		if (!o->delete_emptydir) {
			*ret_reason = "Pods with local storage (use --delete-emptydir-data to override)";
			return DRAIN_REFUSE;
		}
		if (verdict == DRAIN_DELETE) {
			*ret_reason = "deleting Pods with local storage";
			verdict = DRAIN_DELETE_WARN;
		}
	}
	return verdict;
}

/* --- cordon, uncordon ------------------------------------------------------------------------ */

/* 0 done (printed), or an error (printed): the exit code. */
static int set_unschedulable(struct client *client, const char *name, bool cordon)
{
	const struct kind *kind = kinds_resolve("nodes");
	struct error err = { 0 };
	cJSON *node = NULL;
	if (cli_object_call(client, CLIENT_GET, kind, NULL, name, NULL, NULL, &node, &err) < 0)
		return cli_fail(&err);
	bool now = cJSON_IsTrue(cli_item(node, "spec.unschedulable"));
	const char *verb = cordon ? "cordoned" : "uncordoned";
	if (now == cordon) {
		printf("node/%s already %s\n", name, verb);
		cJSON_Delete(node);
		return CLI_OK;
	}
	cJSON *patch = cJSON_CreateObject();
	cJSON_AddStringToObject(cJSON_AddObjectToObject(patch, "metadata"), "resourceVersion",
	                        cli_string(node, "metadata.resourceVersion"));
	cJSON *spec = cJSON_AddObjectToObject(patch, "spec");
	if (cordon)
		cJSON_AddTrueToObject(spec, "unschedulable");
	else
		cJSON_AddNullToObject(spec, "unschedulable");
	int r = cli_object_call(client, CLIENT_PATCH, kind, NULL, name, NULL, patch, NULL, &err);
	cJSON_Delete(patch);
	cJSON_Delete(node);
	if (r < 0)
		return cli_fail(&err);
	printf("node/%s %s\n", name, verb);
	fflush(stdout);
	return CLI_OK;
}

static void usage_cordon(FILE *out)
{
	fputs("usage: bramble cordon|uncordon NODE... | -l SELECTOR [--config FILE]\n", out);
}

static int cordon_or_uncordon(int argc, char **argv, bool cordon)
{
	enum { OPT_CONFIG = 256 };
	static const struct option long_options[] = {
		{ "selector", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *labels = NULL, *config = NULL;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "l:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'l':
			labels = optarg;
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case 'h':
			usage_cordon(stdout);
			return CLI_OK;
		default:
			usage_cordon(stderr);
			return CLI_USAGE;
		}
	}
	if ((optind < argc) == (labels != NULL))
		return cli_usage_error(usage_cordon, labels ? "names cannot be given together with -l"
		                                            : "give the nodes by name or with -l SELECTOR");
	struct error err = { 0 };
	struct client *client = NULL;
	if (cli_connect(config, &client, &err) < 0)
		return cli_fail(&err);
	int status = CLI_OK;
	cJSON *nodes = cJSON_CreateArray();
	if (labels && cli_list(client, kinds_resolve("nodes"), NULL, labels, NULL, nodes, NULL, &err) < 0)
		status = cli_fail(&err);
	const cJSON *node;
	cJSON_ArrayForEach(node, nodes)
	{
		if (set_unschedulable(client, object_name(node), cordon) != CLI_OK)
			status = CLI_ERROR;
	}
	for (int i = optind; i < argc && !labels; i++) {
		const char *name = strncmp(argv[i], "node/", 5) == 0 ? argv[i] + 5 : argv[i];
		if (set_unschedulable(client, name, cordon) != CLI_OK)
			status = CLI_ERROR;
	}
	cJSON_Delete(nodes);
	client_close(client);
	return status;
}

int cordon_main(int argc, char **argv)
{
	return cordon_or_uncordon(argc, argv, true);
}

int uncordon_main(int argc, char **argv)
{
	return cordon_or_uncordon(argc, argv, false);
}

/* --- drain ------------------------------------------------------------------------------------ */

static void usage_drain(FILE *out)
{
	fputs("usage: bramble drain NODE [--ignore-daemonsets] [--force] [--delete-emptydir-data]\n"
	      "                          [--grace-period SECONDS] [--timeout DURATION] [--pod-selector SELECTOR]\n"
	      "                          [--config FILE]\n"
	      "\n"
	      "Cordons the node, then deletes its pods (not mirror pods; DaemonSet-managed ones only with\n"
	      "--ignore-daemonsets, which leaves them) and waits until they are gone.\n",
	      out);
}

/* Whether the DaemonSet that controls the pod exists; -1: the server could not be asked. */
static int daemonset_exists(struct client *client, const cJSON *pod, struct error *err)
{
	const cJSON *owner = cli_controller_of(pod);
	if (!owner || strcmp(cli_string(owner, "kind"), "DaemonSet") != 0)
		return 1;
	int r = cli_object_call(client, CLIENT_GET, kinds_resolve("daemonsets"), object_namespace(pod),
	                        cli_string(owner, "name"), NULL, NULL, NULL, err);
	return r == 0 ? 1 : r == -ENOENT ? 0 : -1;
}

/* Groups "reason: ns/a, ns/b" per reason, as kubectl prints its errors and warnings. */
struct reasons {
	size_t count;
	const char *reason[64];
	struct buffer pods[64];
};

static void note(struct reasons *r, const char *reason, const cJSON *pod)
{
	size_t i = 0;
	while (i < r->count && strcmp(r->reason[i], reason) != 0)
		i++;
	if (i == r->count) {
		if (r->count >= 64)
			return;
		r->reason[r->count++] = reason;
		memset(&r->pods[i], 0, sizeof(r->pods[i]));
	}
	buffer_printf(&r->pods[i], "%s%s/%s", r->pods[i].length ? ", " : "", object_namespace(pod), object_name(pod));
}

static void reasons_free(struct reasons *r)
{
	for (size_t i = 0; i < r->count; i++)
		buffer_free(&r->pods[i]);
}

int drain_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_FORCE, OPT_IGNORE_DS, OPT_EMPTYDIR, OPT_GRACE, OPT_TIMEOUT, OPT_POD_SELECTOR };
	static const struct option long_options[] = {
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "ignore-daemonsets", no_argument, NULL, OPT_IGNORE_DS },
		{ "delete-emptydir-data", no_argument, NULL, OPT_EMPTYDIR },
		{ "grace-period", required_argument, NULL, OPT_GRACE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "pod-selector", required_argument, NULL, OPT_POD_SELECTOR },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct drain_options o = { 0 };
	const char *config = NULL, *pod_selector = NULL;
	long grace = -1;
	int64_t timeout_ms = 0;
	struct error err = { 0 };
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (opt) {
		case OPT_FORCE:
			o.force = true;
			break;
		case OPT_IGNORE_DS:
			o.ignore_daemonsets = true;
			break;
		case OPT_EMPTYDIR:
			o.delete_emptydir = true;
			break;
		case OPT_GRACE: {
			char *end;
			grace = strtol(optarg, &end, 10);
			if (!optarg[0] || *end || grace < -1 || grace > 100000000)
				return cli_usage_error(NULL,
				                       "--grace-period takes a number of seconds (-1: each pod's own)");
			break;
		}
		case OPT_TIMEOUT:
			if (cli_parse_duration(optarg, &timeout_ms, &err) < 0)
				return cli_usage_error(NULL, "--timeout: %s", err.message);
			break;
		case OPT_POD_SELECTOR:
			pod_selector = optarg;
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case 'h':
			usage_drain(stdout);
			return CLI_OK;
		default:
			usage_drain(stderr);
			return CLI_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(usage_drain, "drain takes one NODE");
	const char *name = strncmp(argv[optind], "node/", 5) == 0 ? argv[optind] + 5 : argv[optind];
	uint64_t deadline = timeout_ms > 0 ? clock_monotonic_ms() + (uint64_t)timeout_ms : 0;
	struct client *client = NULL;
	if (cli_connect(config, &client, &err) < 0)
		return cli_fail(&err);
	int status = set_unschedulable(client, name, true);
	cJSON *pods = cJSON_CreateArray(), *doomed = cJSON_CreateArray();
	const struct kind *pod_kind = kinds_resolve("pods");
	struct reasons refused = { 0 }, warnings = { 0 };
	char *fields = NULL;
	if (status != CLI_OK)
		goto out;
	fields = xasprintf("spec.nodeName=%s", name);
	if (cli_list(client, pod_kind, NULL, pod_selector, fields, pods, NULL, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	cJSON *pod;
	while ((pod = pods->child)) {
		cJSON_DetachItemViaPointer(pods, pod);
		int exists = daemonset_exists(client, pod, &err);
		if (exists < 0) {
			cJSON_Delete(pod);
			status = cli_fail(&err);
			goto out;
		}
		const char *reason;
		enum drain_verdict verdict = drain_judge(pod, exists, &o, &reason);
		if (verdict == DRAIN_REFUSE)
			note(&refused, reason, pod);
		else if (verdict == DRAIN_DELETE_WARN || verdict == DRAIN_SKIP_WARN)
			note(&warnings, reason, pod);
		if (verdict == DRAIN_DELETE || verdict == DRAIN_DELETE_WARN)
			cJSON_AddItemToArray(doomed, pod);
		else
			cJSON_Delete(pod);
	}
	if (refused.count) {
		struct buffer why = BUFFER_INIT;
		for (size_t i = 0; i < refused.count; i++)
			buffer_printf(&why, "%scannot delete %s: %s", i ? "; " : "", refused.reason[i],
			              refused.pods[i].data);
		fprintf(stderr, "error: unable to drain node \"%s\": %s\n", name, why.data);
		buffer_free(&why);
		status = CLI_ERROR;
		goto out;
	}
	for (size_t i = 0; i < warnings.count; i++)
		fprintf(stderr, "Warning: %s: %s\n", warnings.reason[i], warnings.pods[i].data);
	char query[32] = "";
	if (grace >= 0)
		snprintf(query, sizeof(query), "gracePeriodSeconds=%ld", grace);
	cJSON_ArrayForEach(pod, doomed)
	{
		printf("deleting pod %s/%s\n", object_namespace(pod), object_name(pod));
		fflush(stdout);
		int r = cli_object_call(client, CLIENT_DELETE, pod_kind, object_namespace(pod), object_name(pod),
		                        query[0] ? query : NULL, NULL, NULL, &err);
		if (r < 0 && r != -ENOENT) {
			status = cli_fail(&err);
			goto out;
		}
	}
	int total = cJSON_GetArraySize(doomed), left = total;
	cJSON_ArrayForEach(pod, doomed)
	{
		cli_progress("waiting for %d of %d pods on node %s to terminate...", left, total, name);
		int r = cli_wait_deleted(client, pod_kind, object_namespace(pod), object_name(pod),
		                         object_string_at(pod, "metadata.uid"), deadline, &err);
		if (r == -ETIMEDOUT) {
			cli_progress_end();
			char limit[32];
			cli_human_duration(timeout_ms / 1000, limit, sizeof(limit));
			fprintf(stderr,
			        "error: unable to drain node \"%s\": pod %s/%s did not terminate within the timeout of "
			        "%s "
			        "(%d of %d pods left)\n",
			        name, object_namespace(pod), object_name(pod), limit, left, total);
			status = CLI_ERROR;
			goto out;
		}
		if (r < 0) {
			status = cli_fail(&err);
			goto out;
		}
		cli_progress_end();
		printf("pod/%s deleted\n", object_name(pod));
		fflush(stdout);
		left--;
	}
	printf("node/%s drained\n", name);
out:
	cli_progress_end();
	free(fields);
	reasons_free(&refused);
	reasons_free(&warnings);
	cJSON_Delete(pods);
	cJSON_Delete(doomed);
	client_close(client);
	return status;
}
