/* See logrelay.h. How the control plane reaches an agent for its logs, and why this way:
 *
 * Every agent already holds a DTLS session to the API server (core/link.c), authenticated
 * both ways by its node key. Logs travel over that same session, always agent -> server:
 * the agent observes its node's logrequests and POSTs what is asked for. So the control
 * plane needs no address, port, firewall opening or credential for the agent (boards behind
 * one NAT, or whose address changes, work the same), and a node can only ever answer for
 * itself (the session's identity names the node). The cost: one Observe per agent, idle.
 *
 * State: channels (one per node: the agent's observation, session + token) and streams
 * (one per user request). A stream's life:
 *
 *   user GET -> logrelay_serve: validated (pod, container), parked (coap_register_async),
 *               the agent notified on its channel, deadline armed (LOGRELAY_ANSWER_MS)
 *   agent POST logstreams/ID -> text collected; first POST (or end=1 without follow, or
 *               an error code, or the deadline) -> the parked answer is released
 *               (coap_async_trigger) -> libcoap calls logrelay_serve again: answered
 *   follow:     the first answer carries Observe; later POSTs become notifications (one
 *               datagram each); end=1 -> a last answer without Observe ends the watch
 *   ends:       answered (no follow), end=1, user cancels (Observe: 1), user's token lost
 *               or session closed (the agent is sent a cancel), agent's channel lost
 *
 * Invariants: a stream's user session and a channel's session are referenced while kept;
 * every parked answer is answered exactly once (by data, error or deadline).
 */
#include "core/logrelay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/authz.h"
#include "core/object.h"
#include "core/store.h"
#include "core/transport.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define OBSERVE_MASK 0xffffff
#define NAME_MAX_LENGTH 253

struct channel {
	struct channel *next;
	char node[NAME_MAX_LENGTH + 1];
	coap_session_t *session;
	uint8_t token[8];
	size_t token_length;
	uint32_t sequence;
};

struct stream {
	struct stream *next;
	struct logrelay *relay;
	uint64_t id;
	char node[NAME_MAX_LENGTH + 1];
	coap_session_t *session; /* the user's */
	uint8_t token[8];
	size_t token_length;
	bool follow;
	char *namespace, *pod, *uid, *container; /* a follow ends with its container */
	bool triggered;                          /* the parked answer was released */
	bool answered;                           /* ... and sent */
	bool ended;                              /* the agent sent end=1 */
	uint32_t sequence;
	int code; /* an error answer (the agent's or the deadline's); 0: none */
	struct buffer text;
	struct loop_timer *deadline;
};

struct logrelay {
	struct loop *loop;
	coap_context_t *context;
	struct channel *channels;
	struct stream *streams;
	size_t stream_count;
	uint64_t next_id;
	struct loop_timer *kick; /* runs libcoap once more after a release outside a handler */
};

struct logrelay *logrelay_new(struct loop *loop, coap_context_t *context)
{
	struct logrelay *relay = xcalloc(1, sizeof(*relay));
	relay->loop = loop;
	relay->context = context;
	return relay;
}

static void channel_free(struct channel *c)
{
	coap_session_release(c->session);
	free(c);
}

static void stream_free(struct stream *s)
{
	if (s->deadline)
		loop_cancel_timer(s->relay->loop, s->deadline);
	coap_session_release(s->session);
	buffer_free(&s->text);
	free(s->namespace);
	free(s->pod);
	free(s->uid);
	free(s->container);
	free(s);
}

static void stream_unlink(struct logrelay *relay, struct stream *s)
{
	for (struct stream **p = &relay->streams; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			relay->stream_count--;
			return;
		}
	}
}

void logrelay_free(struct logrelay *relay)
{
	if (!relay)
		return;
	while (relay->channels) {
		struct channel *c = relay->channels;
		relay->channels = c->next;
		channel_free(c);
	}
	while (relay->streams) {
		struct stream *s = relay->streams;
		relay->streams = s->next;
		stream_free(s);
	}
	if (relay->kick)
		loop_cancel_timer(relay->loop, relay->kick);
	free(relay);
}

