/* See apiserver.h. The life of a request:
 *
 *   libcoap -> hnd_request -> parse_route -> (GET) serve_get: get / list / watch / replay
 *                                         -> (write) prepare the new object -> authz_check
 *                                            -> store_apply (in the open transaction)
 *                                            -> park the answer (coap_register_async)
 *   end of the burst -> on_batch: store_commit -> release every parked answer
 *                       (coap_async_trigger: libcoap calls hnd_request again, which answers)
 *                    -> watch_flush (notifications for what was committed)
 *
 * A write is therefore acknowledged only once durable, and a burst of writes from many
 * clients shares one commit. A failed commit answers every parked write with 5.03.
 *
 * Invariants: nothing writes the store but store_apply; a write that fails before
 * store_apply leaves the store untouched; every parked answer is released by the next
 * on_batch, committed or not.
 */
#include "core/apiserver.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <coap3/coap.h>

#include "core/authz.h"
#include "core/binder.h"
#include "core/controllers.h"
#include "core/logrelay.h"
#include "core/metrics.h"
#include "core/ipalloc.h"
#include "core/object.h"
#include "core/registry.h"
#include "core/selector.h"
#include "core/store.h"
#include "core/transport.h"
#include "core/watch.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define ROUTE_NAME_MAX 253
#define QUERY_VALUE_MAX 1024
#define COAP_MEDIATYPE_MERGE_PATCH_JSON 52 /* application/merge-patch+json (RFC 8132) */

struct parked_answer {
	struct parked_answer *next;
	uint64_t id;
	bool released;
	coap_session_t *session; /* referenced while parked */
	uint8_t token[8];
	size_t token_length;
	coap_pdu_code_t code;
	char *body;
};

/* Heartbeats live in memory: a Lease renewal, or a Node status update that changes nothing
 * but heartbeat times, is kept here instead of written to the store (an SD card would take
 * a write per node every few seconds). Reads see it; the next real change to the object
 * writes it along; a restart forgets it, and agents renew within one interval. */
struct heartbeat {
	struct heartbeat *next;
	char *key;         /* resource/namespace/name */
	uint64_t revision; /* the stored revision it stands on; stale once the store moves on */
	char *object;      /* the object as the last heartbeat left it */
};

struct apiserver {
	struct transport *transport;
	struct heartbeat *heartbeats;
	struct store *store;
	struct apiserver_options options;
	struct watch_hub *watches;
	struct binder *binder;           /* the scheduler at work; NULL when disabled */
	struct controllers *controllers; /* NULL when disabled */
	struct loop_timer *binder_timer; /* the binder stopped within its time budget: more soon */
	struct metrics *metrics;         /* usage the agents report (core/metrics.c) */
	struct logrelay *logs;           /* pod logs from the agents (core/logrelay.c) */
	struct parked_answer *parked;
	uint64_t next_parked_id;
	char *version_json;
};

struct route {
	const struct kind *kind;
	char resource_key[96];
	char namespace[64];
	char name[ROUTE_NAME_MAX + 1];
	bool has_namespace;
	bool has_name;
	bool status;
};

/* --- answers --------------------------------------------------------------------------- */

static void release_buffer(coap_session_t *session, void *data)
{
	(void)session;
	free(data);
}

/* Answers with JSON text, block-wise when large; takes ownership of body. */
static void answer(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                   const coap_string_t *query, coap_pdu_t *response, coap_pdu_code_t code, char *body)
{
	coap_pdu_set_code(response, code);
	if (!body)
		return;
	size_t length = strlen(body);
	if (!coap_add_data_large_response(resource, session, request, response, query, COAP_MEDIATYPE_APPLICATION_JSON,
	                                  -1, 0, length, (const uint8_t *)body, release_buffer, body))
		coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
}

static const char *reason_for(coap_pdu_code_t code)
{
	switch (code) {
	case COAP_RESPONSE_CODE(400):
		return "BadRequest";
	case COAP_RESPONSE_CODE(403):
		return "Forbidden";
	case COAP_RESPONSE_CODE(404):
		return "NotFound";
	case COAP_RESPONSE_CODE(405):
		return "MethodNotAllowed";
	case COAP_RESPONSE_CODE(409):
		return "AlreadyExists";
	case COAP_RESPONSE_CODE(412):
		return "Conflict";
	case COAP_RESPONSE_CODE(413):
		return "RequestEntityTooLarge";
	case COAP_RESPONSE_CODE(415):
		return "UnsupportedMediaType";
	case COAP_RESPONSE_CODE(429):
		return "TooManyRequests";
	case COAP_RESPONSE_CODE(503):
		return "ServiceUnavailable";
	default:
		return "InternalError";
	}
}

static char *error_body(const char *reason, const char *message, const char *field)
{
	struct buffer b = BUFFER_INIT;
	buffer_append_string(&b, "{\"reason\":");
	buffer_append_json_string(&b, reason);
	buffer_append_string(&b, ",\"message\":");
	buffer_append_json_string(&b, message);
	if (field && field[0]) {
		buffer_append_string(&b, ",\"field\":");
		buffer_append_json_string(&b, field);
	}
	buffer_append_string(&b, "}");
	return buffer_steal(&b);
}

static coap_pdu_code_t code_for(int r)
{
	switch (-r) {
	case EINVAL:
	case EBADMSG:
		return COAP_RESPONSE_CODE(400);
	case EPERM:
	case EACCES:
		return COAP_RESPONSE_CODE(403);
	case ENOENT:
	case ERANGE:
		return COAP_RESPONSE_CODE(404);
	case EEXIST:
		return COAP_RESPONSE_CODE(409);
	case ESTALE:
		return COAP_RESPONSE_CODE(412);
	case EFBIG:
		return COAP_RESPONSE_CODE(413);
	case EBUSY:
		return COAP_RESPONSE_CODE(429);
	case ENOTSUP:
		return COAP_RESPONSE_CODE(405);
	case EPROTONOSUPPORT:
		return COAP_RESPONSE_CODE(415);
	default:
		return COAP_RESPONSE_CODE(500);
	}
}

/* Answers an error; r is the negative errno, err its message. */
static void answer_error(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                         const coap_string_t *query, coap_pdu_t *response, int r, const struct error *err)
{
	coap_pdu_code_t code = code_for(r);
	const char *reason = reason_for(code);
	if (-r == ERANGE)
		reason = "Expired";
	else if (-r == EINVAL && err && err->field[0])
		reason = "Invalid";
	answer(resource, session, request, query, response, code,
	       error_body(reason, err && err->message[0] ? err->message : strerror(-r), err ? err->field : NULL));
}

/* --- routes and queries -------------------------------------------------------------- */

/* The store keys resources by plural, qualified by group outside the core group. */
static void resource_key_of(const struct kind *kind, char *buf, size_t size)
{
	if (kind->group[0])
		snprintf(buf, size, "%s.%s", kind->resource, kind->group);
	else
		snprintf(buf, size, "%s", kind->resource);
}

static int copy_segment(char *out, size_t size, const char *segment, size_t length, const char *what, struct error *err)
{
	if (length == 0 || length >= size)
		return error_set(err, EINVAL, "%s must be 1 to %zu characters", what, size - 1);
	memcpy(out, segment, length);
	out[length] = '\0';
	return 0;
}

/* Splits path into at most max segments; returns their count or -EINVAL. */
static int split_path(const char *path, const char *segments[], size_t lengths[], int max)
{
	int n = 0;
	const char *p = path;
	while (*p == '/')
		p++;
	while (*p) {
		if (n == max)
			return -EINVAL;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		segments[n] = p;
		lengths[n++] = len;
		if (!end)
			break;
		p = end + 1;
	}
	return n;
}

static bool segment_is(const char *segment, size_t length, const char *word)
{
	return strlen(word) == length && memcmp(segment, word, length) == 0;
}

