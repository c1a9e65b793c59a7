/* The prober against real things: HTTP and TCP servers forked by the test on loopback and
 * inside a network namespace the test makes, commands run by a fork+exec of /bin/sh. No
 * timing is asserted: each test waits (with a generous bound) for an outcome. */
#include "agent/prober.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/probe_check.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/loop.h"
#include "platform/memory.h"

#include "tests/unit/unit.h"

#define WAIT_LIMIT_MS 15000

/* --- the loop ------------------------------------------------------------------------- */

static struct loop *new_loop(void)
{
	struct loop *loop = NULL;
	CHECK_OK(loop_new(&loop));
	return loop;
}

#define RUN_UNTIL(loop, condition)                                                                                     \
	do {                                                                                                           \
		uint64_t run_end_ = clock_monotonic_ms() + WAIT_LIMIT_MS;                                              \
		while (!(condition) && clock_monotonic_ms() < run_end_)                                                \
			CHECK_OK(loop_run_once((loop), 50));                                                           \
		CHECK(condition);                                                                                      \
	} while (0)

/* Runs the loop for a while with nothing expected to happen (used only to show that
 * something does NOT happen: a wrong prober would act within this time, a right one never). */
static void run_for(struct loop *loop, uint64_t ms)
{
	uint64_t end = clock_monotonic_ms() + ms;
	while (clock_monotonic_ms() < end)
		CHECK_OK(loop_run_once(loop, 20));
}

/* Frees the loop once every killed exec child has been reaped into its record. */
static void free_loop(struct loop *loop)
{
	RUN_UNTIL(loop, probe_check_children_pending() == 0);
	loop_free(loop);
}

/* --- servers --------------------------------------------------------------------------- */

static int listen_tcp(const char *ip, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, ip, &a.sin_addr);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -errno;
	}
	CHECK_OK(listen(fd, 64));
	return fd;
}

static uint16_t port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t length = sizeof(a);
	CHECK_OK(getsockname(fd, (struct sockaddr *)&a, &length));
	return ntohs(a.sin_port);
}

static void reply(int fd, const char *text)
{
	size_t n = strlen(text), sent = 0;
	while (sent < n) {
		ssize_t w = write(fd, text + sent, n - sent);
		if (w <= 0)
			return;
		sent += (size_t)w;
	}
}

