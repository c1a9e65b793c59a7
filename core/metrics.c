/* See metrics.h. State: one entry per node that reported, holding its last report as parsed
 * (node usage, pods with their containers), the wall-clock time it arrived and its window.
 *
 *   (none) --metrics_report--> fresh --(METRICS_STALE_FACTOR windows pass)--> stale
 *     ^                          ^                                              |
 *     |                          +---------------metrics_report-----------------+
 *     +---(a report from a new node when METRICS_MAX_NODES are kept: the stalest goes)
 *
 * Invariants: nothing here touches the store but to read pods (authorization of a report);
 * a refused report leaves the node's previous one in place; stale entries are never served.
 */
#include "core/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/authz.h"
#include "core/object.h"
#include "core/store.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"

#define METRICS_NAME_MAX 253

struct container_usage {
	char *name;
	struct metrics_usage usage;
};

struct pod_usage {
	char *namespace, *name;
	struct container_usage *containers;
	size_t container_count;
};

struct node_entry {
	char *name;
	int64_t received_ms;  /* wall clock */
	int64_t timestamp_ms; /* when the agent sampled (wall clock, its own) */
	uint64_t window_ms;
	struct metrics_usage usage;
	struct pod_usage *pods;
	size_t pod_count;
};

struct metrics {
	struct node_entry *nodes;
	size_t node_count;
};

struct metrics *metrics_new(void)
{
	return xcalloc(1, sizeof(struct metrics));
}

static void pod_clear(struct pod_usage *pod)
{
	free(pod->namespace);
	free(pod->name);
	for (size_t c = 0; c < pod->container_count; c++)
		free(pod->containers[c].name);
	free(pod->containers);
}

static void pods_free(struct pod_usage *pods, size_t count)
{
	for (size_t i = 0; i < count; i++)
		pod_clear(&pods[i]);
	free(pods);
}

static void entry_clear(struct node_entry *e)
{
	free(e->name);
	pods_free(e->pods, e->pod_count);
	memset(e, 0, sizeof(*e));
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->node_count; i++)
		entry_clear(&m->nodes[i]);
	free(m->nodes);
	free(m);
}

static bool fresh(const struct node_entry *e, int64_t now_ms)
{
	int64_t limit = (int64_t)e->window_ms * METRICS_STALE_FACTOR;
	if (limit < METRICS_STALE_MIN_MS)
		limit = METRICS_STALE_MIN_MS;
	return now_ms - e->received_ms <= limit;
}

static struct node_entry *find_node(const struct metrics *m, const char *name)
{
	for (size_t i = 0; i < m->node_count; i++)
		if (strcmp(m->nodes[i].name, name) == 0)
			return &m->nodes[i];
	return NULL;
}

/* --- quantities ------------------------------------------------------------------------ */

void metrics_format_cpu(uint64_t millicores, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu64 "m", millicores);
}

void metrics_format_memory(uint64_t bytes, char *buf, size_t size)
{
	static const char *const suffixes[] = { "Ki", "Mi", "Gi", "Ti" };
	int chosen = -1;
	uint64_t value = bytes;
	for (int i = 0; i < 4 && value && value % 1024 == 0; i++) {
		value /= 1024;
		chosen = i;
	}
	if (chosen < 0)
		snprintf(buf, size, "%" PRIu64, bytes);
	else
		snprintf(buf, size, "%" PRIu64 "%s", value, suffixes[chosen]);
}

/* --- reports ------------------------------------------------------------------------------ */

static int read_count(const cJSON *object, const char *key, uint64_t *ret, const char *where, struct error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e18)
		return error_set_field(err, EINVAL, where, "%s: a non-negative number is required", where);
	*ret = (uint64_t)v->valuedouble;
	return 0;
}

static int read_usage(const cJSON *object, struct metrics_usage *ret, const char *where, struct error *err)
{
	char field[ERROR_FIELD_MAX];
	snprintf(field, sizeof(field), "%s.cpu", where);
	int r = read_count(object, "cpu", &ret->cpu_millicores, field, err);
	if (r < 0)
		return r;
	snprintf(field, sizeof(field), "%s.memory", where);
	return read_count(object, "memory", &ret->memory_bytes, field, err);
}

