/* See transport.h. */
#include "core/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include <mbedtls/version.h>

#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

struct transport {
	struct loop *loop;
	coap_context_t *context;
	int coap_fd;
	transport_psk_lookup_fn psk_lookup;
	void *psk_lookup_data;
	struct transport_peer_hooks peer_hooks;
	void *peer_hooks_data;
	transport_batch_fn batch_hook;
	void *batch_hook_data;
	uint8_t key[TRANSPORT_PSK_KEY_MAX]; /* the key handed to libcoap, which copies it */
	coap_bin_const_t key_bin;
};

static void on_coap_log(coap_log_t level, const char *message)
{
	size_t len = strlen(message);
	while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == '\r'))
		len--;
	/* libcoap says this when the API server parks a write whose body came block-wise: its
	 * copy of the request keeps the options and drops the body, which the answer does not
	 * need. It is not a problem worth a warning per write. */
	if (strstr(message, "coap_pdu_resize: pdu too big"))
		level = COAP_LOG_DEBUG;
	enum log_level ours = level <= COAP_LOG_ERR    ? LOG_LEVEL_ERROR
	                      : level <= COAP_LOG_WARN ? LOG_LEVEL_WARN
	                      : level <= COAP_LOG_INFO ? LOG_LEVEL_INFO
	                                               : LOG_LEVEL_DEBUG;
	log_message(ours, 0, "coap: %.*s", (int)len, message);
}

static void library_init(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	coap_startup();
	coap_set_log_handler(on_coap_log);
	coap_log_t level = log_get_level() >= LOG_LEVEL_DEBUG ? COAP_LOG_INFO : COAP_LOG_WARN;
	coap_set_log_level(level);
	coap_dtls_set_log_level(level);
}

/* Datagrams waiting on the endpoint are handled as one burst (up to TRANSPORT_BURST_MAX
 * passes), then the batch hook runs once: that is where the API server commits the writes
 * of the whole burst together and releases their responses. */
#define TRANSPORT_BURST_MAX 32

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

static void on_coap_fd(struct loop *loop, int fd, uint32_t events, void *data)
{
	(void)loop;
	(void)events;
	struct transport *t = data;
	int passes = 0;
	do {
		if (coap_io_process(t->context, COAP_IO_NO_WAIT) < 0) {
			log_warnx("coap: processing I/O failed");
			break;
		}
	} while (++passes < TRANSPORT_BURST_MAX && readable(fd));
	if (t->batch_hook && t->batch_hook(t->batch_hook_data) > 0)
		coap_io_process(t->context, COAP_IO_NO_WAIT); /* send what the hook released */
}

void transport_tune_session(coap_session_t *session)
{
	coap_session_set_mtu(session, TRANSPORT_MTU);
	coap_session_set_nstart(session, TRANSPORT_NSTART);
}

void transport_set_peer_hooks(struct transport *transport, const struct transport_peer_hooks *hooks, void *data)
{
	if (hooks)
		transport->peer_hooks = *hooks;
	else
		memset(&transport->peer_hooks, 0, sizeof(transport->peer_hooks));
	transport->peer_hooks_data = data;
}

void transport_set_batch_hook(struct transport *transport, transport_batch_fn fn, void *data)
{
	transport->batch_hook = fn;
	transport->batch_hook_data = data;
}

static struct transport *transport_of(coap_session_t *session)
{
	return coap_get_app_data(coap_session_get_context(session));
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent, const coap_nack_reason_t reason,
                    const coap_mid_t mid)
{
	(void)mid;
	struct transport *t = transport_of(session);
	if (!t || !sent || !t->peer_hooks.token_lost)
		return;
	if (reason != COAP_NACK_RST && reason != COAP_NACK_TOO_MANY_RETRIES)
		return;
	coap_bin_const_t token = coap_pdu_get_token(sent);
	t->peer_hooks.token_lost(t->peer_hooks_data, session, &token);
}

