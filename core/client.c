/* The CoAP/DTLS client helper: synchronous requests on top of core/transport.
 *
 * Session lifecycle:
 *
 *   client_open ──> CONNECTING ──(DTLS connected)──> READY ──(client_close)──> gone
 *                       │                              │
 *                       ├──(DTLS error / alert)──> FAILED: handshake refused
 *                       └──(deadline)────────────> FAILED: no answer within the timeout
 *
 * One client owns one transport (a libcoap context with COAP_BLOCK_USE_LIBCOAP |
 * COAP_BLOCK_SINGLE_BODY, so block-wise transfers happen inside libcoap and a response
 * arrives whole) and one PSK session to one server. Requests are strictly one at a time:
 * client_request sends a CON request with a fresh token and runs the loop until the answer
 * with that token arrives, the session fails, or the deadline passes. A FAILED client
 * answers every later call with the error it failed with.
 *
 * What a timeout means: nothing usable came back from the server within timeout_ms of the
 * call (of client_open for the handshake, of client_request for its answer). That covers a
 * server that is down (on loopback the kernel's "port unreachable" is ignored and the
 * handshake retried, so a server that is just starting is still reached), a wrong address
 * and a lost network alike; the message names the address. The server's own retries and
 * separate responses (writes are answered after the commit) are within that same budget.
 *
 * This module overrides the transport's response, NACK and event handlers on its own
 * context: a client context never serves, so nothing of the server side is lost.
 */
#include "core/client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <coap3/coap.h>

#include "core/transport.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define CLIENT_URI_MAX 300
#define CLIENT_PATH_MAX 4096
#define CLIENT_CANCEL_WAIT_MS 1000 /* how long a watch waits for its deregistration answer */

enum client_state { CLIENT_CONNECTING, CLIENT_READY, CLIENT_FAILED };

struct client {
	struct loop *loop;
	bool own_loop;
	struct transport *transport;
	coap_session_t *session;
	char uri[CLIENT_URI_MAX];
	char identity[TRANSPORT_PSK_IDENTITY_MAX + 1];
	int timeout_ms;
	enum client_state state;
	struct error failure; /* why the client is FAILED */
	bool refused;         /* the kernel reported the port unreachable at least once */

	/* The request or watch in flight. */
	uint8_t token[8];
	size_t token_length;
	bool waiting;
	bool answered;
	struct client_response *response; /* request: where the answer goes */
	client_watch_fn watch_fn;         /* watch: where notifications go */
	void *watch_data;
	int watch_result;
	bool watch_over;
};

static struct client *client_of(coap_session_t *session)
{
	return session ? coap_session_get_app_data(session) : NULL;
}

static bool token_matches(const struct client *c, const coap_pdu_t *pdu)
{
	coap_bin_const_t token = coap_pdu_get_token(pdu);
	return c->waiting && token.length == c->token_length && memcmp(token.s, c->token, token.length) == 0;
}

int client_pdu_code(const coap_pdu_t *pdu)
{
	coap_pdu_code_t code = coap_pdu_get_code(pdu);
	return (int)COAP_RESPONSE_CLASS(code) * 100 + (int)(code & 0x1f);
}

static void copy_string(char *dst, size_t size, const cJSON *item)
{
	const char *s = cJSON_GetStringValue(item);
	snprintf(dst, size, "%s", s ? s : "");
}