static const char *read_name(const cJSON *object, const char *key, const char *where, struct error *err)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, key));
	if (!s || !s[0] || strlen(s) > METRICS_NAME_MAX) {
		error_set_field(err, EINVAL, where, "%s.%s: a name of 1 to %d characters is required", where, key,
		                METRICS_NAME_MAX);
		return NULL;
	}
	return s;
}

/* 0 when the pod may be reported by node: bound to it, or gone (-ENOENT: dropped). */
static int check_pod(struct store *store, const char *node, const char *ns, const char *name, const char *uid,
                     struct error *err)
{
	char *text = NULL;
	int r = store_get(store, "pods", ns, name, &text, NULL);
	if (r < 0)
		return r == -ENOENT ? -ENOENT : error_set(err, -r, "pod %s/%s: cannot read it", ns, name);
	cJSON *pod = cJSON_Parse(text);
	free(text);
	const char *bound = pod ? object_string_at(pod, "spec.nodeName") : NULL;
	const char *stored_uid = pod ? object_string_at(pod, "metadata.uid") : NULL;
	if (uid && stored_uid && strcmp(uid, stored_uid) != 0) {
		cJSON_Delete(pod);
		return -ENOENT; /* an older pod of that name */
	}
	r = bound && strcmp(bound, node) == 0
	            ? 0
	            : error_set(err, EPERM, "node %s may not report metrics of pod %s/%s: it is not bound to it", node,
	                        ns, name);
	cJSON_Delete(pod);
	return r;
}

static int parse_pod(const cJSON *item, size_t index, struct pod_usage *ret, struct error *err)
{
	char where[64];
	snprintf(where, sizeof(where), "pods[%zu]", index);
	const char *ns = read_name(item, "namespace", where, err),
	           *name = ns ? read_name(item, "name", where, err) : NULL;
	if (!name)
		return -EINVAL;
	const cJSON *containers = cJSON_GetObjectItemCaseSensitive(item, "containers");
	int count = cJSON_GetArraySize(containers);
	if (!cJSON_IsArray(containers) || count > METRICS_MAX_CONTAINERS)
		return error_set_field(err, EINVAL, where, "%s.containers: a list of at most %d is required", where,
		                       METRICS_MAX_CONTAINERS);
	ret->namespace = xstrdup(ns);
	ret->name = xstrdup(name);
	ret->containers = xcalloc((size_t)count + 1, sizeof(*ret->containers));
	const cJSON *c;
	cJSON_ArrayForEach(c, containers)
	{
		char cwhere[96];
		snprintf(cwhere, sizeof(cwhere), "%s.containers[%zu]", where, ret->container_count);
		const char *cname = read_name(c, "name", cwhere, err);
		struct container_usage *u = &ret->containers[ret->container_count];
		if (!cname || read_usage(c, &u->usage, cwhere, err) < 0)
			return -EINVAL;
		u->name = xstrdup(cname);
		ret->container_count++;
	}
	return 0;
}

