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
#define TRANSPORT_PSK_KEY_MAX 64

/* Fills key (at most TRANSPORT_PSK_KEY_MAX bytes) for a client identity; returns the key's
 * length, or a negative errno when the identity is unknown. */
typedef int (*transport_psk_lookup_fn)(const char *identity, uint8_t *key, void *data);

int transport_new(struct loop *loop, struct transport **ret_transport, struct error *err);
void transport_free(struct transport *transport);

coap_context_t *transport_context(struct transport *transport);

/* Server side: resolve PSK identities with lookup(); hint is sent to clients. */
void transport_set_psk_lookup(struct transport *transport, transport_psk_lookup_fn lookup, void *data);

/* Opens a DTLS endpoint on "host:port", "[v6]:port", "host" (default port) or ":port". */
int transport_listen_dtls(struct transport *transport, const char *address, struct error *err);

/* Opens a plain CoAP endpoint; refused unless the address is a loopback one. */
int transport_listen_plain_loopback(struct transport *transport, const char *address, struct error *err);

/* Parses an address as transport_listen_dtls() does. */
int transport_parse_address(const char *address, uint16_t default_port, coap_address_t *ret_address, struct error *err);

/* The identity a DTLS session authenticated with, NUL-terminated into buf; "" if none. */
const char *transport_session_identity(const coap_session_t *session, char *buf, size_t size);

/* "libcoap 4.3.5 (DTLS: Mbed TLS 3.6.6)" and "Mbed TLS 3.6.6", read from the libraries. */
void transport_library_versions(char *coap, size_t coap_size, char *tls, size_t tls_size);

#endif