void client_response_parse_status(struct client_response *response)
{
	response->reason[0] = response->message[0] = response->field[0] = '\0';
	if (response->code < 400 || !response->body)
		return;
	cJSON *status = cJSON_ParseWithLength(response->body, response->length);
	if (!cJSON_IsObject(status)) {
		/* Not ours (a proxy, a plain CoAP server): keep the text as the message. */
		snprintf(response->message, sizeof(response->message), "%.*s", (int)response->length, response->body);
	} else {
		copy_string(response->reason, sizeof(response->reason),
		            cJSON_GetObjectItemCaseSensitive(status, "reason"));
		copy_string(response->message, sizeof(response->message),
		            cJSON_GetObjectItemCaseSensitive(status, "message"));
		copy_string(response->field, sizeof(response->field),
		            cJSON_GetObjectItemCaseSensitive(status, "field"));
	}
	cJSON_Delete(status);
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent, const coap_pdu_t *received,
                                   const coap_mid_t mid)
{
	(void)sent;
	(void)mid;
	struct client *c = client_of(session);
	if (!c || !token_matches(c, received))
		return c && c->watch_over ? COAP_RESPONSE_FAIL : COAP_RESPONSE_OK; /* RST ends a stale observe */
	size_t length = 0, offset = 0, total = 0;
	const uint8_t *data = NULL;
	if (!coap_get_data_large(received, &length, &data, &offset, &total))
		length = total = 0;
	int code = client_pdu_code(received);
	if (total > CLIENT_MAX_BODY || offset != 0 || length != total) {
		error_set(&c->failure, EFBIG, "the answer from %s is larger than %d bytes", c->uri, CLIENT_MAX_BODY);
		c->answered = true;
		c->watch_result = -EFBIG;
		c->watch_over = true;
		return COAP_RESPONSE_OK;
	}
	if (c->response) {
		c->response->code = code;
		c->response->body = xmalloc(length + 1);
		if (length)
			memcpy(c->response->body, data, length);
		c->response->body[length] = '\0';
		c->response->length = length;
		client_response_parse_status(c->response);
		c->answered = true;
	} else if (c->watch_fn && !c->watch_over) {
		char *body = xmalloc(length + 1);
		if (length)
			memcpy(body, data, length);
		body[length] = '\0';
		int r = c->watch_fn(code, body, length, c->watch_data);
		free(body);
		c->answered = true;
		coap_opt_iterator_t it;
		if (r != 0 || code >= 400 || !coap_check_option(received, COAP_OPTION_OBSERVE, &it)) {
			c->watch_result = r;
			c->watch_over = true; /* the callback ended it, or the server did */
		}
	}
	return COAP_RESPONSE_OK;
}

static void fail_handshake(struct client *c)
{
	if (c->state == CLIENT_FAILED)
		return;
	c->state = CLIENT_FAILED;
	error_set(&c->failure, EACCES,
	          "the DTLS handshake with %s failed: the server refused identity '%s' or its key "
	          "(check [user] identity and key)",
	          c->uri, c->identity);
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent, const coap_nack_reason_t reason,
                    const coap_mid_t mid)
{
	(void)sent;
	(void)mid;
	struct client *c = client_of(session);
	if (!c)
		return;
	if (reason == COAP_NACK_ICMP_ISSUE)
		c->refused = true;
	else if ((reason == COAP_NACK_TLS_FAILED || reason == COAP_NACK_TLS_LAYER_FAILED) && !c->refused)
		fail_handshake(c);
}

static int on_event(coap_session_t *session, const coap_event_t event)
{
	struct client *c = client_of(session);
	if (!c)
		return 0;
	if ((event == COAP_EVENT_DTLS_CONNECTED || event == COAP_EVENT_SESSION_CONNECTED) &&
	    c->state == CLIENT_CONNECTING)
		c->state = CLIENT_READY;
	else if (event == COAP_EVENT_DTLS_ERROR && !c->refused)
		fail_handshake(c);
	else if (event == COAP_EVENT_DTLS_ERROR || event == COAP_EVENT_DTLS_CLOSED)
		c->refused = true; /* the session ends; client_wait starts another one */
	return 0;
}

static int timeout_error(struct client *c, int timeout_ms, struct error *err)
{
	return error_set(err, ETIMEDOUT, "no answer from %s within %g s: is the server running?", c->uri,
	                 timeout_ms / 1000.0);
}

static int new_session(struct client *c, const coap_address_t *address, const char *key)
{
	coap_dtls_cpsk_t setup;
	memset(&setup, 0, sizeof(setup));
	setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
	setup.psk_info.identity.s = (const uint8_t *)c->identity;
	setup.psk_info.identity.length = strlen(c->identity);
	setup.psk_info.key.s = (const uint8_t *)key;
	setup.psk_info.key.length = strlen(key);
	c->session =
	        coap_new_client_session_psk2(transport_context(c->transport), NULL, address, COAP_PROTO_DTLS, &setup);
	if (!c->session)
		return -ENOMEM;
	coap_session_set_app_data(c->session, c);
	transport_tune_session(c->session);
	return 0;
}

/* Runs the loop until *flag, a failure, or the deadline; returns 0, the failure, or -ETIMEDOUT. */
static int client_wait(struct client *c, bool *flag, uint64_t deadline)
{
	while (!*flag && c->state != CLIENT_FAILED) {
		uint64_t now = clock_monotonic_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		uint64_t wait = deadline - now;
		int r = loop_run_once(c->loop, (int)(wait > 100 ? 100 : wait));
		if (r < 0 && r != -EINTR)
			return r;
	}
	return c->state == CLIENT_FAILED ? -c->failure.code : 0;
}