static struct stream *stream_by_id(struct logrelay *relay, uint64_t id)
{
	for (struct stream *s = relay->streams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static struct channel *channel_of(struct logrelay *relay, const char *node)
{
	for (struct channel *c = relay->channels; c; c = c->next)
		if (strcmp(c->node, node) == 0)
			return c;
	return NULL;
}

static bool same_token(const uint8_t *a, size_t a_length, const coap_bin_const_t *b)
{
	return a_length == b->length && memcmp(a, b->s, a_length) == 0;
}

/* --- sending ----------------------------------------------------------------------------- */

/* A CON message on an observation: with Observe (a notification) or without (the end). */
static bool send_on(coap_session_t *session, const uint8_t *token, size_t token_length, uint32_t *sequence,
                    bool observe, unsigned format, int code, const char *payload, size_t length)
{
	coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, (coap_pdu_code_t)COAP_RESPONSE_CODE(code),
	                                coap_new_message_id(session), coap_session_max_pdu_size(session));
	if (!pdu)
		return false;
	uint8_t buf[4];
	bool ok = coap_add_token(pdu, token_length, token);
	if (ok && observe) {
		*sequence = (*sequence + 1) & OBSERVE_MASK;
		ok = coap_add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof(buf), *sequence), buf);
	}
	ok = ok &&
	     coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(buf, sizeof(buf), format), buf);
	ok = ok && (length == 0 || coap_add_data(pdu, length, (const uint8_t *)payload));
	if (!ok) {
		coap_delete_pdu(pdu);
		return false;
	}
	return coap_send(session, pdu) != COAP_INVALID_MID;
}

static size_t room_of(coap_session_t *session)
{
	size_t room = coap_session_max_pdu_size(session);
	return room > 96 ? room - 96 : 64;
}

/* Tells a node's agent about one new request or one cancelled stream. */
static bool notify_agent(struct channel *c, const char *json)
{
	return send_on(c->session, c->token, c->token_length, &c->sequence, true, COAP_MEDIATYPE_APPLICATION_JSON, 205,
	               json, strlen(json));
}

static void cancel_at_agent(struct logrelay *relay, const struct stream *s)
{
	struct channel *c = channel_of(relay, s->node);
	if (!c)
		return;
	char json[96];
	snprintf(json, sizeof(json), "{\"kind\":\"LogRequests\",\"requests\":[],\"cancel\":[%" PRIu64 "]}", s->id);
	notify_agent(c, json);
}

/* Sends what a following stream has collected, one datagram per notification. */
static void flush_follow(struct stream *s)
{
	size_t room = room_of(s->session), at = 0;
	while (at < s->text.length) {
		size_t n = s->text.length - at < room ? s->text.length - at : room;
		if (!send_on(s->session, s->token, s->token_length, &s->sequence, true, COAP_MEDIATYPE_TEXT_PLAIN, 205,
		             s->text.data + at, n))
			break;
		at += n;
	}
	buffer_reset(&s->text);
}

static void flush_answered(struct logrelay *relay);

/* After a release outside libcoap's own processing, or a first answer: libcoap sends what
 * was released, and what waited for a first answer goes out as notifications. */
static void on_kick(struct loop *loop, void *data)
{
	(void)loop;
	struct logrelay *relay = data;
	relay->kick = NULL;
	flush_answered(relay);
	coap_io_process(relay->context, COAP_IO_NO_WAIT);
}

/* Releases the parked answer of s; libcoap calls logrelay_serve again to send it. */
static void release(struct stream *s)
{
	if (s->triggered)
		return;
	coap_bin_const_t token = { s->token_length, s->token };
	coap_async_t *async = coap_find_async(s->session, token);
	s->triggered = true;
	if (s->deadline) {
		loop_cancel_timer(s->relay->loop, s->deadline);
		s->deadline = NULL;
	}
	if (async)
		coap_async_trigger(async);
	if (!s->relay->kick)
		s->relay->kick = loop_add_timer(s->relay->loop, 0, on_kick, s->relay);
}

static void on_deadline(struct loop *loop, void *data)
{
	(void)loop;
	struct stream *s = data;
	s->deadline = NULL;
	buffer_reset(&s->text);
	buffer_printf(&s->text, "node %s did not send the log within %d s", s->node, LOGRELAY_ANSWER_MS / 1000);
	s->code = 504;
	cancel_at_agent(s->relay, s);
	release(s);
}

