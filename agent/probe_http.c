/* See probe_http.h. Everything here works on (pointer, length) spans of untrusted bytes:
 * no NUL termination is assumed and nothing is read past the length given. */
#include "agent/probe_http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/memory.h"

struct span {
	const char *data;
	size_t length;
};

/* A line of the head as Go's %q would show it, cut to a readable size. */
static void quote(struct span s, char *out, size_t size)
{
	size_t n = 0;
	if (size < 8)
		return;
	out[n++] = '"';
	for (size_t i = 0; i < s.length; i++) {
		if (n + 8 >= size || i >= 64) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		unsigned char c = (unsigned char)s.data[i];
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			out[n++] = (char)c;
		} else {
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
		}
	}
	out[n++] = '"';
	out[n] = '\0';
}

/* The next line starting at *pos, without its "\r\n" or "\n"; -EAGAIN when it has not ended. */
static int next_line(const char *data, size_t length, size_t *pos, struct span *ret_line)
{
	if (*pos >= length)
		return -EAGAIN;
	const char *start = data + *pos;
	const char *newline = memchr(start, '\n', length - *pos);
	if (!newline)
		return -EAGAIN;
	size_t n = (size_t)(newline - start);
	*pos += n + 1;
	if (n > 0 && start[n - 1] == '\r')
		n--;
	*ret_line = (struct span){ start, n };
	return 0;
}

static bool span_equal_ignoring_case(struct span s, const char *word)
{
	return strlen(word) == s.length && strncasecmp(s.data, word, s.length) == 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "HTTP/1.1": Go's ParseHTTPVersion accepts HTTP/<digit>.<digit>. */
static bool valid_version(struct span v)
{
	return v.length == 8 && memcmp(v.data, "HTTP/", 5) == 0 && is_digit(v.data[5]) && v.data[6] == '.' &&
	       is_digit(v.data[7]);
}

static bool valid_header_name(struct span name)
{
	if (name.length == 0)
		return false;
	for (size_t i = 0; i < name.length; i++) {
		unsigned char c = (unsigned char)name.data[i];
		if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
			return false;
	}
	return true;
}

static int parse_status_line(struct span line, struct probe_http_response *r, struct error *err)
{
	char shown[128];
	quote(line, shown, sizeof(shown));
	const char *space = memchr(line.data, ' ', line.length);
	if (!space)
		return error_set(err, EBADMSG, "malformed HTTP response %s", shown);
	struct span version = { line.data, (size_t)(space - line.data) };
	if (!valid_version(version)) {
		quote(version, shown, sizeof(shown));
		return error_set(err, EBADMSG, "malformed HTTP version %s", shown);
	}
	struct span status = { space + 1, line.length - version.length - 1 };
	while (status.length > 0 && status.data[0] == ' ') {
		status.data++;
		status.length--;
	}
	const char *end = memchr(status.data, ' ', status.length);
	struct span code = { status.data, end ? (size_t)(end - status.data) : status.length };
	if (code.length != 3 || !is_digit(code.data[0]) || !is_digit(code.data[1]) || !is_digit(code.data[2]) ||
	    code.data[0] == '0') {
		quote(code, shown, sizeof(shown));
		return error_set(err, EBADMSG, "malformed HTTP status code %s", shown);
	}
	r->status = (code.data[0] - '0') * 100 + (code.data[1] - '0') * 10 + (code.data[2] - '0');
	return 0;
}

static void take_location(struct span value, struct probe_http_response *r)
{
	while (value.length > 0 && (value.data[0] == ' ' || value.data[0] == '\t')) {
		value.data++;
		value.length--;
	}
	while (value.length > 0 && (value.data[value.length - 1] == ' ' || value.data[value.length - 1] == '\t'))
		value.length--;
	if (r->has_location || value.length >= sizeof(r->location))
		return; /* the first one counts (as in Go); an oversized one is not followed */
	memcpy(r->location, value.data, value.length);
	r->location[value.length] = '\0';
	r->has_location = true;
}

/* One response head starting at start: 0, -EAGAIN or -EBADMSG. */
static int parse_head(const char *data, size_t length, size_t start, struct probe_http_response *r, struct error *err)
{
	size_t pos = start;
	struct span line;
	int result = next_line(data, length, &pos, &line);
	if (result < 0)
		return result;
	*r = (struct probe_http_response){ 0 };
	result = parse_status_line(line, r, err);
	if (result < 0)
		return result;
	for (bool first = true;; first = false) {
		result = next_line(data, length, &pos, &line);
		if (result < 0)
			return result;
		if (line.length == 0)
			break;
		char shown[128];
		quote(line, shown, sizeof(shown));
		if (line.data[0] == ' ' || line.data[0] == '\t') {
			if (first)
				return error_set(err, EBADMSG, "malformed MIME header initial line: %s", shown);
			continue; /* an obsolete folded continuation of the previous header */
		}
		const char *colon = memchr(line.data, ':', line.length);
		struct span name = { line.data, colon ? (size_t)(colon - line.data) : 0 };
		if (!colon || !valid_header_name(name))
			return error_set(err, EBADMSG, "malformed MIME header line: %s", shown);
		if (span_equal_ignoring_case(name, "Location"))
			take_location((struct span){ colon + 1, line.length - name.length - 1 }, r);
	}
	r->head_length = pos;
	return 0;
}

int probe_http_parse_response(const char *data, size_t length, bool eof, struct probe_http_response *ret,
                              struct error *err)
{
	size_t limit = length < PROBE_HTTP_HEAD_MAX ? length : PROBE_HTTP_HEAD_MAX;
	size_t pos = 0;
	for (int interim = 0;; interim++) {
		struct probe_http_response r;
		int result = parse_head(data, limit, pos, &r, err);
		if (result == -EAGAIN) {
			if (length >= PROBE_HTTP_HEAD_MAX)
				return error_set(err, EMSGSIZE, "server response headers exceeded %d bytes; aborted",
				                 PROBE_HTTP_HEAD_MAX);
			if (eof)
				return error_set(err, EBADMSG, length == 0 ? "EOF" : "unexpected EOF");
			return -EAGAIN;
		}
		if (result < 0)
			return result;
		if (r.status < 200 && r.status != 101) {
			if (interim >= PROBE_HTTP_INTERIM_MAX)
				return error_set(err, EBADMSG, "too many 1xx informational responses");
			pos = r.head_length;
			continue;
		}
		*ret = r;
		return 0;
	}
}

/* --- requests -------------------------------------------------------------------------- */

static const struct probe_http_header *find_header(const struct probe_http_header *headers, size_t count,
                                                   const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcasecmp(headers[i].name, name) == 0)
			return &headers[i];
	return NULL;
}