int metrics_report(struct metrics *m, struct store *store, const char *node, const cJSON *report, int64_t now_ms,
                   struct error *err)
{
	if (!cJSON_IsObject(report))
		return error_set(err, EINVAL, "a metrics report is a JSON object");
	struct node_entry fresh_entry = { 0 };
	int r = read_usage(cJSON_GetObjectItemCaseSensitive(report, "usage"), &fresh_entry.usage, "usage", err);
	if (r < 0)
		return r;
	uint64_t window = 0;
	if ((r = read_count(report, "window", &window, "window", err)) < 0)
		return r;
	if (window == 0 || window > 3600 * 1000)
		return error_set_field(err, EINVAL, "window", "window: %" PRIu64 " ms is not between 1 ms and an hour",
		                       window);
	fresh_entry.window_ms = window;
	const char *timestamp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(report, "timestamp"));
	time_t t;
	if (!timestamp || clock_parse_rfc3339(timestamp, &t) < 0)
		return error_set_field(err, EINVAL, "timestamp", "timestamp: an RFC 3339 time is required");
	fresh_entry.timestamp_ms = (int64_t)t * 1000;
	const cJSON *pods = cJSON_GetObjectItemCaseSensitive(report, "pods");
	int count = cJSON_GetArraySize(pods);
	if (pods && !cJSON_IsArray(pods))
		return error_set_field(err, EINVAL, "pods", "pods: a list is required");
	if (count > METRICS_MAX_PODS)
		return error_set_field(err, EINVAL, "pods", "pods: %d reported; at most %d are accepted", count,
		                       METRICS_MAX_PODS);
	fresh_entry.pods = xcalloc((size_t)count + 1, sizeof(*fresh_entry.pods));
	const cJSON *item;
	size_t index = 0;
	cJSON_ArrayForEach(item, pods)
	{
		struct pod_usage pod = { 0 };
		r = parse_pod(item, index++, &pod, err);
		if (r == 0 && store) {
			const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "uid"));
			r = check_pod(store, node, pod.namespace, pod.name, uid, err);
			if (r == -ENOENT) { /* gone from the API: dropped */
				pod_clear(&pod);
				continue;
			}
		}
		fresh_entry.pods[fresh_entry.pod_count++] = pod;
		if (r < 0) {
			pods_free(fresh_entry.pods, fresh_entry.pod_count);
			return r;
		}
	}
	struct node_entry *e = find_node(m, node);
	if (!e) {
		if (m->node_count == METRICS_MAX_NODES) {
			size_t oldest = 0;
			for (size_t i = 1; i < m->node_count; i++)
				if (m->nodes[i].received_ms < m->nodes[oldest].received_ms)
					oldest = i;
			entry_clear(&m->nodes[oldest]);
			m->nodes[oldest] = m->nodes[--m->node_count];
		}
		m->nodes = xrealloc(m->nodes, (m->node_count + 1) * sizeof(*m->nodes));
		e = &m->nodes[m->node_count++];
		memset(e, 0, sizeof(*e));
	} else {
		free(e->name);
		pods_free(e->pods, e->pod_count);
	}
	fresh_entry.name = xstrdup(node);
	fresh_entry.received_ms = now_ms;
	*e = fresh_entry;
	return 0;
}

static const struct pod_usage *find_pod(const struct metrics *m, const char *ns, const char *name, int64_t now_ms,
                                        const struct node_entry **ret_node)
{
	for (size_t i = 0; i < m->node_count; i++) {
		const struct node_entry *e = &m->nodes[i];
		if (!fresh(e, now_ms))
			continue;
		for (size_t p = 0; p < e->pod_count; p++) {
			if (strcmp(e->pods[p].namespace, ns) == 0 && strcmp(e->pods[p].name, name) == 0) {
				if (ret_node)
					*ret_node = e;
				return &e->pods[p];
			}
		}
	}
	return NULL;
}

int metrics_pod_usage(const struct metrics *m, const char *ns, const char *name, int64_t now_ms,
                      struct metrics_usage *ret_usage, int64_t *ret_timestamp_ms)
{
	const struct node_entry *node = NULL;
	const struct pod_usage *pod = m ? find_pod(m, ns, name, now_ms, &node) : NULL;
	if (!pod)
		return -ENOENT;
	struct metrics_usage sum = { 0 };
	for (size_t c = 0; c < pod->container_count; c++) {
		sum.cpu_millicores += pod->containers[c].usage.cpu_millicores;
		sum.memory_bytes += pod->containers[c].usage.memory_bytes;
	}
	*ret_usage = sum;
	if (ret_timestamp_ms)
		*ret_timestamp_ms = node->timestamp_ms;
	return 0;
}

int metrics_node_usage(const struct metrics *m, const char *node, int64_t now_ms, struct metrics_usage *ret_usage)
{
	const struct node_entry *e = m ? find_node(m, node) : NULL;
	if (!e || !fresh(e, now_ms))
		return -ENOENT;
	*ret_usage = e->usage;
	return 0;
}

/* --- the API ------------------------------------------------------------------------------- */

