/* The one CoAP/DTLS client helper: synchronous requests and watches against an API server.
 *
 *   client_open(uri, identity, key, timeout)   DTLS (PSK) handshake, waited for
 *   client_request(GET|POST|PUT|PATCH|DELETE)  one answer, block-wise both ways, whole body
 *   client_watch(path, callback)                Observe: every notification to the callback
 *   client_close()
 *
 * Every wait is bounded by the timeout given to client_open: a server that does not answer
 * is reported with its address ("no answer from coaps://192.0.2.1:5684 within 5 s"), a
 * refused handshake as such (wrong key or unknown identity). Error answers (4.xx, 5.xx) are
 * not failures of the call: the response carries the code and the parsed
 * {reason, message, field} body, and client_response_error() turns it into a struct error.
 */
#ifndef BRAMBLE_CORE_CLIENT_H
#define BRAMBLE_CORE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <coap3/coap.h>

struct client;
struct error;
struct loop;

/* Bodies larger than this are refused in either direction. */
#define CLIENT_MAX_BODY (8 * 1024 * 1024)
#define CLIENT_REASON_MAX 64

enum client_method {
	CLIENT_GET = 1,
	CLIENT_POST,
	CLIENT_PUT,
	CLIENT_DELETE,
	CLIENT_PATCH,
};

struct client_response {
	int code;   /* 205, 201, 404 ... (class * 100 + detail) */
	char *body; /* NUL-terminated (owned; client_response_clear frees it), or NULL */
	size_t length;
	/* Parsed from an error answer's JSON body; "" when absent. */
	char reason[CLIENT_REASON_MAX]; /* "NotFound", "Invalid" ... */
	char message[512];
	char field[192];
};

/* server_uri: "coaps://127.0.0.1:5684" or "coaps://[::1]:5684" (numeric hosts only).
 * loop: the loop to run on, or NULL for a private one (the usual case for a CLI). */
int client_open(const char *server_uri, const char *identity, const char *key, int timeout_ms, struct loop *loop,
                struct client **ret_client, struct error *err);
void client_close(struct client *client);

/* "coaps://127.0.0.1:5684", as given to client_open. */
const char *client_server(const struct client *client);

/* path_with_query: "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb" (query values
 * percent-encoded). body may be NULL; it is sent as JSON. Returns 0 when an answer came
 * (whatever its code), or a negative errno (timeout, handshake, body too large). */
int client_request(struct client *client, enum client_method method, const char *path_with_query, const char *body,
                   size_t body_len, struct client_response *ret_response, struct error *err);
/* The same with a body of another content format (42 application/octet-stream ...). */
int client_request_format(struct client *client, enum client_method method, const char *path_with_query,
                          const void *body, size_t body_len, unsigned content_format,
                          struct client_response *ret_response, struct error *err);
void client_response_clear(struct client_response *response);

/* For an error answer (code >= 400): fills err with the server's message and field and
 * returns the matching negative errno (-ENOENT for 4.04 ...); 0 for a success code. */
int client_response_error(const struct client_response *response, struct error *err);

/* Returns non-zero to end the watch (the value is returned by client_watch). */
typedef int (*client_watch_fn)(int code, const char *body, size_t length, void *data);

/* GET with Observe: the first answer and every notification go to fn, until fn returns
 * non-zero (returned), the server ends the observation (0), or timeout_ms pass without
 * the watch ending (0; timeout_ms < 0: no limit). The observation is cancelled on return. */
int client_watch(struct client *client, const char *path_with_query, int timeout_ms, client_watch_fn fn, void *data,
                 struct error *err);

/* --- shared with core/link.c (the asynchronous client) ------------------------------------ */

/* A CON request for session: path and query as options, the body (copied; block-wise when
 * large), Observe when observe >= 0, a fresh token returned in token/ret_token_length. */
int client_build_pdu(coap_session_t *session, enum client_method method, const char *path_with_query, const char *body,
                     size_t body_len, int observe, uint8_t token[8], size_t *ret_token_length, coap_pdu_t **ret_pdu,
                     struct error *err);
int client_build_pdu_format(coap_session_t *session, enum client_method method, const char *path_with_query,
                            const char *body, size_t body_len, unsigned content_format, int observe, uint8_t token[8],
                            size_t *ret_token_length, coap_pdu_t **ret_pdu, struct error *err);
/* 205, 404 ... of a response PDU. */
int client_pdu_code(const coap_pdu_t *pdu);
/* Fills reason, message and field from an error answer's {reason, message, field} body. */
void client_response_parse_status(struct client_response *response);

#endif
