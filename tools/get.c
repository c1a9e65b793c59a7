/* `bramble get KIND [NAME...]`: kubectl's get, over the CoAP API.
 *
 * Lists follow `continue` pages (GET_MAX_OBJECTS at most); tables are laid out like
 * kubectl's (columns padded to the widest cell plus three spaces). Also home of the kind
 * names and paths the other client verbs share (see tools/verbs.h).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/client.h"
#include "core/object.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/clientconfig.h"
#include "tools/manifest.h"
#include "tools/verbs.h"

#define GET_MAX_OBJECTS 100000
#define GET_PAGE 500
#define GET_MAX_COLUMNS 10

/* --- kinds and paths -------------------------------------------------------------------- */

static const struct {
	const char *alias;
	const char *resource;
} short_names[] = {
	{ "po", "pods" },       { "deploy", "deployments" }, { "svc", "services" },
	{ "cm", "configmaps" }, { "ns", "namespaces" },      { "no", "nodes" },
	{ "ds", "daemonsets" }, { "rs", "replicasets" },     { "ep", "endpoints" },
	{ "ev", "events" },     { "cj", "cronjobs" },        { "hpa", "horizontalpodautoscalers" },
};

const struct kind *get_resolve_kind(const char *name)
{
	char want[128], group[128] = "";
	snprintf(want, sizeof(want), "%s", name);
	char *dot = strchr(want, '.');
	if (dot) { /* "deployments.apps", "deploy.apps" */
		snprintf(group, sizeof(group), "%s", dot + 1);
		*dot = '\0';
	}
	for (char *p = want; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (size_t i = 0; i < ARRAY_SIZE(short_names); i++)
		if (strcmp(want, short_names[i].alias) == 0)
			snprintf(want, sizeof(want), "%s", short_names[i].resource);
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		if (dot && strcmp(group, k->group) != 0)
			continue;
		char singular[128];
		snprintf(singular, sizeof(singular), "%s", k->name);
		for (char *p = singular; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (strcmp(want, k->resource) == 0 || strcmp(want, singular) == 0)
			return k;
	}
	return NULL;
}

char *get_object_path(const struct kind *kind, const char *namespace, const char *name)
{
	struct buffer b = BUFFER_INIT;
	if (kind->group[0])
		buffer_printf(&b, "/apis/%s", kind->api_version);
	else
		buffer_printf(&b, "/api/%s", kind->version);
	if (kind->namespaced && namespace)
		buffer_printf(&b, "/namespaces/%s", namespace);
	buffer_printf(&b, "/%s", kind->resource);
	if (name)
		buffer_printf(&b, "/%s", name);
	return buffer_steal(&b);
}

void get_resource_name(const struct kind *kind, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", kind->resource, kind->group[0] ? "." : "", kind->group);
}

void get_type_name(const struct kind *kind, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", kind->name, kind->group[0] ? "." : "", kind->group);
	for (char *p = buf; *p && *p != '.'; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* Percent-encodes a query value (libcoap decodes it again into the Uri-Query option). */
static void append_query_value(struct buffer *b, const char *value)
{
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (isalnum(*p) || strchr("-_.~,!()", *p))
			buffer_append(b, p, 1);
		else
			buffer_printf(b, "%%%02X", *p);
	}
}

/* --- table cells -------------------------------------------------------------------------- */

static const char *string_at(const cJSON *object, const char *path)
{
	const char *s = object_string_at(object, path);
	return s ? s : "";
}

static const cJSON *item_at(const cJSON *object, const char *dotted)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", dotted);
	const cJSON *item = object;
	for (char *save = NULL, *part = strtok_r(buf, ".", &save); part && item; part = strtok_r(NULL, ".", &save))
		item = cJSON_GetObjectItemCaseSensitive(item, part);
	return item;
}

static long long number_at(const cJSON *object, const char *dotted)
{
	const cJSON *item = item_at(object, dotted);
	return cJSON_IsNumber(item) ? (long long)item->valuedouble : 0;
}

/* kubectl's HumanDuration. */
static void age(const cJSON *object, char *buf, size_t size)
{
	const char *created = string_at(object, "metadata.creationTimestamp");
	struct tm tm = { 0 };
	if (!created[0] || !strptime(created, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, size, "<unknown>");
		return;
	}
	long long seconds = (long long)(time(NULL) - timegm(&tm));
	if (seconds < 0)
		seconds = 0;
	long long minutes = seconds / 60, hours = seconds / 3600, days = hours / 24;
	if (seconds < 120)
		snprintf(buf, size, "%llds", seconds);
	else if (minutes < 10 && seconds % 60)
		snprintf(buf, size, "%lldm%llds", minutes, seconds % 60);
	else if (minutes < 180)
		snprintf(buf, size, "%lldm", minutes);
	else if (hours < 8 && minutes % 60)
		snprintf(buf, size, "%lldh%lldm", hours, minutes % 60);
	else if (hours < 48)
		snprintf(buf, size, "%lldh", hours);
	else if (hours < 192 && hours % 24)
		snprintf(buf, size, "%lldd%lldh", days, hours % 24);
	else if (days < 365 * 2)
		snprintf(buf, size, "%lldd", days);
	else if (days < 365 * 8 && days % 365)
		snprintf(buf, size, "%lldy%lldd", days / 365, days % 365);
	else
		snprintf(buf, size, "%lldy", days / 365);
}

struct table {
	size_t columns;
	const char *headers[GET_MAX_COLUMNS];
	char **cells; /* rows * columns */
	size_t rows;
};

static void table_row(struct table *t, char *const *values)
{
	t->cells = xrealloc(t->cells, (t->rows + 1) * t->columns * sizeof(char *));
	for (size_t i = 0; i < t->columns; i++)
		t->cells[t->rows * t->columns + i] = xstrdup(values[i]);
	t->rows++;
}

static void table_print(struct table *t, FILE *out)
{
	size_t width[GET_MAX_COLUMNS];
	for (size_t c = 0; c < t->columns; c++) {
		width[c] = strlen(t->headers[c]);
		for (size_t r = 0; r < t->rows; r++) {
			size_t n = strlen(t->cells[r * t->columns + c]);
			if (n > width[c])
				width[c] = n;
		}
	}
	for (size_t r = 0; r <= t->rows; r++) {
		for (size_t c = 0; c < t->columns; c++) {
			const char *cell = r == 0 ? t->headers[c] : t->cells[(r - 1) * t->columns + c];
			if (c + 1 < t->columns)
				fprintf(out, "%-*s", (int)width[c] + 3, cell);
			else
				fprintf(out, "%s\n", cell);
		}
	}
	for (size_t i = 0; i < t->rows * t->columns; i++)
		free(t->cells[i]);
	free(t->cells);
}

static void service_ports(const cJSON *object, char *buf, size_t size)
{
	struct buffer b = BUFFER_INIT;
	const cJSON *port;
	cJSON_ArrayForEach(port, item_at(object, "spec.ports"))
	{
		const char *protocol = string_at(port, "protocol");
		long long node_port = number_at(port, "nodePort");
		buffer_printf(&b, "%s%lld", b.length ? "," : "", number_at(port, "port"));
		if (node_port)
			buffer_printf(&b, ":%lld", node_port);
		buffer_printf(&b, "/%s", protocol[0] ? protocol : "TCP");
	}
	snprintf(buf, size, "%s", b.length ? b.data : "<none>");
	buffer_free(&b);
}

static int count_members(const cJSON *object, const char *key)
{
	return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(object, key));
}