static int parse_uri(const char *uri, coap_address_t *address, struct error *err)
{
	static const char scheme[] = "coaps://";
	if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0)
		return error_set(err, EINVAL, "server '%s': expected coaps://ADDRESS:PORT", uri);
	char host[CLIENT_URI_MAX];
	snprintf(host, sizeof(host), "%s", uri + sizeof(scheme) - 1);
	size_t len = strlen(host);
	while (len > 0 && host[len - 1] == '/')
		host[--len] = '\0';
	int r = transport_parse_address(host, TRANSPORT_DEFAULT_PORT, address, err);
	if (r < 0)
		return error_prefix(err, "server '%s'", uri);
	return 0;
}

static bool connected(struct client *c)
{
	if (c->state == CLIENT_CONNECTING && c->session &&
	    coap_session_get_state(c->session) == COAP_SESSION_STATE_ESTABLISHED)
		c->state = CLIENT_READY;
	return c->state == CLIENT_READY;
}

int client_open(const char *server_uri, const char *identity, const char *key, int timeout_ms, struct loop *loop,
                struct client **ret_client, struct error *err)
{
	coap_address_t address;
	if (strlen(server_uri) >= CLIENT_URI_MAX)
		return error_set(err, EINVAL, "server address longer than %d characters", CLIENT_URI_MAX - 1);
	if (!identity[0] || strlen(identity) > TRANSPORT_PSK_IDENTITY_MAX)
		return error_set(err, EINVAL, "identity must have 1 to %d characters", TRANSPORT_PSK_IDENTITY_MAX);
	if (!key[0] || strlen(key) > TRANSPORT_PSK_KEY_MAX)
		return error_set(err, EINVAL, "key must have 1 to %d characters", TRANSPORT_PSK_KEY_MAX);
	int r = parse_uri(server_uri, &address, err);
	if (r < 0)
		return r;
	struct client *c = xcalloc(1, sizeof(*c));
	snprintf(c->uri, sizeof(c->uri), "%s", server_uri);
	size_t n = strlen(c->uri);
	while (n > 0 && c->uri[n - 1] == '/')
		c->uri[--n] = '\0';
	snprintf(c->identity, sizeof(c->identity), "%s", identity);
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	c->loop = loop;
	if (!loop) {
		if ((r = loop_new(&c->loop)) < 0) {
			free(c);
			return error_set_errno(err, -r, "cannot create an event loop");
		}
		c->own_loop = true;
	}
	if ((r = transport_new(c->loop, &c->transport, err)) < 0)
		goto fail;
	coap_context_t *context = transport_context(c->transport);
	coap_register_response_handler(context, on_response);
	coap_register_nack_handler(context, on_nack);
	coap_register_event_handler(context, on_event);

	/* Handshake, retried while the kernel says nobody listens (a server starting up). */
	uint64_t deadline = clock_monotonic_ms() + (uint64_t)c->timeout_ms;
	for (;;) {
		if ((r = new_session(c, &address, key)) < 0) {
			error_set(err, -r, "cannot start a DTLS session with %s", c->uri);
			goto fail;
		}
		c->refused = false;
		while (!connected(c) && c->state != CLIENT_FAILED && !c->refused && clock_monotonic_ms() < deadline)
			loop_run_once(c->loop, 100);
		if (c->state != CLIENT_CONNECTING || clock_monotonic_ms() >= deadline)
			break;
		/* Refused by the kernel: wait a little, then a new session. */
		coap_session_release(c->session);
		c->session = NULL;
		uint64_t now = clock_monotonic_ms();
		loop_run_once(c->loop, deadline - now > 200 ? 200 : (int)(deadline - now));
	}
	if (c->state == CLIENT_FAILED) {
		r = -c->failure.code;
		if (err)
			*err = c->failure;
		goto fail;
	}
	if (!connected(c)) {
		r = timeout_error(c, c->timeout_ms, err);
		goto fail;
	}
	*ret_client = c;
	return 0;
fail:
	client_close(c);
	return r;
}

void client_close(struct client *client)
{
	if (!client)
		return;
	if (client->session) {
		coap_session_set_app_data(client->session, NULL);
		coap_session_release(client->session);
	}
	transport_free(client->transport);
	if (client->own_loop)
		loop_free(client->loop);
	free(client);
}

const char *client_server(const struct client *client)
{
	return client->uri;
}

static void release_body(coap_session_t *session, void *data)
{
	(void)session;
	free(data);
}

static coap_pdu_code_t method_code(enum client_method method)
{
	switch (method) {
	case CLIENT_POST:
		return COAP_REQUEST_CODE_POST;
	case CLIENT_PUT:
		return COAP_REQUEST_CODE_PUT;
	case CLIENT_DELETE:
		return COAP_REQUEST_CODE_DELETE;
	case CLIENT_PATCH:
		return COAP_REQUEST_CODE_PATCH;
	case CLIENT_GET:
	default:
		return COAP_REQUEST_CODE_GET;
	}
}

