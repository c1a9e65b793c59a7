/* `bramble logs POD [-c CONTAINER] [-f] [--tail N] [-p] [--timestamps] [-n NS]`: a
 * container's output, served by the agent of the pod's node through the control plane
 * (core/logrelay.c). -f follows with CoAP Observe until the container ends or the user
 * stops it (Ctrl-C).
 */
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

static void usage(FILE *out)
{
	fputs("usage: bramble logs [pod/]NAME|TYPE/NAME [-c CONTAINER] [-f] [--tail N] [-p] [--timestamps]\n"
	      "                    [-n NAMESPACE] [--config FILE]\n"
	      "\n"
	      "Prints the output of a pod's container; a container name is needed when the pod has\n"
	      "several. -f follows new output, -p shows the previous (restarted) container's.\n"
	      "TYPE/NAME (deployment, replicaset, daemonset, job) reads one of the pods it selects,\n"
	      "a running one first, as kubectl does.\n",
	      out);
}

static int server_error(const struct client_response *response, struct error *err)
{
	struct error parsed = { 0 };
	int r = client_response_error(response, &parsed);
	return error_set(err, -r, "%s (%s): %s", CLI_SERVER_PREFIX,
	                 response->reason[0] ? response->reason : "InternalError",
	                 response->message[0] ? response->message : parsed.message);
}

struct follow {
	struct error *err;
	int result;
};

static int on_notification(int code, const char *body, size_t length, void *data)
{
	struct follow *f = data;
	if (code >= 400) {
		struct client_response response = { .code = code, .body = (char *)body, .length = length };
		client_response_parse_status(&response);
		f->result = server_error(&response, f->err);
		return 1;
	}
	if (length) {
		fwrite(body, 1, length, stdout);
		fflush(stdout);
	}
	return 0;
}

static void add_query(struct buffer *path, const char *container, long tail, bool previous, bool timestamps,
                      bool follow)
{
	if (container)
		cli_query(path, "container", container);
	if (tail >= 0) {
		char n[24];
		snprintf(n, sizeof(n), "%ld", tail);
		cli_query(path, "tailLines", n);
	}
	if (previous)
		cli_query(path, "previous", "true");
	if (timestamps)
		cli_query(path, "timestamps", "true");
	if (follow)
		cli_query(path, "follow", "true");
}

static bool selects_pods(const struct kind *kind)
{
	static const char *const kinds[] = { "Deployment", "ReplicaSet", "DaemonSet", "Job", NULL };
	for (size_t i = 0; kinds[i]; i++)
		if (strcmp(kind->name, kinds[i]) == 0)
			return true;
	return false;
}

/* `logs deployment/web`, as kubectl: the pods its selector's matchLabels pick, a running one
 * first; "Found N pods, using pod/NAME" on stderr when there is a choice. */
static int pick_pod(struct client *client, const struct kind *kind, const char *namespace, const char *name,
                    char **ret_pod, struct error *err)
{
	cJSON *object = NULL;
	int r = cli_object_call(client, CLIENT_GET, kind, namespace, name, NULL, NULL, &object, err);
	if (r < 0)
		return r;
	struct buffer labels = BUFFER_INIT;
	const cJSON *label;
	cJSON_ArrayForEach(label, cJSON_GetObjectItemCaseSensitive(
	                                  cJSON_GetObjectItemCaseSensitive(
	                                          cJSON_GetObjectItemCaseSensitive(object, "spec"), "selector"),
	                                  "matchLabels"))
	{
		if (cJSON_IsString(label))
			buffer_printf(&labels, "%s%s=%s", labels.length ? "," : "", label->string, label->valuestring);
	}
	cJSON_Delete(object);
	if (!labels.length) {
		buffer_free(&labels);
		return error_set(err, EINVAL, "%s/%s selects no pods by matchLabels", kind->name, name);
	}
	const struct kind *pods = kinds_resolve("pods");
	cJSON *items = cJSON_CreateArray();
	r = cli_list(client, pods, namespace, labels.data, NULL, items, NULL, err);
	buffer_free(&labels);
	const cJSON *chosen = NULL, *item;
	cJSON_ArrayForEach(item, items)
	{
		const char *phase = object_string_at(item, "status.phase");
		if (!chosen || (phase && strcmp(phase, "Running") == 0 &&
		                !(object_string_at(chosen, "status.phase") &&
		                  strcmp(object_string_at(chosen, "status.phase"), "Running") == 0)))
			chosen = item;
	}
	if (r == 0 && !chosen)
		r = error_set(err, ENOENT, "no pods of %s/%s found in namespace %s", kind->name, name, namespace);
	if (r == 0) {
		*ret_pod = xstrdup(object_name(chosen));
		int count = cJSON_GetArraySize(items);
		if (count > 1)
			fprintf(stderr, "Found %d pods, using pod/%s\n", count, *ret_pod);
	}
	cJSON_Delete(items);
	return r;
}

