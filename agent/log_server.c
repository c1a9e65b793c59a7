/* See log_server.h. How it reaches the control plane, and why: see core/logrelay.c (the
 * agent observes its node's log requests over its own link and POSTs the answers).
 *
 * State: the observation of /api/v1/nodes/<node>/logrequests (NULL while the link is down
 * or it ended: the tick starts it again), and the streams being answered:
 *
 *   request ──> read the file, render, tail ──> POST (end=1 unless follow) ──> gone
 *                                                   │ follow
 *                                                   v
 *               every LOG_SERVER_POLL_MS: new complete lines ──> POST, one in flight
 *               ends: the server answers 4.04 (nobody reads any more), a cancel comes,
 *               the container restarted or its directory went (end=1), the link went down
 *
 * Bounds: LOG_SERVER_MAX_STREAMS streams, LOG_SERVER_MAX_READ bytes read per answer,
 * LOG_SERVER_MAX_ANSWER bytes per answer (the end kept), one POST in flight per stream.
 */
#include "agent/log_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/link.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define LOG_SERVER_IDLE_TICK_MS 2000 /* (re)starts the observation of log requests */

struct stream {
	struct stream *next;
	struct log_server *server;
	uint64_t id;
	bool follow, timestamps, line_start;
	char *dir;  /* the container's log directory */
	char *path; /* the file followed */
	unsigned restart;
	off_t offset;
	struct buffer pending; /* rendered, not yet sent */
	bool in_flight, end_queued, gone;
	bool finishing; /* the control plane saw the container end */
	int code;       /* an error to send instead of text */
	uint64_t last_sent_ms;
};

struct log_server {
	struct loop *loop;
	struct link *link;
	char *node_name, *log_dir;
	struct link_observation *observation;
	struct stream *streams;
	size_t stream_count;
	struct loop_timer *tick;
};

static void schedule_tick(struct log_server *server);

/* --- rendering ------------------------------------------------------------------------------ */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "<time> stdout|stderr F|P <message>": the message's offset, the time's length, partial. */
static bool cri_record(const char *line, size_t length, size_t *ret_message, size_t *ret_time_length, bool *ret_partial)
{
	if (length < 20 || !is_digit(line[0]) || !is_digit(line[3]) || line[4] != '-' || line[10] != 'T')
		return false;
	const char *space = memchr(line, ' ', length);
	if (!space)
		return false;
	size_t t = (size_t)(space - line), at = t + 1;
	if (length >= at + 7 && (memcmp(line + at, "stdout ", 7) == 0 || memcmp(line + at, "stderr ", 7) == 0))
		at += 7;
	else
		return false;
	if (length < at + 2 || (line[at] != 'F' && line[at] != 'P') || line[at + 1] != ' ')
		return false;
	*ret_partial = line[at] == 'P';
	*ret_message = at + 2;
	*ret_time_length = t;
	return true;
}

void log_server_render(const char *text, size_t length, bool timestamps, bool *at_line_start, struct buffer *out)
{
	size_t at = 0;
	while (at < length) {
		const char *nl = memchr(text + at, '\n', length - at);
		size_t line_length = nl ? (size_t)(nl - (text + at)) : length - at;
		const char *line = text + at;
		size_t message, time_length;
		bool partial;
		if (cri_record(line, line_length, &message, &time_length, &partial)) {
			if (timestamps && *at_line_start) {
				buffer_append(out, line, time_length);
				buffer_append(out, " ", 1);
			}
			buffer_append(out, line + message, line_length - message);
			if (!partial)
				buffer_append(out, "\n", 1);
			*at_line_start = !partial;
		} else {
			buffer_append(out, line, line_length);
			if (nl)
				buffer_append(out, "\n", 1);
			*at_line_start = nl != NULL;
		}
		at += line_length + (nl ? 1 : 0);
	}
}

