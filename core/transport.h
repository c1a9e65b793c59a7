/* CoAP over DTLS, wired to Bramble's event loop: the one place that sets up libcoap.
 *
 * A transport owns one libcoap context. Servers add DTLS endpoints to it (PSK identities
 * are resolved through a lookup callback, so the credential store decides who may talk);
 * request handlers are registered on it with libcoap's own resource API (hnd_* functions,
 * as in libcoap's examples). libcoap runs its sockets and retransmission timers on an
 * internal epoll descriptor, which this module watches from the loop: nothing polls.
 *
 * No endpoint without DTLS is opened on a network address: the plain CoAP listener exists
 * only for debugging and only on a loopback address.
 */
#ifndef BRAMBLE_CORE_TRANSPORT_H
#define BRAMBLE_CORE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <coap3/coap.h>

struct error;
struct loop;
struct transport;

#define TRANSPORT_DEFAULT_PORT 5684
#define TRANSPORT_PSK_IDENTITY_MAX 128
/* mbedTLS takes pre-shared keys of at most MBEDTLS_PSK_MAX_LEN bytes: 32 in the builds whose
 * SHA-384 is optional; a longer key would fail its handshake rather than its config check. */
#define TRANSPORT_PSK_KEY_MAX 32
/* UDP payload per datagram on a board's LAN (Ethernet/Wi-Fi MTU 1500 less IPv4 and UDP
 * headers, with room to spare): objects up to ~1.4 KB then travel without block-wise
 * transfer. libcoap's default (1152) suits unknown paths; boards share a LAN. */
#define TRANSPORT_MTU 1400
/* Requests a client session has unacknowledged at once. RFC 7252's NSTART of 1 makes every
 * request wait for the last one's acknowledgement, one round trip each: a kubelet's status
 * writes for twenty pods, or a hollow node process's thousands, would queue behind each
 * other. Both ends are Bramble, on a LAN: a few in flight. Server sessions keep 1, so that
 * watch notifications arrive in the order they were sent (core/watch.h). */
#define TRANSPORT_NSTART 8

/* Fills key (at most TRANSPORT_PSK_KEY_MAX bytes) for a client identity; returns the key's
 * length, or a negative errno when the identity is unknown. */
typedef int (*transport_psk_lookup_fn)(const char *identity, uint8_t *key, void *data);

/* Runs after each burst of incoming datagrams; returns > 0 when it released responses
 * (async ones) that should be sent right away. */
typedef int (*transport_batch_fn)(void *data);

int transport_new(struct loop *loop, struct transport **ret_transport, struct error *err);
void transport_free(struct transport *transport);

coap_context_t *transport_context(struct transport *transport);
/* The loop the transport runs on (for timers of whoever serves on it). */
struct loop *transport_loop(struct transport *transport);

void transport_set_batch_hook(struct transport *transport, transport_batch_fn fn, void *data);

/* Client sessions use TRANSPORT_MTU and TRANSPORT_NSTART: call this on each new one. */
void transport_tune_session(coap_session_t *session);

/* What the transport learns about peers, for whoever keeps per-peer state (watches):
 * a message carrying token was refused (RST) or never acknowledged, or a session closed. */
struct transport_peer_hooks {
	void (*token_lost)(void *data, coap_session_t *session, const coap_bin_const_t *token);
	void (*session_closed)(void *data, coap_session_t *session);
};

void transport_set_peer_hooks(struct transport *transport, const struct transport_peer_hooks *hooks, void *data);

/* Server side: resolve PSK identities with lookup(); hint is sent to clients. */
void transport_set_psk_lookup(struct transport *transport, transport_psk_lookup_fn lookup, void *data);

/* Opens a DTLS endpoint on "host:port", "[v6]:port", "host" (default port) or ":port". */
int transport_listen_dtls(struct transport *transport, const char *address, struct error *err);

/* Opens a plain CoAP endpoint; refused unless the address is a loopback one. */
int transport_listen_plain_loopback(struct transport *transport, const char *address, struct error *err);

/* Parses an address as transport_listen_dtls() does. */
int transport_parse_address(const char *address, uint16_t default_port, coap_address_t *ret_address, struct error *err);

/* The principal a DTLS session authenticated as, NUL-terminated into buf; "" if none. An
 * issued node credential's PSK identity "node:<name>@<G>" (key generation G, see
 * core/bootstrap.h) is the node "node:<name>": whoever authorizes sees the node. */
const char *transport_session_identity(const coap_session_t *session, char *buf, size_t size);
/* The PSK identity exactly as the client sent it ("node:pi-2@3"). */
const char *transport_session_psk_identity(const coap_session_t *session, char *buf, size_t size);

/* "libcoap 4.3.5 (DTLS: Mbed TLS 3.6.6)" and "Mbed TLS 3.6.6", read from the libraries. */
void transport_library_versions(char *coap, size_t coap_size, char *tls, size_t tls_size);

#endif