static int parse_route(const char *path, struct route *route, struct error *err)
{
	const char *seg[8];
	size_t len[8];
	memset(route, 0, sizeof(*route));
	int n = split_path(path, seg, len, 8);
	if (n < 0)
		return error_set(err, ENOENT, "no such path: /%s", path);
	char group[64] = "", version[16];
	int i;
	if (n >= 2 && segment_is(seg[0], len[0], "api")) {
		if (copy_segment(version, sizeof(version), seg[1], len[1], "version", err) < 0)
			return -ENOENT;
		i = 2;
	} else if (n >= 3 && segment_is(seg[0], len[0], "apis")) {
		if (copy_segment(group, sizeof(group), seg[1], len[1], "group", err) < 0 ||
		    copy_segment(version, sizeof(version), seg[2], len[2], "version", err) < 0)
			return -ENOENT;
		i = 3;
	} else {
		return error_set(err, ENOENT, "no such path: /%s (API paths start with /api/v1 or /apis/GROUP/VERSION)",
		                 path);
	}
	int rest = n - i;
	/* namespaces/{ns}/{resource}... unless it is the Namespace object itself. */
	if (group[0] == '\0' && rest >= 3 && segment_is(seg[i], len[i], "namespaces") &&
	    !(rest == 3 && segment_is(seg[i + 2], len[i + 2], "status"))) {
		if (copy_segment(route->namespace, sizeof(route->namespace), seg[i + 1], len[i + 1], "namespace", err) <
		    0)
			return -EINVAL;
		route->has_namespace = true;
		i += 2;
		rest -= 2;
	} else if (group[0] != '\0' && rest >= 3 && segment_is(seg[i], len[i], "namespaces")) {
		if (copy_segment(route->namespace, sizeof(route->namespace), seg[i + 1], len[i + 1], "namespace", err) <
		    0)
			return -EINVAL;
		route->has_namespace = true;
		i += 2;
		rest -= 2;
	}
	if (rest < 1 || rest > 3)
		return error_set(err, ENOENT, "no such path: /%s", path);
	char resource[64];
	if (copy_segment(resource, sizeof(resource), seg[i], len[i], "resource", err) < 0)
		return -ENOENT;
	route->kind = kind_by_resource(group, version, resource);
	if (!route->kind)
		return error_set(err, ENOENT, "the server does not serve %s%s%s/%s", group, group[0] ? "/" : "",
		                 version, resource);
	if (route->has_namespace && !route->kind->namespaced)
		return error_set(err, ENOENT, "%s are cluster-scoped: drop namespaces/%s from the path", resource,
		                 route->namespace);
	if (!route->has_namespace && route->kind->namespaced && rest >= 2)
		return error_set(err, ENOENT, "%s are namespaced: use .../namespaces/NAMESPACE/%s/NAME", resource,
		                 resource);
	if (rest >= 2) {
		if (copy_segment(route->name, sizeof(route->name), seg[i + 1], len[i + 1], "name", err) < 0)
			return -EINVAL;
		route->has_name = true;
	}
	if (rest == 3) {
		if (!segment_is(seg[i + 2], len[i + 2], "status") || !route->kind->has_status)
			return error_set(err, ENOENT, "%s has no subresource %.*s", resource, (int)len[i + 2],
			                 seg[i + 2]);
		route->status = true;
	}
	resource_key_of(route->kind, route->resource_key, sizeof(route->resource_key));
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The query parameters Bramble understands; anything else is refused by name. */
static const char *const known_parameters[] = { "labelSelector",      "fieldSelector",     "limit",
	                                        "continue",           "resourceVersion",   "watch",
	                                        "gracePeriodSeconds", "propagationPolicy", "dryRun" };

struct query {
	const char *values[ARRAY_SIZE(known_parameters)];
	char storage[2 * QUERY_VALUE_MAX];
};

/* Splits "a=b&c=d" (libcoap joins Uri-Query options with '&'), percent-decoding values. */
static int parse_query(const coap_string_t *raw, struct query *q, struct error *err)
{
	memset(q, 0, sizeof(*q));
	if (!raw || raw->length == 0)
		return 0;
	if (raw->length >= sizeof(q->storage))
		return error_set(err, EINVAL, "query longer than %zu bytes", sizeof(q->storage) - 1);
	char *out = q->storage;
	size_t i = 0;
	while (i < raw->length) {
		size_t start = i;
		while (i < raw->length && raw->s[i] != '&')
			i++;
		const char *item = (const char *)raw->s + start;
		size_t item_len = i - start;
		i++; /* skip '&' */
		if (item_len == 0)
			continue;
		const char *eq = memchr(item, '=', item_len);
		size_t key_len = eq ? (size_t)(eq - item) : item_len;
		size_t k;
		for (k = 0; k < ARRAY_SIZE(known_parameters); k++)
			if (strlen(known_parameters[k]) == key_len && memcmp(known_parameters[k], item, key_len) == 0)
				break;
		if (k == ARRAY_SIZE(known_parameters))
			return error_set(err, EINVAL,
			                 "unknown query parameter '%.*s' (supported: labelSelector, "
			                 "fieldSelector, limit, continue, resourceVersion, watch, "
			                 "gracePeriodSeconds, propagationPolicy, dryRun)",
			                 (int)(key_len > 64 ? 64 : key_len), item);
		q->values[k] = out;
		for (const char *p = eq ? eq + 1 : item + item_len; p < item + item_len; p++) {
			if (*p == '%' && p + 2 < item + item_len && hex_value(p[1]) >= 0 && hex_value(p[2]) >= 0) {
				*out++ = (char)(hex_value(p[1]) * 16 + hex_value(p[2]));
				p += 2;
			} else {
				*out++ = *p;
			}
		}
		*out++ = '\0';
	}
	return 0;
}

static const char *query_get(const struct query *q, const char *key)
{
	for (size_t k = 0; k < ARRAY_SIZE(known_parameters); k++)
		if (strcmp(known_parameters[k], key) == 0)
			return q->values[k];
	return NULL;
}

static int query_number(const struct query *q, const char *key, uint64_t *ret, struct error *err)
{
	const char *v = query_get(q, key);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *v == '\0' || *end != '\0' || *v == '-')
		return error_set(err, EINVAL, "%s: '%s' is not a non-negative number", key, v);
	*ret = n;
	return 1;
}

/* --- object helpers -------------------------------------------------------------------- */

static void set_string(cJSON *object, const char *key, const char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(object, key);
	cJSON_AddStringToObject(object, key, value);
}

static void now_rfc3339(char buf[CLOCK_RFC3339_SIZE])
{
	clock_format_rfc3339(time(NULL), buf);
}

static uint64_t revision_of(const cJSON *object)
{
	const char *rv = object_string_at(object, "metadata.resourceVersion");
	return rv ? strtoull(rv, NULL, 10) : 0;
}

static int64_t number_at(const cJSON *object, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, key);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* Copies item key of from into to, replacing what to has (or removing it). */
static void carry(cJSON *to, const cJSON *from, const char *key)
{
	cJSON_DeleteItemFromObjectCaseSensitive(to, key);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
	if (v)
		cJSON_AddItemToObject(to, key, cJSON_Duplicate(v, 1));
}

static bool has_finalizers(const cJSON *object)
{
	const cJSON *f =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"), "finalizers");
	return cJSON_IsArray(f) && cJSON_GetArraySize(f) > 0;
}

static int check_kind(const struct route *route, const cJSON *object, struct error *err)
{
	const cJSON *api_version = cJSON_GetObjectItemCaseSensitive(object, "apiVersion");
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(object, "kind");
	if (!cJSON_IsString(api_version))
		return error_set_field(err, EINVAL, "apiVersion", "Required value");
	if (!cJSON_IsString(kind))
		return error_set_field(err, EINVAL, "kind", "Required value");
	if (strcmp(api_version->valuestring, route->kind->api_version) != 0 ||
	    strcmp(kind->valuestring, route->kind->name) != 0)
		return error_set(err, EINVAL, "the body is a %s/%s but the path is for %s (%s/%s)",
		                 api_version->valuestring, kind->valuestring, route->kind->resource,
		                 route->kind->api_version, route->kind->name);
	return 0;
}

/* Namespace and name of the body agree with the path (filling them in when absent). */
static int check_identity(const struct route *route, cJSON *object, struct error *err)
{
	cJSON *metadata = object_metadata(object);
	const char *ns = object_namespace(object);
	if (route->kind->namespaced) {
		const char *want = route->has_namespace ? route->namespace : "default";
		if (!ns)
			set_string(metadata, "namespace", want);
		else if (strcmp(ns, want) != 0)
			return error_set_field(
			        err, EINVAL, "metadata.namespace",
			        "Invalid value: \"%s\": does not match the namespace of the path (\"%s\")", ns, want);
	}
	const char *name = object_name(object);
	if (route->has_name) {
		if (!name)
			set_string(metadata, "name", route->name);
		else if (strcmp(name, route->name) != 0)
			return error_set_field(err, EINVAL, "metadata.name",
			                       "Invalid value: \"%s\": does not match the name in the path (\"%s\")",
			                       name, route->name);
	}
	return 0;
}

/* --- heartbeats in memory ---------------------------------------------------------------- */

static bool has_heartbeats(const struct kind *kind)
{
	return strcmp(kind->name, "Lease") == 0 || strcmp(kind->name, "Node") == 0;
}