/* One connection: the path of the request line decides the answer. */
static void serve_connection(int fd, const char *control, bool decoy)
{
	char request[8192];
	size_t n = 0;
	while (n < sizeof(request) - 1) {
		ssize_t r = read(fd, request + n, sizeof(request) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		request[n] = '\0';
		if (strstr(request, "\r\n\r\n"))
			break;
	}
	request[n] = '\0';
	char path[512] = "";
	sscanf(request, "GET %511s", path);
	uint16_t port = port_of(fd);
	char text[32768];
	if (decoy) {
		reply(fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\ndecoy");
	} else if (strcmp(path, "/ok") == 0) {
		reply(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	} else if (strcmp(path, "/fail") == 0) {
		reply(fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail");
	} else if (strcmp(path, "/slow") == 0) {
		sleep(30);
		reply(fd, "HTTP/1.1 200 OK\r\n\r\n");
	} else if (strcmp(path, "/toggle") == 0) {
		reply(fd, access(control, F_OK) == 0 ? "HTTP/1.1 503 Unavailable\r\n\r\n" : "HTTP/1.1 200 OK\r\n\r\n");
	} else if (strcmp(path, "/redirect") == 0) {
		reply(fd, "HTTP/1.1 302 Found\r\nLocation: /ok\r\n\r\n");
	} else if (strcmp(path, "/redirect-absolute") == 0) {
		snprintf(text, sizeof(text), "HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:%u/fail\r\n\r\n", port);
		reply(fd, text);
	} else if (strcmp(path, "/redirect-elsewhere") == 0) {
		snprintf(text, sizeof(text), "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:%u/fail\r\n\r\n", port);
		reply(fd, text);
	} else if (strcmp(path, "/redirect-loop") == 0) {
		reply(fd, "HTTP/1.1 307 Again\r\nLocation: /redirect-loop\r\n\r\n");
	} else if (strcmp(path, "/headers") == 0) {
		bool good = strstr(request, "\r\nUser-Agent: kube-probe/1.30\r\n") &&
		            strstr(request, "\r\nX-Custom: yes\r\n") && strstr(request, "\r\nHost: app.example\r\n") &&
		            strstr(request, "\r\nConnection: close\r\n") && strstr(request, "\r\nAccept: */*\r\n");
		reply(fd, good ? "HTTP/1.1 200 OK\r\n\r\n" : "HTTP/1.1 400 Bad Request\r\n\r\n");
	} else if (strcmp(path, "/hook") == 0) {
		bool good = strstr(request, "\r\nUser-Agent: kube-lifecycle/1.30\r\n") != NULL;
		reply(fd, good ? "HTTP/1.1 404 Not Found\r\n\r\n" : "garbage\r\n\r\n");
	} else if (strcmp(path, "/garbage") == 0) {
		reply(fd, "garbage\r\n\r\n");
	} else if (strcmp(path, "/huge") == 0) {
		snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\nX-Huge: %0*d\r\n\r\n", 20000, 1);
		reply(fd, text);
	} else if (strcmp(path, "/interim") == 0) {
		reply(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
	} else if (strcmp(path, "/close") == 0) {
		/* nothing: the connection just closes */
	} else {
		reply(fd, "HTTP/1.1 404 Not Found\r\n\r\n");
	}
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* A forked server on listen_fd (taken over). control: a file whose presence fails /toggle;
 * decoy: answer 500 to everything (a server the probe must NOT reach). */
static pid_t start_server(int listen_fd, const char *control, bool decoy)
{
	pid_t test = getpid();
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* dies with the test, even one that failed before stop_server() */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != test)
			_exit(0);
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		signal(SIGCHLD, SIG_IGN);
		pid_t server = getpid();
		for (;;) {
			int c = accept(listen_fd, NULL, NULL);
			if (c < 0)
				continue;
			if (fork() == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				if (getppid() != server)
					_exit(0);
				serve_connection(c, control, decoy);
				_exit(0);
			}
			close(c);
		}
	}
	close(listen_fd);
	return pid;
}

static void stop_server(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* A port on 127.0.0.1 with a socket bound to it but not listening: connections are refused
 * for as long as *ret_fd stays open. */
static uint16_t refused_port(int *ret_fd)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	CHECK_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
	*ret_fd = fd;
	return port_of(fd);
}

/* --- exec --------------------------------------------------------------------------------- */

/* What fork_exec did, when given one as its data. */
struct exec_log {
	int count;
	pid_t last_pid;
};

static int fork_exec(void *data, const char *const *argv, int output_fd, pid_t *ret_pid, struct error *err)
{
	struct exec_log *log = data;
	pid_t pid = fork();
	if (pid < 0)
		return error_set_errno(err, errno, "fork");
	if (pid == 0) {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		dup2(output_fd, 1);
		dup2(output_fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (log) {
		log->count++;
		log->last_pid = pid;
	}
	*ret_pid = pid;
	return 0;
}

static int no_exec(void *data, const char *const *argv, int output_fd, pid_t *ret_pid, struct error *err)
{
	return error_set(err, ENOENT, "container \"app\" is not running");
}

/* --- specs from JSON ------------------------------------------------------------------------ */

static struct probe_spec *spec_from(enum probe_kind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static struct probe_spec *spec_from(enum probe_kind kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	cJSON *container = cJSON_Parse(text);
	if (!container)
		unit_fail(__FILE__, __LINE__, "bad JSON in test: %s", text);
	struct probe_spec *spec = NULL;
	struct error err = { 0 };
	int r = prober_parse_probe(container, kind, NULL, &spec, &err);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "parse failed: %s", err.message);
	CHECK(spec != NULL);
	cJSON_Delete(container);
	free(text);
	return spec;
}

static struct probe_handler *hook_from(enum prober_hook_kind hook, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static struct probe_handler *hook_from(enum prober_hook_kind hook, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	cJSON *container = cJSON_Parse(text);
	CHECK(container != NULL);
	struct probe_handler *handler = NULL;
	struct error err = { 0 };
	int r = prober_parse_hook(container, hook, NULL, &handler, &err);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "parse failed: %s", err.message);
	CHECK(handler != NULL);
	cJSON_Delete(container);
	free(text);
	return handler;
}

/* The error from parsing container JSON as kind (or the hook when kind < 0). */
static char *parse_error(int kind, const char *prefix, const char *json)
{
	cJSON *container = cJSON_Parse(json);
	if (!container)
		unit_fail(__FILE__, __LINE__, "bad JSON in test: %s", json);
	struct error err = { 0 };
	int r;
	if (kind >= 0) {
		struct probe_spec *spec = NULL;
		r = prober_parse_probe(container, (enum probe_kind)kind, prefix, &spec, &err);
		CHECK(r < 0 || spec != NULL);
		prober_spec_free(spec);
	} else {
		struct probe_handler *handler = NULL;
		r = prober_parse_hook(container, kind == -1 ? PROBER_POST_START : PROBER_PRE_STOP, prefix, &handler,
		                      &err);
		prober_handler_free(handler);
	}
	cJSON_Delete(container);
	return r < 0 ? xstrdup(err.message) : xstrdup("(no error)");
}

/* --- one check at a time ---------------------------------------------------------------- */

struct outcome {
	bool done;
	enum probe_outcome outcome;
	char message[PROBER_MESSAGE_MAX];
};

static void on_check(enum probe_outcome outcome, const char *message, void *data)
{
	struct outcome *o = data;
	o->done = true;
	o->outcome = outcome;
	snprintf(o->message, sizeof(o->message), "%s", message);
}

static struct outcome run_check(const struct probe_handler *handler, const struct prober_target *target,
                                enum probe_check_mode mode, uint64_t timeout_ms)
{
	struct outcome o = { 0 };
	struct probe_check *check = probe_check_start(handler, target, mode, timeout_ms, on_check, &o);
	CHECK(check != NULL);
	CHECK(!o.done); /* never from inside start */
	RUN_UNTIL(target->loop, o.done);
	return o;
}

static struct outcome http_check(struct loop *loop, uint16_t port, const char *path, uint64_t timeout_ms)
{
	struct probe_spec *spec = spec_from(
	        PROBE_LIVENESS, "{\"livenessProbe\":{\"httpGet\":{\"port\":%u,\"path\":\"%s\"}}}", port, path);
	struct prober_target target = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = -1 };
	struct outcome o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, timeout_ms);
	prober_spec_free(spec);
	return o;
}

/* ======================================================================================== */

TEST(a_probe_parses_with_kubernetes_defaults_and_named_ports)
{
	struct probe_spec *spec = spec_from(PROBE_LIVENESS, "{\"ports\":[{\"name\":\"metrics\",\"containerPort\":9090},"
	                                                    "{\"name\":\"web\",\"containerPort\":8080}],"
	                                                    "\"livenessProbe\":{\"httpGet\":{\"port\":\"web\"}}}");
	CHECK_INT(spec->kind, ==, PROBE_LIVENESS);
	CHECK_INT(spec->handler.type, ==, PROBE_HANDLER_HTTP_GET);
	CHECK_INT(spec->handler.port, ==, 8080);
	CHECK_STR(spec->handler.path, "/");
	CHECK(spec->handler.host == NULL);
	CHECK_INT(spec->initial_delay_ms, ==, 0);
	CHECK_INT(spec->period_ms, ==, 10000);
	CHECK_INT(spec->timeout_ms, ==, 1000);
	CHECK_INT(spec->success_threshold, ==, 1);
	CHECK_INT(spec->failure_threshold, ==, 3);
	CHECK_INT(spec->termination_grace_seconds, ==, -1);
	prober_spec_free(spec);

	/* zero means "the default" in Kubernetes' defaulting; a port given as a numeric string */
	spec = spec_from(PROBE_READINESS, "{\"readinessProbe\":{\"tcpSocket\":{\"port\":\"8443\",\"host\":\"::1\"},"
	                                  "\"periodSeconds\":0,\"timeoutSeconds\":0,\"initialDelaySeconds\":5,"
	                                  "\"successThreshold\":2,\"failureThreshold\":7}}");
	CHECK_INT(spec->handler.type, ==, PROBE_HANDLER_TCP_SOCKET);
	CHECK_INT(spec->handler.port, ==, 8443);
	CHECK_STR(spec->handler.host, "::1");
	CHECK_INT(spec->period_ms, ==, 10000);
	CHECK_INT(spec->timeout_ms, ==, 1000);
	CHECK_INT(spec->initial_delay_ms, ==, 5000);
	CHECK_INT(spec->success_threshold, ==, 2);
	CHECK_INT(spec->failure_threshold, ==, 7);
	prober_spec_free(spec);

	spec = spec_from(PROBE_STARTUP, "{\"startupProbe\":{\"exec\":{\"command\":[\"cat\",\"/tmp/ready\"]},"
	                                "\"terminationGracePeriodSeconds\":4}}");
	CHECK_INT(spec->handler.type, ==, PROBE_HANDLER_EXEC);
	CHECK_STR(spec->handler.command[0], "cat");
	CHECK_STR(spec->handler.command[1], "/tmp/ready");
	CHECK(spec->handler.command[2] == NULL);
	CHECK_INT(spec->termination_grace_seconds, ==, 4);
	prober_spec_free(spec);

	/* no probe: no spec, no error */
	cJSON *container = cJSON_Parse("{\"name\":\"app\"}");
	struct error err = { 0 };
	CHECK_OK(prober_parse_probe(container, PROBE_LIVENESS, NULL, &spec, &err));
	CHECK(spec == NULL);
	struct probe_handler *handler;
	CHECK_OK(prober_parse_hook(container, PROBER_PRE_STOP, NULL, &handler, &err));
	CHECK(handler == NULL);
	cJSON_Delete(container);
}

TEST(probe_errors_name_the_field)
{
	static const struct {
		int kind;
		const char *json;
		const char *message;
	} cases[] = {
		{ PROBE_LIVENESS,
		  "{\"ports\":[{\"name\":\"http\",\"containerPort\":80}],\"livenessProbe\":{\"httpGet\":{\"port\":"
		  "\"web\"}}}",
		  "livenessProbe.httpGet.port: no container port named 'web'" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"grpc\":{\"port\":9000}}}",
		  "livenessProbe.grpc: gRPC probes are not supported" },
		{ PROBE_READINESS, "{\"readinessProbe\":{\"httpGet\":{\"port\":443,\"scheme\":\"HTTPS\"}}}",
		  "readinessProbe.httpGet.scheme: HTTPS is not supported" },
		{ PROBE_READINESS, "{\"readinessProbe\":{\"httpGet\":{\"port\":443,\"scheme\":\"http\"}}}",
		  "readinessProbe.httpGet.scheme: Unsupported value: \"http\"" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":80},\"successThreshold\":2}}",
		  "livenessProbe.successThreshold: must be 1" },
		{ PROBE_STARTUP, "{\"startupProbe\":{\"tcpSocket\":{\"port\":80},\"successThreshold\":3}}",
		  "startupProbe.successThreshold: must be 1" },
		{ PROBE_STARTUP, "{\"startupProbe\":{\"periodSeconds\":3}}",
		  "startupProbe: must specify a handler type" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":80},\"exec\":{\"command\":[\"true\"]}}}",
		  "livenessProbe: may not specify more than 1 handler type" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[]}}}",
		  "livenessProbe.exec.command: Required value" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[\"sh\",7]}}}",
		  "livenessProbe.exec.command[1]: must be a string" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":\"true\"}}}",
		  "livenessProbe.exec.command: must be a list of strings" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":80},\"periodSeconds\":-1}}",
		  "livenessProbe.periodSeconds: must be greater than or equal to 0" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":80},\"timeoutSeconds\":1.5}}",
		  "livenessProbe.timeoutSeconds: must be an integer" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":80},\"failureThreshold\":\"3\"}}",
		  "livenessProbe.failureThreshold: must be an integer" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":80,\"host\":\"db.example\"}}}",
		  "livenessProbe.tcpSocket.host: must be an IP address" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":70000}}}",
		  "livenessProbe.tcpSocket.port: must be between 1 and 65535, inclusive" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{}}}",
		  "livenessProbe.tcpSocket.port: Required value" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":true}}}",
		  "livenessProbe.tcpSocket.port: must be an integer or a port name" },
		{ PROBE_LIVENESS,
		  "{\"livenessProbe\":{\"httpGet\":{\"port\":80,\"httpHeaders\":[{\"name\":\"X\",\"value\":"
		  "\"a\\r\\nInjected: 1\"}]}}}",
		  "livenessProbe.httpGet.httpHeaders[0].value: must be at most 4096 characters without line breaks" },
		{ PROBE_LIVENESS,
		  "{\"livenessProbe\":{\"httpGet\":{\"port\":80,\"httpHeaders\":[{\"name\":\"Bad "
		  "Name\",\"value\":\"v\"}]}}}",
		  "livenessProbe.httpGet.httpHeaders[0].name: must be a valid HTTP header name" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"httpGet\":{\"port\":80,\"path\":\"/a\\nb\"}}}",
		  "livenessProbe.httpGet.path: must be at most 2048 characters without control characters" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"httpGet\":{\"port\":80,\"query\":\"x\"}}}",
		  "livenessProbe.httpGet.query: unknown field" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":80},\"sleep\":{\"seconds\":1}}}",
		  "livenessProbe.sleep: unknown field" },
		{ PROBE_READINESS,
		  "{\"readinessProbe\":{\"tcpSocket\":{\"port\":80},\"terminationGracePeriodSeconds\":5}}",
		  "readinessProbe.terminationGracePeriodSeconds: must not be set for readinessProbes" },
		{ PROBE_LIVENESS, "{\"livenessProbe\":[1]}", "livenessProbe: must be an object" },
		{ -1, "{\"lifecycle\":{\"postStart\":{\"grpc\":{\"port\":1}}}}",
		  "lifecycle.postStart.grpc: unknown field" },
		{ -2, "{\"lifecycle\":{\"preStop\":{\"sleep\":{}}}}",
		  "lifecycle.preStop.sleep.seconds: Required value" },
		{ -2, "{\"lifecycle\":{\"preStop\":{\"sleep\":{\"seconds\":-2}}}}",
		  "lifecycle.preStop.sleep.seconds: must be greater than or equal to 0" },
		{ -2, "{\"lifecycle\":{\"preStop\":{}}}", "lifecycle.preStop: must specify a handler type" },
		{ -1, "{\"lifecycle\":{\"onStart\":{}}}", "lifecycle.onStart: unknown field" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *message = parse_error(cases[i].kind, NULL, cases[i].json);
		if (!strstr(message, cases[i].message))
			unit_fail(__FILE__, __LINE__, "case %zu: \"%s\" does not contain \"%s\"", i, message,
			          cases[i].message);
		free(message);
	}

	/* the caller's prefix is in the message and in the error's field */
	cJSON *container = cJSON_Parse("{\"livenessProbe\":{\"httpGet\":{\"port\":\"web\"}}}");
	struct error err = { 0 };
	struct probe_spec *spec = NULL;
	CHECK_INT(prober_parse_probe(container, PROBE_LIVENESS, "spec.containers[1]", &spec, &err), ==, -EINVAL);
	CHECK(spec == NULL);
	CHECK_STR(err.field, "spec.containers[1].livenessProbe.httpGet.port");
	CHECK_STR(err.message, "spec.containers[1].livenessProbe.httpGet.port: no container port named 'web'");
	cJSON_Delete(container);
}

TEST(hooks_parse_every_handler_type)
{
	struct probe_handler *h =
	        hook_from(PROBER_PRE_STOP, "{\"lifecycle\":{\"preStop\":{\"sleep\":{\"seconds\":5}}}}");
	CHECK_INT(h->type, ==, PROBE_HANDLER_SLEEP);
	CHECK_INT(h->sleep_ms, ==, 5000);
	prober_handler_free(h);
	h = hook_from(PROBER_POST_START,
	              "{\"ports\":[{\"name\":\"admin\",\"containerPort\":9000}],"
	              "\"lifecycle\":{\"postStart\":{\"httpGet\":{\"port\":\"admin\",\"path\":\"/warm\","
	              "\"httpHeaders\":[{\"name\":\"X-A\",\"value\":\"1\"}]}}}}");
	CHECK_INT(h->type, ==, PROBE_HANDLER_HTTP_GET);
	CHECK_INT(h->port, ==, 9000);
	CHECK_STR(h->path, "/warm");
	CHECK_INT(h->header_count, ==, 1);
	CHECK_STR(h->headers[0].name, "X-A");
	prober_handler_free(h);
	h = hook_from(PROBER_POST_START, "{\"lifecycle\":{\"postStart\":{\"tcpSocket\":{\"port\":22}}}}");
	CHECK_INT(h->type, ==, PROBE_HANDLER_TCP_SOCKET);
	prober_handler_free(h);
}

/* --- executors ------------------------------------------------------------------------------ */

TEST(http_probes_succeed_on_2xx_and_fail_on_the_rest_with_kubernetes_messages)
{
	char *control = xasprintf("%s/fail", unit_temp_dir());
	int listener = listen_tcp("127.0.0.1", 0);
	uint16_t port = port_of(listener);
	pid_t server = start_server(listener, control, false);
	struct loop *loop = new_loop();

	struct outcome o = http_check(loop, port, "/ok", 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_SUCCESS);
	CHECK_STR(o.message, "");

	o = http_check(loop, port, "/fail", 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	CHECK_STR(o.message, "HTTP probe failed with statuscode: 500");

	o = http_check(loop, port, "/interim", 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_SUCCESS);

	o = http_check(loop, port, "/slow", 300);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	char expected[256];
	snprintf(expected, sizeof(expected),
	         "Get \"http://127.0.0.1:%u/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting "
	         "headers)",
	         port);
	CHECK_STR(o.message, expected);

	o = http_check(loop, port, "/garbage", 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	CHECK_CONTAINS(o.message, "malformed HTTP response \"garbage\"");

	o = http_check(loop, port, "/huge", 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	CHECK_CONTAINS(o.message, "server response headers exceeded 16384 bytes; aborted");

	o = http_check(loop, port, "/close", 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	snprintf(expected, sizeof(expected), "Get \"http://127.0.0.1:%u/close\": EOF", port);
	CHECK_STR(o.message, expected);

	int closed_fd;
	uint16_t closed = refused_port(&closed_fd);
	o = http_check(loop, closed, "/ok", 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	snprintf(expected, sizeof(expected),
	         "Get \"http://127.0.0.1:%u/ok\": dial tcp 127.0.0.1:%u: connect: connection refused", closed, closed);
	CHECK_STR(o.message, expected);
	close(closed_fd);

	loop_free(loop);
	stop_server(server);
	free(control);
}

TEST(http_probes_follow_redirects_to_the_same_host_only)
{
	int listener = listen_tcp("127.0.0.1", 0);
	uint16_t port = port_of(listener);
	pid_t server = start_server(listener, "/nonexistent", false);
	struct loop *loop = new_loop();

	struct outcome o = http_check(loop, port, "/redirect", 5000); /* -> /ok */
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_SUCCESS);

	o = http_check(loop, port, "/redirect-absolute", 5000); /* -> http://127.0.0.1:port/fail */
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	CHECK_STR(o.message, "HTTP probe failed with statuscode: 500");

	o = http_check(loop, port, "/redirect-elsewhere", 5000); /* another host: not followed */
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_WARNING);
	CHECK_STR(o.message, "Probe terminated redirects");

	o = http_check(loop, port, "/redirect-loop", 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	CHECK_CONTAINS(o.message, "stopped after 10 redirects");

	loop_free(loop);
	stop_server(server);
}

TEST(http_probes_send_the_user_agent_host_and_custom_headers)
{
	int listener = listen_tcp("127.0.0.1", 0);
	uint16_t port = port_of(listener);
	pid_t server = start_server(listener, "/nonexistent", false);
	struct loop *loop = new_loop();
	struct probe_spec *spec = spec_from(PROBE_READINESS,
	                                    "{\"readinessProbe\":{\"httpGet\":{\"port\":%u,\"path\":\"/headers\","
	                                    "\"httpHeaders\":[{\"name\":\"X-Custom\",\"value\":\"yes\"},"
	                                    "{\"name\":\"Host\",\"value\":\"app.example\"}]}}}",
	                                    port);
	struct prober_target target = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = -1 };
	struct outcome o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_SUCCESS);
	prober_spec_free(spec);

	/* without them the same server answers 400 */
	o = http_check(loop, port, "/headers", 5000);
	CHECK_STR(o.message, "HTTP probe failed with statuscode: 400");
	loop_free(loop);
	stop_server(server);
}

TEST(tcp_probes_connect_or_say_why_not)
{
	int listener = listen_tcp("127.0.0.1", 0);
	uint16_t port = port_of(listener);
	struct loop *loop = new_loop();
	struct prober_target target = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = -1 };
	struct probe_spec *spec = spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":%u}}}", port);
	struct outcome o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_SUCCESS);
	prober_spec_free(spec);
	close(listener);

	int closed_fd;
	uint16_t closed = refused_port(&closed_fd);
	spec = spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":%u,\"host\":\"localhost\"}}}",
	                 closed);
	o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	char expected[128];
	snprintf(expected, sizeof(expected), "dial tcp 127.0.0.1:%u: connect: connection refused", closed);
	CHECK_STR(o.message, expected);
	prober_spec_free(spec);
	close(closed_fd);

	/* a pod IP that is no IP: the probe could not be made (an error, not a failure) */
	target.pod_ip = "not-an-ip";
	spec = spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":80}}}");
	o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_ERROR);
	CHECK_CONTAINS(o.message, "\"not-an-ip\" is not an IP address");
	prober_spec_free(spec);
	loop_free(loop);
}