/* Fills the columns of one object's row for its kind; headers when object is NULL. */
static size_t columns_for(const struct kind *kind, const cJSON *object, bool wide, const char **headers,
                          char cells[][128])
{
	size_t n = 0;
#define COLUMN(header, ...)                                                                                            \
	do {                                                                                                           \
		headers[n] = header;                                                                                   \
		if (object)                                                                                            \
			snprintf(cells[n], 128, __VA_ARGS__);                                                          \
		n++;                                                                                                   \
	} while (0)
	const char *name = object ? string_at(object, "metadata.name") : "";
	COLUMN("NAME", "%s", name);
	const char *k = kind->name;
	if (strcmp(k, "Pod") == 0) {
		int total = object ? cJSON_GetArraySize(item_at(object, "spec.containers")) : 0, ready = 0;
		long long restarts = 0;
		const cJSON *status;
		if (object)
			cJSON_ArrayForEach(status, item_at(object, "status.containerStatuses"))
			{
				ready += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(status, "ready"));
				restarts += number_at(status, "restartCount");
			}
		const char *phase = object ? string_at(object, "status.phase") : "";
		COLUMN("READY", "%d/%d", ready, total);
		COLUMN("STATUS", "%s",
		       object && item_at(object, "metadata.deletionTimestamp") ? "Terminating"
		       : phase[0]                                              ? phase
		                                                               : "Pending");
		COLUMN("RESTARTS", "%lld", restarts);
	} else if (strcmp(k, "Deployment") == 0 || strcmp(k, "ReplicaSet") == 0) {
		long long want = object && item_at(object, "spec.replicas") ? number_at(object, "spec.replicas") : 1;
		if (strcmp(k, "Deployment") == 0) {
			COLUMN("READY", "%lld/%lld", object ? number_at(object, "status.readyReplicas") : 0, want);
			COLUMN("UP-TO-DATE", "%lld", object ? number_at(object, "status.updatedReplicas") : 0);
			COLUMN("AVAILABLE", "%lld", object ? number_at(object, "status.availableReplicas") : 0);
		} else {
			COLUMN("DESIRED", "%lld", want);
			COLUMN("CURRENT", "%lld", object ? number_at(object, "status.replicas") : 0);
			COLUMN("READY", "%lld", object ? number_at(object, "status.readyReplicas") : 0);
		}
	} else if (strcmp(k, "DaemonSet") == 0) {
		COLUMN("DESIRED", "%lld", object ? number_at(object, "status.desiredNumberScheduled") : 0);
		COLUMN("CURRENT", "%lld", object ? number_at(object, "status.currentNumberScheduled") : 0);
		COLUMN("READY", "%lld", object ? number_at(object, "status.numberReady") : 0);
	} else if (strcmp(k, "Service") == 0) {
		char ports[128] = "";
		if (object)
			service_ports(object, ports, sizeof(ports));
		const char *type = object ? string_at(object, "spec.type") : "";
		const char *ip = object ? string_at(object, "spec.clusterIP") : "";
		COLUMN("TYPE", "%s", type[0] ? type : "ClusterIP");
		COLUMN("CLUSTER-IP", "%s", ip[0] ? ip : "<none>");
		COLUMN("EXTERNAL-IP", "%s", "<none>");
		COLUMN("PORT(S)", "%s", ports);
	} else if (strcmp(k, "ConfigMap") == 0) {
		COLUMN("DATA", "%d", object ? count_members(object, "data") + count_members(object, "binaryData") : 0);
	} else if (strcmp(k, "Secret") == 0) {
		const char *type = object ? string_at(object, "type") : "";
		COLUMN("TYPE", "%s", type[0] ? type : "Opaque");
		COLUMN("DATA", "%d", object ? count_members(object, "data") : 0);
	} else if (strcmp(k, "Namespace") == 0) {
		const char *phase = object ? string_at(object, "status.phase") : "";
		COLUMN("STATUS", "%s", phase[0] ? phase : "Active");
	} else if (strcmp(k, "Node") == 0) {
		const char *ready = "Unknown";
		const cJSON *condition;
		if (object)
			cJSON_ArrayForEach(
			        condition,
			        item_at(object, "status.conditions")) if (strcmp(string_at(condition, "type"),
			                                                         "Ready") == 0) ready =
			        strcmp(string_at(condition, "status"), "True") == 0 ? "Ready" : "NotReady";
		COLUMN("STATUS", "%s", ready);
	} else if (strcmp(k, "Job") == 0) {
		COLUMN("COMPLETIONS", "%lld/%lld", object ? number_at(object, "status.succeeded") : 0,
		       object && item_at(object, "spec.completions") ? number_at(object, "spec.completions") : 1);
	}
	char age_text[32] = "";
	if (object)
		age(object, age_text, sizeof(age_text));
	COLUMN("AGE", "%s", age_text);
	if (wide && strcmp(k, "Pod") == 0) {
		const char *ip = object ? string_at(object, "status.podIP") : "";
		const char *node = object ? string_at(object, "spec.nodeName") : "";
		COLUMN("IP", "%s", ip[0] ? ip : "<none>");
		COLUMN("NODE", "%s", node[0] ? node : "<none>");
	}
