/* See link.h. State:
 *
 *   DOWN ──(retry timer)──> CONNECTING ──(DTLS connected)──> UP
 *     ^                         │                             │
 *     └──(handshake failed, refused, timed out)───────────────┤
 *     └──(session closed, request unanswered, link_reset)─────┘
 *
 * One transport (libcoap context, block-wise handled inside libcoap, one whole body per
 * answer) and at most one session. Every request and observation in flight is a `pending`
 * keyed by its token; answers are matched by token. Losing the session ends every pending
 * with an error. Dropping a session is never done inside a libcoap callback: the callbacks
 * only note it and a zero-delay timer does it, so libcoap's own iteration is not disturbed.
 */
#include "core/link.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <coap3/coap.h>

#include "core/transport.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define LINK_URI_MAX 300

enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_UP };

struct pending {
	struct pending *next;
	struct link *link;
	uint8_t token[8];
	size_t token_length;
	bool observe;
	bool answered; /* an observation got its first answer */
	link_response_fn response_fn;
	link_notify_fn notify_fn;
	void *data;
	struct loop_timer *timer; /* the answer's deadline */
};

struct link_observation {
	struct pending pending;
};

struct link {
	struct loop *loop;
	struct transport *transport;
	coap_session_t *session;
	enum link_state state;
	char *servers[LINK_MAX_SERVERS];
	size_t server_count;
	size_t server; /* index of the current one */
	char *identity;
	char *key;
	int request_timeout_ms;
	int retry_min_ms, retry_max_ms, retry_ms;
	struct loop_timer *retry_timer;     /* DOWN: when to connect */
	struct loop_timer *handshake_timer; /* CONNECTING: deadline */
	struct loop_timer *drop_timer;      /* a drop noted inside a libcoap callback */
	struct loop_timer *poll_timer;      /* CONNECTING: looks at the session's state */
	char drop_reason[160];
	struct pending *pending;
	link_state_fn state_fn;
	void *state_data;
};

static void connect_now(struct loop *loop, void *data);

static struct link *link_of(coap_session_t *session)
{
	return session ? coap_session_get_app_data(session) : NULL;
}