/* --- answers ------------------------------------------------------------------------------ */

static void release_buffer(coap_session_t *session, void *data)
{
	(void)session;
	free(data);
}

static void answer_text(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                        const coap_string_t *query, coap_pdu_t *response, int code, unsigned format, char *body)
{
	coap_pdu_set_code(response, (coap_pdu_code_t)COAP_RESPONSE_CODE(code));
	size_t length = body ? strlen(body) : 0;
	if (!length) {
		free(body);
		return;
	}
	if (!coap_add_data_large_response(resource, session, request, response, query, (uint16_t)format, -1, 0, length,
	                                  (const uint8_t *)body, release_buffer, body))
		coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
}

static const char *reason_of(int code)
{
	switch (code) {
	case 400:
		return "BadRequest";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 405:
		return "MethodNotAllowed";
	case 413:
		return "RequestEntityTooLarge";
	case 429:
		return "TooManyRequests";
	case 503:
		return "ServiceUnavailable";
	case 504:
		return "Timeout";
	default:
		return "InternalError";
	}
}

static char *error_json(int code, const char *message)
{
	struct buffer b = BUFFER_INIT;
	buffer_append_string(&b, "{\"reason\":");
	buffer_append_json_string(&b, reason_of(code));
	buffer_append_string(&b, ",\"message\":");
	buffer_append_json_string(&b, message);
	buffer_append_string(&b, "}");
	return buffer_steal(&b);
}

static void answer_error(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                         const coap_string_t *query, coap_pdu_t *response, int code, const char *fmt, ...)
        __attribute__((format(printf, 7, 8)));

static void answer_error(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                         const coap_string_t *query, coap_pdu_t *response, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *message = xvasprintf(fmt, ap);
	va_end(ap);
	answer_text(resource, session, request, query, response, code, COAP_MEDIATYPE_APPLICATION_JSON,
	            error_json(code, message));
	free(message);
}

/* --- queries ------------------------------------------------------------------------------- */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The percent-decoded value of key in "a=b&c=d" into buf; false when absent (or too long). */
static bool query_value(const coap_string_t *query, const char *key, char *buf, size_t size)
{
	if (!query || !query->s)
		return false;
	size_t key_length = strlen(key);
	const char *p = (const char *)query->s, *end = p + query->length;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *item_end = amp ? amp : end;
		if ((size_t)(item_end - p) >= key_length && memcmp(p, key, key_length) == 0 &&
		    (p + key_length == item_end || p[key_length] == '=')) {
			const char *v = p + key_length + (p + key_length < item_end);
			size_t n = 0;
			for (; v < item_end; v++) {
				if (n + 1 >= size)
					return false;
				if (*v == '%' && v + 2 < item_end && hex_digit(v[1]) >= 0 && hex_digit(v[2]) >= 0) {
					buf[n++] = (char)(hex_digit(v[1]) * 16 + hex_digit(v[2]));
					v += 2;
				} else {
					buf[n++] = *v;
				}
			}
			buf[n] = '\0';
			return true;
		}
		p = item_end + 1;
	}
	return false;
}

static bool query_true(const coap_string_t *query, const char *key)
{
	char v[16];
	return query_value(query, key, v, sizeof(v)) && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || !v[0]);
}

/* Only known parameters: a typo is an error, not a silent default. */
static const char *unknown_parameter(const coap_string_t *query, const char *const *known)
{
	static char name[64];
	if (!query || !query->s)
		return NULL;
	const char *p = (const char *)query->s, *end = p + query->length;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *item_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(item_end - p));
		size_t n = (size_t)((eq ? eq : item_end) - p);
		bool found = n == 0;
		for (size_t i = 0; known[i] && !found; i++)
			found = strlen(known[i]) == n && memcmp(known[i], p, n) == 0;
		if (!found) {
			snprintf(name, sizeof(name), "%.*s", (int)(n > 60 ? 60 : n), p);
			return name;
		}
		p = item_end + 1;
	}
	return NULL;
}

/* --- paths --------------------------------------------------------------------------------- */

enum log_path { PATH_NONE, PATH_USER, PATH_REQUESTS, PATH_STREAM };