#undef COLUMN
	return n;
}

static void print_table(const struct kind *kind, cJSON *items, bool all_namespaces, bool wide)
{
	struct table t = { 0 };
	char cells[GET_MAX_COLUMNS][128];
	const char *headers[GET_MAX_COLUMNS];
	size_t n = columns_for(kind, NULL, wide, headers, cells);
	size_t offset = all_namespaces && kind->namespaced ? 1 : 0;
	t.columns = n + offset;
	if (offset)
		t.headers[0] = "NAMESPACE";
	for (size_t i = 0; i < n; i++)
		t.headers[i + offset] = headers[i];
	const cJSON *object;
	cJSON_ArrayForEach(object, items)
	{
		char *values[GET_MAX_COLUMNS + 1];
		columns_for(kind, object, wide, headers, cells);
		if (offset)
			values[0] = (char *)string_at(object, "metadata.namespace");
		for (size_t i = 0; i < n; i++)
			values[i + offset] = cells[i];
		table_row(&t, values);
	}
	table_print(&t, stdout);
}

/* --- output ------------------------------------------------------------------------------- */

/* JSON indented by four spaces, as kubectl prints it. */
static void write_json(const cJSON *item, int indent, struct buffer *out)
{
	if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
		bool object = cJSON_IsObject(item);
		if (!item->child) {
			buffer_append_string(out, object ? "{}" : "[]");
			return;
		}
		buffer_append_string(out, object ? "{\n" : "[\n");
		for (const cJSON *child = item->child; child; child = child->next) {
			buffer_printf(out, "%*s", indent + 4, "");
			if (object) {
				buffer_append_json_string(out, child->string);
				buffer_append_string(out, ": ");
			}
			write_json(child, indent + 4, out);
			buffer_append_string(out, child->next ? ",\n" : "\n");
		}
		buffer_printf(out, "%*s%s", indent, "", object ? "}" : "]");
		return;
	}
	char *text = cJSON_PrintUnformatted(item);
	buffer_append_string(out, text);
	free(text);
}