static void pending_unlink(struct link *link, struct pending *p)
{
	for (struct pending **pp = &link->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	if (p->timer) {
		loop_cancel_timer(link->loop, p->timer);
		p->timer = NULL;
	}
}

static struct pending *pending_find(struct link *link, const coap_pdu_t *pdu)
{
	coap_bin_const_t token = coap_pdu_get_token(pdu);
	for (struct pending *p = link->pending; p; p = p->next)
		if (token.length == p->token_length && memcmp(token.s, p->token, token.length) == 0)
			return p;
	return NULL;
}

/* Ends one pending with an error: its callback, then it is freed. */
static void pending_fail(struct link *link, struct pending *p, const struct error *err)
{
	pending_unlink(link, p);
	if (p->observe)
		p->notify_fn(0, NULL, 0, err, p->data);
	else
		p->response_fn(NULL, err, p->data);
	free(p);
}

static void set_timers_off(struct link *link)
{
	if (link->retry_timer)
		loop_cancel_timer(link->loop, link->retry_timer);
	if (link->handshake_timer)
		loop_cancel_timer(link->loop, link->handshake_timer);
	if (link->drop_timer)
		loop_cancel_timer(link->loop, link->drop_timer);
	if (link->poll_timer)
		loop_cancel_timer(link->loop, link->poll_timer);
	link->retry_timer = link->handshake_timer = link->drop_timer = link->poll_timer = NULL;
}

/* Drops the session now: every pending fails, the state hook hears of it, a retry is set. */
static void drop(struct link *link, const char *why)
{
	bool was_up = link->state == LINK_UP;
	set_timers_off(link);
	if (link->session) {
		coap_session_set_app_data(link->session, NULL);
		coap_session_release(link->session);
		link->session = NULL;
	}
	if (was_up)
		log_warnx("lost the control plane at %s: %s", link->servers[link->server], why);
	else
		log_debug("cannot reach %s: %s", link->servers[link->server], why);
	link->state = LINK_DOWN;
	struct error err;
	error_set(&err, ECONNRESET, "lost the connection to %s: %s", link->servers[link->server], why);
	while (link->pending)
		pending_fail(link, link->pending, &err);
	/* The next server in turn after a failure; back-off grows while nothing works. */
	if (!was_up)
		link->server = (link->server + 1) % link->server_count;
	int delay = was_up ? link->retry_min_ms : link->retry_ms;
	link->retry_ms = link->retry_ms * 2 > link->retry_max_ms ? link->retry_max_ms : link->retry_ms * 2;
	link->retry_timer = loop_add_timer(link->loop, (uint64_t)delay, connect_now, link);
	if (was_up && link->state_fn)
		link->state_fn(link, false, link->state_data);
}

static void drop_deferred(struct loop *loop, void *data)
{
	(void)loop;
	struct link *link = data;
	link->drop_timer = NULL;
	drop(link, link->drop_reason);
}

/* From inside libcoap's callbacks: drop on the next loop turn. */
static void drop_later(struct link *link, const char *why)
{
	if (link->drop_timer || link->state == LINK_DOWN)
		return;
	snprintf(link->drop_reason, sizeof(link->drop_reason), "%s", why);
	link->drop_timer = loop_add_timer(link->loop, 0, drop_deferred, link);
}

static void became_up(struct link *link)
{
	if (link->handshake_timer) {
		loop_cancel_timer(link->loop, link->handshake_timer);
		link->handshake_timer = NULL;
	}
	if (link->poll_timer) {
		loop_cancel_timer(link->loop, link->poll_timer);
		link->poll_timer = NULL;
	}
	link->state = LINK_UP;
	link->retry_ms = link->retry_min_ms;
	log_info("connected to the control plane at %s", link->servers[link->server]);
	if (link->state_fn)
		link->state_fn(link, true, link->state_data);
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent, const coap_pdu_t *received,
                                   const coap_mid_t mid)
{
	(void)sent;
	(void)mid;
	struct link *link = link_of(session);
	if (!link)
		return COAP_RESPONSE_OK;
	struct pending *p = pending_find(link, received);
	if (!p) {
		coap_opt_iterator_t it;
		/* A notification nobody wants any more: RST ends it at the server. */
		return coap_check_option(received, COAP_OPTION_OBSERVE, &it) ? COAP_RESPONSE_FAIL : COAP_RESPONSE_OK;
	}
	size_t length = 0, offset = 0, total = 0;
	const uint8_t *data = NULL;
	if (!coap_get_data_large(received, &length, &data, &offset, &total))
		length = total = 0;
	struct client_response response = { .code = client_pdu_code(received) };
	if (total > CLIENT_MAX_BODY || offset != 0 || length != total) {
		struct error err;
		error_set(&err, EFBIG, "the answer from %s is larger than %d bytes", link->servers[link->server],
		          CLIENT_MAX_BODY);
		pending_fail(link, p, &err);
		return COAP_RESPONSE_OK;
	}
	response.body = xmalloc(length + 1);
	if (length)
		memcpy(response.body, data, length);
	response.body[length] = '\0';
	response.length = length;
	if (!p->observe) {
		client_response_parse_status(&response);
		pending_unlink(link, p);
		p->response_fn(&response, NULL, p->data);
		free(p);
	} else {
		coap_opt_iterator_t it;
		bool more = response.code < 400 && coap_check_option(received, COAP_OPTION_OBSERVE, &it);
		if (!p->answered && p->timer) {
			loop_cancel_timer(link->loop, p->timer);
			p->timer = NULL;
		}
		p->answered = true;
		if (!more) {
			pending_unlink(link, p);
			struct error err;
			client_response_parse_status(&response);
			client_response_error(&response, &err);
			if (response.code < 400)
				error_set(&err, ECONNRESET, "the server ended the watch");
			p->notify_fn(response.code < 400 ? 0 : response.code, response.body, response.length, &err,
			             p->data);
			free(p);
		} else {
			p->notify_fn(response.code, response.body, response.length, NULL, p->data);
		}
	}
	free(response.body);
	return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent, const coap_nack_reason_t reason,
                    const coap_mid_t mid)
{
	(void)sent;
	(void)mid;
	struct link *link = link_of(session);
	if (!link)
		return;
	switch (reason) {
	case COAP_NACK_ICMP_ISSUE:
		drop_later(link, "nobody listens there (ICMP port unreachable)");
		break;
	case COAP_NACK_TLS_FAILED:
	case COAP_NACK_TLS_LAYER_FAILED:
		drop_later(link, "the DTLS handshake failed (wrong identity or key?)");
		break;
	case COAP_NACK_TOO_MANY_RETRIES:
	case COAP_NACK_NOT_DELIVERABLE:
	case COAP_NACK_BAD_RESPONSE:
		drop_later(link, "a request was never acknowledged");
		break;
	default:
		break; /* RST to one request: its own pending times out */
	}
}

static int on_event(coap_session_t *session, const coap_event_t event)
{
	struct link *link = link_of(session);
	if (!link)
		return 0;
	switch (event) {
	case COAP_EVENT_DTLS_CONNECTED:
	case COAP_EVENT_SESSION_CONNECTED:
		if (link->state == LINK_CONNECTING)
			became_up(link);
		break;
	case COAP_EVENT_DTLS_ERROR:
		drop_later(link, "DTLS error (wrong identity or key, or the server restarted)");
		break;
	case COAP_EVENT_DTLS_CLOSED:
	case COAP_EVENT_SESSION_CLOSED:
	case COAP_EVENT_SESSION_FAILED:
		drop_later(link, "the session closed");
		break;
	default:
		break;
	}
	return 0;
}

/* libcoap does not always report a client's DTLS session as connected through the event
 * handler (4.3.5 moves the session to ESTABLISHED without the event when the handshake ends
 * inside its read path): while connecting, the session's state is looked at every few ms. */
#define LINK_HANDSHAKE_POLL_MS 5

static void poll_handshake(struct loop *loop, void *data)
{
	struct link *link = data;
	link->poll_timer = NULL;
	if (link->state != LINK_CONNECTING || !link->session)
		return;
	if (coap_session_get_state(link->session) == COAP_SESSION_STATE_ESTABLISHED)
		became_up(link);
	else
		link->poll_timer = loop_add_timer(loop, LINK_HANDSHAKE_POLL_MS, poll_handshake, link);
}

static void handshake_timeout(struct loop *loop, void *data)
{
	(void)loop;
	struct link *link = data;
	link->handshake_timer = NULL;
	char why[64];
	snprintf(why, sizeof(why), "no DTLS handshake within %g s", link->request_timeout_ms / 1000.0);
	drop(link, why);
}

static int parse_server(const char *uri, coap_address_t *address, struct error *err)
{
	static const char scheme[] = "coaps://";
	if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0)
		return error_set(err, EINVAL, "server '%s': expected coaps://ADDRESS:PORT", uri);
	char host[LINK_URI_MAX];
	snprintf(host, sizeof(host), "%s", uri + sizeof(scheme) - 1);
	size_t len = strlen(host);
	while (len > 0 && host[len - 1] == '/')
		host[--len] = '\0';
	int r = transport_parse_address(host, TRANSPORT_DEFAULT_PORT, address, err);
	return r < 0 ? error_prefix(err, "server '%s'", uri) : 0;
}