struct parsed_path {
	enum log_path which;
	char namespace[64];
	char name[NAME_MAX_LENGTH + 1]; /* the pod, or the node */
	uint64_t id;
};

static bool copy_part(char *out, size_t size, const char *s, size_t n)
{
	if (n == 0 || n >= size)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

static enum log_path parse_path(const char *path, struct parsed_path *ret)
{
	memset(ret, 0, sizeof(*ret));
	while (*path == '/')
		path++;
	const char *seg[8];
	size_t len[8];
	int n = 0;
	for (const char *p = path; *p && n < 8;) {
		const char *slash = strchr(p, '/');
		size_t l = slash ? (size_t)(slash - p) : strlen(p);
		seg[n] = p;
		len[n++] = l;
		if (!slash)
			break;
		p = slash + 1;
	}
#define IS(i, word) (len[i] == strlen(word) && memcmp(seg[i], word, len[i]) == 0)
	if (n == 7 && IS(0, "api") && IS(1, "v1") && IS(2, "namespaces") && IS(4, "pods") && IS(6, "log")) {
		if (!copy_part(ret->namespace, sizeof(ret->namespace), seg[3], len[3]) ||
		    !copy_part(ret->name, sizeof(ret->name), seg[5], len[5]))
			return PATH_NONE;
		return ret->which = PATH_USER;
	}
	if (n == 5 && IS(0, "api") && IS(1, "v1") && IS(2, "nodes") && IS(4, "logrequests"))
		return copy_part(ret->name, sizeof(ret->name), seg[3], len[3]) ? (ret->which = PATH_REQUESTS)
		                                                               : PATH_NONE;
	if (n == 6 && IS(0, "api") && IS(1, "v1") && IS(2, "nodes") && IS(4, "logstreams")) {
		char id[24];
		if (!copy_part(ret->name, sizeof(ret->name), seg[3], len[3]) ||
		    !copy_part(id, sizeof(id), seg[5], len[5]))
			return PATH_NONE;
		char *end;
		ret->id = strtoull(id, &end, 10);
		return *end ? PATH_NONE : (ret->which = PATH_STREAM);
	}
#undef IS
	return PATH_NONE;
}

static int observe_of(const coap_pdu_t *request)
{
	coap_opt_iterator_t it;
	coap_opt_t *o = coap_check_option(request, COAP_OPTION_OBSERVE, &it);
	return o ? (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o)) : -1;
}

/* --- the user's request -------------------------------------------------------------------- */

/* Is the container of this pod (uid) running, as its status says? As the kubelet, a follow
 * of a container that is not running answers what there is and ends. */
static bool container_running(const cJSON *pod, const char *uid, const char *container)
{
	const char *stored_uid = object_string_at(pod, "metadata.uid");
	if (!pod || (uid && (!stored_uid || strcmp(uid, stored_uid) != 0)))
		return false;
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(pod, "status");
	static const char *const lists[] = { "containerStatuses", "initContainerStatuses" };
	for (size_t i = 0; i < 2; i++) {
		const cJSON *c;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, lists[i]))
		{
			const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
			if (name && strcmp(name, container) == 0)
				return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "state"),
				                                        "running") != NULL;
		}
	}
	return false;
}

static bool stream_container_running(struct store *store, const struct stream *s)
{
	char *text = NULL;
	if (store_get(store, "pods", s->namespace, s->pod, &text, NULL) < 0)
		return false;
	cJSON *pod = cJSON_Parse(text);
	free(text);
	bool running = container_running(pod, s->uid, s->container);
	cJSON_Delete(pod);
	return running;
}

static void append_names(struct buffer *b, const cJSON *containers)
{
	const cJSON *c;
	int i = 0;
	buffer_append_string(b, "[");
	cJSON_ArrayForEach(c, containers)
	{
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
		buffer_printf(b, "%s%s", i++ ? " " : "", name ? name : "");
	}
	buffer_append_string(b, "]");
}

static bool has_container(const cJSON *containers, const char *name)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, containers)
	{
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
		if (n && strcmp(n, name) == 0)
			return true;
	}
	return false;
}