enum output { OUTPUT_TABLE, OUTPUT_WIDE, OUTPUT_JSON, OUTPUT_YAML, OUTPUT_NAME };

static void print_objects(const struct kind *kind, cJSON *items, bool single, enum output output, bool all_namespaces)
{
	struct buffer b = BUFFER_INIT;
	cJSON *shown = single ? cJSON_GetArrayItem(items, 0) : NULL;
	cJSON *list = NULL;
	if (!single && (output == OUTPUT_JSON || output == OUTPUT_YAML)) {
		list = cJSON_CreateObject();
		cJSON_AddStringToObject(list, "apiVersion", "v1");
		cJSON_AddItemReferenceToObject(list, "items", items);
		cJSON_AddStringToObject(list, "kind", "List");
		cJSON_AddItemToObject(list, "metadata", cJSON_CreateObject());
		cJSON_AddStringToObject(cJSON_GetObjectItem(list, "metadata"), "resourceVersion", "");
		shown = list;
	}
	switch (output) {
	case OUTPUT_JSON:
		write_json(shown, 0, &b);
		buffer_append_string(&b, "\n");
		break;
	case OUTPUT_YAML:
		manifest_write_yaml(shown, &b);
		break;
	case OUTPUT_NAME: {
		char type[128];
		get_type_name(kind, type, sizeof(type));
		const cJSON *object;
		cJSON_ArrayForEach(object, items)
		        buffer_printf(&b, "%s/%s\n", type, string_at(object, "metadata.name"));
		break;
	}
	default:
		print_table(kind, items, all_namespaces, output == OUTPUT_WIDE);
		break;
	}
	fputs(b.data ? b.data : "", stdout);
	buffer_free(&b);
	cJSON_Delete(list);
}

static void print_server_error(const struct client_response *response, const struct kind *kind, const char *name)
{
	char resource[128];
	get_resource_name(kind, resource, sizeof(resource));
	if (response->code == 404 && name && strcmp(response->reason, "NotFound") == 0)
		fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n", resource, name);
	else
		fprintf(stderr, "Error from server (%s): %s\n",
		        response->reason[0] ? response->reason : "InternalError", response->message);
}