static void connect_now(struct loop *loop, void *data)
{
	(void)loop;
	struct link *link = data;
	link->retry_timer = NULL;
	coap_address_t address;
	struct error err;
	if (parse_server(link->servers[link->server], &address, &err) < 0) {
		drop(link, err.message); /* checked in link_new: cannot happen */
		return;
	}
	coap_dtls_cpsk_t setup;
	memset(&setup, 0, sizeof(setup));
	setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
	setup.psk_info.identity.s = (const uint8_t *)link->identity;
	setup.psk_info.identity.length = strlen(link->identity);
	setup.psk_info.key.s = (const uint8_t *)link->key;
	setup.psk_info.key.length = strlen(link->key);
	link->state = LINK_CONNECTING;
	link->handshake_timer = loop_add_timer(link->loop, (uint64_t)link->request_timeout_ms, handshake_timeout, link);
	link->session = coap_new_client_session_psk2(transport_context(link->transport), NULL, &address,
	                                             COAP_PROTO_DTLS, &setup);
	if (!link->session) {
		drop(link, "cannot start a DTLS session");
		return;
	}
	coap_session_set_app_data(link->session, link);
	transport_tune_session(link->session);
	/* Boards share a LAN: give up on an unacknowledged message sooner than RFC 7252's
	 * defaults (2 s, 4 retransmissions: up to 93 s). */
	coap_session_set_ack_timeout(link->session, (coap_fixed_point_t){ 1, 0 });
	coap_session_set_max_retransmit(link->session, 3);
	if (coap_session_get_state(link->session) == COAP_SESSION_STATE_ESTABLISHED)
		became_up(link);
	else
		link->poll_timer = loop_add_timer(link->loop, LINK_HANDSHAKE_POLL_MS, poll_handshake, link);
}

