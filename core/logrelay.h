/* Container logs through the control plane: `GET /api/v1/namespaces/NS/pods/NAME/log`
 * answered by the agent of the pod's node, relayed by the API server. See logrelay.c.
 *
 * The three paths (all on the API server's DTLS endpoint):
 *
 *   GET  /api/v1/namespaces/NS/pods/NAME/log?container=C&tailLines=N&follow=true
 *        &previous=true&timestamps=true                            admins; follow: Observe
 *   GET  /api/v1/nodes/NODE/logrequests             (Observe)       node:NODE only
 *   POST /api/v1/nodes/NODE/logstreams/ID[?end=1][&code=NNN]       node:NODE only
 *
 * The agent observes its node's logrequests; each notification is
 *   {"kind":"LogRequests","requests":[{"id":7,"namespace":..,"pod":..,"uid":..,"container":..,
 *     "tailLines":-1,"follow":false,"previous":false,"timestamps":false}],"cancel":[5]}
 * and the agent answers a request by POSTing the log text to logstreams/ID (end=1 on the
 * last piece; code=NNN and a message instead of text when it cannot serve it). A POST
 * to a stream the API server no longer has gets 4.04: the agent stops; 2.03 to a followed
 * stream says its container has ended: the agent sends what is left with end=1. A follow
 * of a container that is not running is answered as a plain read (as the kubelet does).
 */
#ifndef BRAMBLE_CORE_LOGRELAY_H
#define BRAMBLE_CORE_LOGRELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <coap3/coap.h>

struct logrelay;
struct loop;
struct store;

#define LOGRELAY_ANSWER_MS 10000            /* the agent's first answer, at the latest */
#define LOGRELAY_MAX_STREAMS 64             /* open log requests, all nodes together */
#define LOGRELAY_MAX_BODY (2 * 1024 * 1024) /* one answer of an agent */

struct logrelay *logrelay_new(struct loop *loop, coap_context_t *context);
void logrelay_free(struct logrelay *relay);

/* Serves the request when its path is one of the three above (returns true), including the
 * second call libcoap makes for an answer that was waiting; false: not a log path. */
bool logrelay_serve(struct logrelay *relay, struct store *store, coap_resource_t *resource, coap_session_t *session,
                    const coap_pdu_t *request, const coap_string_t *query, coap_pdu_t *response);

/* The transport's peer hooks: a notification refused or unanswered, a session gone. */
void logrelay_token_lost(struct logrelay *relay, coap_session_t *session, const coap_bin_const_t *token);
void logrelay_session_closed(struct logrelay *relay, coap_session_t *session);

#endif
