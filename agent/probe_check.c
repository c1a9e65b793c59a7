/* See probe_check.h.
 *
 * State of one check (one attempt):
 *
 *   exec:  RUNNING (child watched, output pipe read) --child exits--> done
 *   tcp:   CONNECTING --writable--> done
 *   http:  CONNECTING --writable--> SENDING --request sent--> RECEIVING --head parsed--> done,
 *          or, for a same-host redirect, back to CONNECTING on a new socket
 *   sleep: WAITING --timer--> done
 *
 * and from any state the deadline timer (timeoutSeconds) ends it. finish() is the only way
 * out: it releases every watcher, timer and descriptor, frees the check, then calls back.
 *
 * An exec child is watched through a small record that outlives the check: the loop has
 * no way to stop watching a pid, so a check that ends before its child (a timeout, a
 * cancel) kills the child, detaches the record and lets the loop reap the child later
 * into the record, which then frees itself. Nothing else ever waits for the child, so its
 * pid cannot be reused under the loop's feet.
 */
#include "agent/probe_check.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/probe_http.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

enum check_state {
	STATE_IDLE,
	STATE_RUNNING,
	STATE_CONNECTING,
	STATE_SENDING,
	STATE_RECEIVING,
	STATE_WAITING,
};

struct exec_child {
	pid_t pid;
	struct probe_check *check; /* NULL once the check is gone */
};

struct probe_check {
	struct loop *loop;
	enum probe_handler_type type;
	enum probe_check_mode mode;
	enum check_state state;
	probe_check_fn done;
	void *data;
	uint64_t timeout_ms;
	struct loop_timer *deadline;
	struct loop_timer *soon; /* a deferred outcome, or the sleep handler's wait */
	enum probe_outcome deferred_outcome;
	char *deferred_message;

	/* exec */
	char *command_text; /* the command joined by spaces, for messages */
	struct exec_child *child;
	int output_fd;
	char output[PROBER_OUTPUT_MAX];
	size_t output_length;

	/* tcpSocket, httpGet */
	int netns_fd;
	int socket_fd;
	struct sockaddr_storage address;
	socklen_t address_length;
	char host[PROBE_HTTP_HOST_MAX]; /* the IP literal connected to */
	uint16_t port;
	char authority[PROBE_HTTP_HOST_MAX + 16];

	/* httpGet */
	char *first_host; /* the hostname of the first request: redirects must keep it */
	char *path;       /* encoded, as sent */
	char *url;        /* "http://10.0.0.1:80/healthz", for messages */
	struct probe_http_header *headers;
	size_t header_count;
	char *request;
	size_t request_length, request_sent;
	char *response;
	size_t response_length;
	unsigned redirects;
};

static unsigned children_pending;

unsigned probe_check_children_pending(void)
{
	return children_pending;
}

/* Go prints errno texts in lower case ("connection refused"). */
static void errno_text(int code, char *buffer, size_t size)
{
	snprintf(buffer, size, "%s", strerror(code));
	if (buffer[0])
		buffer[0] = (char)tolower((unsigned char)buffer[0]);
}

/* --- finishing ------------------------------------------------------------------------- */

static void release(struct probe_check *c)
{
	loop_cancel_timer(c->loop, c->deadline);
	loop_cancel_timer(c->loop, c->soon);
	if (c->child) {
		/* Killed here, reaped by the loop into the detached record. */
		kill(c->child->pid, SIGKILL);
		c->child->check = NULL;
		children_pending++;
	}
	if (c->output_fd >= 0) {
		loop_remove_fd(c->loop, c->output_fd);
		close(c->output_fd);
	}
	if (c->socket_fd >= 0) {
		loop_remove_fd(c->loop, c->socket_fd);
		close(c->socket_fd);
	}
	if (c->netns_fd >= 0)
		close(c->netns_fd);
	for (size_t i = 0; i < c->header_count; i++) {
		free(c->headers[i].name);
		free(c->headers[i].value);
	}
	free(c->headers);
	free(c->deferred_message);
	free(c->command_text);
	free(c->first_host);
	free(c->path);
	free(c->url);
	free(c->request);
	free(c->response);
	free(c);
}

static void finish(struct probe_check *c, enum probe_outcome outcome, const char *message)
{
	char text[PROBER_MESSAGE_MAX];
	snprintf(text, sizeof(text), "%s", message ? message : "");
	probe_check_fn done = c->done;
	void *data = c->data;
	release(c);
	done(outcome, text, data);
}

