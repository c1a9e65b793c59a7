#include "agent/probe_http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "platform/error.h"
#include "platform/memory.h"

#include "tests/unit/unit.h"

static int parse(const char *text, bool eof, struct probe_http_response *r, struct error *err)
{
	/* a private copy of exactly the text's length: an overread is an AddressSanitizer error */
	size_t n = strlen(text);
	char *copy = xmalloc(n ? n : 1);
	memcpy(copy, text, n);
	int result = probe_http_parse_response(copy, n, eof, r, err);
	free(copy);
	return result;
}

TEST(a_response_head_gives_its_status_and_location)
{
	struct probe_http_response r;
	struct error err = { 0 };
	CHECK_OK(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, &r, &err));
	CHECK_INT(r.status, ==, 200);
	CHECK(!r.has_location);
	CHECK_INT(r.head_length, ==, strlen("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"));

	CHECK_OK(parse("HTTP/1.0 302 Found\nlocation:  /next?x=1 \nLocation: /second\n\n", false, &r, &err));
	CHECK_INT(r.status, ==, 302);
	CHECK(r.has_location);
	CHECK_STR(r.location, "/next?x=1"); /* the first Location, trimmed; bare LF line ends */

	CHECK_OK(parse("HTTP/1.1 503\r\n\r\n", false, &r, &err)); /* no reason phrase */
	CHECK_INT(r.status, ==, 503);
}

TEST(interim_responses_are_skipped_but_switching_protocols_is_an_answer)
{
	struct probe_http_response r;
	struct error err = { 0 };
	CHECK_OK(parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
	               "HTTP/1.1 204 No Content\r\n\r\n",
	               false, &r, &err));
	CHECK_INT(r.status, ==, 204);
	CHECK_OK(parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", false, &r, &err));
	CHECK_INT(r.status, ==, 101);
	CHECK_INT(parse("HTTP/1.1 100 Continue\r\n\r\n", false, &r, &err), ==, -EAGAIN);
	char many[512] = "";
	for (int i = 0; i < 7; i++)
		strcat(many, "HTTP/1.1 100 Continue\r\n\r\n");
	strcat(many, "HTTP/1.1 200 OK\r\n\r\n");
	CHECK_INT(parse(many, false, &r, &err), ==, -EBADMSG);
	CHECK_CONTAINS(err.message, "too many 1xx");
}

TEST(an_incomplete_head_asks_for_more_until_the_end)
{
	struct probe_http_response r;
	struct error err = { 0 };
	CHECK_INT(parse("", false, &r, &err), ==, -EAGAIN);
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nServer: x", false, &r, &err), ==, -EAGAIN);
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nServer: x\r\n", false, &r, &err), ==, -EAGAIN);
	CHECK_INT(parse("", true, &r, &err), ==, -EBADMSG);
	CHECK_STR(err.message, "EOF");
	CHECK_INT(parse("HTTP/1.1 200 OK\r\n", true, &r, &err), ==, -EBADMSG);
	CHECK_STR(err.message, "unexpected EOF");
}

TEST(garbage_is_refused_in_gos_words)
{
	struct probe_http_response r;
	struct error err = { 0 };
	CHECK_INT(parse("garbage\r\n\r\n", false, &r, &err), ==, -EBADMSG);
	CHECK_STR(err.message, "malformed HTTP response \"garbage\"");
	CHECK_INT(parse("SPDY/3 200 OK\r\n\r\n", false, &r, &err), ==, -EBADMSG);
	CHECK_STR(err.message, "malformed HTTP version \"SPDY/3\"");
	CHECK_INT(parse("HTTP/1.1 20x OK\r\n\r\n", false, &r, &err), ==, -EBADMSG);
	CHECK_STR(err.message, "malformed HTTP status code \"20x\"");
	CHECK_INT(parse("HTTP/1.1 2000 OK\r\n\r\n", false, &r, &err), ==, -EBADMSG);
	CHECK_INT(parse("HTTP/1.1 099 OK\r\n\r\n", false, &r, &err), ==, -EBADMSG);
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", false, &r, &err), ==, -EBADMSG);
	CHECK_CONTAINS(err.message, "malformed MIME header line: \"no colon here\"");
	CHECK_INT(parse("HTTP/1.1 200 OK\r\n folded\r\n\r\n", false, &r, &err), ==, -EBADMSG);
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", false, &r, &err), ==, -EBADMSG);
	/* control bytes are shown escaped, long lines cut */
	CHECK_INT(parse("\x01\x7f\xff \"q\"\r\n", false, &r, &err), ==, -EBADMSG);
	CHECK_CONTAINS(err.message, "\\x01\\x7f\\xff");
	char line[400];
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	char *text = xasprintf("%s\r\n", line);
	CHECK_INT(parse(text, false, &r, &err), ==, -EBADMSG);
	CHECK(strlen(err.message) < 120);
	free(text);
}