static char *heartbeat_key(const char *resource_key, const char *namespace, const char *name)
{
	return xasprintf("%s/%s/%s", resource_key, namespace ? namespace : "", name);
}

static struct heartbeat **heartbeat_slot(struct apiserver *api, const char *key)
{
	struct heartbeat **p = &api->heartbeats;
	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

static void heartbeat_drop(struct apiserver *api, const char *key)
{
	struct heartbeat **p = heartbeat_slot(api, key);
	if (*p) {
		struct heartbeat *h = *p;
		*p = h->next;
		free(h->key);
		free(h->object);
		free(h);
	}
}

/* The remembered object when it still stands on `revision`, else NULL. */
static const char *heartbeat_view(struct apiserver *api, const char *key, uint64_t revision)
{
	struct heartbeat *h = *heartbeat_slot(api, key);
	return h && h->revision == revision ? h->object : NULL;
}

/* Removes the fields a heartbeat changes: a Lease's spec.renewTime, a Node's
 * status.conditions[].lastHeartbeatTime. */
static void strip_heartbeat(const struct kind *kind, cJSON *object)
{
	cJSON *metadata = cJSON_GetObjectItemCaseSensitive(object, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "resourceVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "generation"); /* a renewal is no new generation */
	if (strcmp(kind->name, "Lease") == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "spec"), "renewTime");
		return;
	}
	cJSON *condition;
	cJSON_ArrayForEach(condition, cJSON_GetObjectItemCaseSensitive(
	                                      cJSON_GetObjectItemCaseSensitive(object, "status"), "conditions"))
	{
		cJSON_DeleteItemFromObjectCaseSensitive(condition, "lastHeartbeatTime");
	}
}

/* A kubelet's sign of life for the node lifecycle controller: a write to its Node's status
 * or to its Lease in kube-node-lease (kept in memory or not). */
static void note_heartbeat(struct apiserver *api, const struct kind *kind, bool status, const char *namespace,
                           const char *name)
{
	if (!api->controllers || !name)
		return;
	if ((strcmp(kind->name, "Node") == 0 && status) ||
	    (strcmp(kind->name, "Lease") == 0 && namespace && strcmp(namespace, "kube-node-lease") == 0))
		controllers_node_heartbeat(api->controllers, name);
}

static bool only_heartbeat_changed(const struct kind *kind, const cJSON *before, const cJSON *after)
{
	cJSON *a = cJSON_Duplicate(before, 1), *b = cJSON_Duplicate(after, 1);
	strip_heartbeat(kind, a);
	strip_heartbeat(kind, b);
	bool same = cJSON_Compare(a, b, true);
	cJSON_Delete(a);
	cJSON_Delete(b);
	return same;
}

/* --- the API server -------------------------------------------------------------------- */

struct request_context {
	struct apiserver *api;
	coap_resource_t *resource;
	coap_session_t *session;
	const coap_pdu_t *request;
	const coap_string_t *raw_query;
	coap_pdu_t *response;
	struct route route;
	struct query query;
	char identity[TRANSPORT_PSK_IDENTITY_MAX + 1];
};

static void reply(struct request_context *c, coap_pdu_code_t code, char *body)
{
	answer(c->resource, c->session, c->request, c->raw_query, c->response, code, body);
}

static void reply_error(struct request_context *c, int r, const struct error *err)
{
	answer_error(c->resource, c->session, c->request, c->raw_query, c->response, r, err);
}

static int authorize(struct request_context *c, enum authz_verb verb, const cJSON *object, struct error *err)
{
	struct authz_request request = {
		.identity = c->identity,
		.verb = verb,
		.kind = c->route.kind,
		.namespace = c->route.has_namespace ? c->route.namespace : NULL,
		.name = c->route.has_name ? c->route.name : NULL,
		.status = c->route.status,
		.field_selector = query_get(&c->query, "fieldSelector"),
		.object = object,
	};
	return authz_check(c->api->store, &request, err);
}

/* GET /metrics: the control plane's own figures in Prometheus' text format (0.0.4), named
 * as kube-scheduler and kube-apiserver name them; the administrator's only. */
static void hnd_prometheus(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                           const coap_string_t *query, coap_pdu_t *response)
{
	struct apiserver *api = coap_resource_get_userdata(resource);
	char identity[TRANSPORT_PSK_IDENTITY_MAX + 1];
	transport_session_psk_identity(session, identity, sizeof(identity));
	if (identity[0] && strcmp(identity, "admin") != 0) {
		answer(resource, session, request, query, response, COAP_RESPONSE_CODE(403),
		       error_body("Forbidden", "metrics are for the administrator", NULL));
		return;
	}
	struct buffer b = BUFFER_INIT;
	if (api->binder) {
		struct binder_counts counts;
		binder_counts(api->binder, &counts);
		buffer_printf(&b,
		              "# HELP scheduler_schedule_attempts_total Number of attempts to schedule pods, by the "
		              "result.\n"
		              "# TYPE scheduler_schedule_attempts_total counter\n"
		              "scheduler_schedule_attempts_total{result=\"scheduled\"} %" PRIu64 "\n"
		              "scheduler_schedule_attempts_total{result=\"unschedulable\"} %" PRIu64 "\n"
		              "scheduler_schedule_attempts_total{result=\"error\"} %" PRIu64 "\n"
		              "# HELP scheduler_pending_pods Number of pending pods.\n"
		              "# TYPE scheduler_pending_pods gauge\n"
		              "scheduler_pending_pods %zu\n",
		              counts.scheduled, counts.unschedulable, counts.errors, binder_pending(api->binder));
	}
	buffer_printf(&b,
	              "# HELP apiserver_registered_watchers Number of watches registered.\n"
	              "# TYPE apiserver_registered_watchers gauge\n"
	              "apiserver_registered_watchers %zu\n"
	              "# HELP etcd_object_revision The store's revision.\n"
	              "# TYPE etcd_object_revision gauge\n"
	              "etcd_object_revision %" PRIu64 "\n",
	              watch_count(api->watches), store_revision(api->store));
	long pages = 0;
	FILE *statm = fopen("/proc/self/statm", "r");
	if (statm) {
		long size;
		if (fscanf(statm, "%ld %ld", &size, &pages) != 2)
			pages = 0;
		fclose(statm);
	}
	buffer_printf(&b,
	              "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
	              "# TYPE process_resident_memory_bytes gauge\n"
	              "process_resident_memory_bytes %ld\n",
	              pages * sysconf(_SC_PAGESIZE));
	coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT);
	size_t length = b.length;
	char *body = buffer_steal(&b);
	if (!coap_add_data_large_response(resource, session, request, response, query, COAP_MEDIATYPE_TEXT_PLAIN, -1, 0,
	                                  length, (const uint8_t *)body, release_buffer, body))
		coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
}

static int commit_and_release(struct apiserver *api);

/* The answer to a write is the stored object when it fits one datagram. A larger one would
 * need a block-wise answer, which libcoap keeps for seconds per write (and scans on every
 * packet); such writes are answered with the object's identity instead:
 * {"apiVersion","kind","metadata":{name, namespace, uid, resourceVersion, generation, ...}}
 * and a client that wants the rest GETs it. */