TEST(exec_probes_succeed_on_exit_0_and_show_the_output_otherwise)
{
	struct loop *loop = new_loop();
	struct exec_log log = { 0 };
	struct prober_target target = { .loop = loop, .netns_fd = -1, .exec = fork_exec, .exec_data = &log };
	struct probe_spec *spec = spec_from(
	        PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"exit 0\"]}}}");
	struct outcome o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_SUCCESS);
	prober_spec_free(spec);

	spec = spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[\"/bin/sh\",\"-c\","
	                                 "\"echo cat: /tmp/healthy: No such file or directory >&2; exit 1\"]}}}");
	o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	CHECK_STR(o.message, "cat: /tmp/healthy: No such file or directory");
	prober_spec_free(spec);

	spec = spec_from(PROBE_LIVENESS,
	                 "{\"livenessProbe\":{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"exit 4\"]}}}");
	o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	CHECK_STR(o.message, "command '/bin/sh -c exit 4' exited with 4");
	prober_spec_free(spec);

	/* a flood of output: the first bytes kept, the command never blocked on a full pipe */
	spec = spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[\"/bin/sh\",\"-c\","
	                                 "\"i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; "
	                                 "i=$((i+1)); done; exit 2\"]}}}");
	o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 10000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	CHECK(strncmp(o.message, "line-0-", 7) == 0);
	CHECK(strlen(o.message) <= PROBER_OUTPUT_MAX);
	prober_spec_free(spec);
	CHECK_INT(log.count, ==, 4);

	/* the runtime could not exec: an error (discarded by the prober), not a failure */
	target.exec = no_exec;
	spec = spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[\"true\"]}}}");
	o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_ERROR);
	CHECK_STR(o.message, "container \"app\" is not running");
	target.exec = NULL;
	o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_ERROR);
	prober_spec_free(spec);
	free_loop(loop);
}