/* The second call for a parked answer: send it. */
static void answer_stream(struct logrelay *relay, struct stream *s, coap_resource_t *resource, coap_session_t *session,
                          const coap_pdu_t *request, const coap_string_t *query, coap_pdu_t *response)
{
	s->answered = true;
	if (s->code) {
		answer_text(resource, session, request, query, response, s->code, COAP_MEDIATYPE_APPLICATION_JSON,
		            error_json(s->code, s->text.data ? s->text.data : "the node could not serve the log"));
		stream_unlink(relay, s);
		stream_free(s);
		return;
	}
	if (!s->follow) {
		answer_text(resource, session, request, query, response, 205, COAP_MEDIATYPE_TEXT_PLAIN,
		            buffer_steal(&s->text));
		stream_unlink(relay, s);
		stream_free(s);
		return;
	}
	/* The first answer of the observation: what fits one datagram; the rest follows as
	 * notifications, sent once this answer is out (the kick runs after the handler). */
	uint8_t buf[4];
	s->sequence = 1;
	coap_add_option(response, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof(buf), s->sequence), buf);
	size_t room = room_of(session), n = s->text.length < room ? s->text.length : room;
	char *first = xstrndup(s->text.data ? s->text.data : "", n);
	struct buffer rest = BUFFER_INIT;
	if (s->text.length > n)
		buffer_append(&rest, s->text.data + n, s->text.length - n);
	buffer_free(&s->text);
	s->text = rest;
	coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT);
	uint8_t format[2];
	coap_add_option(response, COAP_OPTION_CONTENT_FORMAT,
	                coap_encode_var_safe(format, sizeof(format), COAP_MEDIATYPE_TEXT_PLAIN), format);
	if (n)
		coap_add_data(response, n, (const uint8_t *)first);
	free(first);
	if (!relay->kick)
		relay->kick = loop_add_timer(relay->loop, 0, on_kick, relay);
}