static char *fit_answer(struct request_context *c, char *body)
{
	size_t room = coap_session_max_pdu_size(c->session);
	room = room > 96 ? room - 96 : 0; /* header, token, options */
	if (!body || strlen(body) <= room)
		return body;
	cJSON *object = cJSON_Parse(body);
	if (!object)
		return body;
	cJSON *brief = cJSON_CreateObject();
	static const char *const keep[] = { "apiVersion", "kind", "metadata" };
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		carry(brief, object, keep[i]);
	cJSON *metadata = cJSON_GetObjectItemCaseSensitive(brief, "metadata");
	static const char *const drop[] = { "labels", "annotations", "managedFields", "ownerReferences" };
	for (size_t i = 0; i < ARRAY_SIZE(drop); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(metadata, drop[i]);
	char *text = cJSON_PrintUnformatted(brief);
	cJSON_Delete(brief);
	cJSON_Delete(object);
	free(body);
	return text;
}

/* Parks the answer of a write until its commit (see the top of this file). */
static void park(struct request_context *c, coap_pdu_code_t code, char *body)
{
	body = fit_answer(c, body);
	coap_async_t *async = coap_register_async(c->session, c->request, 0);
	if (!async) {
		/* No async slot: commit now and answer directly. */
		struct error err;
		if (store_commit(c->api->store, &err) < 0) {
			free(body);
			reply_error(c, -EIO, &err);
			return;
		}
		reply(c, code, body);
		return;
	}
	struct parked_answer *p = xcalloc(1, sizeof(*p));
	p->id = ++c->api->next_parked_id;
	coap_bin_const_t token = coap_pdu_get_token(c->request);
	p->session = coap_session_reference(c->session);
	p->token_length = token.length < sizeof(p->token) ? token.length : sizeof(p->token);
	memcpy(p->token, token.s, p->token_length);
	p->code = code;
	p->body = body;
	p->next = c->api->parked;
	c->api->parked = p;
	coap_async_set_app_data(async, (void *)(uintptr_t)p->id);
}

/* The second call of the handler for a parked write: answer it. */
static void answer_parked(struct request_context *c, coap_async_t *async)
{
	uint64_t id = (uint64_t)(uintptr_t)coap_async_get_app_data(async);
	for (struct parked_answer **p = &c->api->parked; *p; p = &(*p)->next) {
		if ((*p)->id != id)
			continue;
		struct parked_answer *found = *p;
		*p = found->next;
		reply(c, found->code, found->body);
		coap_session_release(found->session);
		free(found);
		return;
	}
	reply(c, COAP_RESPONSE_CODE(500), error_body("InternalError", "the answer to this write was lost", NULL));
}

static int apply(struct request_context *c, enum store_op op, cJSON *object, uint64_t expected, char **ret_json,
                 struct error *err)
{
	struct store_request request = {
		.op = op,
		.resource = c->route.resource_key,
		.namespace = c->route.kind->namespaced
		                     ? (c->route.has_namespace ? c->route.namespace : object_namespace(object))
		                     : "",
		.name = c->route.has_name ? c->route.name : object_name(object),
		.object = object,
		.expected_revision = expected,
	};
	if (!request.namespace)
		request.namespace = "default";
	return store_apply(c->api->store, &request, ret_json, NULL, err);
}

static int namespace_usable(struct request_context *c, const char *ns, struct error *err)
{
	char *text = NULL;
	int r = store_get(c->api->store, "namespaces", "", ns, &text, NULL);
	if (r == -ENOENT)
		return error_set(err, ENOENT, "namespace \"%s\" not found", ns);
	if (r < 0)
		return error_set(err, -r, "namespace \"%s\": cannot read it", ns);
	cJSON *namespace = cJSON_Parse(text);
	free(text);
	bool terminating = namespace && object_string_at(namespace, "metadata.deletionTimestamp");
	cJSON_Delete(namespace);
	if (terminating)
		return error_set(err, EPERM, "namespace \"%s\" is being deleted: nothing new may be created in it", ns);
	return 0;
}

static int body_of(struct request_context *c, cJSON **ret_object, struct error *err)
{
	size_t length = 0, offset = 0, total = 0;
	const uint8_t *data = NULL;
	coap_get_data_large(c->request, &length, &data, &offset, &total);
	if (total > c->api->options.max_body_bytes || length > c->api->options.max_body_bytes)
		return error_set(err, EFBIG, "the body is %zu bytes; the limit is %zu", total > length ? total : length,
		                 c->api->options.max_body_bytes);
	if (length == 0)
		return error_set(err, EINVAL, "a JSON body is required");
	coap_opt_iterator_t it;
	coap_opt_t *format = coap_check_option(c->request, COAP_OPTION_CONTENT_FORMAT, &it);
	if (format) {
		unsigned f = coap_decode_var_bytes(coap_opt_value(format), coap_opt_length(format));
		if (f != COAP_MEDIATYPE_APPLICATION_JSON && f != COAP_MEDIATYPE_MERGE_PATCH_JSON &&
		    f != COAP_MEDIATYPE_TEXT_PLAIN)
			return error_set(err, EPROTONOSUPPORT, "content format %u is not supported: send JSON (50)", f);
	}
	return object_parse((const char *)data, length, ret_object, err);
}

static void handle_create(struct request_context *c)
{
	struct error err = { 0 };
	cJSON *object = NULL;
	char *stored = NULL;
	int r;
	if (c->route.has_name || c->route.status) {
		r = error_set(&err, ENOTSUP, "POST creates in a collection: drop the name from the path");
		goto fail;
	}
	if ((r = body_of(c, &object, &err)) < 0 || (r = check_kind(&c->route, object, &err)) < 0 ||
	    (r = check_identity(&c->route, object, &err)) < 0)
		goto fail;
	cJSON *metadata = object_metadata(object);
	if (!object_name(object)) {
		const char *prefix = object_string_at(object, "metadata.generateName");
		if (prefix && strlen(prefix) < 58) {
			char suffix[6], name[64];
			object_random_suffix(suffix);
			snprintf(name, sizeof(name), "%s%s", prefix, suffix);
			set_string(metadata, "name", name);
		}
	}
	if (c->route.kind->namespaced && (r = namespace_usable(c, object_namespace(object), &err)) < 0)
		goto fail;
	object_apply_defaults(c->route.kind, object);
	if ((r = object_validate(c->route.kind, object, &err)) < 0 ||
	    (r = ipalloc_admit(c->api->store, &c->api->options.controllers.network, c->route.kind->name, NULL, object,
	                       &err)) < 0)
		goto fail;
	char uid[37], now[CLOCK_RFC3339_SIZE];
	object_new_uid(uid);
	now_rfc3339(now);
	set_string(metadata, "uid", uid);
	set_string(metadata, "creationTimestamp", now);
	if (strcmp(c->route.kind->name, "Job") == 0 && (r = controllers_prepare_job(object, &err)) < 0)
		goto fail;
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "resourceVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "deletionTimestamp");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "generation");
	cJSON_AddNumberToObject(metadata, "generation", 1);
	/* A new object's status is the system's to write, except a Node's: the agent registers
	 * its Node with its capacity. */
	if (c->route.kind->has_status && strcmp(c->route.kind->name, "Node") != 0)
		cJSON_DeleteItemFromObjectCaseSensitive(object, "status");
	if ((r = authorize(c, AUTHZ_CREATE, object, &err)) < 0)
		goto fail;
	if (query_get(&c->query, "dryRun")) {
		reply(c, COAP_RESPONSE_CODE(201), cJSON_PrintUnformatted(object));
		cJSON_Delete(object);
		return;
	}
	r = apply(c, STORE_CREATE, object, 0, &stored, &err);
	if (r == -EEXIST)
		error_set(&err, EEXIST, "%s \"%s\" already exists", c->route.kind->resource, object_name(object));
	if (r < 0)
		goto fail;
	note_heartbeat(c->api, c->route.kind, false, object_namespace(object), object_name(object));
	cJSON_Delete(object);
	park(c, COAP_RESPONSE_CODE(201), stored);
	return;
fail:
	cJSON_Delete(object);
	reply_error(c, r, &err);
}

/* Reads the stored object of the route; -ENOENT with the Kubernetes message. */
static int load(struct request_context *c, cJSON **ret_object, struct error *err)
{
	char *text = NULL;
	int r = store_get(c->api->store, c->route.resource_key, c->route.kind->namespaced ? c->route.namespace : "",
	                  c->route.name, &text, err);
	if (r == -ENOENT)
		return error_set(err, ENOENT, "%s \"%s\" not found", c->route.kind->resource, c->route.name);
	if (r < 0)
		return r;
	*ret_object = cJSON_Parse(text);
	free(text);
	if (!*ret_object)
		return error_set(err, EIO, "stored %s \"%s\" is not JSON", c->route.kind->resource, c->route.name);
	if (has_heartbeats(c->route.kind)) {
		cleanup_free char *key = heartbeat_key(c->route.resource_key, c->route.namespace, c->route.name);
		const char *view = heartbeat_view(c->api, key, revision_of(*ret_object));
		cJSON *newer = view ? cJSON_Parse(view) : NULL;
		if (newer) {
			cJSON_Delete(*ret_object);
			*ret_object = newer;
		}
	}
	return 0;
}

/* Writes `updated` in place of `stored`: system fields carried over, generation bumped on a
 * spec change, status or everything-but-status kept depending on the subresource. */
static void handle_update_with(struct request_context *c, cJSON *stored, cJSON *updated, uint64_t expected)
{
	struct error err = { 0 };
	char *result = NULL;
	char *heartbeat = NULL;
	int r;
	if (c->route.status) {
		/* /status changes only the status. */
		cJSON *merged = cJSON_Duplicate(stored, 1);
		carry(merged, updated, "status");
		cJSON_Delete(updated);
		updated = merged;
	} else if (c->route.kind->has_status) {
		carry(updated, stored, "status");
	}
	cJSON *metadata = object_metadata(updated);
	const cJSON *old_metadata = cJSON_GetObjectItemCaseSensitive(stored, "metadata");
	carry(metadata, old_metadata, "uid");
	carry(metadata, old_metadata, "creationTimestamp");
	carry(metadata, old_metadata, "deletionTimestamp");
	carry(metadata, old_metadata, "deletionGracePeriodSeconds");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "resourceVersion");
	int64_t generation = number_at(old_metadata, "generation");
	if (generation <= 0)
		generation = 1;
	if (!object_spec_equal(stored, updated))
		generation++;
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "generation");
	cJSON_AddNumberToObject(metadata, "generation", (double)generation);
	if (!c->route.status && strcmp(c->route.kind->name, "Job") == 0)
		controllers_prepare_job_update(stored, updated);
	ipalloc_prepare_update(c->route.kind->name, stored, updated);
	object_apply_defaults(c->route.kind, updated);
	if ((r = object_validate(c->route.kind, updated, &err)) < 0 ||
	    (r = object_validate_update(c->route.kind, stored, updated, &err)) < 0 ||
	    (r = ipalloc_admit(c->api->store, &c->api->options.controllers.network, c->route.kind->name, stored,
	                       updated, &err)) < 0)
		goto out;
	if ((r = authorize(c, AUTHZ_UPDATE, stored, &err)) < 0)
		goto out;
	if (query_get(&c->query, "dryRun")) {
		reply(c, COAP_RESPONSE_CODE(204), cJSON_PrintUnformatted(updated));
		goto done;
	}
	uint64_t stored_revision = revision_of(stored);
	heartbeat = has_heartbeats(c->route.kind)
	                    ? heartbeat_key(c->route.resource_key, c->route.namespace, c->route.name)
	                    : NULL;
	if (heartbeat && (expected == 0 || expected == stored_revision) &&
	    only_heartbeat_changed(c->route.kind, stored, updated)) {
		char rv[24];
		snprintf(rv, sizeof(rv), "%" PRIu64, stored_revision);
		set_string(object_metadata(updated), "resourceVersion", rv);
		carry(object_metadata(updated), cJSON_GetObjectItemCaseSensitive(stored, "metadata"), "generation");
		heartbeat_drop(c->api, heartbeat);
		struct heartbeat *h = xcalloc(1, sizeof(*h));
		h->key = xstrdup(heartbeat);
		h->revision = stored_revision;
		h->object = cJSON_PrintUnformatted(updated);
		h->next = c->api->heartbeats;
		c->api->heartbeats = h;
		note_heartbeat(c->api, c->route.kind, c->route.status, c->route.namespace, c->route.name);
		reply(c, COAP_RESPONSE_CODE(204), fit_answer(c, xstrdup(h->object)));
		goto done;
	}
	if (heartbeat)
		heartbeat_drop(c->api, heartbeat);
	/* The last finalizer removed from an object being deleted: delete it. */
	enum store_op op = STORE_REPLACE;
	if (object_string_at(updated, "metadata.deletionTimestamp") && !has_finalizers(updated) &&
	    strcmp(c->route.kind->name, "Pod") != 0)
		op = STORE_DELETE;
	r = apply(c, op, updated, expected, &result, &err);
	if (r == -ESTALE)
		error_set(&err, ESTALE,
		          "Operation cannot be fulfilled on %s \"%s\": the object has been modified; please apply your "
		          "changes to the latest version and try again",
		          c->route.kind->resource, c->route.name);
	if (r < 0)
		goto out;
	if (op == STORE_DELETE) {
		free(result);
		result = cJSON_PrintUnformatted(updated);
	}
	note_heartbeat(c->api, c->route.kind, c->route.status, c->route.namespace, c->route.name);
	park(c, op == STORE_DELETE ? COAP_RESPONSE_CODE(202) : COAP_RESPONSE_CODE(204), result);
	goto done;