int link_set_credential(struct link *link, const char *identity, const char *key)
{
	if (!identity || !identity[0] || strlen(identity) > TRANSPORT_PSK_IDENTITY_MAX || !key || !key[0] ||
	    strlen(key) > TRANSPORT_PSK_KEY_MAX)
		return -EINVAL;
	free(link->identity);
	explicit_bzero(link->key, strlen(link->key));
	free(link->key);
	link->identity = xstrdup(identity);
	link->key = xstrdup(key);
	return 0;
}

int link_new(struct loop *loop, const struct link_options *options, struct link **ret_link, struct error *err)
{
	if (!options->identity || !options->identity[0] || strlen(options->identity) > TRANSPORT_PSK_IDENTITY_MAX)
		return error_set(err, EINVAL, "identity must have 1 to %d characters", TRANSPORT_PSK_IDENTITY_MAX);
	if (!options->key || !options->key[0] || strlen(options->key) > TRANSPORT_PSK_KEY_MAX)
		return error_set(err, EINVAL, "key must have 1 to %d characters", TRANSPORT_PSK_KEY_MAX);
	size_t count = 0;
	for (; count < LINK_MAX_SERVERS && options->servers[count]; count++) {
		coap_address_t address;
		if (strlen(options->servers[count]) >= LINK_URI_MAX)
			return error_set(err, EINVAL, "server address longer than %d characters", LINK_URI_MAX - 1);
		int r = parse_server(options->servers[count], &address, err);
		if (r < 0)
			return r;
	}
	if (count == 0)
		return error_set(err, EINVAL, "no server address to connect to");
	struct link *link = xcalloc(1, sizeof(*link));
	link->loop = loop;
	for (size_t i = 0; i < count; i++) {
		link->servers[i] = xstrdup(options->servers[i]);
		size_t n = strlen(link->servers[i]);
		while (n > 0 && link->servers[i][n - 1] == '/')
			link->servers[i][--n] = '\0';
	}
	link->server_count = count;
	link->identity = xstrdup(options->identity);
	link->key = xstrdup(options->key);
	link->request_timeout_ms = options->request_timeout_ms > 0 ? options->request_timeout_ms : 10000;
	link->retry_min_ms = options->retry_min_ms > 0 ? options->retry_min_ms : 250;
	link->retry_max_ms = options->retry_max_ms > 0 ? options->retry_max_ms : 10000;
	if (link->retry_max_ms < link->retry_min_ms)
		link->retry_max_ms = link->retry_min_ms;
	link->retry_ms = link->retry_min_ms;
	int r = transport_new(loop, &link->transport, err);
	if (r < 0) {
		link_free(link);
		return r;
	}
	coap_context_t *context = transport_context(link->transport);
	coap_register_response_handler(context, on_response);
	coap_register_nack_handler(context, on_nack);
	coap_register_event_handler(context, on_event);
	link->retry_timer = loop_add_timer(loop, 0, connect_now, link);
	*ret_link = link;
	return 0;
}