static void serve_user(struct logrelay *relay, struct store *store, const struct parsed_path *path,
                       coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                       const coap_string_t *query, coap_pdu_t *response)
{
#define FAIL(code, ...)                                                                                                \
	do {                                                                                                           \
		answer_error(resource, session, request, query, response, code, __VA_ARGS__);                          \
		goto out;                                                                                              \
	} while (0)
	cJSON *pod = NULL;
	char identity[TRANSPORT_PSK_IDENTITY_MAX + 1];
	transport_session_identity(session, identity, sizeof(identity));
	coap_bin_const_t token = coap_pdu_get_token(request);
	if (observe_of(request) == COAP_OBSERVE_CANCEL) {
		for (struct stream *s = relay->streams; s; s = s->next) {
			if (s->session == session && same_token(s->token, s->token_length, &token)) {
				cancel_at_agent(relay, s);
				stream_unlink(relay, s);
				stream_free(s);
				break;
			}
		}
		coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT);
		return;
	}
	if (coap_pdu_get_code(request) != COAP_REQUEST_CODE_GET)
		FAIL(405, "the log is read with GET");
	if (identity[0] && strcmp(identity, "admin") != 0)
		FAIL(403, "%s may not read pod logs: only admins may", identity);
	static const char *const known[] = { "container", "tailLines", "follow", "previous", "timestamps", NULL };
	const char *unknown = unknown_parameter(query, known);
	if (unknown)
		FAIL(400,
		     "unknown query parameter '%s' (supported: container, tailLines, follow, previous, timestamps)",
		     unknown);
	char *text = NULL;
	int r = store_get(store, "pods", path->namespace, path->name, &text, NULL);
	if (r == -ENOENT)
		FAIL(404, "pods \"%s\" not found", path->name);
	if (r < 0)
		FAIL(500, "pods \"%s\": cannot read it", path->name);
	pod = cJSON_Parse(text);
	free(text);
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	const cJSON *containers = cJSON_GetObjectItemCaseSensitive(spec, "containers");
	const cJSON *init = cJSON_GetObjectItemCaseSensitive(spec, "initContainers");
	char container[NAME_MAX_LENGTH + 1] = "";
	if (!query_value(query, "container", container, sizeof(container)) || !container[0]) {
		if (cJSON_GetArraySize(containers) != 1) {
			struct buffer b = BUFFER_INIT;
			buffer_printf(&b, "a container name must be specified for pod %s, choose one of: ", path->name);
			append_names(&b, containers);
			if (cJSON_GetArraySize(init) > 0) {
				buffer_append_string(&b, " or one of the init containers: ");
				append_names(&b, init);
			}
			answer_error(resource, session, request, query, response, 400, "%s", b.data);
			buffer_free(&b);
			goto out;
		}
		const char *only = cJSON_GetStringValue(
		        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(containers, 0), "name"));
		snprintf(container, sizeof(container), "%s", only ? only : "");
	} else if (!has_container(containers, container) && !has_container(init, container)) {
		FAIL(400, "container %s is not valid for pod %s", container, path->name);
	}
	char tail[24] = "-1";
	if (query_value(query, "tailLines", tail, sizeof(tail))) {
		char *end;
		long long n = strtoll(tail, &end, 10);
		if (!tail[0] || *end || n < 0)
			FAIL(400, "tailLines: '%s' is not a non-negative number", tail);
	}
	const char *node = object_string_at(pod, "spec.nodeName");
	if (!node)
		FAIL(400, "container \"%s\" in pod \"%s\" is waiting to start: the pod is not bound to a node yet",
		     container, path->name);
	struct channel *channel = channel_of(relay, node);
	if (!channel)
		FAIL(503, "node %s is not connected: its agent serves the logs of its pods", node);
	if (relay->stream_count >= LOGRELAY_MAX_STREAMS)
		FAIL(429, "%d log requests are open already; try again later", LOGRELAY_MAX_STREAMS);
	bool follow = query_true(query, "follow");
	if (follow && observe_of(request) != COAP_OBSERVE_ESTABLISH)
		FAIL(400, "follow=true needs an Observe (RFC 7641) request: the new lines arrive as notifications");
	if (follow && !container_running(pod, NULL, container))
		follow = false; /* what there is, then the end (an answer without Observe) */
	coap_async_t *async = coap_register_async(session, request, 0);
	if (!async)
		FAIL(503, "no room to wait for node %s's answer", node);
	struct stream *s = xcalloc(1, sizeof(*s));
	s->relay = relay;
	s->id = ++relay->next_id;
	snprintf(s->node, sizeof(s->node), "%s", node);
	s->session = coap_session_reference(session);
	s->token_length = token.length < sizeof(s->token) ? token.length : sizeof(s->token);
	memcpy(s->token, token.s, s->token_length);
	s->follow = follow;
	s->namespace = xstrdup(path->namespace);
	s->pod = xstrdup(path->name);
	s->uid = xstrdup(object_string_at(pod, "metadata.uid") ? object_string_at(pod, "metadata.uid") : "");
	s->container = xstrdup(container);
	coap_async_set_app_data(async, (void *)(uintptr_t)s->id);
	s->next = relay->streams;
	relay->streams = s;
	relay->stream_count++;
	struct buffer b = BUFFER_INIT;
	buffer_printf(&b, "{\"kind\":\"LogRequests\",\"requests\":[{\"id\":%" PRIu64 ",\"namespace\":", s->id);
	buffer_append_json_string(&b, path->namespace);
	buffer_append_string(&b, ",\"pod\":");
	buffer_append_json_string(&b, path->name);
	buffer_append_string(&b, ",\"uid\":");
	buffer_append_json_string(&b,
	                          object_string_at(pod, "metadata.uid") ? object_string_at(pod, "metadata.uid") : "");
	buffer_append_string(&b, ",\"container\":");
	buffer_append_json_string(&b, container);
	buffer_printf(&b, ",\"tailLines\":%s,\"follow\":%s,\"previous\":%s,\"timestamps\":%s}]}", tail,
	              follow ? "true" : "false", query_true(query, "previous") ? "true" : "false",
	              query_true(query, "timestamps") ? "true" : "false");
	bool sent = notify_agent(channel, b.data);
	buffer_free(&b);
	if (!sent) {
		buffer_printf(&s->text, "node %s could not be asked for the log", node);
		s->code = 503;
		release(s);
	} else {
		s->deadline = loop_add_timer(relay->loop, LOGRELAY_ANSWER_MS, on_deadline, s);
	}
out:
	cJSON_Delete(pod);
#undef FAIL
}

/* --- the agent's side --------------------------------------------------------------------- */