int client_build_pdu(coap_session_t *session, enum client_method method, const char *path_with_query, const char *body,
                     size_t body_len, int observe, uint8_t token[8], size_t *ret_token_length, coap_pdu_t **ret_pdu,
                     struct error *err)
{
	return client_build_pdu_format(session, method, path_with_query, body, body_len,
	                               COAP_MEDIATYPE_APPLICATION_JSON, observe, token, ret_token_length, ret_pdu, err);
}

int client_build_pdu_format(coap_session_t *session, enum client_method method, const char *path_with_query,
                            const char *body, size_t body_len, unsigned content_format, int observe, uint8_t token[8],
                            size_t *ret_token_length, coap_pdu_t **ret_pdu, struct error *err)
{
	size_t total = strlen(path_with_query);
	if (total > CLIENT_PATH_MAX)
		return error_set(err, EINVAL, "request path longer than %d characters", CLIENT_PATH_MAX);
	if (body_len > CLIENT_MAX_BODY)
		return error_set(err, EFBIG, "request body of %zu bytes is larger than %d", body_len, CLIENT_MAX_BODY);
	const char *query = strchr(path_with_query, '?');
	size_t path_len = query ? (size_t)(query - path_with_query) : total;
	const char *path = path_with_query;
	while (path_len > 0 && *path == '/') {
		path++;
		path_len--;
	}
	coap_optlist_t *options = NULL;
	if (observe >= 0) {
		uint8_t buf[4];
		coap_insert_optlist(&options,
		                    coap_new_optlist(COAP_OPTION_OBSERVE,
		                                     coap_encode_var_safe(buf, sizeof(buf), (unsigned)observe), buf));
	}
	if (path_len && !coap_path_into_optlist((const uint8_t *)path, path_len, COAP_OPTION_URI_PATH, &options))
		goto bad_path;
	if (query && query[1] &&
	    !coap_query_into_optlist((const uint8_t *)query + 1, strlen(query + 1), COAP_OPTION_URI_QUERY, &options))
		goto bad_path;
	if (body) {
		uint8_t buf[4];
		coap_insert_optlist(&options,
		                    coap_new_optlist(COAP_OPTION_CONTENT_FORMAT,
		                                     coap_encode_var_safe(buf, sizeof(buf), content_format), buf));
	}
	coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, method_code(method), coap_new_message_id(session),
	                                coap_session_max_pdu_size(session));
	if (!pdu) {
		coap_delete_optlist(options);
		return error_set(err, ENOMEM, "cannot build a CoAP request");
	}
	coap_session_new_token(session, ret_token_length, token);
	coap_add_token(pdu, *ret_token_length, token);
	if (options && !coap_add_optlist_pdu(pdu, &options)) {
		coap_delete_optlist(options);
		coap_delete_pdu(pdu);
		return error_set(err, EINVAL, "request options for '%.64s' do not fit one datagram", path_with_query);
	}
	coap_delete_optlist(options);
	if (body) {
		void *copy = xmalloc(body_len ? body_len : 1);
		memcpy(copy, body, body_len);
		if (!coap_add_data_large_request(session, pdu, body_len, copy, release_body, copy)) {
			coap_delete_pdu(pdu);
			return error_set(err, EIO, "cannot attach a %zu-byte body to the request", body_len);
		}
	}
	*ret_pdu = pdu;
	return 0;
bad_path:
	coap_delete_optlist(options);
	return error_set(err, EINVAL, "request path '%.64s' cannot be encoded", path_with_query);
}

/* Builds and sends one request (observe: -1 none, else the Observe value). */
static int send_request(struct client *c, enum client_method method, const char *path_with_query, const char *body,
                        size_t body_len, unsigned content_format, int observe, struct error *err)
{
	if (c->state == CLIENT_FAILED) {
		if (err)
			*err = c->failure;
		return -c->failure.code;
	}
	coap_pdu_t *pdu;
	int r = client_build_pdu_format(c->session, method, path_with_query, body, body_len, content_format, observe,
	                                c->token, &c->token_length, &pdu, err);
	if (r < 0)
		return r;
	c->waiting = true;
	c->answered = false;
	if (coap_send(c->session, pdu) == COAP_INVALID_MID) {
		c->waiting = false;
		return error_set(err, EIO, "cannot send the request to %s", c->uri);
	}
	return 0;
}

