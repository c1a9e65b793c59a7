/* `bramble top nodes|pods`: usage from the metrics API (core/metrics.h), as kubectl top
 * shows it.
 *
 *   bramble top nodes [NAME]          NAME  CPU(cores)  CPU%  MEMORY(bytes)  MEMORY%
 *   bramble top pods [NAME] [-n NS | -A] [-l SELECTOR] [--containers]
 *
 * CPU% and MEMORY% are of the node's allocatable; a node without metrics is shown with
 * <unknown> usage, as kubectl does.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/client.h"
#include "core/object.h"
#include "core/scheduler.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/tabwriter.h"
#include "tools/verbs.h"

#define TOP_PATH "/apis/metrics.k8s.io/v1beta1"

static void usage(FILE *out)
{
	fputs("usage: bramble top nodes [NAME] [--no-headers] [--config FILE]\n"
	      "       bramble top pods [NAME] [-n NAMESPACE | -A] [-l SELECTOR] [--containers] [--no-headers]\n"
	      "                        [--config FILE]\n"
	      "\n"
	      "Shows the cpu and memory in use by nodes or pods, as the agents last reported it.\n",
	      out);
}

static int64_t quantity(const cJSON *object, const char *path, int scale)
{
	int64_t v = 0;
	const char *text = cli_string(object, path);
	if (!text[0] || scheduler_parse_quantity(text, scale, &v) < 0)
		return -1;
	return v;
}

static void cpu_text(int64_t millicores, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRId64 "m", millicores);
}

static void memory_text(int64_t bytes, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRId64 "Mi", bytes / (1024 * 1024));
}

static int by_name(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	int r = strcmp(cli_string(x, "metadata.namespace"), cli_string(y, "metadata.namespace"));
	return r ? r : strcmp(cli_string(x, "metadata.name"), cli_string(y, "metadata.name"));
}

/* The items of a list (or the one object) sorted by namespace and name; caller frees. */
static const cJSON **sorted_items(const cJSON *answer, bool single, size_t *ret_count)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(answer, "items");
	size_t n = single ? 1 : (size_t)cJSON_GetArraySize(items), i = 0;
	const cJSON **out = xcalloc(n + 1, sizeof(*out));
	if (single) {
		out[i++] = answer;
	} else {
		const cJSON *item;
		cJSON_ArrayForEach(item, items) out[i++] = item;
	}
	qsort(out, i, sizeof(*out), by_name);
	*ret_count = i;
	return out;
}

static int top_nodes(struct client *client, const char *name, bool headers, struct error *err)
{
	cleanup_free char *node_path = name ? xasprintf("/api/v1/nodes/%s", name) : xstrdup("/api/v1/nodes");
	cleanup_free char *metrics_path = name ? xasprintf(TOP_PATH "/nodes/%s", name) : xstrdup(TOP_PATH "/nodes");
	cJSON *nodes = NULL, *metrics = NULL;
	int r = cli_call(client, CLIENT_GET, node_path, NULL, &nodes, err);
	if (r < 0)
		return r;
	r = cli_call(client, CLIENT_GET, metrics_path, NULL, &metrics, err);
	if (r == -ENOENT && name) {
		cJSON_Delete(nodes);
		return error_set(err, ENOENT, "metrics not available yet");
	}
	if (r < 0) {
		cJSON_Delete(nodes);
		return r;
	}
	size_t count;
	const cJSON **items = sorted_items(nodes, name != NULL, &count);
	struct tabwriter w;
	tabwriter_init(&w, 10, 3, false);
	if (headers)
		tabwriter_write(&w, "NAME\tCPU(cores)\tCPU%\tMEMORY(bytes)\tMEMORY%\t\n");
	for (size_t i = 0; i < count; i++) {
		const char *node = cli_string(items[i], "metadata.name");
		const cJSON *usage = NULL;
		if (name) {
			usage = cli_item(metrics, "usage");
		} else {
			const cJSON *m;
			cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(metrics, "items"))
			{
				if (strcmp(cli_string(m, "metadata.name"), node) == 0)
					usage = cli_item(m, "usage");
			}
		}
		int64_t cpu = usage ? quantity(usage, "cpu", 3) : -1,
		        memory = usage ? quantity(usage, "memory", 0) : -1;
		if (cpu < 0 || memory < 0) {
			tabwriter_printf(&w, "%s\t<unknown>\t<unknown>\t<unknown>\t<unknown>\t\n", node);
			continue;
		}
		int64_t cpu_alloc = quantity(items[i], "status.allocatable.cpu", 3);
		int64_t memory_alloc = quantity(items[i], "status.allocatable.memory", 0);
		char c[32], m[32];
		cpu_text(cpu, c, sizeof(c));
		memory_text(memory, m, sizeof(m));
		tabwriter_printf(&w, "%s\t%s\t%" PRId64 "%%\t%s\t%" PRId64 "%%\t\n", node, c,
		                 cpu_alloc > 0 ? cpu * 100 / cpu_alloc : 0, m,
		                 memory_alloc > 0 ? memory * 100 / memory_alloc : 0);
	}
	struct buffer out = BUFFER_INIT;
	tabwriter_flush(&w, &out);
	tabwriter_free(&w);
	if (out.data)
		fputs(out.data, stdout);
	buffer_free(&out);
	free(items);
	cJSON_Delete(nodes);
	cJSON_Delete(metrics);
	return 0;
}

/* With -l: is the pod of these metrics among the pods the selector chose? */
static bool selected(const cJSON *pods, const cJSON *metrics)
{
	const cJSON *pod;
	cJSON_ArrayForEach(pod, pods)
	{
		if (strcmp(cli_string(pod, "metadata.name"), cli_string(metrics, "metadata.name")) == 0 &&
		    strcmp(cli_string(pod, "metadata.namespace"), cli_string(metrics, "metadata.namespace")) == 0)
			return true;
	}
	return false;
}

