/* The agent's link to the control plane: an asynchronous CoAP/DTLS client that lives on the
 * agent's event loop beside everything else the agent does (containers, probes, the API
 * server of a server board), so nothing ever waits for the network.
 *
 *   link_new(loop, options)          starts connecting; reconnects by itself, forever
 *   link_request(method, path, fn)   one request; fn gets the answer or why there was none
 *   link_observe(path, fn)           a watch; fn gets every notification until it ends
 *
 * Requests are never queued while the link is down: they fail at once with -ENOTCONN, and
 * the owner re-sends what it still wants when the state hook reports the link up again
 * (the kubelet re-lists, then watches from the revision it has). Every observation ends
 * when the link goes down (its callback gets code 0 and an error).
 *
 * A server that stops answering is noticed by the first request that gets no answer within
 * the request timeout: the session is then dropped and a new handshake started, with
 * back-off between attempts; servers listed in the options are tried in turn.
 */
#ifndef BRAMBLE_CORE_LINK_H
#define BRAMBLE_CORE_LINK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/client.h"

struct error;
struct link;
struct link_observation;
struct loop;

#define LINK_MAX_SERVERS 8

struct link_options {
	const char *servers[LINK_MAX_SERVERS]; /* "coaps://192.0.2.10:5684" ...; at least one */
	const char *identity;                  /* PSK identity, e.g. "node:pi-1" */
	const char *key;
	int request_timeout_ms; /* 0: 10 s; an unanswered request drops the session */
	int retry_min_ms;       /* back-off between handshakes: 0: 250 ms ... */
	int retry_max_ms;       /* ... doubling up to this; 0: 10 s */
};

/* up: the link has just become usable (true) or was lost (false). */
typedef void (*link_state_fn)(struct link *link, bool up, void *data);

/* The answer (response->code etc., body owned by the link: copy what you keep), or
 * response == NULL and err saying why there was none (-ENOTCONN, -ETIMEDOUT, ...). */
typedef void (*link_response_fn)(const struct client_response *response, const struct error *err, void *data);

/* A notification (code 205 and the body), or the end of the observation: code 0 with err
 * (link lost), or an error code from the server (>= 400). Nothing follows an end. */
typedef void (*link_notify_fn)(int code, const char *body, size_t length, const struct error *err, void *data);

int link_new(struct loop *loop, const struct link_options *options, struct link **ret_link, struct error *err);
void link_free(struct link *link);

void link_set_state_hook(struct link *link, link_state_fn fn, void *data);
bool link_is_up(const struct link *link);
/* The server of the current (or last tried) session. */
const char *link_server(const struct link *link);

/* Sends one request; fn is called exactly once, never from within this call. Returns 0, or
 * a negative errno (fn not called) when the request cannot be sent (-ENOTCONN, -EINVAL). */
int link_request(struct link *link, enum client_method method, const char *path_with_query, const char *body,
                 size_t body_len, link_response_fn fn, void *data, struct error *err);

/* Starts an observation; *ret_observation identifies it until fn reports its end or the owner
 * cancels it. Returns 0 or a negative errno (fn not called). */
int link_observe(struct link *link, const char *path_with_query, link_notify_fn fn, void *data,
                 struct link_observation **ret_observation, struct error *err);
/* Ends an observation (deregisters it with the server); fn is not called again. */
void link_observe_cancel(struct link *link, struct link_observation *observation);

/* The credential for the next handshakes (a rotated one); the current session goes on.
 * Returns -EINVAL (nothing changed) for an empty or too long identity or key. */
int link_set_credential(struct link *link, const char *identity, const char *key);

/* Drops the session and starts a new handshake (after a server restart, say). */
void link_reset(struct link *link);

#endif