static void finishf(struct probe_check *c, enum probe_outcome outcome, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void finishf(struct probe_check *c, enum probe_outcome outcome, const char *fmt, ...)
{
	char text[PROBER_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	finish(c, outcome, text);
}

void probe_check_cancel(struct probe_check *check)
{
	if (check)
		release(check);
}

static void on_deferred(struct loop *loop, void *data)
{
	struct probe_check *c = data;
	c->soon = NULL;
	finish(c, c->deferred_outcome, c->deferred_message);
}

/* Ends the check on the next loop iteration: callers never hear back from inside start. */
static void defer(struct probe_check *c, enum probe_outcome outcome, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void defer(struct probe_check *c, enum probe_outcome outcome, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(c->deferred_message);
	c->deferred_message = xvasprintf(fmt, ap);
	va_end(ap);
	c->deferred_outcome = outcome;
	loop_cancel_timer(c->loop, c->soon);
	c->soon = loop_add_timer(c->loop, 0, on_deferred, c);
}

/* --- network namespaces ------------------------------------------------------------------ */

int probe_socket_in_netns(int netns_fd, int family, int type, struct error *err)
{
	if (netns_fd < 0) {
		int fd = socket(family, type, 0);
		return fd < 0 ? error_set_errno(err, errno, "socket") : fd;
	}
	int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (own < 0)
		return error_set_errno(err, errno, "open /proc/thread-self/ns/net");
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		int r = error_set_errno(err, errno, "enter the pod's network namespace");
		close(own);
		return r;
	}
	/* A socket keeps the namespace it was made in: only its creation happens in there. */
	int fd = socket(family, type, 0);
	int saved = errno;
	if (setns(own, CLONE_NEWNET) < 0) {
		/* The one failure not returned: an agent left in a pod's network namespace would
		 * quietly talk to the wrong network for the rest of its life. */
		log_error("probe: cannot return to the agent's network namespace");
		abort();
	}
	close(own);
	if (fd < 0)
		return error_set_errno(err, saved, "socket in the pod's network namespace");
	return fd;
}

/* --- exec ------------------------------------------------------------------------------ */

static void read_output(struct probe_check *c)
{
	char buffer[4096];
	for (;;) {
		ssize_t n = read(c->output_fd, buffer, sizeof(buffer));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			loop_remove_fd(c->loop, c->output_fd);
			close(c->output_fd);
			c->output_fd = -1;
			return;
		}
		/* the first bytes are kept, the rest read and dropped so the command never blocks */
		size_t room = sizeof(c->output) - c->output_length;
		size_t take = (size_t)n < room ? (size_t)n : room;
		memcpy(c->output + c->output_length, buffer, take);
		c->output_length += take;
	}
}

static void on_output(struct loop *loop, int fd, uint32_t events, void *data)
{
	read_output(data);
}

/* The output as a message: printable, trailing newlines dropped, "" when there was none. */
static void output_text(struct probe_check *c, char *text, size_t size)
{
	size_t n = 0;
	for (size_t i = 0; i < c->output_length && n + 1 < size; i++) {
		unsigned char ch = (unsigned char)c->output[i];
		text[n++] = (ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f ? '?' : (char)ch;
	}
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	text[n] = '\0';
}

static void on_child_exit(struct loop *loop, pid_t pid, int status, void *data)
{
	struct exec_child *child = data;
	struct probe_check *c = child->check;
	free(child);
	if (!c) {
		children_pending--;
		return;
	}
	c->child = NULL;
	if (c->output_fd >= 0)
		read_output(c); /* what the command wrote before it exited is in the pipe */
	char output[PROBER_OUTPUT_MAX + 1];
	output_text(c, output, sizeof(output));
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (ok) {
		finish(c, PROBE_OUTCOME_SUCCESS, output);
		return;
	}
	char how[64];
	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with %d", WEXITSTATUS(status));
	else
		snprintf(how, sizeof(how), "was killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (c->mode == PROBE_CHECK_HOOK)
		finishf(c, PROBE_OUTCOME_FAILURE, "command '%s' %s: %s", c->command_text, how, output);
	else if (output[0])
		finish(c, PROBE_OUTCOME_FAILURE, output); /* Kubernetes shows the output alone */
	else
		finishf(c, PROBE_OUTCOME_FAILURE, "command '%s' %s", c->command_text, how);
}

static void start_exec(struct probe_check *c, const struct probe_handler *h, const struct prober_target *t)
{
	size_t length = 0;
	for (char **a = h->command; *a; a++)
		length += strlen(*a) + 1;
	c->command_text = xcalloc(1, length + 1);
	for (char **a = h->command; *a; a++) {
		if (a != h->command)
			strcat(c->command_text, " ");
		strcat(c->command_text, *a);
	}
	if (!t->exec) {
		defer(c, PROBE_OUTCOME_ERROR, "exec is not available for this container");
		return;
	}
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		defer(c, PROBE_OUTCOME_ERROR, "pipe: %s", strerror(errno));
		return;
	}
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	struct error err = { 0 };
	pid_t pid = -1;
	int r = t->exec(t->exec_data, (const char *const *)h->command, fds[1], &pid, &err);
	close(fds[1]);
	if (r < 0) {
		close(fds[0]);
		defer(c, PROBE_OUTCOME_ERROR, "%s", err.message[0] ? err.message : strerror(-r));
		return;
	}
	c->output_fd = fds[0];
	if (loop_add_fd(c->loop, c->output_fd, EPOLLIN, on_output, c) < 0) {
		close(c->output_fd);
		c->output_fd = -1;
	}
	struct exec_child *child = xcalloc(1, sizeof(*child));
	child->pid = pid;
	child->check = c;
	r = loop_watch_child(c->loop, pid, on_child_exit, child);
	if (r < 0) {
		/* cannot happen once the loop watches SIGCHLD; never leave a zombie behind */
		free(child);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		defer(c, PROBE_OUTCOME_ERROR, "watch the command's process: %s", strerror(-r));
		return;
	}
	c->child = child;
	c->state = STATE_RUNNING;
}

/* --- tcpSocket and httpGet -------------------------------------------------------------- */

static const char *prefix_of(struct probe_check *c, char *buffer, size_t size)
{
	if (c->type != PROBE_HANDLER_HTTP_GET)
		return "";
	snprintf(buffer, size, "Get \"%s\": ", c->url);
	return buffer;
}

static void fail_network(struct probe_check *c, const char *what, int code)
{
	char prefix[PROBER_MESSAGE_MAX / 2], text[128];
	errno_text(code, text, sizeof(text));
	finishf(c, PROBE_OUTCOME_FAILURE, "%s%s: %s", prefix_of(c, prefix, sizeof(prefix)), what, text);
}

static int resolve_address(struct probe_check *c, const char *host, uint16_t port)
{
	if (strcasecmp(host, "localhost") == 0)
		host = "127.0.0.1";
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	memset(&c->address, 0, sizeof(c->address));
	struct sockaddr_in *in4 = (struct sockaddr_in *)&c->address;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->address;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		c->address_length = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		c->address_length = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	probe_http_format_authority(c->host, port, c->authority, sizeof(c->authority));
	return 0;
}

static void on_socket(struct loop *loop, int fd, uint32_t events, void *data);

/* Deferred on failure; on success the socket is watched for the connection. */
static void start_connect(struct probe_check *c)
{
	struct error err = { 0 };
	int fd = probe_socket_in_netns(c->netns_fd, c->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                               &err);
	if (fd < 0) {
		defer(c, PROBE_OUTCOME_ERROR, "%s", err.message);
		return;
	}
	c->socket_fd = fd;
	c->state = STATE_CONNECTING;
	if (connect(fd, (struct sockaddr *)&c->address, c->address_length) < 0 && errno != EINPROGRESS) {
		char prefix[PROBER_MESSAGE_MAX / 2], text[128];
		errno_text(errno, text, sizeof(text));
		defer(c, PROBE_OUTCOME_FAILURE, "%sdial tcp %s: connect: %s", prefix_of(c, prefix, sizeof(prefix)),
		      c->authority, text);
		return;
	}
	int r = loop_add_fd(c->loop, fd, EPOLLOUT, on_socket, c);
	if (r < 0)
		defer(c, PROBE_OUTCOME_ERROR, "watch the probe's socket: %s", strerror(-r));
}

static void close_socket(struct probe_check *c)
{
	if (c->socket_fd < 0)
		return;
	loop_remove_fd(c->loop, c->socket_fd);
	close(c->socket_fd);
	c->socket_fd = -1;
}

static void build_request(struct probe_check *c)
{
	free(c->request);
	free(c->url);
	c->request = probe_http_format_request(c->path, c->authority,
	                                       c->mode == PROBE_CHECK_HOOK ? PROBER_HOOK_USER_AGENT : PROBER_USER_AGENT,
	                                       c->headers, c->header_count);
	c->request_length = strlen(c->request);
	c->request_sent = 0;
	c->url = xasprintf("http://%s%s", c->authority, c->path);
	c->response_length = 0;
}

static bool is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static void drop_header(struct probe_check *c, const char *name)
{
	for (size_t i = 0; i < c->header_count; i++) {
		if (strcasecmp(c->headers[i].name, name) != 0)
			continue;
		free(c->headers[i].name);
		free(c->headers[i].value);
		c->headers[i] = c->headers[--c->header_count];
		i--;
	}
}

/* "http://host/x" or "//host/x", as opposed to a path relative to the request's. */
static bool location_has_authority(const char *location)
{
	size_t scheme = strcspn(location, ":/?#");
	return strncmp(location, "//", 2) == 0 || location[scheme] == ':';
}

/* A complete response head: decide, or follow a redirect to the same host. */
static void on_response(struct probe_check *c, const struct probe_http_response *response)
{
	char prefix[PROBER_MESSAGE_MAX / 2];
	if (is_redirect(response->status) && response->has_location) {
		struct probe_http_target next;
		struct error err = { 0 };
		if (probe_http_resolve_location(response->location, c->host, c->port, c->path, &next, &err) < 0) {
			finishf(c, PROBE_OUTCOME_FAILURE, "%s%s", prefix_of(c, prefix, sizeof(prefix)), err.message);
			return;
		}
		/* Kubernetes follows redirects to the same host only; Bramble speaks no TLS */
		bool follow = !next.https && strcasecmp(next.host, c->first_host) == 0;
		if (follow) {
			if (++c->redirects >= PROBER_REDIRECTS_MAX) {
				finishf(c, PROBE_OUTCOME_FAILURE, "%sstopped after %d redirects",
				        prefix_of(c, prefix, sizeof(prefix)), PROBER_REDIRECTS_MAX);
				return;
			}
			if (location_has_authority(response->location))
				drop_header(c, "Host"); /* Go keeps a custom Host for relative redirects only */
			close_socket(c);
			free(c->path);
			c->path = xstrdup(next.path);
			resolve_address(c, next.host, next.port); /* same host: an IP literal already */
			build_request(c);
			start_connect(c);
			return;
		}
	}
	if (c->mode == PROBE_CHECK_HOOK) {
		finish(c, PROBE_OUTCOME_SUCCESS, "");
		return;
	}
	if (response->status >= 200 && response->status < 300)
		finish(c, PROBE_OUTCOME_SUCCESS, "");
	else if (response->status >= 300 && response->status < 400)
		finish(c, PROBE_OUTCOME_WARNING, "Probe terminated redirects");
	else
		finishf(c, PROBE_OUTCOME_FAILURE, "HTTP probe failed with statuscode: %d", response->status);
}

static void receive(struct probe_check *c)
{
	char prefix[PROBER_MESSAGE_MAX / 2];
	if (!c->response)
		c->response = xmalloc(PROBE_HTTP_HEAD_MAX);
	for (;;) {
		bool eof = false;
		size_t room = PROBE_HTTP_HEAD_MAX - c->response_length;
		if (room > 0) {
			ssize_t n = recv(c->socket_fd, c->response + c->response_length, room, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return;
			if (n < 0) {
				fail_network(c, "read", errno);
				return;
			}
			eof = n == 0;
			c->response_length += (size_t)n;
		}
		struct probe_http_response response;
		struct error err = { 0 };
		int r = probe_http_parse_response(c->response, c->response_length, eof, &response, &err);
		if (r == -EAGAIN)
			continue;
		if (r < 0) {
			finishf(c, PROBE_OUTCOME_FAILURE, "%s%s", prefix_of(c, prefix, sizeof(prefix)), err.message);
			return;
		}
		on_response(c, &response);
		return;
	}
}

static void on_socket(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct probe_check *c = data;
	if (c->state == STATE_CONNECTING) {
		int code = 0;
		socklen_t length = sizeof(code);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) < 0)
			code = errno;
		if (code == 0 && !(events & EPOLLOUT))
			return;
		if (code != 0) {
			char what[PROBE_HTTP_HOST_MAX + 32];
			snprintf(what, sizeof(what), "dial tcp %s: connect", c->authority);
			fail_network(c, what, code);
			return;
		}
		if (c->type == PROBE_HANDLER_TCP_SOCKET) {
			finish(c, PROBE_OUTCOME_SUCCESS, "");
			return;
		}
		c->state = STATE_SENDING;
	}
	if (c->state == STATE_SENDING) {
		while (c->request_sent < c->request_length) {
			ssize_t n = send(fd, c->request + c->request_sent, c->request_length - c->request_sent,
			                 MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return;
			if (n < 0) {
				fail_network(c, "write", errno);
				return;
			}
			c->request_sent += (size_t)n;
		}
		c->state = STATE_RECEIVING;
		loop_modify_fd(loop, fd, EPOLLIN);
		return; /* the answer comes later */
	}
	if (c->state == STATE_RECEIVING)
		receive(c);
}

/* --- the deadline ------------------------------------------------------------------------ */

static void on_deadline(struct loop *loop, void *data)
{
	struct probe_check *c = data;
	c->deadline = NULL;
	char prefix[PROBER_MESSAGE_MAX / 2];
	switch (c->type) {
	case PROBE_HANDLER_EXEC:
		finishf(c, PROBE_OUTCOME_FAILURE, "command \"%s\" timed out", c->command_text);
		return;
	case PROBE_HANDLER_TCP_SOCKET:
		finishf(c, PROBE_OUTCOME_FAILURE, "dial tcp %s: i/o timeout", c->authority);
		return;
	case PROBE_HANDLER_HTTP_GET:
		finishf(c, PROBE_OUTCOME_FAILURE,
		        "%scontext deadline exceeded (Client.Timeout exceeded while awaiting headers)",
		        prefix_of(c, prefix, sizeof(prefix)));
		return;
	case PROBE_HANDLER_SLEEP:
		finishf(c, PROBE_OUTCOME_FAILURE, "sleep cut short after %llu ms", (unsigned long long)c->timeout_ms);
		return;
	}
}

static void on_slept(struct loop *loop, void *data)
{
	struct probe_check *c = data;
	c->soon = NULL;
	finish(c, PROBE_OUTCOME_SUCCESS, "");
}

/* --- start ------------------------------------------------------------------------------ */

struct probe_check *probe_check_start(const struct probe_handler *h, const struct prober_target *t,
                                      enum probe_check_mode mode, uint64_t timeout_ms, probe_check_fn done, void *data)
{
	struct probe_check *c = xcalloc(1, sizeof(*c));
	c->loop = t->loop;
	c->type = h->type;
	c->mode = mode;
	c->done = done;
	c->data = data;
	c->timeout_ms = timeout_ms;
	c->output_fd = -1;
	c->socket_fd = -1;
	c->netns_fd = -1;
	if (timeout_ms > 0)
		c->deadline = loop_add_timer(c->loop, timeout_ms, on_deadline, c);

	switch (h->type) {
	case PROBE_HANDLER_EXEC:
		start_exec(c, h, t);
		return c;
	case PROBE_HANDLER_SLEEP:
		c->state = STATE_WAITING;
		c->soon = loop_add_timer(c->loop, h->sleep_ms, on_slept, c);
		return c;
	case PROBE_HANDLER_TCP_SOCKET:
	case PROBE_HANDLER_HTTP_GET:
		break;
	}

	const char *host = h->host ? h->host : t->pod_ip ? t->pod_ip : "127.0.0.1";
	if (resolve_address(c, host, h->port) < 0) {
		snprintf(c->authority, sizeof(c->authority), "%s:%u", host, (unsigned)h->port);
		defer(c, PROBE_OUTCOME_ERROR, "\"%s\" is not an IP address", host);
		return c;
	}
	if (t->netns_fd >= 0) {
		c->netns_fd = fcntl(t->netns_fd, F_DUPFD_CLOEXEC, 3);
		if (c->netns_fd < 0) {
			defer(c, PROBE_OUTCOME_ERROR, "duplicate the network namespace descriptor: %s",
			      strerror(errno));
			return c;
		}
	}
	if (h->type == PROBE_HANDLER_HTTP_GET) {
		c->first_host = xstrdup(host);
		c->path = probe_http_encode_path(h->path);
		c->headers = xcalloc(h->header_count + 1, sizeof(*c->headers));
		for (size_t i = 0; i < h->header_count; i++) {
			c->headers[i].name = xstrdup(h->headers[i].name);
			c->headers[i].value = xstrdup(h->headers[i].value);
		}
		c->header_count = h->header_count;
		build_request(c);
	}
	start_connect(c);
	return c;
}
