/* HTTP/1.1 as a probe speaks it: the text of a GET request, the parse of a response head,
 * and where a redirect points. Pure functions over bytes (no sockets): the executor in
 * agent/probe_check.c does the I/O, tests/fuzz/fuzz_probe_http.c feeds them garbage.
 *
 * Only the status line and headers are read; the body never matters to a probe (Kubernetes
 * decides on the status code alone and never shows the body in a failure message). The
 * error texts follow Go's net/http, which is what Kubernetes users see in their events.
 */
#ifndef BRAMBLE_AGENT_PROBE_HTTP_H
#define BRAMBLE_AGENT_PROBE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct error;

#define PROBE_HTTP_HEAD_MAX 16384    /* status line and headers; a longer head fails the probe */
#define PROBE_HTTP_LOCATION_MAX 2048 /* a longer Location header is not followed */
#define PROBE_HTTP_INTERIM_MAX 5     /* 1xx responses skipped before the real one (as Go) */
#define PROBE_HTTP_HOST_MAX 256

struct probe_http_header {
	char *name;
	char *value;
};

struct probe_http_response {
	int status;        /* 100..999 */
	bool has_location; /* a Location header was present and fitted */
	char location[PROBE_HTTP_LOCATION_MAX];
	size_t head_length; /* bytes up to and including the blank line ending the head */
};

/* Parses the response head in data[0..length), skipping interim 1xx responses (not 101).
 * Returns 0 with *ret filled when the head is complete; -EAGAIN when more bytes are needed
 * (eof false); -EBADMSG when it is malformed or ends early (eof true), with Go's wording
 * in err ("malformed HTTP response \"garbage\"", "unexpected EOF"); -EMSGSIZE when the head
 * passes PROBE_HTTP_HEAD_MAX. Never reads past length. */
int probe_http_parse_response(const char *data, size_t length, bool eof, struct probe_http_response *ret,
                              struct error *err);

/* Formats "GET <path> HTTP/1.1" and its headers: Host (host_port, or a Host among headers),
 * User-Agent user_agent and "Accept: any" unless headers give their own, Connection: close,
 * then headers in order. path is sent percent-encoded where HTTP requires it; a path not
 * starting with '/' gets one. Returns a new string. */
char *probe_http_format_request(const char *path, const char *host_port, const char *user_agent,
                                const struct probe_http_header *headers, size_t header_count);

/* The path as sent: a leading '/', percent-encoding where HTTP requires it, no fragment. */
char *probe_http_encode_path(const char *path);

/* "10.0.0.1:80", "[fd00::1]:8080": the authority of host (an IP literal) and port. */
void probe_http_format_authority(const char *host, uint16_t port, char *buffer, size_t size);

/* Where a redirect goes: the absolute form of Location resolved against the request that
 * got it (RFC 3986 section 5.2, dot segments removed, fragment dropped). */
struct probe_http_target {
	bool https;
	char host[PROBE_HTTP_HOST_MAX]; /* without brackets for IPv6 */
	uint16_t port;
	char path[PROBE_HTTP_LOCATION_MAX + 256]; /* path and query, starting with '/' */
};

/* Returns 0, or -EINVAL with err set ("failed to parse Location header \"...\"") when the
 * location is not a usable http(s) URL. */
int probe_http_resolve_location(const char *location, const char *base_host, uint16_t base_port, const char *base_path,
                                struct probe_http_target *ret, struct error *err);

#endif