int client_request(struct client *client, enum client_method method, const char *path_with_query, const char *body,
                   size_t body_len, struct client_response *ret_response, struct error *err)
{
	return client_request_format(client, method, path_with_query, body, body_len, COAP_MEDIATYPE_APPLICATION_JSON,
	                             ret_response, err);
}

int client_request_format(struct client *client, enum client_method method, const char *path_with_query,
                          const void *body, size_t body_len, unsigned content_format,
                          struct client_response *ret_response, struct error *err)
{
	struct client_response response = { 0 };
	client->response = &response;
	client->watch_fn = NULL;
	int r = send_request(client, method, path_with_query, body, body_len, content_format, -1, err);
	if (r < 0) {
		client->response = NULL;
		return r;
	}
	r = client_wait(client, &client->answered, clock_monotonic_ms() + (uint64_t)client->timeout_ms);
	client->waiting = false;
	client->response = NULL;
	if (r == -ETIMEDOUT)
		r = timeout_error(client, client->timeout_ms, err);
	else if (r < 0 && err)
		*err = client->failure;
	else if (client->failure.code == EFBIG) {
		r = -EFBIG;
		if (err)
			*err = client->failure;
		error_clear(&client->failure);
	}
	if (r < 0) {
		client_response_clear(&response);
		return r;
	}
	*ret_response = response;
	return 0;
}

void client_response_clear(struct client_response *response)
{
	if (!response)
		return;
	free(response->body);
	memset(response, 0, sizeof(*response));
}

int client_response_error(const struct client_response *response, struct error *err)
{
	int code;
	switch (response->code) {
	case 400:
		code = EINVAL;
		break;
	case 401:
	case 403:
		code = EACCES;
		break;
	case 404:
		code = ENOENT;
		break;
	case 405:
		code = ENOTSUP;
		break;
	case 409:
		code = EEXIST;
		break;
	case 412:
		code = ESTALE;
		break;
	case 413:
		code = EFBIG;
		break;
	case 415:
		code = EPROTONOSUPPORT;
		break;
	case 429:
		code = EBUSY;
		break;
	default:
		if (response->code < 400)
			return 0;
		code = EIO;
		break;
	}
	const char *message = response->message[0] ? response->message : "no message";
	if (response->field[0]) {
		/* The server's message already starts with the field. */
		error_set(err, code, "%s", message);
		if (err)
			snprintf(err->field, sizeof(err->field), "%s", response->field);
		return -code;
	}
	return error_set(err, code, "%s", message);
}

int client_watch(struct client *client, const char *path_with_query, int timeout_ms, client_watch_fn fn, void *data,
                 struct error *err)
{
	client->response = NULL;
	client->watch_fn = fn;
	client->watch_data = data;
	client->watch_result = 0;
	client->watch_over = false;
	int r = send_request(client, CLIENT_GET, path_with_query, NULL, 0, COAP_MEDIATYPE_APPLICATION_JSON,
	                     COAP_OBSERVE_ESTABLISH, err);
	if (r < 0) {
		client->watch_fn = NULL;
		return r;
	}
	/* The first answer must come within the client's timeout; then timeout_ms bounds it all. */
	uint64_t start = clock_monotonic_ms();
	r = client_wait(client, &client->answered, start + (uint64_t)client->timeout_ms);
	if (r == 0 && !client->watch_over) {
		uint64_t end = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms;
		r = client_wait(client, &client->watch_over, end);
		if (r == -ETIMEDOUT)
			r = 0; /* the watch ran its course */
	} else if (r == -ETIMEDOUT) {
		r = timeout_error(client, client->timeout_ms, err);
	}
	if (r < 0 && r != -ETIMEDOUT && client->state == CLIENT_FAILED && err)
		*err = client->failure;
	if (r == 0 && client->failure.code == EFBIG) {
		r = -EFBIG;
		if (err)
			*err = client->failure;
		error_clear(&client->failure);
	}
	bool cancel = client->state == CLIENT_READY;
	client->watch_over = true; /* notifications from now on are refused with RST */
	if (cancel) {
		coap_binary_t token = { client->token_length, client->token };
		client->answered = false;
		if (coap_cancel_observe(client->session, &token, COAP_MESSAGE_CON)) {
			/* The answer to the deregistration carries the same token. */
			client->response = NULL;
			client->watch_fn = NULL;
			struct client_response ignored = { 0 };
			client->response = &ignored;
			client_wait(client, &client->answered, clock_monotonic_ms() + CLIENT_CANCEL_WAIT_MS);
			client_response_clear(&ignored);
			client->response = NULL;
		}
	}
	client->waiting = false;
	client->watch_fn = NULL;
	if (r == 0)
		r = client->watch_result;
	return r;
}