out:
	reply_error(c, r, &err);
done:
	free(heartbeat);
	cJSON_Delete(updated);
}

static void handle_replace(struct request_context *c)
{
	struct error err = { 0 };
	cJSON *object = NULL, *stored = NULL;
	int r;
	if (!c->route.has_name) {
		r = error_set(&err, ENOTSUP, "PUT replaces one object: name it in the path");
		goto fail;
	}
	if ((r = body_of(c, &object, &err)) < 0 || (r = check_kind(&c->route, object, &err)) < 0 ||
	    (r = check_identity(&c->route, object, &err)) < 0)
		goto fail;
	const char *rv = object_string_at(object, "metadata.resourceVersion");
	uint64_t expected = 0;
	if (rv) {
		char *end;
		expected = strtoull(rv, &end, 10);
		if (*rv == '\0' || *end != '\0') {
			r = error_set_field(&err, EINVAL, "metadata.resourceVersion", "Invalid value: \"%s\"", rv);
			goto fail;
		}
	}
	if ((r = load(c, &stored, &err)) < 0)
		goto fail;
	handle_update_with(c, stored, object, expected);
	cJSON_Delete(stored);
	return;
fail:
	cJSON_Delete(object);
	cJSON_Delete(stored);
	reply_error(c, r, &err);
}

static void handle_patch(struct request_context *c)
{
	struct error err = { 0 };
	cJSON *patch = NULL, *stored = NULL;
	int r;
	if (!c->route.has_name) {
		r = error_set(&err, ENOTSUP, "PATCH changes one object: name it in the path");
		goto fail;
	}
	if ((r = body_of(c, &patch, &err)) < 0 || (r = load(c, &stored, &err)) < 0)
		goto fail;
	uint64_t expected = revision_of(stored);
	const char *rv = object_string_at(patch, "metadata.resourceVersion");
	if (rv)
		expected = strtoull(rv, NULL, 10);
	cJSON *updated = cJSON_Duplicate(stored, 1);
	if ((r = object_merge_patch(updated, patch, &err)) < 0) {
		cJSON_Delete(updated);
		goto fail;
	}
	if ((r = check_kind(&c->route, updated, &err)) < 0 || (r = check_identity(&c->route, updated, &err)) < 0) {
		cJSON_Delete(updated);
		goto fail;
	}
	handle_update_with(c, stored, updated, expected);
	cJSON_Delete(patch);
	cJSON_Delete(stored);
	return;
fail:
	cJSON_Delete(patch);
	cJSON_Delete(stored);
	reply_error(c, r, &err);
}

static int count_one(const char *text, size_t length, void *data)
{
	(void)text;
	(void)length;
	(*(int *)data)++;
	return -1;
}

static bool namespace_empty(struct apiserver *api, const char *ns)
{
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		if (!k->namespaced)
			continue;
		char key[96];
		int found = 0;
		resource_key_of(k, key, sizeof(key));
		store_list(api->store, key, ns, NULL, 1, count_one, &found, NULL, NULL);
		if (found)
			return false;
	}
	return true;
}

static void handle_delete(struct request_context *c)
{
	struct error err = { 0 };
	cJSON *stored = NULL;
	char *result = NULL;
	int r;
	if (!c->route.has_name || c->route.status) {
		r = error_set(&err, ENOTSUP, "DELETE removes one object: name it in the path");
		goto fail;
	}
	uint64_t grace = 0;
	int has_grace = query_number(&c->query, "gracePeriodSeconds", &grace, &err);
	if (has_grace < 0) {
		r = has_grace;
		goto fail;
	}
	const char *policy = query_get(&c->query, "propagationPolicy");
	if (policy && strcmp(policy, "Orphan") != 0 && strcmp(policy, "Background") != 0 &&
	    strcmp(policy, "Foreground") != 0) {
		r = error_set(&err, EINVAL,
		              "propagationPolicy: Unsupported value: \"%s\": supported values: "
		              "\"Orphan\", \"Background\", \"Foreground\"",
		              policy);
		goto fail;
	}
	if ((r = load(c, &stored, &err)) < 0 || (r = authorize(c, AUTHZ_DELETE, stored, &err)) < 0)
		goto fail;
	if (has_heartbeats(c->route.kind)) {
		cleanup_free char *key = heartbeat_key(c->route.resource_key, c->route.namespace, c->route.name);
		heartbeat_drop(c->api, key);
	}
	bool is_namespace = strcmp(c->route.kind->name, "Namespace") == 0;
	bool empty = is_namespace ? namespace_empty(c->api, c->route.name) : true;
	uint64_t expected = revision_of(stored);
	switch (controllers_plan_delete(c->route.kind, stored, policy, has_grace ? (int64_t)grace : -1, empty,
	                                clock_realtime_ms())) {
	case CONTROLLERS_DELETE_PENDING:
		reply(c, COAP_RESPONSE_CODE(202), cJSON_PrintUnformatted(stored));
		cJSON_Delete(stored);
		return;
	case CONTROLLERS_DELETE_MARKED:
		r = apply(c, STORE_REPLACE, stored, expected, &result, &err);
		break;
	case CONTROLLERS_DELETE_NOW:
	default:
		r = apply(c, STORE_DELETE, NULL, 0, NULL, &err);
		result = cJSON_PrintUnformatted(stored);
		break;
	}
	if (r < 0) {
		free(result);
		goto fail;
	}
	cJSON_Delete(stored);
	park(c, COAP_RESPONSE_CODE(202), result);
	return;
fail:
	cJSON_Delete(stored);
	reply_error(c, r, &err);
}