static void append_path(struct buffer *b, const char *path)
{
	if (path[0] != '/')
		buffer_append(b, "/", 1);
	for (const char *p = path; *p && *p != '#'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c))
			buffer_printf(b, "%%%02X", c);
		else
			buffer_append(b, p, 1);
	}
}

char *probe_http_encode_path(const char *path)
{
	struct buffer b = BUFFER_INIT;
	append_path(&b, path ? path : "/");
	return buffer_steal(&b);
}

char *probe_http_format_request(const char *path, const char *host_port, const char *user_agent,
                                const struct probe_http_header *headers, size_t header_count)
{
	struct buffer b = BUFFER_INIT;
	buffer_append_string(&b, "GET ");
	append_path(&b, path ? path : "/");
	buffer_append_string(&b, " HTTP/1.1\r\n");
	const struct probe_http_header *host = find_header(headers, header_count, "Host");
	buffer_printf(&b, "Host: %s\r\n", host ? host->value : host_port);
	if (!find_header(headers, header_count, "User-Agent"))
		buffer_printf(&b, "User-Agent: %s\r\n", user_agent);
	if (!find_header(headers, header_count, "Accept"))
		buffer_append_string(&b, "Accept: */*\r\n");
	buffer_append_string(&b, "Connection: close\r\n");
	for (size_t i = 0; i < header_count; i++) {
		const struct probe_http_header *h = &headers[i];
		/* Host went first; a User-Agent or Accept given empty means "send none" (Kubernetes) */
		if (h == host || (h->value[0] == '\0' &&
		                  (strcasecmp(h->name, "User-Agent") == 0 || strcasecmp(h->name, "Accept") == 0)))
			continue;
		buffer_printf(&b, "%s: %s\r\n", h->name, h->value);
	}
	buffer_append_string(&b, "\r\n");
	return buffer_steal(&b);
}