void link_free(struct link *link)
{
	if (!link)
		return;
	set_timers_off(link);
	while (link->pending) {
		struct pending *p = link->pending;
		pending_unlink(link, p);
		free(p);
	}
	if (link->session) {
		coap_session_set_app_data(link->session, NULL);
		coap_session_release(link->session);
	}
	transport_free(link->transport);
	for (size_t i = 0; i < link->server_count; i++)
		free(link->servers[i]);
	free(link->identity);
	if (link->key)
		explicit_bzero(link->key, strlen(link->key));
	free(link->key);
	free(link);
}

void link_set_state_hook(struct link *link, link_state_fn fn, void *data)
{
	link->state_fn = fn;
	link->state_data = data;
}

bool link_is_up(const struct link *link)
{
	return link->state == LINK_UP;
}

const char *link_server(const struct link *link)
{
	return link->servers[link->server];
}

void link_reset(struct link *link)
{
	if (link->state != LINK_DOWN)
		drop(link, "reset");
}

static void request_timeout(struct loop *loop, void *data)
{
	(void)loop;
	struct pending *p = data;
	struct link *link = p->link;
	p->timer = NULL;
	char why[96];
	snprintf(why, sizeof(why), "no answer within %g s", link->request_timeout_ms / 1000.0);
	/* The session is presumed dead (a restarted server forgets it silently): drop it all. */
	drop(link, why);
}

static int start(struct link *link, struct pending *p, enum client_method method, const char *path_with_query,
                 const char *body, size_t body_len, struct error *err)
{
	if (link->state != LINK_UP) {
		free(p);
		return error_set(err, ENOTCONN, "not connected to the control plane (%s)", link->servers[link->server]);
	}
	coap_pdu_t *pdu;
	int r = client_build_pdu(link->session, method, path_with_query, body, body_len, p->observe ? 0 : -1, p->token,
	                         &p->token_length, &pdu, err);
	if (r < 0) {
		free(p);
		return r;
	}
	p->link = link;
	if (coap_send(link->session, pdu) == COAP_INVALID_MID) {
		free(p);
		return error_set(err, EIO, "cannot send a request to %s", link->servers[link->server]);
	}
	p->timer = loop_add_timer(link->loop, (uint64_t)link->request_timeout_ms, request_timeout, p);
	p->next = link->pending;
	link->pending = p;
	return 0;
}

int link_request(struct link *link, enum client_method method, const char *path_with_query, const char *body,
                 size_t body_len, link_response_fn fn, void *data, struct error *err)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	p->response_fn = fn;
	p->data = data;
	return start(link, p, method, path_with_query, body, body_len, err);
}

int link_observe(struct link *link, const char *path_with_query, link_notify_fn fn, void *data,
                 struct link_observation **ret_observation, struct error *err)
{
	struct link_observation *o = xcalloc(1, sizeof(*o));
	o->pending.observe = true;
	o->pending.notify_fn = fn;
	o->pending.data = data;
	int r = start(link, &o->pending, CLIENT_GET, path_with_query, NULL, 0, err);
	if (r < 0)
		return r;
	*ret_observation = o;
	return 0;
}

void link_observe_cancel(struct link *link, struct link_observation *observation)
{
	struct pending *p = &observation->pending;
	bool live = false;
	for (struct pending *q = link->pending; q; q = q->next)
		live |= q == p;
	if (!live)
		return;
	pending_unlink(link, p);
	if (link->state == LINK_UP && link->session) {
		coap_binary_t token = { p->token_length, p->token };
		coap_cancel_observe(link->session, &token, COAP_MESSAGE_CON);
	}
	free(observation);
}