/* --- reads ------------------------------------------------------------------------------ */

struct list_state {
	struct apiserver *api;
	struct buffer *out;
	const struct watch_spec *filter;
	size_t count;
};

static int add_list_item(const char *text, size_t length, void *data)
{
	struct list_state *s = data;
	cleanup_free char *newer = NULL;
	if (has_heartbeats(s->filter->kind) && s->api->heartbeats) {
		cJSON *object = cJSON_ParseWithLength(text, length);
		const char *name = object ? object_name(object) : NULL;
		if (name) {
			cleanup_free char *key = heartbeat_key(s->filter->resource_key, object_namespace(object), name);
			const char *view = heartbeat_view(s->api, key, revision_of(object));
			if (view) {
				newer = xstrdup(view);
				text = newer;
				length = strlen(newer);
			}
		}
		cJSON_Delete(object);
	}
	if (s->filter && (s->filter->labels || s->filter->fields)) {
		cJSON *object = cJSON_ParseWithLength(text, length);
		bool keep = object && watch_spec_matches(s->filter, object);
		cJSON_Delete(object);
		if (!keep)
			return 0;
	}
	if (s->count++)
		buffer_append(s->out, ",", 1);
	buffer_append(s->out, text, length);
	return 0;
}

struct replay_state {
	struct buffer *out;
	const struct watch_spec *filter;
	size_t count;
	uint64_t last;
	uint64_t limit; /* events at most (0: all); past it the answer stops at `last` */
	bool full;
};

static void add_replayed(const struct store_change *change, void *data)
{
	struct replay_state *s = data;
	if (s->full || (s->limit && s->count >= s->limit)) {
		s->full = true;
		return;
	}
	s->last = change->revision;
	cJSON *object = cJSON_Parse(change->object);
	bool keep = object && watch_spec_matches(s->filter, object);
	cJSON_Delete(object);
	if (!keep)
		return;
	static const char *const types[] = { "ADDED", "MODIFIED", "DELETED" };
	buffer_printf(s->out, "%s{\"type\":\"%s\",\"object\":", s->count++ ? "," : "", types[change->type]);
	buffer_append_string(s->out, change->object);
	buffer_append(s->out, "}", 1);
}

static int parse_selectors(struct request_context *c, struct watch_spec *spec, struct error *err)
{
	const char *labels = query_get(&c->query, "labelSelector");
	const char *fields = query_get(&c->query, "fieldSelector");
	int r;
	if (labels && labels[0] && (r = selector_parse_labels(labels, &spec->labels, err)) < 0)
		return r;
	if (fields && fields[0] && (r = selector_parse_fields(fields, &spec->fields, err)) < 0) {
		selector_free(spec->labels);
		spec->labels = NULL;
		return r;
	}
	return 0;
}

static int observe_value(const coap_pdu_t *request, int *ret_value);

/* The events since `after` as a WatchEvents document. */
static int replay(struct request_context *c, const struct watch_spec *spec, uint64_t after, char **ret_body,
                  struct error *err)
{
	struct buffer b = BUFFER_INIT;
	buffer_append_string(&b, "{\"kind\":\"WatchEvents\",\"resourceVersion\":\"");
	size_t rv_at = b.length;
	buffer_append_string(&b, "                    \",\"events\":[");
	struct replay_state state = { &b, spec, 0, after, 0, false };
	/* ?limit=N on a plain GET (not a watch, which goes on from now): at most N events, the
	 * answer's resourceVersion the last one's, so that a client far behind catches up in
	 * pieces of a size it chose. */
	uint64_t limit = 0;
	int observe = -1;
	int r = query_number(&c->query, "limit", &limit, err);
	if (r < 0) {
		buffer_free(&b);
		return r;
	}
	observe_value(c->request, &observe);
	state.limit = observe == COAP_OBSERVE_ESTABLISH ? 0 : limit;
	r = store_changes_since(c->api->store, c->route.resource_key, after, add_replayed, &state, err);
	if (r < 0) {
		buffer_free(&b);
		if (r == -ERANGE)
			return error_set(err, ERANGE, "too old resource version: %" PRIu64 " (%" PRIu64 "): re-list",
			                 after, store_oldest_revision(c->api->store));
		return r;
	}
	uint64_t rv = state.full ? state.last : store_revision(c->api->store);
	char digits[21];
	int n = snprintf(digits, sizeof(digits), "%" PRIu64, rv);
	/* Write the revision into the space reserved for it, then close the gap. */
	memcpy(b.data + rv_at, digits, (size_t)n);
	memmove(b.data + rv_at + n, b.data + rv_at + 20, b.length - rv_at - 20 + 1);
	b.length -= (size_t)(20 - n);
	buffer_append_string(&b, "]}");
	*ret_body = buffer_steal(&b);
	return 0;
}

static int list(struct request_context *c, const struct watch_spec *spec, char **ret_body, struct error *err)
{
	uint64_t limit = c->api->options.max_list_page;
	int r = query_number(&c->query, "limit", &limit, err);
	if (r < 0)
		return r;
	if (limit == 0 || limit > c->api->options.max_list_page)
		limit = c->api->options.max_list_page;
	struct buffer b = BUFFER_INIT;
	buffer_printf(&b, "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%" PRIu64 "\"",
	              c->route.kind->list_kind, c->route.kind->api_version, store_revision(c->api->store));
	struct buffer items = BUFFER_INIT;
	struct list_state state = { c->api, &items, spec, 0 };
	char *next = NULL;
	r = store_list(c->api->store, c->route.resource_key, spec->namespace, query_get(&c->query, "continue"),
	               (size_t)limit, add_list_item, &state, &next, err);
	if (r < 0) {
		buffer_free(&b);
		buffer_free(&items);
		return r;
	}
	if (next) {
		buffer_append_string(&b, ",\"continue\":");
		buffer_append_json_string(&b, next);
		free(next);
	}
	buffer_append_string(&b, "},\"items\":[");
	if (items.data)
		buffer_append(&b, items.data, items.length);
	buffer_append_string(&b, "]}");
	buffer_free(&items);
	*ret_body = buffer_steal(&b);
	return 0;
}

static int observe_value(const coap_pdu_t *request, int *ret_value)
{
	coap_opt_iterator_t it;
	coap_opt_t *o = coap_check_option(request, COAP_OPTION_OBSERVE, &it);
	if (!o)
		return 0;
	*ret_value = (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
	return 1;
}

static void serve_get(struct request_context *c)
{
	struct error err = { 0 };
	char *body = NULL;
	cJSON *object = NULL;
	int r, observe = -1;
	struct watch_spec spec = {
		.kind = c->route.kind,
		.resource_key = c->route.resource_key,
		.namespace = c->route.has_namespace ? c->route.namespace : NULL,
		.name = c->route.has_name ? c->route.name : NULL,
	};
	observe_value(c->request, &observe);
	coap_bin_const_t token = coap_pdu_get_token(c->request);
	if (observe == COAP_OBSERVE_CANCEL)
		watch_remove(c->api->watches, c->session, &token);
	/* A list or watch must not see writes that are not yet committed. */
	if (store_pending(c->api->store) > 0)
		commit_and_release(c->api);

	if ((r = parse_selectors(c, &spec, &err)) < 0)
		goto fail;
	uint64_t since = 0;
	int has_since = query_number(&c->query, "resourceVersion", &since, &err);
	if (has_since < 0) {
		r = has_since;
		goto fail;
	}
	bool replay_requested = query_get(&c->query, "watch") && has_since;
	bool watching = observe == COAP_OBSERVE_ESTABLISH;

	if (c->route.has_name) {
		if ((r = load(c, &object, &err)) < 0)
			goto fail;
		if ((r = authorize(c, watching ? AUTHZ_WATCH : AUTHZ_GET, object, &err)) < 0)
			goto fail;
		body = cJSON_PrintUnformatted(object);
	} else {
		if ((r = authorize(c, watching ? AUTHZ_WATCH : AUTHZ_LIST, NULL, &err)) < 0)
			goto fail;
	}
	if (replay_requested || (watching && has_since)) {
		free(body);
		body = NULL;
		if ((r = replay(c, &spec, since, &body, &err)) < 0)
			goto fail;
	} else if (!c->route.has_name) {
		if ((r = list(c, &spec, &body, &err)) < 0)
			goto fail;
	}
	if (watching) {
		uint32_t sequence;
		spec.revision = store_revision(c->api->store);
		struct watch_spec owned = spec;
		spec.labels = spec.fields = NULL; /* the watch owns them now */
		if ((r = watch_add(c->api->watches, c->session, &token, &owned, &sequence, &err)) < 0)
			goto fail;
		uint8_t buf[4];
		coap_add_option(c->response, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof(buf), sequence),
		                buf);
		/* A registration answered block-wise would be restarted by libcoap on the client for
		 * every notification that arrives before its last block: under steady change it never
		 * ends. An answer that does not fit one datagram says "truncated" instead, as a
		 * notification does, and the client fetches it with a plain GET (watch.h). */
		size_t room = coap_session_max_pdu_size(c->session);
		room = room > 64 ? room - 64 : 0;
		if (body && strlen(body) > room) {
			free(body);
			body = xasprintf("{\"kind\":\"WatchEvents\",\"resourceVersion\":\"%" PRIu64
			                 "\",\"truncated\":true,\"from\":\"%" PRIu64 "\"}",
			                 spec.revision, has_since ? since : 0);
		}
	}
	selector_free(spec.labels);
	selector_free(spec.fields);
	cJSON_Delete(object);
	reply(c, COAP_RESPONSE_CODE_CONTENT, body);
	return;
fail:
	selector_free(spec.labels);
	selector_free(spec.fields);
	cJSON_Delete(object);
	free(body);
	reply_error(c, r, &err);
}