static bool node_identity(coap_session_t *session, const char *node)
{
	char identity[TRANSPORT_PSK_IDENTITY_MAX + 1];
	transport_session_identity(session, identity, sizeof(identity));
	const char *own = authz_node_name(identity);
	return own && strcmp(own, node) == 0;
}

static void serve_requests(struct logrelay *relay, const struct parsed_path *path, coap_resource_t *resource,
                           coap_session_t *session, const coap_pdu_t *request, const coap_string_t *query,
                           coap_pdu_t *response)
{
	if (!node_identity(session, path->name)) {
		answer_error(resource, session, request, query, response, 403,
		             "only node %s's own identity may take its log requests", path->name);
		return;
	}
	int observe = observe_of(request);
	coap_bin_const_t token = coap_pdu_get_token(request);
	struct channel *c = channel_of(relay, path->name);
	if (observe == COAP_OBSERVE_CANCEL) {
		if (c && c->session == session && same_token(c->token, c->token_length, &token)) {
			for (struct channel **p = &relay->channels; *p; p = &(*p)->next) {
				if (*p == c) {
					*p = c->next;
					break;
				}
			}
			channel_free(c);
		}
		coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT);
		return;
	}
	if (observe != COAP_OBSERVE_ESTABLISH) {
		answer_error(resource, session, request, query, response, 400,
		             "log requests are taken with an Observe (RFC 7641) request");
		return;
	}
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		snprintf(c->node, sizeof(c->node), "%s", path->name);
		c->next = relay->channels;
		relay->channels = c;
	} else {
		coap_session_release(c->session);
	}
	c->session = coap_session_reference(session);
	c->token_length = token.length < sizeof(c->token) ? token.length : sizeof(c->token);
	memcpy(c->token, token.s, c->token_length);
	c->sequence = 1;
	uint8_t buf[4];
	coap_add_option(response, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof(buf), c->sequence), buf);
	answer_text(resource, session, request, query, response, 205, COAP_MEDIATYPE_APPLICATION_JSON,
	            xstrdup("{\"kind\":\"LogRequests\",\"requests\":[]}"));
}

static void serve_stream(struct logrelay *relay, struct store *store, const struct parsed_path *path,
                         coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                         const coap_string_t *query, coap_pdu_t *response)
{
	struct stream *s = stream_by_id(relay, path->id);
	if (!s || strcmp(s->node, path->name) != 0 || !node_identity(session, path->name)) {
		answer_error(resource, session, request, query, response, 404, "no log stream %" PRIu64 " for node %s",
		             path->id, path->name);
		return;
	}
	size_t length = 0, offset = 0, total = 0;
	const uint8_t *data = NULL;
	coap_get_data_large(request, &length, &data, &offset, &total);
	if (s->text.length + length > LOGRELAY_MAX_BODY) {
		answer_error(resource, session, request, query, response, 413, "a log answer is limited to %d bytes",
		             LOGRELAY_MAX_BODY);
		return;
	}
	char code[8];
	if (query_value(query, "code", code, sizeof(code))) {
		int c = atoi(code);
		s->code = c >= 400 && c < 600 ? c : 500;
		buffer_reset(&s->text);
	}
	if (length)
		buffer_append(&s->text, data, length);
	bool end = query_true(query, "end");
	/* A followed container that has ended: 2.03 asks the agent for the rest and the end. */
	bool container_ended = s->follow && !end && !s->code && !stream_container_running(store, s);
	coap_pdu_set_code(response, container_ended ? COAP_RESPONSE_CODE(203) : COAP_RESPONSE_CODE_CHANGED);
	if (!s->triggered) {
		if (s->code || s->follow || end)
			release(s);
		if (end)
			s->ended = true;
		return;
	}
	if (!s->answered)
		return; /* its first answer is on its way: the rest goes after it */
	if (s->follow && length == 0 && !end)
		/* The agent's keepalive: passed on (empty), so that a reader that went away
		 * without a word is noticed (its notification goes unanswered) and the agent
		 * told to stop, even while the log is quiet. */
		send_on(s->session, s->token, s->token_length, &s->sequence, true, COAP_MEDIATYPE_TEXT_PLAIN, 205, NULL,
		        0);
	else if (s->follow)
		flush_follow(s);
	if (end) {
		send_on(s->session, s->token, s->token_length, &s->sequence, false, COAP_MEDIATYPE_TEXT_PLAIN, 205,
		        NULL, 0);
		stream_unlink(relay, s);
		stream_free(s);
	}
}