TEST(an_exec_probe_that_times_out_is_killed)
{
	struct loop *loop = new_loop();
	struct exec_log log = { 0 };
	struct prober_target target = { .loop = loop, .netns_fd = -1, .exec = fork_exec, .exec_data = &log };
	struct probe_spec *spec =
	        spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[\"/bin/sleep\",\"60\"]}}}");
	struct outcome o = run_check(&spec->handler, &target, PROBE_CHECK_PROBE, 300);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_FAILURE);
	CHECK_STR(o.message, "command \"/bin/sleep 60\" timed out");
	CHECK(log.last_pid > 0);
	/* killed, and reaped by the loop (not left a zombie) */
	RUN_UNTIL(loop, probe_check_children_pending() == 0);
	CHECK_INT(kill(log.last_pid, 0), ==, -1);
	CHECK_INT(errno, ==, ESRCH);
	prober_spec_free(spec);
	loop_free(loop);
}

/* --- network namespaces ------------------------------------------------------------------------ */

static void bring_up_loopback(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	CHECK_OK(ioctl(fd, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	CHECK_OK(ioctl(fd, SIOCSIFFLAGS, &ifr));
	close(fd);
}

static ino_t current_netns(void)
{
	struct stat st;
	CHECK_OK(stat("/proc/thread-self/ns/net", &st));
	return st.st_ino;
}

struct pod_netns {
	int fd;       /* the namespace */
	pid_t server; /* answers 200 on /ok, inside */
	pid_t decoy;  /* answers 500 to everything, outside, on the same port */
	uint16_t http_port;
	uint16_t tcp_port; /* listening inside; refused outside (bound, not listening) */
	int listening_fd;  /* that listener (it lives in the namespace) */
	int refusing_fd;
};

/* A namespace with only loopback, an HTTP server inside, and on the host's loopback a decoy
 * on the same port: a probe that answers 200 can only have been made inside. */
static void make_pod_netns(struct pod_netns *ns)
{
	int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	CHECK(own >= 0);
	for (int attempt = 0;; attempt++) {
		CHECK(attempt < 20);
		CHECK_OK(unshare(CLONE_NEWNET));
		bring_up_loopback();
		ns->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		CHECK(ns->fd >= 0);
		int inside = listen_tcp("127.0.0.1", 0);
		int inside_tcp = listen_tcp("127.0.0.1", 0);
		ns->http_port = port_of(inside);
		ns->tcp_port = port_of(inside_tcp);
		CHECK_OK(setns(own, CLONE_NEWNET));
		int outside = listen_tcp("127.0.0.1", ns->http_port);
		int refusing = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(ns->tcp_port) };
		inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
		if (outside < 0 || bind(refusing, (struct sockaddr *)&a, sizeof(a)) < 0) {
			/* the port is taken on the host: another pair */
			if (outside >= 0)
				close(outside);
			close(refusing);
			close(inside);
			close(inside_tcp);
			close(ns->fd);
			continue;
		}
		ns->refusing_fd = refusing;
		ns->listening_fd = inside_tcp;
		ns->server = start_server(inside, "/nonexistent", false);
		ns->decoy = start_server(outside, "/nonexistent", true);
		break;
	}
	close(own);
}

static void remove_pod_netns(struct pod_netns *ns)
{
	stop_server(ns->server);
	stop_server(ns->decoy);
	close(ns->refusing_fd);
	close(ns->listening_fd);
	close(ns->fd); /* with the last reference gone the namespace goes */
}

TEST(probes_run_inside_the_pods_network_namespace_and_come_back_out)
{
	struct pod_netns ns;
	ino_t host = current_netns();
	make_pod_netns(&ns);
	CHECK_INT(current_netns(), ==, host);
	struct loop *loop = new_loop();

	struct probe_spec *http = spec_from(
	        PROBE_LIVENESS, "{\"livenessProbe\":{\"httpGet\":{\"port\":%u,\"path\":\"/ok\"}}}", ns.http_port);
	struct probe_spec *tcp =
	        spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"tcpSocket\":{\"port\":%u}}}", ns.tcp_port);

	struct prober_target inside = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = ns.fd };
	struct outcome o = run_check(&http->handler, &inside, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_SUCCESS);
	CHECK_INT(current_netns(), ==, host);
	o = run_check(&tcp->handler, &inside, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_SUCCESS);
	CHECK_INT(current_netns(), ==, host);

	/* the same probes from the host's namespace reach the decoy, or nothing */
	struct prober_target outside = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = -1 };
	o = run_check(&http->handler, &outside, PROBE_CHECK_PROBE, 5000);
	CHECK_STR(o.message, "HTTP probe failed with statuscode: 500");
	o = run_check(&tcp->handler, &outside, PROBE_CHECK_PROBE, 5000);
	CHECK_CONTAINS(o.message, "connect: connection refused");

	/* a descriptor that is no namespace: an error, and the agent stays where it was */
	int not_a_namespace = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct prober_target broken = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = not_a_namespace };
	o = run_check(&tcp->handler, &broken, PROBE_CHECK_PROBE, 5000);
	CHECK_INT(o.outcome, ==, PROBE_OUTCOME_ERROR);
	CHECK_CONTAINS(o.message, "enter the pod's network namespace");
	CHECK_INT(current_netns(), ==, host);
	close(not_a_namespace);

	prober_spec_free(http);
	prober_spec_free(tcp);
	loop_free(loop);
	remove_pod_netns(&ns);
	CHECK_INT(current_netns(), ==, host);
}