/* --- libcoap glue ---------------------------------------------------------------------- */

/* /apis/metrics.k8s.io/v1beta1/...: served from memory by core/metrics.c. */
static bool serve_metrics(struct request_context *c)
{
	coap_string_t *path = coap_get_uri_path(c->request);
	bool mine = path && metrics_path((const char *)path->s);
	if (mine) {
		size_t length = 0, offset = 0, total = 0;
		const uint8_t *data = NULL;
		coap_get_data_large(c->request, &length, &data, &offset, &total);
		coap_pdu_code_t method = coap_pdu_get_code(c->request);
		char *body = NULL;
		int code = metrics_serve(c->api->metrics, c->api->store,
		                         method == COAP_REQUEST_CODE_GET   ? "GET"
		                         : method == COAP_REQUEST_CODE_PUT ? "PUT"
		                                                           : "other",
		                         c->identity, (const char *)path->s, (const char *)data, length,
		                         clock_realtime_ms(), &body);
		reply(c, COAP_RESPONSE_CODE(code), body);
	}
	coap_delete_string(path);
	return mine;
}

static void hnd_request(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                        const coap_string_t *query, coap_pdu_t *response)
{
	struct apiserver *api = coap_resource_get_userdata(resource);
	struct request_context c = {
		.api = api,
		.resource = resource,
		.session = session,
		.request = request,
		.raw_query = query,
		.response = response,
	};
	if (logrelay_serve(api->logs, api->store, resource, session, request, query, response))
		return;
	coap_async_t *async = coap_find_async(session, coap_pdu_get_token(request));
	if (async) {
		answer_parked(&c, async);
		return;
	}
	transport_session_psk_identity(session, c.identity, sizeof(c.identity));
	if (api->options.on_identity)
		api->options.on_identity(api->options.on_identity_data, c.identity);
	authz_principal(c.identity); /* node:<name>@<generation> is node:<name> */
	if (serve_metrics(&c))
		return;
	struct error err = { 0 };
	coap_string_t *path = coap_get_uri_path(request);
	if (path && registry_serve(api->options.registry, (const char *)path->s, c.identity, resource, session, request,
	                           query, response)) {
		coap_delete_string(path);
		return;
	}
	int r = parse_route(path ? (const char *)path->s : "", &c.route, &err);
	coap_delete_string(path);
	if (r == 0)
		r = parse_query(query, &c.query, &err);
	if (r < 0) {
		reply_error(&c, r, &err);
		return;
	}
	switch (coap_pdu_get_code(request)) {
	case COAP_REQUEST_CODE_GET:
		serve_get(&c);
		break;
	case COAP_REQUEST_CODE_POST:
		handle_create(&c);
		break;
	case COAP_REQUEST_CODE_PUT:
		handle_replace(&c);
		break;
	case COAP_REQUEST_CODE_PATCH:
	case COAP_REQUEST_CODE_IPATCH:
		handle_patch(&c);
		break;
	case COAP_REQUEST_CODE_DELETE:
		handle_delete(&c);
		break;
	default:
		error_set(&err, ENOTSUP, "method not supported: use GET, POST, PUT, PATCH, iPATCH or DELETE");
		reply_error(&c, -ENOTSUP, &err);
	}
}

static void hnd_get_text(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                         const coap_string_t *query, coap_pdu_t *response)
{
	struct apiserver *api = coap_resource_get_userdata(resource);
	const char *which = (const char *)coap_resource_get_uri_path(resource)->s;
	const char *text = strcmp(which, "version") == 0 ? api->version_json : "ok";
	coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT);
	coap_add_data_large_response(resource, session, request, response, query,
	                             strcmp(which, "version") == 0 ? COAP_MEDIATYPE_APPLICATION_JSON
	                                                           : COAP_MEDIATYPE_TEXT_PLAIN,
	                             -1, 0, strlen(text), (const uint8_t *)text, NULL, NULL);
}

static int commit_and_release(struct apiserver *api)
{
	int released = 0;
	if (store_pending(api->store) > 0) {
		struct error err = { 0 };
		if (store_commit(api->store, &err) < 0) {
			log_warnx("store: commit failed, answering its writes with 5.03: %s", err.message);
			for (struct parked_answer *p = api->parked; p; p = p->next) {
				if (p->released)
					continue;
				free(p->body);
				p->code = COAP_RESPONSE_CODE(503);
				p->body = error_body("ServiceUnavailable", err.message, NULL);
			}
		}
	}
	/* Release every parked answer: libcoap calls hnd_request again for each, which answers
	 * and frees it. One whose session has gone has no async left: drop it here. */
	struct parked_answer **p = &api->parked;
	while (*p) {
		struct parked_answer *a = *p;
		coap_bin_const_t token = { a->token_length, a->token };
		coap_async_t *async = a->released ? NULL : coap_find_async(a->session, token);
		if (async) {
			a->released = true;
			coap_async_trigger(async);
			released++;
			p = &a->next;
			continue;
		}
		if (!a->released || !coap_find_async(a->session, token)) {
			*p = a->next;
			free(a->body);
			coap_session_release(a->session);
			free(a);
			continue;
		}
		p = &a->next;
	}
	return released;
}

/* The scheduler binds what the commit just made pending and the controllers act on what it
 * changed; their writes are committed in turn, round after round while they write (a
 * Deployment makes a ReplicaSet, which makes pods, which are bound: four rounds). Work left
 * after the last round is picked up by the controllers' timer at the next loop iteration,
 * so requests are never kept waiting for long. */
#define APISERVER_CONTROL_ROUNDS 8

static void on_binder_due(struct loop *loop, void *data);

static int on_batch(void *data)
{
	struct apiserver *api = data;
	int released = commit_and_release(api);
	for (int round = 0; (api->binder || api->controllers) && round < APISERVER_CONTROL_ROUNDS; round++) {
		struct error err = { 0 };
		int writes = 0;
		if (api->binder) {
			int r = binder_run(api->binder, &err);
			if (r < 0)
				log_warnx("scheduler: %s", err.message);
			else
				writes += r;
		}
		if (api->controllers) {
			int r = controllers_run(api->controllers, &err);
			if (r < 0)
				log_warnx("controllers: %s", err.message);
			else
				writes += r;
		}
		if (writes <= 0)
			break;
		released += commit_and_release(api);
	}
	size_t sent = watch_flush(api->watches);
	if (api->binder && binder_unfinished(api->binder) && !api->binder_timer)
		api->binder_timer = loop_add_timer(transport_loop(api->transport), 0, on_binder_due, api);
	return released + (int)sent;
}

/* The controllers' timer: delayed work is due. Runs a batch as after a request, then sends
 * what it released (watch notifications). */
static void on_controllers_due(void *data)
{
	struct apiserver *api = data;
	if (on_batch(api) > 0)
		coap_io_process(transport_context(api->transport), COAP_IO_NO_WAIT);
}