TEST(nul_bytes_in_a_head_are_data_not_an_end)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nLocation: /x\0y\r\n\r\n";
	struct probe_http_response r;
	struct error err = { 0 };
	CHECK_OK(probe_http_parse_response(head, sizeof(head) - 1, false, &r, &err));
	CHECK_INT(r.status, ==, 200);
	CHECK_INT(r.head_length, ==, sizeof(head) - 1);
}

TEST(an_oversized_head_is_refused_with_no_overread)
{
	size_t n = PROBE_HTTP_HEAD_MAX + 100;
	char *head = xmalloc(n);
	memset(head, 'h', n);
	memcpy(head, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
	struct probe_http_response r;
	struct error err = { 0 };
	CHECK_INT(probe_http_parse_response(head, PROBE_HTTP_HEAD_MAX - 1, false, &r, &err), ==, -EAGAIN);
	CHECK_INT(probe_http_parse_response(head, PROBE_HTTP_HEAD_MAX, false, &r, &err), ==, -EMSGSIZE);
	CHECK_CONTAINS(err.message, "exceeded 16384 bytes");
	CHECK_INT(probe_http_parse_response(head, n, true, &r, &err), ==, -EMSGSIZE);
	/* a complete head past the limit is refused too: the limit is on what is looked at */
	memcpy(head + n - 4, "\r\n\r\n", 4);
	CHECK_INT(probe_http_parse_response(head, n, false, &r, &err), ==, -EMSGSIZE);
	/* a Location too long to keep is not followed, and not an error */
	char *long_location =
	        xasprintf("HTTP/1.1 302 Found\r\nLocation: /%0*d\r\n\r\n", PROBE_HTTP_LOCATION_MAX + 10, 7);
	CHECK_OK(parse(long_location, false, &r, &err));
	CHECK(!r.has_location);
	free(long_location);
	free(head);
}

TEST(random_bytes_never_crash_the_parser)
{
	/* deterministic: the same bytes every run, with HTTP-ish fragments mixed in */
	static const char *const pieces[] = { "HTTP/1.1 ", "200",        " OK",     "\r\n",     "\n",
		                              ":",         "Location: ", "/a/../b", "\r\n\r\n", "100 Continue",
		                              " ",         "\0",         "\xff" };
	uint32_t state = 12345;
	char buffer[2048];
	for (int round = 0; round < 20000; round++) {
		size_t n = 0;
		int parts = (int)(state % 40);
		for (int i = 0; i < parts && n < sizeof(buffer) - 32; i++) {
			state = state * 1103515245u + 12345u;
			if (state & 0x100) {
				const char *p = pieces[(state >> 9) % ARRAY_SIZE(pieces)];
				size_t len = strlen(p) ? strlen(p) : 1;
				memcpy(buffer + n, p, len);
				n += len;
			} else {
				buffer[n++] = (char)(state >> 16);
			}
		}
		char *copy = xmalloc(n ? n : 1);
		memcpy(copy, buffer, n);
		struct probe_http_response r;
		struct error err = { 0 };
		int result = probe_http_parse_response(copy, n, round & 1, &r, &err);
		CHECK(result == 0 || result == -EAGAIN || result == -EBADMSG || result == -EMSGSIZE);
		if (result == 0) {
			CHECK(r.status >= 100 && r.status <= 999);
			CHECK(r.head_length <= n);
			struct probe_http_target t;
			if (r.has_location)
				probe_http_resolve_location(r.location, "10.0.0.1", 80, "/a/b?c", &t, &err);
		}
		free(copy);
	}
}

TEST(requests_carry_hosts_agents_and_headers_as_kubernetes_sends_them)
{
	char *request = probe_http_format_request("/healthz", "10.42.0.5:8080", "kube-probe/1.30", NULL, 0);
	CHECK_STR(request, "GET /healthz HTTP/1.1\r\nHost: 10.42.0.5:8080\r\nUser-Agent: kube-probe/1.30\r\n"
	                   "Accept: */*\r\nConnection: close\r\n\r\n");
	free(request);

	struct probe_http_header headers[] = {
		{ "X-Custom", "yes" }, { "host", "app.example" }, { "User-Agent", "mine" }, { "Accept", "" }
	};
	request = probe_http_format_request("ready now?q=<1>#frag", "[fd00::1]:80", "kube-probe/1.30", headers, 4);
	CHECK_STR(request, "GET /ready%20now?q=%3C1%3E HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n"
	                   "X-Custom: yes\r\nUser-Agent: mine\r\n\r\n");
	free(request);

	char authority[64];
	probe_http_format_authority("fd00::1", 8080, authority, sizeof(authority));
	CHECK_STR(authority, "[fd00::1]:8080");
	probe_http_format_authority("10.0.0.1", 80, authority, sizeof(authority));
	CHECK_STR(authority, "10.0.0.1:80");
	char *path = probe_http_encode_path("");
	CHECK_STR(path, "/");
	free(path);
}

TEST(redirect_locations_resolve_like_a_browser_would)
{
	struct probe_http_target t;
	struct error err = { 0 };
	CHECK_OK(probe_http_resolve_location("/ok", "10.0.0.1", 8080, "/a/b?x", &t, &err));
	CHECK_STR(t.host, "10.0.0.1");
	CHECK_INT(t.port, ==, 8080);
	CHECK_STR(t.path, "/ok");
	CHECK(!t.https);

	CHECK_OK(probe_http_resolve_location("c/../d?y=../z#f", "10.0.0.1", 8080, "/a/b?x", &t, &err));
	CHECK_STR(t.path, "/a/d?y=../z");
	CHECK_OK(probe_http_resolve_location("?page=2", "10.0.0.1", 8080, "/a/b?x", &t, &err));
	CHECK_STR(t.path, "/a/b?page=2");
	CHECK_OK(probe_http_resolve_location("../../../..", "10.0.0.1", 8080, "/a/b", &t, &err));
	CHECK_STR(t.path, "/");
	CHECK_OK(probe_http_resolve_location("./x/./y/", "10.0.0.1", 8080, "/a/", &t, &err));
	CHECK_STR(t.path, "/a/x/y/");
	CHECK_OK(probe_http_resolve_location("", "10.0.0.1", 8080, "/a/b", &t, &err));
	CHECK_STR(t.path, "/a/b");

	CHECK_OK(probe_http_resolve_location("HTTP://user:pw@10.0.0.2:9090", "10.0.0.1", 8080, "/", &t, &err));
	CHECK_STR(t.host, "10.0.0.2");
	CHECK_INT(t.port, ==, 9090);
	CHECK_STR(t.path, "/");
	CHECK_OK(probe_http_resolve_location("//[fd00::2]/p?q", "10.0.0.1", 8080, "/", &t, &err));
	CHECK_STR(t.host, "fd00::2");
	CHECK_INT(t.port, ==, 80);
	CHECK_STR(t.path, "/p?q");
	CHECK_OK(probe_http_resolve_location("https://example.com/secure", "10.0.0.1", 8080, "/", &t, &err));
	CHECK(t.https);
	CHECK_INT(t.port, ==, 443);
	CHECK_STR(t.host, "example.com");

	CHECK_INT(probe_http_resolve_location("ftp://x/", "10.0.0.1", 80, "/", &t, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "unsupported protocol scheme \"ftp\"");
	CHECK_INT(probe_http_resolve_location("http://10.0.0.1:99999/", "10.0.0.1", 80, "/", &t, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "failed to parse Location header");
	CHECK_INT(probe_http_resolve_location("http:///nohost", "10.0.0.1", 80, "/", &t, &err), ==, -EINVAL);
	CHECK_INT(probe_http_resolve_location("http://[fd00::1/", "10.0.0.1", 80, "/", &t, &err), ==, -EINVAL);
	CHECK_INT(probe_http_resolve_location("/a\x01", "10.0.0.1", 80, "/", &t, &err), ==, -EINVAL);
	CHECK_INT(probe_http_resolve_location("http:nothing", "10.0.0.1", 80, "/", &t, &err), ==, -EINVAL);
}
