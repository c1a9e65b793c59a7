/* Watches: CoAP Observe (RFC 7641) on lists and single objects, with Kubernetes semantics.
 *
 * A client registers with GET + Observe: 0 on a collection or an object path, optionally
 * with labelSelector / fieldSelector and resourceVersion. Every committed change that
 * matches a watch is queued on it; after each commit the hub sends each watch that has
 * events confirmable notifications (2.05, Observe sequence, the same token), as many
 * events in each as fit one datagram, in order:
 *
 *   {"kind":"WatchEvents","resourceVersion":"42","events":[{"type":"MODIFIED","object":{...}}]}
 *
 * (resourceVersion: the revision of its last event). The API server's sessions keep
 * RFC 7252's NSTART of 1, so a notification leaves only once the one before it is
 * acknowledged: they arrive in order. An event that does not fit a datagram by itself, or a
 * queue that overflowed, is replaced by
 *   {"kind":"WatchEvents","resourceVersion":"42","truncated":true,"from":"37"}
 * and the client fetches the events block-wise with GET ...?watch=1&resourceVersion=37.
 * Types follow Kubernetes, including selector transitions: an object that stops matching is
 * sent as DELETED, one that starts matching as ADDED.
 *
 * A watch ends when the client deregisters (GET with Observe: 1 and the same token), answers
 * a notification with RST, stops acknowledging (libcoap gives up after its retransmissions),
 * or its session closes. Limits: watches per session, queued bytes per watch (past it the
 * queue is dropped and the next notification is a truncated one).
 */
#ifndef BRAMBLE_CORE_WATCH_H
#define BRAMBLE_CORE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <coap3/coap.h>

struct error;
struct kind;
struct selector;
struct store_change;
struct watch_hub;

#define WATCH_DEFAULT_PER_SESSION 64
#define WATCH_QUEUE_MAX_BYTES (64 * 1024)

struct watch_spec {
	const struct kind *kind;
	const char *resource_key; /* the store's resource key ("deployments.apps") */
	const char *namespace;    /* NULL: every namespace */
	const char *name;         /* NULL: the collection */
	struct selector *labels;  /* owned by the watch from watch_add on (may be NULL) */
	struct selector *fields;  /* likewise */
	uint64_t revision;        /* events after this revision are delivered */
};

struct watch_hub *watch_hub_new(size_t per_session_limit);
void watch_hub_free(struct watch_hub *hub);

/* Registers a watch for (session, token); returns the Observe sequence number to put in the
 * registration response. -EBUSY past the per-session limit. On failure the selectors are
 * freed. A second registration with the same token replaces the first (RFC 7641 3.3.1). */
int watch_add(struct watch_hub *hub, coap_session_t *session, const coap_bin_const_t *token, struct watch_spec *spec,
              uint32_t *ret_sequence, struct error *err);

/* Ends the watch of (session, token); no-op when there is none. */
void watch_remove(struct watch_hub *hub, const coap_session_t *session, const coap_bin_const_t *token);
/* Ends every watch of a session (it closed). */
void watch_remove_session(struct watch_hub *hub, const coap_session_t *session);

/* The store's change hook: queues the change on the watches it concerns. */
void watch_on_change(const struct store_change *change, void *hub);
/* The same with change->object and change->previous already parsed (NULL when absent). */
void watch_on_parsed_change(struct watch_hub *hub, const struct store_change *change, const cJSON *object,
                            const cJSON *previous);

/* Sends one notification to each watch with queued events; returns how many were sent. */
size_t watch_flush(struct watch_hub *hub);

size_t watch_count(const struct watch_hub *hub);

/* True when the object falls under spec: namespace, name and selectors (not the revision). */
bool watch_spec_matches(const struct watch_spec *spec, const cJSON *object);

#endif