static void on_binder_due(struct loop *loop, void *data)
{
	(void)loop;
	struct apiserver *api = data;
	api->binder_timer = NULL;
	on_controllers_due(api);
}

static void on_store_change(const struct store_change *change, void *data)
{
	struct apiserver *api = data;
	/* Parsed once for all three: a pod is about a kilobyte of JSON, and a scheduling burst
	 * commits twenty thousand changes. */
	cJSON *object = cJSON_Parse(change->object);
	cJSON *previous = change->previous && watch_count(api->watches) ? cJSON_Parse(change->previous) : NULL;
	watch_on_parsed_change(api->watches, change, object, previous);
	if (api->binder)
		binder_on_parsed_change(api->binder, change, object);
	if (api->controllers)
		controllers_on_parsed_change(api->controllers, change, object);
	cJSON_Delete(object);
	cJSON_Delete(previous);
}

static void on_token_lost(void *data, coap_session_t *session, const coap_bin_const_t *token)
{
	struct apiserver *api = data;
	watch_remove(api->watches, session, token);
	logrelay_token_lost(api->logs, session, token);
}

static void on_session_closed(void *data, coap_session_t *session)
{
	struct apiserver *api = data;
	watch_remove_session(api->watches, session);
	logrelay_session_closed(api->logs, session);
}

int apiserver_new(struct transport *transport, struct store *store, const struct apiserver_options *options,
                  struct apiserver **ret_apiserver, struct error *err)
{
	struct apiserver *api = xcalloc(1, sizeof(*api));
	api->transport = transport;
	api->store = store;
	api->options = *options;
	if (!api->options.max_body_bytes)
		api->options.max_body_bytes = APISERVER_DEFAULT_MAX_BODY;
	if (!api->options.max_list_page)
		api->options.max_list_page = APISERVER_DEFAULT_LIST_PAGE;
	api->version_json = xstrdup(options->version_json ? options->version_json : "{}");
	api->options.version_json = api->version_json;
	api->watches = watch_hub_new(options->max_watches_per_client);
	api->metrics = metrics_new();
	api->logs = logrelay_new(transport_loop(transport), transport_context(transport));
	if (!options->no_scheduler) {
		int r = binder_new(store, &api->binder, err);
		if (r < 0) {
			watch_hub_free(api->watches);
			metrics_free(api->metrics);
			logrelay_free(api->logs);
			free(api->version_json);
			free(api);
			return r;
		}
	}
	if (!options->no_controllers) {
		struct controllers_options controllers_options = options->controllers;
		controllers_options.metrics = api->metrics;
		int r = controllers_new(store, transport_loop(transport), &controllers_options, on_controllers_due, api,
		                        &api->controllers, err);
		if (r < 0) {
			binder_free(api->binder);
			watch_hub_free(api->watches);
			metrics_free(api->metrics);
			logrelay_free(api->logs);
			free(api->version_json);
			free(api);
			return r;
		}
	}
	store_set_change_hook(store, on_store_change, api);

	coap_context_t *context = transport_context(transport);
	coap_resource_t *unknown = coap_resource_unknown_init2(hnd_request, 0);
	static const coap_request_t methods[] = { COAP_REQUEST_GET, COAP_REQUEST_POST, COAP_REQUEST_DELETE,
		                                  COAP_REQUEST_PATCH, COAP_REQUEST_IPATCH };
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
		coap_register_request_handler(unknown, methods[i], hnd_request);
	coap_resource_set_userdata(unknown, api);
	coap_add_resource(context, unknown);

	coap_resource_t *prometheus = coap_resource_init(coap_make_str_const("metrics"), 0);
	coap_register_request_handler(prometheus, COAP_REQUEST_GET, hnd_prometheus);
	coap_add_attr(prometheus, coap_make_str_const("ct"), coap_make_str_const("0"), 0);
	coap_resource_set_userdata(prometheus, api);
	coap_add_resource(context, prometheus);
	static const char *const fixed[] = { "version", "healthz" };
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
		coap_resource_t *r = coap_resource_init(coap_make_str_const(fixed[i]), 0);
		coap_register_request_handler(r, COAP_REQUEST_GET, hnd_get_text);
		coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const(i == 0 ? "50" : "0"), 0);
		coap_resource_set_userdata(r, api);
		coap_add_resource(context, r);
	}
	/* Discovery for plain coap-client users (RFC 6690): one link per collection. */
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		char path[160];
		if (k->group[0])
			snprintf(path, sizeof(path), "apis/%s/%s/%s", k->group, k->version, k->resource);
		else
			snprintf(path, sizeof(path), "api/%s/%s", k->version, k->resource);
		coap_resource_t *r = coap_resource_init(coap_new_str_const((const uint8_t *)path, strlen(path)),
		                                        COAP_RESOURCE_FLAGS_RELEASE_URI);
		for (size_t m = 0; m < ARRAY_SIZE(methods); m++)
			coap_register_request_handler(r, methods[m], hnd_request);
		coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const("50"), 0);
		coap_add_attr(r, coap_make_str_const("obs"), NULL, 0);
		char title[80];
		snprintf(title, sizeof(title), "\"%s\"", k->list_kind);
		coap_add_attr(r, coap_make_str_const("title"),
		              coap_new_str_const((const uint8_t *)title, strlen(title)), COAP_ATTR_FLAGS_RELEASE_VALUE);
		coap_resource_set_userdata(r, api);
		coap_add_resource(context, r);
	}
	if (options->registry) {
		/* The image registry (core/registry.h) answers below /registry/v1: its list is discoverable. */
		coap_resource_t *r = coap_resource_init(coap_make_str_const("registry/v1/images"), 0);
		coap_register_request_handler(r, COAP_REQUEST_GET, hnd_request);
		coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const("50"), 0);
		coap_add_attr(r, coap_make_str_const("title"), coap_make_str_const("\"Images\""), 0);
		coap_resource_set_userdata(r, api);
		coap_add_resource(context, r);
	}
	static const struct transport_peer_hooks peer_hooks = { on_token_lost, on_session_closed };
	transport_set_peer_hooks(transport, &peer_hooks, api);
	transport_set_batch_hook(transport, on_batch, api);
	*ret_apiserver = api;
	return 0;
}

void apiserver_free(struct apiserver *api)
{
	if (!api)
		return;
	transport_set_batch_hook(api->transport, NULL, NULL);
	transport_set_peer_hooks(api->transport, NULL, NULL);
	watch_hub_free(api->watches);
	if (api->binder_timer)
		loop_cancel_timer(transport_loop(api->transport), api->binder_timer);
	binder_free(api->binder);
	controllers_free(api->controllers);
	metrics_free(api->metrics);
	logrelay_free(api->logs);
	while (api->heartbeats)
		heartbeat_drop(api, api->heartbeats->key);
	for (struct parked_answer *p = api->parked, *next; p; p = next) {
		next = p->next;
		free(p->body);
		coap_session_release(p->session);
		free(p);
	}
	free(api->version_json);
	free(api);
}

size_t apiserver_watch_count(const struct apiserver *api)
{
	return watch_count(api->watches);
}

int apiserver_bootstrap(struct apiserver *api, struct error *err)
{
	static const char *const names[] = { "default", "kube-system", "kube-public", "kube-node-lease" };
	const struct kind *kind = kind_lookup("v1", "Namespace");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char *text = NULL;
		int r = store_get(api->store, "namespaces", "", names[i], &text, NULL);
		free(text);
		if (r == 0)
			continue;
		if (r != -ENOENT)
			return error_set(err, -r, "reading namespace %s", names[i]);
		cJSON *ns = cJSON_CreateObject();
		cJSON_AddStringToObject(ns, "apiVersion", "v1");
		cJSON_AddStringToObject(ns, "kind", "Namespace");
		cJSON *metadata = cJSON_AddObjectToObject(ns, "metadata");
		cJSON_AddStringToObject(metadata, "name", names[i]);
		char uid[37], now[CLOCK_RFC3339_SIZE];
		object_new_uid(uid);
		now_rfc3339(now);
		cJSON_AddStringToObject(metadata, "uid", uid);
		cJSON_AddStringToObject(metadata, "creationTimestamp", now);
		object_apply_defaults(kind, ns);
		cJSON_AddObjectToObject(ns, "status");
		cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(ns, "status"), "phase", "Active");
		struct store_request request = { STORE_CREATE, "namespaces", "", names[i], ns, 0 };
		r = store_apply(api->store, &request, NULL, NULL, err);
		cJSON_Delete(ns);
		if (r < 0)
			return r;
	}
	return store_pending(api->store) ? store_commit(api->store, err) : 0;
}