/* After the first answer of a following stream: what came meanwhile. */
static void flush_answered(struct logrelay *relay)
{
	for (struct stream *s = relay->streams, *next; s; s = next) {
		next = s->next;
		if (!s->follow || !s->answered)
			continue;
		if (s->text.length)
			flush_follow(s);
		if (s->ended) {
			send_on(s->session, s->token, s->token_length, &s->sequence, false, COAP_MEDIATYPE_TEXT_PLAIN,
			        205, NULL, 0);
			stream_unlink(relay, s);
			stream_free(s);
		}
	}
}

bool logrelay_serve(struct logrelay *relay, struct store *store, coap_resource_t *resource, coap_session_t *session,
                    const coap_pdu_t *request, const coap_string_t *query, coap_pdu_t *response)
{
	if (!relay)
		return false;
	coap_string_t *uri = coap_get_uri_path(request);
	struct parsed_path path;
	enum log_path which = parse_path(uri ? (const char *)uri->s : "", &path);
	coap_delete_string(uri);
	if (which == PATH_NONE)
		return false;
	coap_async_t *async = coap_find_async(session, coap_pdu_get_token(request));
	if (async) {
		uint64_t id = (uint64_t)(uintptr_t)coap_async_get_app_data(async);
		struct stream *s = stream_by_id(relay, id);
		if (s)
			answer_stream(relay, s, resource, session, request, query, response);
		else
			answer_error(resource, session, request, query, response, 500, "the log request was lost");
		return true;
	}
	switch (which) {
	case PATH_USER:
		serve_user(relay, store, &path, resource, session, request, query, response);
		break;
	case PATH_REQUESTS:
		serve_requests(relay, &path, resource, session, request, query, response);
		break;
	case PATH_STREAM:
		if (coap_pdu_get_code(request) != COAP_REQUEST_CODE_POST)
			answer_error(resource, session, request, query, response, 405, "log streams take POST");
		else
			serve_stream(relay, store, &path, resource, session, request, query, response);
		break;
	case PATH_NONE:
		break;
	}
	return true;
}

static void drop_streams(struct logrelay *relay, coap_session_t *session, const coap_bin_const_t *token)
{
	for (struct stream *s = relay->streams, *next; s; s = next) {
		next = s->next;
		if (s->session != session || (token && !same_token(s->token, s->token_length, token)))
			continue;
		cancel_at_agent(relay, s);
		stream_unlink(relay, s);
		stream_free(s);
	}
}

/* The agent's channel is gone: its streams end (a waiting request with 5.03). */
static void end_streams_of(struct logrelay *relay, const char *node)
{
	for (struct stream *s = relay->streams; s; s = s->next) {
		if (strcmp(s->node, node) != 0)
			continue;
		if (!s->triggered) {
			buffer_reset(&s->text);
			buffer_printf(&s->text, "node %s went away before sending the log", node);
			s->code = 503;
			release(s);
		} else {
			s->ended = true;
		}
	}
	if (!relay->kick)
		relay->kick = loop_add_timer(relay->loop, 0, on_kick, relay);
}

static void drop_channels(struct logrelay *relay, coap_session_t *session, const coap_bin_const_t *token)
{
	for (struct channel **p = &relay->channels; *p;) {
		struct channel *c = *p;
		if (c->session == session && (!token || same_token(c->token, c->token_length, token))) {
			*p = c->next;
			end_streams_of(relay, c->node);
			channel_free(c);
			continue;
		}
		p = &c->next;
	}
}

void logrelay_token_lost(struct logrelay *relay, coap_session_t *session, const coap_bin_const_t *token)
{
	if (!relay)
		return;
	drop_channels(relay, session, token);
	drop_streams(relay, session, token);
}

void logrelay_session_closed(struct logrelay *relay, coap_session_t *session)
{
	if (!relay)
		return;
	drop_channels(relay, session, NULL);
	drop_streams(relay, session, NULL);
}