bool metrics_path(const char *path)
{
	while (*path == '/')
		path++;
	size_t n = strlen(METRICS_PATH_PREFIX);
	return strncmp(path, METRICS_PATH_PREFIX, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void append_usage(struct buffer *b, const struct metrics_usage *u)
{
	char cpu[32], memory[32];
	metrics_format_cpu(u->cpu_millicores, cpu, sizeof(cpu));
	metrics_format_memory(u->memory_bytes, memory, sizeof(memory));
	buffer_printf(b, "{\"cpu\":\"%s\",\"memory\":\"%s\"}", cpu, memory);
}

static void append_head(struct buffer *b, const char *kind, const char *ns, const char *name,
                        const struct node_entry *e)
{
	char stamp[CLOCK_RFC3339_SIZE], created[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339((time_t)(e->timestamp_ms / 1000), stamp);
	clock_format_rfc3339(time(NULL), created);
	buffer_printf(b, "{\"kind\":\"%s\",\"apiVersion\":\"metrics.k8s.io/v1beta1\",\"metadata\":{\"name\":", kind);
	buffer_append_json_string(b, name);
	if (ns) {
		buffer_append_string(b, ",\"namespace\":");
		buffer_append_json_string(b, ns);
	}
	buffer_printf(b, ",\"creationTimestamp\":\"%s\"},\"timestamp\":\"%s\",\"window\":\"", created, stamp);
	if (e->window_ms % 1000 == 0)
		buffer_printf(b, "%" PRIu64 "s\"", e->window_ms / 1000);
	else
		buffer_printf(b, "%" PRIu64 "ms\"", e->window_ms);
}

static void append_node(struct buffer *b, const struct node_entry *e)
{
	append_head(b, "NodeMetrics", NULL, e->name, e);
	buffer_append_string(b, ",\"usage\":");
	append_usage(b, &e->usage);
	buffer_append_string(b, "}");
}

static void append_pod(struct buffer *b, const struct node_entry *e, const struct pod_usage *p)
{
	append_head(b, "PodMetrics", p->namespace, p->name, e);
	buffer_append_string(b, ",\"containers\":[");
	for (size_t c = 0; c < p->container_count; c++) {
		buffer_append_string(b, c ? ",{\"name\":" : "{\"name\":");
		buffer_append_json_string(b, p->containers[c].name);
		buffer_append_string(b, ",\"usage\":");
		append_usage(b, &p->containers[c].usage);
		buffer_append_string(b, "}");
	}
	buffer_append_string(b, "]}");
}

static int fail(char **ret_body, int code, const char *reason, const struct error *err)
{
	struct buffer b = BUFFER_INIT;
	buffer_append_string(&b, "{\"reason\":");
	buffer_append_json_string(&b, reason);
	buffer_append_string(&b, ",\"message\":");
	buffer_append_json_string(&b, err->message);
	if (err->field[0]) {
		buffer_append_string(&b, ",\"field\":");
		buffer_append_json_string(&b, err->field);
	}
	buffer_append_string(&b, "}");
	*ret_body = buffer_steal(&b);
	return code;
}

/* "nodes", "nodes/NAME", "pods", "namespaces/NS/pods", "namespaces/NS/pods/NAME". */
struct metrics_route {
	bool nodes;
	char namespace[64];
	char name[METRICS_NAME_MAX + 1];
};

static int parse_metrics_route(const char *path, struct metrics_route *route, struct error *err)
{
	memset(route, 0, sizeof(*route));
	while (*path == '/')
		path++;
	path += strlen(METRICS_PATH_PREFIX);
	while (*path == '/')
		path++;
	char copy[512];
	if (strlen(path) >= sizeof(copy))
		return error_set(err, ENOENT, "no such path");
	snprintf(copy, sizeof(copy), "%s", path);
	char *segments[5] = { 0 }, *save = NULL;
	int n = 0;
	for (char *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (n == 5)
			return error_set(err, ENOENT, "no such path: /%s/%s", METRICS_PATH_PREFIX, path);
		segments[n++] = s;
	}
	int i = 0;
	if (n >= 3 && strcmp(segments[0], "namespaces") == 0) {
		if (strlen(segments[1]) >= sizeof(route->namespace))
			return error_set(err, ENOENT, "namespace \"%s\" not found", segments[1]);
		snprintf(route->namespace, sizeof(route->namespace), "%s", segments[1]);
		i = 2;
	}
	if (n - i < 1 || n - i > 2 || (strcmp(segments[i], "nodes") != 0 && strcmp(segments[i], "pods") != 0) ||
	    (route->namespace[0] && strcmp(segments[i], "nodes") == 0))
		return error_set(err, ENOENT,
		                 "no such path: /%s/%s (served: nodes[/NAME], pods, namespaces/NS/pods[/NAME])",
		                 METRICS_PATH_PREFIX, path);
	route->nodes = strcmp(segments[i], "nodes") == 0;
	if (n - i == 2) {
		if (strlen(segments[i + 1]) > METRICS_NAME_MAX)
			return error_set(err, ENOENT, "name too long");
		snprintf(route->name, sizeof(route->name), "%s", segments[i + 1]);
		if (!route->nodes && !route->namespace[0])
			return error_set(err, ENOENT, "pods are namespaced: use namespaces/NAMESPACE/pods/NAME");
	}
	return 0;
}

static int serve_read(struct metrics *m, const struct metrics_route *route, int64_t now_ms, char **ret_body)
{
	struct error err = { 0 };
	struct buffer b = BUFFER_INIT;
	if (route->name[0]) {
		const struct node_entry *e = NULL;
		if (route->nodes) {
			e = find_node(m, route->name);
			if (e && fresh(e, now_ms)) {
				append_node(&b, e);
				*ret_body = buffer_steal(&b);
				return 205;
			}
			error_set(&err, ENOENT, "nodemetrics.metrics.k8s.io \"%s\" not found", route->name);
		} else {
			const struct pod_usage *p = find_pod(m, route->namespace, route->name, now_ms, &e);
			if (p) {
				append_pod(&b, e, p);
				*ret_body = buffer_steal(&b);
				return 205;
			}
			error_set(&err, ENOENT, "podmetrics.metrics.k8s.io \"%s/%s\" not found", route->namespace,
			          route->name);
		}
		return fail(ret_body, 404, "NotFound", &err);
	}
	buffer_printf(&b, "{\"kind\":\"%s\",\"apiVersion\":\"metrics.k8s.io/v1beta1\",\"metadata\":{},\"items\":[",
	              route->nodes ? "NodeMetricsList" : "PodMetricsList");
	size_t count = 0;
	for (size_t i = 0; i < m->node_count; i++) {
		const struct node_entry *e = &m->nodes[i];
		if (!fresh(e, now_ms))
			continue;
		if (route->nodes) {
			if (count++)
				buffer_append_string(&b, ",");
			append_node(&b, e);
			continue;
		}
		for (size_t p = 0; p < e->pod_count; p++) {
			if (route->namespace[0] && strcmp(e->pods[p].namespace, route->namespace) != 0)
				continue;
			if (count++)
				buffer_append_string(&b, ",");
			append_pod(&b, e, &e->pods[p]);
		}
	}
	buffer_append_string(&b, "]}");
	*ret_body = buffer_steal(&b);
	return 205;
}

int metrics_serve(struct metrics *m, struct store *store, const char *method, const char *identity, const char *path,
                  const char *body, size_t body_length, int64_t now_ms, char **ret_body)
{
	struct error err = { 0 };
	struct metrics_route route;
	*ret_body = NULL;
	if (parse_metrics_route(path, &route, &err) < 0)
		return fail(ret_body, 404, "NotFound", &err);
	bool admin = !identity || !identity[0] || strcmp(identity, "admin") == 0;
	const char *node = identity ? authz_node_name(identity) : NULL;
	if (strcmp(method, "GET") == 0) {
		if (!admin) {
			error_set(&err, EPERM, "%s may not read metrics: only admins may", identity);
			return fail(ret_body, 403, "Forbidden", &err);
		}
		return serve_read(m, &route, now_ms, ret_body);
	}
	if (strcmp(method, "PUT") != 0) {
		error_set(&err, ENOTSUP, "metrics are read with GET and reported with PUT on nodes/NAME");
		return fail(ret_body, 405, "MethodNotAllowed", &err);
	}
	if (!route.nodes || !route.name[0]) {
		error_set(&err, ENOTSUP, "metrics are reported with PUT on nodes/NAME");
		return fail(ret_body, 405, "MethodNotAllowed", &err);
	}
	if (!admin && (!node || strcmp(node, route.name) != 0)) {
		error_set(&err, EPERM, "%s may not report metrics of node %s: a node reports only its own", identity,
		          route.name);
		return fail(ret_body, 403, "Forbidden", &err);
	}
	cJSON *report = NULL;
	if (object_parse(body ? body : "", body_length, &report, &err) < 0)
		return fail(ret_body, 400, "BadRequest", &err);
	int r = metrics_report(m, store, route.name, report, now_ms, &err);
	cJSON_Delete(report);
	if (r == -EPERM)
		return fail(ret_body, 403, "Forbidden", &err);
	if (r < 0)
		return fail(ret_body, r == -EINVAL ? 400 : 500, r == -EINVAL ? "Invalid" : "InternalError", &err);
	return 204;
}