size_t log_server_tail_offset(const char *text, size_t length, long lines)
{
	if (lines < 0)
		return 0;
	if (lines == 0)
		return length;
	size_t end = length;
	if (end > 0 && text[end - 1] == '\n')
		end--; /* the last line's own newline */
	long seen = 0;
	for (size_t i = end; i > 0; i--) {
		if (text[i - 1] == '\n' && ++seen == lines)
			return i;
	}
	return 0;
}

int log_server_pick_file(const char *dir, bool previous, char **ret_path)
{
	DIR *d = opendir(dir);
	if (!d)
		return -ENOENT;
	long best = -1, second = -1;
	struct dirent *entry;
	while ((entry = readdir(d))) {
		char *end;
		long n = strtol(entry->d_name, &end, 10);
		if (end == entry->d_name || strcmp(end, ".log") != 0 || n < 0)
			continue;
		if (n > best) {
			second = best;
			best = n;
		} else if (n > second) {
			second = n;
		}
	}
	closedir(d);
	long pick = previous ? second : best;
	if (pick < 0)
		return -ENOENT;
	*ret_path = xasprintf("%s/%ld.log", dir, pick);
	return 0;
}

/* --- streams ------------------------------------------------------------------------------- */

static void stream_free(struct log_server *server, struct stream *s)
{
	for (struct stream **p = &server->streams; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			server->stream_count--;
			break;
		}
	}
	free(s->dir);
	free(s->path);
	buffer_free(&s->pending);
	free(s);
}