int logs_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_TAIL, OPT_TIMESTAMPS };
	static const struct option long_options[] = {
		{ "container", required_argument, NULL, 'c' },
		{ "follow", no_argument, NULL, 'f' },
		{ "previous", no_argument, NULL, 'p' },
		{ "tail", required_argument, NULL, OPT_TAIL },
		{ "timestamps", no_argument, NULL, OPT_TIMESTAMPS },
		{ "namespace", required_argument, NULL, 'n' },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *namespace = "default", *config = NULL, *container = NULL;
	long tail = -1;
	bool follow = false, previous = false, timestamps = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:fpn:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			container = optarg;
			break;
		case 'f':
			follow = true;
			break;
		case 'p':
			previous = true;
			break;
		case OPT_TAIL: {
			char *end;
			tail = strtol(optarg, &end, 10);
			if (!optarg[0] || *end || tail < -1)
				return cli_usage_error(usage, "--tail takes a number of lines (-1: all), not '%s'",
				                       optarg);
			break;
		}
		case OPT_TIMESTAMPS:
			timestamps = true;
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
	if (argc - optind < 1)
		return cli_usage_error(usage, "expected POD, and optionally CONTAINER");
	if (argc - optind > 2)
		return cli_usage_error(usage, "too many arguments: expected POD and optionally CONTAINER");
	const char *pod = argv[optind];
	const struct kind *owner = NULL; /* TYPE/NAME of a workload: one of its pods is read */
	if (strncmp(pod, "pod/", 4) == 0 || strncmp(pod, "pods/", 5) == 0 || strncmp(pod, "po/", 3) == 0) {
		pod = strchr(pod, '/') + 1;
	} else if (strchr(pod, '/')) {
		char type[64];
		snprintf(type, sizeof(type), "%.*s", (int)(strchr(pod, '/') - pod), pod);
		owner = kinds_resolve(type);
		if (!owner || !selects_pods(owner))
			return cli_usage_error(usage,
			                       "logs are read from pods or from what selects them (deployment, "
			                       "replicaset, daemonset, job): '%s' is neither",
			                       pod);
		pod = strchr(pod, '/') + 1;
	}
	if (argc - optind == 2) {
		if (container)
			return cli_usage_error(usage, "give the container either with -c or as an argument, not both");
		container = argv[optind + 1];
	}
	if (follow && previous)
		return cli_usage_error(usage, "only one of follow (-f) or previous (-p) is allowed");
	if (!pod[0])
		return cli_usage_error(usage, "a pod name is required");

	struct buffer path = BUFFER_INIT;
	buffer_printf(&path, "/api/v1/namespaces/%s/pods/%s/log", namespace, pod);
	add_query(&path, container, tail, previous, timestamps, follow);

	struct error err = { 0 };
	struct client *client = NULL;
	int r = cli_connect(config, &client, &err);
	char *picked = NULL;
	if (r == 0 && owner && (r = pick_pod(client, owner, namespace, pod, &picked, &err)) == 0) {
		buffer_reset(&path);
		buffer_printf(&path, "/api/v1/namespaces/%s/pods/%s/log", namespace, picked);
		add_query(&path, container, tail, previous, timestamps, follow);
	}
	if (r == 0 && follow) {
		struct follow f = { &err, 0 };
		r = client_watch(client, path.data, -1, on_notification, &f, &err);
		if (r > 0)
			r = f.result;
	} else if (r == 0) {
		struct client_response response = { 0 };
		r = client_request(client, CLIENT_GET, path.data, NULL, 0, &response, &err);
		if (r == 0 && response.code >= 400)
			r = server_error(&response, &err);
		else if (r == 0 && response.length)
			fwrite(response.body, 1, response.length, stdout);
		client_response_clear(&response);
	}
	free(picked);
	buffer_free(&path);
	client_close(client);
	return r < 0 ? cli_fail(&err) : CLI_OK;
}