/* --- the prober -------------------------------------------------------------------------------- */

struct watch {
	int updates;
	int changes;
	int failures; /* attempts reported failed */
	enum probe_result result;
	char message[PROBER_MESSAGE_MAX];
	int lines_at_change[8]; /* the attempt count (lines in a file) at each change */
	const char *count_file;
	bool free_on_change;
	struct prober *release_on_success; /* startup gating liveness */
};

static int count_lines(const char *path)
{
	char *text = NULL;
	size_t length = 0;
	if (file_read(path, 1 << 20, &text, &length, NULL) < 0)
		return 0;
	int n = 0;
	for (size_t i = 0; i < length; i++)
		n += text[i] == '\n';
	free(text);
	return n;
}

static void on_update(struct prober *prober, const struct prober_update *update, void *data)
{
	struct watch *w = data;
	w->updates++;
	w->result = update->result;
	snprintf(w->message, sizeof(w->message), "%s", update->message ? update->message : "");
	if (update->message && strstr(update->message, " probe failed: "))
		w->failures++;
	if (update->changed) {
		if (w->changes < 8 && w->count_file)
			w->lines_at_change[w->changes] = count_lines(w->count_file);
		w->changes++;
		CHECK_INT(prober_result(prober), ==, update->result);
		if (w->release_on_success && update->result == PROBE_SUCCESS)
			prober_hold(w->release_on_success, false);
		if (w->free_on_change)
			prober_free(prober);
	}
}