static struct stream *stream_by_id(struct log_server *server, uint64_t id)
{
	for (struct stream *s = server->streams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

struct post {
	struct log_server *server;
	uint64_t id;
	bool end;
};

static void send_pending(struct stream *s);
static void poll_stream(struct log_server *server, struct stream *s);

static void on_posted(const struct client_response *response, const struct error *err, void *data)
{
	struct post *p = data;
	struct stream *s = stream_by_id(p->server, p->id);
	if (s) {
		s->in_flight = false;
		if (!response || response->code >= 300 || p->end || s->gone) {
			if (response && response->code >= 300 && response->code != 404)
				log_warnx("log stream %" PRIu64 ": %s", s->id, response->message);
			else if (!response)
				log_debug("log stream %" PRIu64 ": %s", s->id, err->message);
			stream_free(p->server, s);
		} else if (response->code == 203 && s->follow) {
			s->finishing = true; /* the container ended: the rest, then the end */
			poll_stream(p->server, s);
		} else if (s->pending.length || s->end_queued) {
			send_pending(s);
		}
	}
	free(p);
}

/* One POST of what is pending (at most LOG_SERVER_MAX_ANSWER bytes of it). */
static void send_pending(struct stream *s)
{
	if (s->in_flight)
		return;
	struct log_server *server = s->server;
	size_t n = s->pending.length;
	if (n > LOG_SERVER_MAX_ANSWER)
		n = LOG_SERVER_MAX_ANSWER;
	bool end = s->end_queued && n == s->pending.length;
	char query[48] = "";
	if (s->code)
		snprintf(query, sizeof(query), "?end=1&code=%d", s->code);
	else if (end)
		snprintf(query, sizeof(query), "?end=1");
	cleanup_free char *path =
	        xasprintf("/api/v1/nodes/%s/logstreams/%" PRIu64 "%s", server->node_name, s->id, query);
	struct post *p = xcalloc(1, sizeof(*p));
	p->server = server;
	p->id = s->id;
	p->end = end || s->code;
	struct error err;
	if (link_request(server->link, CLIENT_POST, path, s->pending.data ? s->pending.data : "", n, on_posted, p,
	                 &err) < 0) {
		free(p);
		stream_free(server, s);
		return;
	}
	s->in_flight = true;
	s->last_sent_ms = loop_now(server->loop);
	if (n == s->pending.length) {
		buffer_reset(&s->pending);
	} else {
		struct buffer rest = BUFFER_INIT;
		buffer_append(&rest, s->pending.data + n, s->pending.length - n);
		buffer_free(&s->pending);
		s->pending = rest;
	}
}

static void fail_stream(struct stream *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail_stream(struct stream *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *message = xvasprintf(fmt, ap);
	va_end(ap);
	buffer_reset(&s->pending);
	buffer_append_string(&s->pending, message);
	free(message);
	s->code = code;
	s->end_queued = true;
	send_pending(s);
}

/* Reads from offset to the end of the file (at most LOG_SERVER_MAX_READ bytes: the end). */
static int read_from(const char *path, off_t *offset, char **ret_text, size_t *ret_length)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (st.st_size < *offset)
		*offset = 0; /* truncated or replaced: from the start */
	off_t start = *offset;
	if (st.st_size - start > LOG_SERVER_MAX_READ)
		start = st.st_size - LOG_SERVER_MAX_READ;
	size_t want = (size_t)(st.st_size - start);
	char *text = xmalloc(want + 1);
	size_t got = 0;
	while (got < want) {
		ssize_t n = pread(fd, text + got, want - got, start + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	text[got] = '\0';
	*offset = start + (off_t)got;
	*ret_text = text;
	*ret_length = got;
	return 0;
}

static void start_stream(struct log_server *server, const cJSON *request)
{
	const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(request, "namespace"));
	const char *pod = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(request, "pod"));
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(request, "uid"));
	const char *container = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(request, "container"));
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(request, "id");
	if (!cJSON_IsNumber(id) || stream_by_id(server, (uint64_t)id->valuedouble))
		return;
	if (server->stream_count >= LOG_SERVER_MAX_STREAMS) {
		struct stream *oldest = server->streams;
		while (oldest && oldest->next)
			oldest = oldest->next;
		if (oldest && !oldest->in_flight)
			stream_free(server, oldest);
		else if (oldest)
			oldest->gone = true;
	}
	struct stream *s = xcalloc(1, sizeof(*s));
	s->server = server;
	s->id = (uint64_t)id->valuedouble;
	s->follow = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(request, "follow"));
	s->timestamps = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(request, "timestamps"));
	s->line_start = true;
	s->next = server->streams;
	server->streams = s;
	server->stream_count++;
	if (!ns || !pod || !uid || !container || strchr(ns, '/') || strchr(pod, '/') || strchr(uid, '/') ||
	    strchr(container, '/') || container[0] == '.') {
		fail_stream(s, 400, "a log request needs a namespace, pod, uid and container");
		return;
	}
	bool previous = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(request, "previous"));
	const cJSON *tail = cJSON_GetObjectItemCaseSensitive(request, "tailLines");
	long lines = cJSON_IsNumber(tail) ? (long)tail->valuedouble : -1;
	s->dir = xasprintf("%s/%s_%s_%s/%s", server->log_dir, ns, pod, uid, container);
	int r = log_server_pick_file(s->dir, previous, &s->path);
	if (r < 0) {
		if (previous)
			fail_stream(s, 400, "previous terminated container \"%s\" in pod \"%s\" not found", container,
			            pod);
		else
			fail_stream(s, 400, "container \"%s\" in pod \"%s\" is waiting to start: no output yet",
			            container, pod);
		return;
	}
	const char *base = strrchr(s->path, '/');
	s->restart = (unsigned)strtoul(base ? base + 1 : s->path, NULL, 10);
	char *text = NULL;
	size_t length = 0;
	if ((r = read_from(s->path, &s->offset, &text, &length)) < 0) {
		fail_stream(s, 500, "reading the log of container \"%s\": %s", container, strerror(-r));
		return;
	}
	if (s->follow) {
		/* Only complete lines now; the rest when its end arrives. */
		const char *last = length ? memrchr(text, '\n', length) : NULL;
		size_t complete = last ? (size_t)(last - text) + 1 : 0;
		s->offset -= (off_t)(length - complete);
		length = complete;
	}
	struct buffer rendered = BUFFER_INIT;
	log_server_render(text, length, s->timestamps, &s->line_start, &rendered);
	free(text);
	size_t from = rendered.data ? log_server_tail_offset(rendered.data, rendered.length, lines) : 0;
	if (rendered.length - from > LOG_SERVER_MAX_ANSWER)
		from = rendered.length - LOG_SERVER_MAX_ANSWER;
	if (rendered.length > from)
		buffer_append(&s->pending, rendered.data + from, rendered.length - from);
	buffer_free(&rendered);
	s->end_queued = !s->follow;
	send_pending(s);
}