void probe_http_format_authority(const char *host, uint16_t port, char *buffer, size_t size)
{
	snprintf(buffer, size, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
}

/* --- redirects ------------------------------------------------------------------------- */

/* RFC 3986 5.2.4 on a path that starts with '/': in place, never longer. */
static void remove_dot_segments(char *path)
{
	char *out = path;
	const char *in = path;
	while (*in) {
		/* in points at a '/' */
		const char *segment = in + 1;
		const char *next = strchr(segment, '/');
		size_t n = next ? (size_t)(next - segment) : strlen(segment);
		if (n == 1 && segment[0] == '.') {
			if (!next)
				*out++ = '/';
		} else if (n == 2 && segment[0] == '.' && segment[1] == '.') {
			while (out > path && *--out != '/')
				;
			if (!next)
				*out++ = '/';
		} else {
			memmove(out, in, n + 1);
			out += n + 1;
		}
		in = segment + n;
	}
	if (out == path)
		*out++ = '/';
	*out = '\0';
}

static int bad_location(const char *location, struct error *err)
{
	char shown[128];
	quote((struct span){ location, strlen(location) }, shown, sizeof(shown));
	return error_set(err, EINVAL, "failed to parse Location header %s", shown);
}

/* authority = [userinfo@]host[:port], up to the first '/', '?' or '#'; *rest points past it. */
static int parse_authority(const char *s, bool https, struct probe_http_target *t, const char **rest)
{
	size_t n = strcspn(s, "/?#");
	*rest = s + n;
	const char *at = memrchr(s, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	const char *host = s, *port = NULL;
	size_t host_length;
	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return -EINVAL;
		host = s + 1;
		host_length = (size_t)(close - host);
		if (close + 1 < s + n) {
			if (close[1] != ':')
				return -EINVAL;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(s, ':', n);
		host_length = colon ? (size_t)(colon - s) : n;
		if (colon)
			port = colon + 1;
	}
	if (host_length == 0 || host_length >= sizeof(t->host))
		return -EINVAL;
	memcpy(t->host, host, host_length);
	t->host[host_length] = '\0';
	t->port = https ? 443 : 80;
	if (port && port < s + n) {
		unsigned long value = 0;
		for (const char *p = port; p < s + n; p++) {
			if (!is_digit(*p))
				return -EINVAL;
			value = value * 10 + (unsigned long)(*p - '0');
			if (value > 65535)
				return -EINVAL;
		}
		if (value == 0)
			return -EINVAL;
		t->port = (uint16_t)value;
	}
	return 0;
}

int probe_http_resolve_location(const char *location, const char *base_host, uint16_t base_port, const char *base_path,
                                struct probe_http_target *ret, struct error *err)
{
	struct probe_http_target t = { .https = false, .port = base_port };
	snprintf(t.host, sizeof(t.host), "%s", base_host);
	for (const char *p = location; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return bad_location(location, err);
	if (strlen(location) >= PROBE_HTTP_LOCATION_MAX)
		return bad_location(location, err);

	const char *rest = location;
	size_t scheme = strspn(location, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
	if (scheme > 0 && location[scheme] == ':' && !is_digit(location[0])) {
		if (scheme == 4 && strncasecmp(location, "http", 4) == 0)
			t.https = false;
		else if (scheme == 5 && strncasecmp(location, "https", 5) == 0)
			t.https = true;
		else
			return error_set(err, EINVAL, "unsupported protocol scheme \"%.*s\"", (int)scheme, location);
		rest = location + scheme + 1;
		if (strncmp(rest, "//", 2) != 0)
			return bad_location(location, err);
	}
	if (strncmp(rest, "//", 2) == 0) {
		if (parse_authority(rest + 2, t.https, &t, &rest) < 0)
			return bad_location(location, err);
		if (*rest != '/') {
			snprintf(t.path, sizeof(t.path), "/%.*s", (int)strcspn(rest, "#"), rest);
			goto done;
		}
	}

	/* rest is now a path reference: absolute, relative, query-only or empty */
	size_t query_at = strcspn(base_path, "?");
	if (rest[0] == '/') {
		snprintf(t.path, sizeof(t.path), "%.*s", (int)strcspn(rest, "#"), rest);
	} else if (rest[0] == '?') {
		snprintf(t.path, sizeof(t.path), "%.*s%.*s", (int)query_at, base_path, (int)strcspn(rest, "#"), rest);
	} else if (rest[0] == '\0' || rest[0] == '#') {
		snprintf(t.path, sizeof(t.path), "%s", base_path);
	} else {
		const char *slash = memrchr(base_path, '/', query_at);
		size_t directory = slash ? (size_t)(slash - base_path) + 1 : 0;
		snprintf(t.path, sizeof(t.path), "%s%.*s%.*s", directory ? "" : "/", (int)directory, base_path,
		         (int)strcspn(rest, "#"), rest);
	}
done:;
	if (t.path[0] != '/') {
		char relative[sizeof(t.path)];
		memcpy(relative, t.path, sizeof(relative));
		snprintf(t.path, sizeof(t.path), "/%s", relative);
	}
	/* dot segments are removed from the path part only, never from the query */
	char *query = strchr(t.path, '?');
	char saved[sizeof(t.path)] = "";
	if (query) {
		snprintf(saved, sizeof(saved), "%s", query);
		*query = '\0';
	}
	remove_dot_segments(t.path);
	size_t used = strlen(t.path);
	snprintf(t.path + used, sizeof(t.path) - used, "%s", saved);
	*ret = t;
	return 0;
}