/* An exec probe that counts its attempts in count_file and fails while fail_file exists. */
static struct probe_spec *counting_spec(enum probe_kind kind, const char *count_file, const char *fail_file)
{
	struct probe_spec *spec =
	        spec_from(kind, "{\"%s\":{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"echo >> %s; test ! -e %s\"]}}}",
	                  prober_kind_field(kind), count_file, fail_file);
	spec->period_ms = 20;
	spec->timeout_ms = 5000;
	return spec;
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
}

TEST(readiness_counts_runs_against_both_thresholds)
{
	struct loop *loop = new_loop();
	char *count_file = xasprintf("%s/count", unit_temp_dir());
	char *fail_file = xasprintf("%s/fail", unit_temp_dir());
	struct probe_spec *spec = counting_spec(PROBE_READINESS, count_file, fail_file);
	spec->success_threshold = 2;
	spec->failure_threshold = 3;
	struct watch w = { .count_file = count_file };
	struct prober_target target = { .loop = loop, .netns_fd = -1, .exec = fork_exec };
	struct prober *prober;
	CHECK_OK(prober_new(spec, &target, on_update, &w, &prober, NULL));
	prober_spec_free(spec);                              /* copied */
	CHECK_INT(prober_result(prober), ==, PROBE_FAILURE); /* readiness starts not ready */
	prober_start(prober, 0);

	RUN_UNTIL(loop, w.changes == 1);
	CHECK_INT(w.result, ==, PROBE_SUCCESS);
	CHECK_INT(w.lines_at_change[0], ==, 2); /* successThreshold 2: ready at the 2nd success */

	touch(fail_file);
	RUN_UNTIL(loop, w.changes == 2);
	CHECK_INT(w.result, ==, PROBE_FAILURE);
	CHECK_INT(w.failures, ==, 3); /* every failed attempt is told, the 3rd flips the result */
	CHECK_INT(w.lines_at_change[1] - w.lines_at_change[0], >=, 3);
	CHECK_CONTAINS(w.message, "Readiness probe failed: ");
	CHECK(!prober_finished(prober)); /* readiness keeps probing */

	unlink(fail_file);
	RUN_UNTIL(loop, w.changes == 3);
	CHECK_INT(w.result, ==, PROBE_SUCCESS);
	prober_free(prober);
	free_loop(loop);
	free(count_file);
	free(fail_file);
}

TEST(liveness_stops_after_its_failure_until_the_container_restarts)
{
	struct loop *loop = new_loop();
	char *count_file = xasprintf("%s/count", unit_temp_dir());
	char *fail_file = xasprintf("%s/fail", unit_temp_dir());
	touch(fail_file);
	struct probe_spec *spec = counting_spec(PROBE_LIVENESS, count_file, fail_file);
	spec->failure_threshold = 2;
	struct watch w = { .count_file = count_file };
	struct prober_target target = { .loop = loop, .netns_fd = -1, .exec = fork_exec };
	struct prober *prober;
	CHECK_OK(prober_new(spec, &target, on_update, &w, &prober, NULL));
	prober_spec_free(spec);
	CHECK_INT(prober_result(prober), ==, PROBE_SUCCESS);
	prober_start(prober, 0);

	RUN_UNTIL(loop, w.changes == 1);
	CHECK_INT(w.result, ==, PROBE_FAILURE);
	CHECK_INT(w.failures, ==, 2);
	CHECK_INT(w.lines_at_change[0], ==, 2);
	CHECK(prober_finished(prober));
	CHECK_CONTAINS(prober_last_message(prober), "Liveness probe failed: ");

	/* no attempt while the kubelet restarts the container (many periods pass) */
	run_for(loop, 300);
	CHECK_INT(count_lines(count_file), ==, 2);

	/* restarted: back to the initial result, probing again */
	unlink(fail_file);
	prober_start(prober, 0);
	CHECK_INT(prober_result(prober), ==, PROBE_SUCCESS);
	CHECK(!prober_finished(prober));
	RUN_UNTIL(loop, count_lines(count_file) >= 5);
	CHECK_INT(w.changes, ==, 1); /* success all along: no change to tell */
	prober_free(prober);
	free_loop(loop);
	free(count_file);
	free(fail_file);
}