/* A followed stream: new complete lines, or the end of the container. */
static void poll_stream(struct log_server *server, struct stream *s)
{
	if (s->in_flight || s->gone || s->end_queued)
		return;
	char *newest = NULL;
	if (s->finishing || log_server_pick_file(s->dir, false, &newest) < 0 || strcmp(newest, s->path) != 0) {
		free(newest);
		s->end_queued = true; /* restarted, or the pod is gone: the container we followed ended */
	} else {
		free(newest);
	}
	char *text = NULL;
	size_t length = 0;
	off_t offset = s->offset;
	if (read_from(s->path, &offset, &text, &length) == 0) {
		const char *last = length ? memrchr(text, '\n', length) : NULL;
		size_t complete = s->end_queued ? length : last ? (size_t)(last - text) + 1 : 0;
		s->offset = offset - (off_t)(length - complete);
		log_server_render(text, complete, s->timestamps, &s->line_start, &s->pending);
		free(text);
	}
	if (s->pending.length || s->end_queued || loop_now(server->loop) - s->last_sent_ms >= LOG_SERVER_KEEPALIVE_MS)
		send_pending(s);
}

/* --- the requests ------------------------------------------------------------------------- */

static void on_requests(int code, const char *body, size_t length, const struct error *err, void *data)
{
	struct log_server *server = data;
	if (code != 205) {
		server->observation = NULL;
		log_debug("log requests: observation ended (%d: %s)", code, err ? err->message : "");
		while (server->streams) /* the relay ends them too */
			stream_free(server, server->streams);
		return;
	}
	cJSON *doc = cJSON_ParseWithLength(body, length);
	const cJSON *item;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc, "cancel"))
	{
		struct stream *s = cJSON_IsNumber(item) ? stream_by_id(server, (uint64_t)item->valuedouble) : NULL;
		if (s && s->in_flight)
			s->gone = true;
		else if (s)
			stream_free(server, s);
	}
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc, "requests")) start_stream(server, item);
	cJSON_Delete(doc);
	schedule_tick(server);
}

static void on_tick(struct loop *loop, void *data)
{
	(void)loop;
	struct log_server *server = data;
	server->tick = NULL;
	if (!server->observation && link_is_up(server->link)) {
		cleanup_free char *path = xasprintf("/api/v1/nodes/%s/logrequests", server->node_name);
		struct error err;
		if (link_observe(server->link, path, on_requests, server, &server->observation, &err) < 0)
			log_debug("log requests: %s", err.message);
	}
	for (struct stream *s = server->streams, *next; s; s = next) {
		next = s->next;
		if (s->follow)
			poll_stream(server, s);
	}
	schedule_tick(server);
}

static void schedule_tick(struct log_server *server)
{
	bool following = false;
	for (struct stream *s = server->streams; s; s = s->next)
		following = following || s->follow;
	uint64_t delay = following ? LOG_SERVER_POLL_MS : LOG_SERVER_IDLE_TICK_MS;
	if (server->tick)
		loop_cancel_timer(server->loop, server->tick);
	server->tick = loop_add_timer(server->loop, delay, on_tick, server);
}

struct log_server *log_server_new(struct loop *loop, struct link *link, const char *node_name, const char *log_dir)
{
	struct log_server *server = xcalloc(1, sizeof(*server));
	server->loop = loop;
	server->link = link;
	server->node_name = xstrdup(node_name);
	server->log_dir = xstrdup(log_dir);
	schedule_tick(server);
	return server;
}

void log_server_free(struct log_server *server)
{
	if (!server)
		return;
	if (server->tick)
		loop_cancel_timer(server->loop, server->tick);
	while (server->streams)
		stream_free(server, server->streams);
	free(server->node_name);
	free(server->log_dir);
	free(server);
}