static int top_pods(struct client *client, const char *name, const char *namespace, bool all, const char *labels,
                    bool containers, bool headers, struct error *err)
{
	cJSON *chosen = NULL;
	if (labels) {
		chosen = cJSON_CreateArray();
		int r = cli_list(client, kind_lookup("v1", "Pod"), all ? NULL : namespace, labels, NULL, chosen, NULL,
		                 err);
		if (r < 0) {
			cJSON_Delete(chosen);
			return r;
		}
	}
	cleanup_free char *path = all    ? xstrdup(TOP_PATH "/pods")
	                          : name ? xasprintf(TOP_PATH "/namespaces/%s/pods/%s", namespace, name)
	                                 : xasprintf(TOP_PATH "/namespaces/%s/pods", namespace);
	cJSON *metrics = NULL;
	int r = cli_call(client, CLIENT_GET, path, NULL, &metrics, err);
	if (r == -ENOENT && name)
		r = error_set(err, ENOENT, "metrics not available yet");
	if (r < 0) {
		cJSON_Delete(chosen);
		return r;
	}
	size_t count;
	const cJSON **items = sorted_items(metrics, name != NULL, &count);
	if (chosen) {
		size_t kept = 0;
		for (size_t i = 0; i < count; i++)
			if (selected(chosen, items[i]))
				items[kept++] = items[i];
		count = kept;
		cJSON_Delete(chosen);
	}
	if (count == 0) {
		free(items);
		cJSON_Delete(metrics);
		if (all)
			fprintf(stderr, "No resources found\n");
		else
			fprintf(stderr, "No resources found in %s namespace.\n", namespace);
		return 0;
	}
	struct tabwriter w;
	tabwriter_init(&w, 10, 3, false);
	if (headers)
		tabwriter_printf(&w, "%s%s\tCPU(cores)\tMEMORY(bytes)\t\n", all ? "NAMESPACE\t" : "",
		                 containers ? "POD\tNAME" : "NAME");
	for (size_t i = 0; i < count; i++) {
		const char *pod = cli_string(items[i], "metadata.name");
		int64_t cpu_sum = 0, memory_sum = 0;
		const cJSON *c;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(items[i], "containers"))
		{
			int64_t cpu = quantity(c, "usage.cpu", 3), memory = quantity(c, "usage.memory", 0);
			cpu_sum += cpu > 0 ? cpu : 0;
			memory_sum += memory > 0 ? memory : 0;
			if (!containers)
				continue;
			char ct[32], mt[32];
			cpu_text(cpu > 0 ? cpu : 0, ct, sizeof(ct));
			memory_text(memory > 0 ? memory : 0, mt, sizeof(mt));
			if (all)
				tabwriter_printf(&w, "%s\t", cli_string(items[i], "metadata.namespace"));
			tabwriter_printf(&w, "%s\t%s\t%s\t%s\t\n", pod, cli_string(c, "name"), ct, mt);
		}
		if (containers)
			continue;
		char ct[32], mt[32];
		cpu_text(cpu_sum, ct, sizeof(ct));
		memory_text(memory_sum, mt, sizeof(mt));
		if (all)
			tabwriter_printf(&w, "%s\t", cli_string(items[i], "metadata.namespace"));
		tabwriter_printf(&w, "%s\t%s\t%s\t\n", pod, ct, mt);
	}
	struct buffer out = BUFFER_INIT;
	tabwriter_flush(&w, &out);
	tabwriter_free(&w);
	if (out.data)
		fputs(out.data, stdout);
	buffer_free(&out);
	free(items);
	cJSON_Delete(metrics);
	return 0;
}

int top_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_CONTAINERS, OPT_NO_HEADERS };
	static const struct option long_options[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "all-namespaces", no_argument, NULL, 'A' },
		{ "containers", no_argument, NULL, OPT_CONTAINERS },
		{ "selector", required_argument, NULL, 'l' },
		{ "no-headers", no_argument, NULL, OPT_NO_HEADERS },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *namespace = "default", *config = NULL, *labels = NULL;
	bool all = false, containers = false, headers = true;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:Al:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			namespace
			= optarg;
			break;
		case 'A':
			all = true;
			break;
		case 'l':
			labels = optarg;
			break;
		case OPT_CONTAINERS:
			containers = true;
			break;
		case OPT_NO_HEADERS:
			headers = false;
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
	int rest = argc - optind;
	if (rest < 1)
		return cli_usage_error(usage, "say what to show: nodes or pods");
	const char *what = argv[optind];
	bool nodes = strcmp(what, "nodes") == 0 || strcmp(what, "node") == 0 || strcmp(what, "no") == 0;
	bool pods = strcmp(what, "pods") == 0 || strcmp(what, "pod") == 0 || strcmp(what, "po") == 0;
	if (!nodes && !pods)
		return cli_usage_error(usage, "unknown resource '%s': top shows nodes or pods", what);
	if (rest > 2)
		return cli_usage_error(usage, "top takes at most one name");
	const char *name = rest == 2 ? argv[optind + 1] : NULL;
	if (name && (all || labels))
		return cli_usage_error(usage, "a name cannot be given together with -A or -l");
	if (nodes && labels)
		return cli_usage_error(usage, "-l selects pods; nodes are named");
	struct error err = { 0 };
	struct client *client = NULL;
	int r = cli_connect(config, &client, &err);
	if (r == 0)
		r = nodes ? top_nodes(client, name, headers, &err)
		          : top_pods(client, name, namespace, all, labels, containers, headers, &err);
	client_close(client);
	return r < 0 ? cli_fail(&err) : CLI_OK;
}