TEST(startup_gates_liveness_and_then_stops)
{
	struct loop *loop = new_loop();
	char *startup_count = xasprintf("%s/startup", unit_temp_dir());
	char *liveness_count = xasprintf("%s/liveness", unit_temp_dir());
	char *not_started = xasprintf("%s/not-started", unit_temp_dir());
	touch(not_started);
	struct prober_target target = { .loop = loop, .netns_fd = -1, .exec = fork_exec };

	struct probe_spec *spec = counting_spec(PROBE_LIVENESS, liveness_count, "/nonexistent");
	struct watch liveness_watch = { 0 };
	struct prober *liveness;
	CHECK_OK(prober_new(spec, &target, on_update, &liveness_watch, &liveness, NULL));
	prober_spec_free(spec);
	prober_hold(liveness, true); /* the kubelet holds it while a startup probe exists */
	prober_start(liveness, 0);

	spec = counting_spec(PROBE_STARTUP, startup_count, not_started);
	spec->failure_threshold = 1000;
	struct watch startup_watch = { .release_on_success = liveness, .count_file = startup_count };
	struct prober *startup;
	CHECK_OK(prober_new(spec, &target, on_update, &startup_watch, &startup, NULL));
	prober_spec_free(spec);
	CHECK_INT(prober_result(startup), ==, PROBE_UNKNOWN);
	prober_start(startup, 0);

	RUN_UNTIL(loop, count_lines(startup_count) >= 5);
	CHECK_INT(count_lines(liveness_count), ==, 0); /* held */
	CHECK_INT(startup_watch.changes, ==, 0);       /* failures below the threshold */

	unlink(not_started);
	RUN_UNTIL(loop, startup_watch.changes == 1);
	CHECK_INT(prober_result(startup), ==, PROBE_SUCCESS);
	CHECK(prober_finished(startup));
	int startup_attempts = startup_watch.lines_at_change[0];
	RUN_UNTIL(loop, count_lines(liveness_count) >= 3);           /* released by the callback */
	CHECK_INT(count_lines(startup_count), ==, startup_attempts); /* startup probes no more */
	CHECK_INT(liveness_watch.changes, ==, 0);

	prober_free(startup);
	prober_free(liveness);
	free_loop(loop);
	free(startup_count);
	free(liveness_count);
	free(not_started);
}

TEST(the_initial_delay_counts_from_the_containers_start)
{
	struct loop *loop = new_loop();
	char *count_file = xasprintf("%s/count", unit_temp_dir());
	struct prober_target target = { .loop = loop, .netns_fd = -1, .exec = fork_exec };
	struct probe_spec *spec = counting_spec(PROBE_READINESS, count_file, "/nonexistent");
	spec->initial_delay_ms = 3600 * 1000;
	struct watch w = { 0 };
	struct prober *prober;
	CHECK_OK(prober_new(spec, &target, on_update, &w, &prober, NULL));
	prober_spec_free(spec);

	prober_start(prober, 0); /* just started: an hour to wait */
	run_for(loop, 300);
	CHECK_INT(count_lines(count_file), ==, 0);
	CHECK_INT(prober_result(prober), ==, PROBE_FAILURE);

	prober_start(prober, 2 * 3600 * 1000); /* adopted, running for two hours: probe now */
	RUN_UNTIL(loop, w.changes == 1);
	CHECK_INT(w.result, ==, PROBE_SUCCESS);

	prober_stop(prober);
	int attempts = count_lines(count_file);
	run_for(loop, 200);
	CHECK_INT(count_lines(count_file), ==, attempts);
	CHECK_INT(prober_result(prober), ==, PROBE_SUCCESS); /* stop keeps the result */
	prober_free(prober);
	free_loop(loop);
	free(count_file);
}

TEST(an_http_prober_turns_unready_and_back_with_event_messages)
{
	char *control = xasprintf("%s/fail", unit_temp_dir());
	int listener = listen_tcp("127.0.0.1", 0);
	uint16_t port = port_of(listener);
	pid_t server = start_server(listener, control, false);
	struct loop *loop = new_loop();
	struct probe_spec *spec =
	        spec_from(PROBE_READINESS,
	                  "{\"ports\":[{\"name\":\"http\",\"containerPort\":%u}],"
	                  "\"readinessProbe\":{\"httpGet\":{\"port\":\"http\",\"path\":\"/toggle\"}}}",
	                  port);
	spec->period_ms = 20;
	struct watch w = { 0 };
	struct prober_target target = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = -1 };
	struct prober *prober;
	CHECK_OK(prober_new(spec, &target, on_update, &w, &prober, NULL));
	prober_spec_free(spec);
	prober_start(prober, 0);
	RUN_UNTIL(loop, w.changes == 1);
	CHECK_INT(w.result, ==, PROBE_SUCCESS);
	touch(control);
	RUN_UNTIL(loop, w.changes == 2);
	CHECK_STR(w.message, "Readiness probe failed: HTTP probe failed with statuscode: 503");
	CHECK_STR(prober_last_message(prober), w.message);
	prober_free(prober);
	loop_free(loop);
	stop_server(server);
	free(control);
}

TEST(errors_are_reported_but_never_counted)
{
	struct loop *loop = new_loop();
	struct prober_target target = { .loop = loop, .netns_fd = -1, .exec = no_exec };
	struct probe_spec *spec = spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[\"true\"]},"
	                                                    "\"failureThreshold\":1}}");
	spec->period_ms = 10;
	struct watch w = { 0 };
	struct prober *prober;
	CHECK_OK(prober_new(spec, &target, on_update, &w, &prober, NULL));
	prober_spec_free(spec);
	prober_start(prober, 0);
	RUN_UNTIL(loop, w.updates >= 5);
	CHECK_INT(w.changes, ==, 0);
	CHECK_INT(prober_result(prober), ==, PROBE_SUCCESS);
	CHECK_STR(w.message, "Liveness probe errored: container \"app\" is not running");
	prober_free(prober);
	loop_free(loop);
}