static int on_event(coap_session_t *session, const coap_event_t event)
{
	struct transport *t = transport_of(session);
	/* A server session keeps NSTART 1: watch notifications leave one at a time, in order. */
	if (event == COAP_EVENT_SERVER_SESSION_NEW)
		coap_session_set_mtu(session, TRANSPORT_MTU);
	if (!t || !t->peer_hooks.session_closed)
		return 0;
	if (event == COAP_EVENT_DTLS_CLOSED || event == COAP_EVENT_SESSION_CLOSED || event == COAP_EVENT_DTLS_ERROR ||
	    event == COAP_EVENT_SERVER_SESSION_DEL)
		t->peer_hooks.session_closed(t->peer_hooks_data, session);
	return 0;
}

int transport_new(struct loop *loop, struct transport **ret_transport, struct error *err)
{
	library_init();
	if (!coap_dtls_is_supported())
		return error_set(err, ENOTSUP, "libcoap was built without DTLS");
	coap_context_t *context = coap_new_context(NULL);
	if (!context)
		return error_set(err, ENOMEM, "cannot create a CoAP context");
	coap_context_set_block_mode(context, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
	int fd = coap_context_get_coap_fd(context);
	if (fd < 0) {
		coap_free_context(context);
		return error_set(err, ENOTSUP, "libcoap was built without epoll support");
	}
	struct transport *t = xcalloc(1, sizeof(*t));
	t->loop = loop;
	t->context = context;
	t->coap_fd = fd;
	coap_set_app_data(context, t);
	coap_register_nack_handler(context, on_nack);
	coap_register_event_handler(context, on_event);
	int r = loop_add_fd(loop, fd, EPOLLIN, on_coap_fd, t);
	if (r < 0) {
		coap_free_context(context);
		free(t);
		return error_set_errno(err, -r, "watch the CoAP descriptor");
	}
	*ret_transport = t;
	return 0;
}

void transport_free(struct transport *transport)
{
	if (!transport)
		return;
	loop_remove_fd(transport->loop, transport->coap_fd);
	coap_free_context(transport->context);
	free(transport);
}

struct loop *transport_loop(struct transport *transport)
{
	return transport->loop;
}

coap_context_t *transport_context(struct transport *transport)
{
	return transport->context;
}

static const coap_bin_const_t *on_psk_identity(coap_bin_const_t *identity, coap_session_t *session, void *arg)
{
	(void)session;
	struct transport *t = arg;
	char name[TRANSPORT_PSK_IDENTITY_MAX + 1];
	if (!identity || identity->length == 0 || identity->length > TRANSPORT_PSK_IDENTITY_MAX ||
	    memchr(identity->s, '\0', identity->length))
		return NULL;
	memcpy(name, identity->s, identity->length);
	name[identity->length] = '\0';
	int len = t->psk_lookup ? t->psk_lookup(name, t->key, t->psk_lookup_data) : -ENOENT;
	if (len <= 0) {
		log_info("DTLS handshake refused: unknown PSK identity '%s'", name);
		return NULL;
	}
	t->key_bin.s = t->key;
	t->key_bin.length = (size_t)len;
	return &t->key_bin;
}

void transport_set_psk_lookup(struct transport *transport, transport_psk_lookup_fn lookup, void *data)
{
	transport->psk_lookup = lookup;
	transport->psk_lookup_data = data;
	coap_dtls_spsk_t setup;
	memset(&setup, 0, sizeof(setup));
	setup.version = COAP_DTLS_SPSK_SETUP_VERSION;
	setup.validate_id_call_back = on_psk_identity;
	setup.id_call_back_arg = transport;
	static const uint8_t hint[] = "bramble";
	setup.psk_info.hint.s = hint;
	setup.psk_info.hint.length = sizeof(hint) - 1;
	coap_context_set_psk2(transport->context, &setup);
}

int transport_parse_address(const char *address, uint16_t default_port, coap_address_t *ret_address, struct error *err)
{
	char host[256];
	const char *port_text = NULL;
	if (address[0] == '[') {
		const char *close = strchr(address, ']');
		if (!close || (size_t)(close - address - 1) >= sizeof(host))
			return error_set(err, EINVAL, "'%s': unterminated IPv6 address, write [addr]:port", address);
		memcpy(host, address + 1, (size_t)(close - address - 1));
		host[close - address - 1] = '\0';
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return error_set(err, EINVAL, "'%s': expected ':port' after ']'", address);
	} else {
		const char *colon = strrchr(address, ':');
		if (colon && strchr(address, ':') != colon)
			return error_set(err, EINVAL, "'%s': write IPv6 addresses as [addr]:port", address);
		size_t len = colon ? (size_t)(colon - address) : strlen(address);
		if (len >= sizeof(host))
			return error_set(err, EINVAL, "'%.32s...': host name too long", address);
		memcpy(host, address, len);
		host[len] = '\0';
		if (colon)
			port_text = colon + 1;
	}
	unsigned long port = default_port;
	if (port_text) {
		char *end;
		errno = 0;
		port = strtoul(port_text, &end, 10);
		if (errno || *port_text == '\0' || *end != '\0' || port > 65535)
			return error_set(err, EINVAL, "'%s': port must be a number from 0 to 65535", address);
	}
	if (host[0] == '\0')
		strcpy(host, "0.0.0.0");

	/* Numeric only: a static binary cannot load the resolver plugins of the board's libc. */
	coap_address_init(ret_address);
	struct sockaddr_in *sin = &ret_address->addr.sin;
	struct sockaddr_in6 *sin6 = &ret_address->addr.sin6;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		ret_address->size = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		ret_address->size = sizeof(*sin6);
	} else if (strcmp(host, "localhost") == 0) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons((uint16_t)port);
		ret_address->size = sizeof(*sin);
	} else {
		return error_set(err, EINVAL, "'%s': not a numeric IPv4 or IPv6 address", host);
	}
	return 0;
}