/* --- the verb ------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fputs("usage: bramble get KIND [NAME...] [-n NAMESPACE | -A] [-l SELECTOR] [--field-selector SELECTOR]\n"
	      "                 [-o wide|json|yaml|name] [--config FILE]\n"
	      "\n"
	      "Lists objects of a kind (pods, po, deployments, deploy, svc, cm, secrets, ns, nodes, no, ds,\n"
	      "rs, jobs, ep, events ...) or shows the ones named, as kubectl get does.\n",
	      out);
}

static int get_one(struct client *client, const char *path, cJSON *items, const struct kind *kind, const char *name)
{
	struct client_response response;
	struct error err = { 0 };
	if (client_request(client, CLIENT_GET, path, NULL, 0, &response, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.message);
		return -1;
	}
	if (response.code >= 400) {
		print_server_error(&response, kind, name);
		client_response_clear(&response);
		return 1;
	}
	cJSON *object = cJSON_ParseWithLength(response.body, response.length);
	client_response_clear(&response);
	if (!object) {
		fprintf(stderr, "error: the server's answer for %s is not JSON\n", path);
		return -1;
	}
	cJSON_AddItemToArray(items, object);
	return 0;
}

static int list_all(struct client *client, const char *collection, const char *labels, const char *fields, cJSON *items,
                    const struct kind *kind)
{
	char *token = NULL;
	int r = 0;
	do {
		struct buffer path = BUFFER_INIT;
		buffer_printf(&path, "%s?limit=%d", collection, GET_PAGE);
		if (labels) {
			buffer_append_string(&path, "&labelSelector=");
			append_query_value(&path, labels);
		}
		if (fields) {
			buffer_append_string(&path, "&fieldSelector=");
			append_query_value(&path, fields);
		}
		if (token) {
			buffer_append_string(&path, "&continue=");
			append_query_value(&path, token);
			free(token);
			token = NULL;
		}
		struct client_response response;
		struct error err = { 0 };
		r = client_request(client, CLIENT_GET, path.data, NULL, 0, &response, &err);
		buffer_free(&path);
		if (r < 0) {
			fprintf(stderr, "error: %s\n", err.message);
			return -1;
		}
		if (response.code >= 400) {
			print_server_error(&response, kind, NULL);
			client_response_clear(&response);
			return -1;
		}
		cJSON *list = cJSON_ParseWithLength(response.body, response.length);
		client_response_clear(&response);
		cJSON *page = cJSON_DetachItemFromObjectCaseSensitive(list, "items");
		const char *next = object_string_at(list, "metadata.continue");
		token = next && next[0] ? xstrdup(next) : NULL;
		cJSON_Delete(list);
		if (!cJSON_IsArray(page)) {
			cJSON_Delete(page);
			free(token);
			fprintf(stderr, "error: the server's list of %s has no items\n", collection);
			return -1;
		}
		cJSON *object;
		while ((object = page->child)) {
			cJSON_DetachItemViaPointer(page, object);
			cJSON_AddItemToArray(items, object);
		}
		cJSON_Delete(page);
		if (cJSON_GetArraySize(items) > GET_MAX_OBJECTS) {
			free(token);
			fprintf(stderr, "error: more than %d objects: narrow the list with -l or -n\n",
			        GET_MAX_OBJECTS);
			return -1;
		}
	} while (token);
	return 0;
}

int get_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "all-namespaces", no_argument, NULL, 'A' },
		{ "selector", required_argument, NULL, 'l' },
		{ "field-selector", required_argument, NULL, 'F' },
		{ "output", required_argument, NULL, 'o' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *namespace = NULL, *labels = NULL, *fields = NULL, *config = NULL;
	bool all = false;
	enum output output = OUTPUT_TABLE;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:Al:o:h", long_options, NULL)) != -1) {
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
		case 'F':
			fields = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "wide") == 0)
				output = OUTPUT_WIDE;
			else if (strcmp(optarg, "json") == 0)
				output = OUTPUT_JSON;
			else if (strcmp(optarg, "yaml") == 0)
				output = OUTPUT_YAML;
			else if (strcmp(optarg, "name") == 0)
				output = OUTPUT_NAME;
			else {
				fprintf(stderr,
				        "error: unable to match a printer suitable for the output format \"%s\", "
				        "the allowed formats are: json,name,wide,yaml\n",
				        optarg);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind >= argc) {
		fputs("error: you must specify the type of resource to get (pods, deployments, svc, cm, ...)\n",
		      stderr);
		usage(stderr);
		return 1;
	}
	const struct kind *kind = get_resolve_kind(argv[optind]);
	if (!kind) {
		fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", argv[optind]);
		return 1;
	}
	if (!namespace)
	namespace = "default";
	char **names = argv + optind + 1;
	int name_count = argc - optind - 1;
	if (all && name_count > 0) {
		fputs("error: a resource cannot be retrieved by name across all namespaces\n", stderr);
		return 1;
	}
	struct client *client = NULL;
	struct error err = { 0 };
	if (clientconfig_connect(config, &client, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.message);
		return 1;
	}
	cJSON *items = cJSON_CreateArray();
	int failed = 0;
	if (name_count > 0) {
		for (int i = 0; i < name_count; i++) {
			char *path = get_object_path(kind, namespace, names[i]);
			int r = get_one(client, path, items, kind, names[i]);
			free(path);
			if (r < 0) {
				failed = 1;
				break;
			}
			failed |= r;
		}
	} else {
		char *path = get_object_path(kind, all ? NULL : namespace, NULL);
		failed = list_all(client, path, labels, fields, items, kind) < 0;
		free(path);
	}
	client_close(client);
	if (cJSON_GetArraySize(items) > 0 ||
	    (!failed && name_count == 0 && output != OUTPUT_TABLE && output != OUTPUT_WIDE && output != OUTPUT_NAME))
		print_objects(kind, items, name_count == 1, output, all);
	else if (!failed && name_count == 0) {
		if (all || !kind->namespaced)
			fputs("No resources found\n", stderr);
		else
			fprintf(stderr, "No resources found in %s namespace.\n", namespace);
	}
	cJSON_Delete(items);
	return failed ? 1 : 0;
}