TEST(a_callback_may_free_its_prober_and_a_freed_prober_kills_its_command)
{
	struct loop *loop = new_loop();
	struct prober_target target = { .loop = loop, .netns_fd = -1, .exec = fork_exec };
	struct probe_spec *spec =
	        spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"exit 1\"]},"
	                                  "\"failureThreshold\":1}}");
	spec->period_ms = 10;
	struct watch w = { .free_on_change = true };
	struct prober *prober;
	CHECK_OK(prober_new(spec, &target, on_update, &w, &prober, NULL));
	prober_spec_free(spec);
	prober_start(prober, 0);
	RUN_UNTIL(loop, w.changes == 1); /* freed inside: AddressSanitizer watches */
	run_for(loop, 100);
	CHECK_INT(w.changes, ==, 1);

	struct exec_log log = { 0 };
	target.exec_data = &log;
	spec = spec_from(PROBE_LIVENESS, "{\"livenessProbe\":{\"exec\":{\"command\":[\"/bin/sleep\",\"60\"]}}}");
	struct watch quiet = { 0 };
	CHECK_OK(prober_new(spec, &target, on_update, &quiet, &prober, NULL));
	prober_spec_free(spec);
	prober_start(prober, 0);
	RUN_UNTIL(loop, log.last_pid > 0);
	prober_free(prober);
	RUN_UNTIL(loop, probe_check_children_pending() == 0);
	CHECK_INT(kill(log.last_pid, 0), ==, -1);
	CHECK_INT(quiet.updates, ==, 0);
	loop_free(loop);
}

/* --- hooks ----------------------------------------------------------------------------------- */

struct hook_result {
	bool done;
	bool succeeded;
	char message[PROBER_MESSAGE_MAX];
};

static void on_hook(bool succeeded, const char *message, void *data)
{
	struct hook_result *h = data;
	h->done = true;
	h->succeeded = succeeded;
	snprintf(h->message, sizeof(h->message), "%s", message);
}

static struct hook_result run_hook(const struct probe_handler *handler, const struct prober_target *target,
                                   uint64_t timeout_ms)
{
	struct hook_result h = { 0 };
	struct prober_hook *hook = NULL;
	CHECK_OK(prober_hook_run(handler, target, timeout_ms, on_hook, &h, &hook, NULL));
	CHECK(hook != NULL);
	RUN_UNTIL(target->loop, h.done);
	return h;
}

TEST(lifecycle_hooks_run_once_and_report)
{
	int listener = listen_tcp("127.0.0.1", 0);
	uint16_t port = port_of(listener);
	pid_t server = start_server(listener, "/nonexistent", false);
	struct loop *loop = new_loop();
	struct prober_target target = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = -1, .exec = fork_exec };

	struct probe_handler *h =
	        hook_from(PROBER_POST_START,
	                  "{\"lifecycle\":{\"postStart\":{\"exec\":{\"command\":[\"/bin/sh\",\"-c\",\"exit 0\"]}}}}");
	struct hook_result r = run_hook(h, &target, 0);
	CHECK(r.succeeded);
	prober_handler_free(h);

	h = hook_from(PROBER_POST_START, "{\"lifecycle\":{\"postStart\":{\"exec\":{\"command\":[\"/bin/sh\",\"-c\","
	                                 "\"echo oops; exit 3\"]}}}}");
	r = run_hook(h, &target, 0);
	CHECK(!r.succeeded);
	CHECK_STR(r.message, "command '/bin/sh -c echo oops; exit 3' exited with 3: oops");
	prober_handler_free(h);

	/* any HTTP response will do for a hook (a 404 here), with the lifecycle user agent */
	h = hook_from(PROBER_PRE_STOP, "{\"lifecycle\":{\"preStop\":{\"httpGet\":{\"port\":%u,\"path\":\"/hook\"}}}}",
	              port);
	r = run_hook(h, &target, 5000);
	CHECK(r.succeeded);
	prober_handler_free(h);

	int closed_fd;
	uint16_t closed = refused_port(&closed_fd);
	h = hook_from(PROBER_PRE_STOP, "{\"lifecycle\":{\"preStop\":{\"httpGet\":{\"port\":%u}}}}", closed);
	r = run_hook(h, &target, 5000);
	CHECK(!r.succeeded);
	CHECK_CONTAINS(r.message, "connect: connection refused");
	prober_handler_free(h);

	h = hook_from(PROBER_PRE_STOP, "{\"lifecycle\":{\"preStop\":{\"tcpSocket\":{\"port\":%u}}}}", port);
	r = run_hook(h, &target, 5000);
	CHECK(r.succeeded);
	prober_handler_free(h);
	close(closed_fd);

	h = hook_from(PROBER_PRE_STOP, "{\"lifecycle\":{\"preStop\":{\"sleep\":{\"seconds\":0}}}}");
	h->sleep_ms = 50;
	r = run_hook(h, &target, 0);
	CHECK(r.succeeded);
	h->sleep_ms = 60000; /* cut short by the timeout (the grace period) */
	r = run_hook(h, &target, 100);
	CHECK(!r.succeeded);
	prober_handler_free(h);

	/* a cancelled hook never calls back, and its command is killed */
	h = hook_from(PROBER_PRE_STOP,
	              "{\"lifecycle\":{\"preStop\":{\"exec\":{\"command\":[\"/bin/sleep\",\"60\"]}}}}");
	struct hook_result never = { 0 };
	struct prober_hook *hook;
	CHECK_OK(prober_hook_run(h, &target, 0, on_hook, &never, &hook, NULL));
	run_for(loop, 50);
	prober_hook_cancel(hook);
	RUN_UNTIL(loop, probe_check_children_pending() == 0);
	CHECK(!never.done);
	prober_handler_free(h);

	loop_free(loop);
	stop_server(server);
}

TEST(hooks_and_probers_work_inside_the_pods_namespace)
{
	struct pod_netns ns;
	make_pod_netns(&ns);
	struct loop *loop = new_loop();
	struct prober_target target = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = ns.fd };
	struct probe_handler *h = hook_from(
	        PROBER_POST_START, "{\"lifecycle\":{\"postStart\":{\"tcpSocket\":{\"port\":%u}}}}", ns.tcp_port);
	struct hook_result r = run_hook(h, &target, 5000);
	CHECK(r.succeeded);
	prober_handler_free(h);

	struct probe_spec *spec = spec_from(
	        PROBE_READINESS, "{\"readinessProbe\":{\"httpGet\":{\"port\":%u,\"path\":\"/ok\"}}}", ns.http_port);
	spec->period_ms = 20;
	struct watch w = { 0 };
	struct prober *prober;
	CHECK_OK(prober_new(spec, &target, on_update, &w, &prober, NULL));
	prober_spec_free(spec);
	prober_start(prober, 0);
	RUN_UNTIL(loop, w.changes == 1);
	CHECK_INT(w.result, ==, PROBE_SUCCESS); /* the decoy outside would have said 500 */
	prober_free(prober);
	loop_free(loop);
	remove_pod_netns(&ns);
}