static int listen_on(struct transport *t, const char *address, uint16_t default_port, coap_proto_t proto,
                     struct error *err)
{
	coap_address_t addr;
	int r = transport_parse_address(address, default_port, &addr, err);
	if (r < 0)
		return r;
	coap_endpoint_t *endpoint = coap_new_endpoint(t->context, &addr, proto);
	if (!endpoint)
		return error_set(err, EADDRNOTAVAIL, "cannot listen on %s (address in use or not on this board?)",
		                 address);
	return 0;
}

int transport_listen_dtls(struct transport *transport, const char *address, struct error *err)
{
	if (!transport->psk_lookup)
		return error_set(err, EINVAL, "no PSK identities configured for %s", address);
	return listen_on(transport, address, TRANSPORT_DEFAULT_PORT, COAP_PROTO_DTLS, err);
}

int transport_listen_plain_loopback(struct transport *transport, const char *address, struct error *err)
{
	coap_address_t addr;
	int r = transport_parse_address(address, 5683, &addr, err);
	if (r < 0)
		return r;
	int loopback = (addr.addr.sa.sa_family == AF_INET && (ntohl(addr.addr.sin.sin_addr.s_addr) >> 24) == 127) ||
	               (addr.addr.sa.sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&addr.addr.sin6.sin6_addr));
	if (!loopback)
		return error_set(err, EPERM, "plain CoAP is refused on %s: only loopback addresses may be unencrypted",
		                 address);
	return listen_on(transport, address, 5683, COAP_PROTO_UDP, err);
}

const char *transport_session_identity(const coap_session_t *session, char *buf, size_t size)
{
	transport_session_psk_identity(session, buf, size);
	char *at = strncmp(buf, "node:", 5) == 0 ? strchr(buf + 5, '@') : NULL;
	if (at && at[1] && strspn(at + 1, "0123456789") == strlen(at + 1))
		*at = '\0';
	return buf;
}

const char *transport_session_psk_identity(const coap_session_t *session, char *buf, size_t size)
{
	const coap_bin_const_t *id = coap_session_get_psk_identity(session);
	size_t len = id && id->length < size ? id->length : 0;
	if (len)
		memcpy(buf, id->s, len);
	buf[len] = '\0';
	return buf;
}

void transport_library_versions(char *coap, size_t coap_size, char *tls, size_t tls_size)
{
	char dtls[128];
	coap_tls_version_t *v = coap_get_tls_library_version();
	const char *backend = v && v->type == COAP_TLS_LIBRARY_MBEDTLS ? "Mbed TLS" : "other";
	snprintf(dtls, sizeof(dtls), "%s", backend);
	snprintf(coap, coap_size, "%s (DTLS backend: %s)", coap_package_version(), dtls);
	char full[64];
	mbedtls_version_get_string_full(full);
	snprintf(tls, tls_size, "%s", full);
}
