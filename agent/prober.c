/* See prober.h.
 *
 * A prober's state, as the kubelet's probe worker (pkg/kubelet/prober/worker.go) keeps it:
 *
 *   result      what is published: starts at the kind's initial value (readiness FAILURE,
 *               liveness SUCCESS, startup UNKNOWN) at every prober_start()
 *   last, run   the last attempt's outcome and how many attempts in a row had it; the
 *               result becomes that outcome once run reaches its threshold
 *   started     the container runs (prober_start .. prober_stop)
 *   held        attempts suspended by the caller (liveness/readiness until startup succeeds)
 *   finished    liveness/startup FAILURE published (the container is being restarted) or
 *               startup SUCCESS published (its job is done): no attempts until prober_start
 *
 *           prober_start                 timer                    check done
 *   idle ---------------> waiting -------------------> attempting ------------> waiting
 *     ^                    |  ^ prober_hold(false)                      |         (or finished)
 *     +---- prober_stop ---+  +---- prober_hold(true) from any state ---+
 *
 * At most one timer or one check exists at a time. The next attempt is due at
 * max(started + initialDelay, last attempt's start + period): an attempt slower than the
 * period delays the next one, as the kubelet's ticker drops ticks while a probe runs.
 */
#include "agent/prober.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/probe_check.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/loop.h"
#include "platform/memory.h"

const char *prober_kind_name(enum probe_kind kind)
{
	switch (kind) {
	case PROBE_LIVENESS:
		return "Liveness";
	case PROBE_READINESS:
		return "Readiness";
	case PROBE_STARTUP:
		return "Startup";
	}
	return "?";
}

const char *prober_kind_field(enum probe_kind kind)
{
	switch (kind) {
	case PROBE_LIVENESS:
		return "livenessProbe";
	case PROBE_READINESS:
		return "readinessProbe";
	case PROBE_STARTUP:
		return "startupProbe";
	}
	return "?";
}

/* --- parsing --------------------------------------------------------------------------- */

struct path {
	char text[ERROR_FIELD_MAX];
};

static struct path path_child(const struct path *parent, const char *name)
{
	struct path p;
	snprintf(p.text, sizeof(p.text), "%s%s%s", parent->text, parent->text[0] ? "." : "", name);
	return p;
}

static struct path path_index(const struct path *parent, size_t index)
{
	struct path p;
	snprintf(p.text, sizeof(p.text), "%s[%zu]", parent->text, index);
	return p;
}

static int reject_unknown(const cJSON *object, const struct path *path, const char *const *known, struct error *err)
{
	const cJSON *item;
	cJSON_ArrayForEach(item, object)
	{
		bool found = false;
		for (const char *const *k = known; *k && !found; k++)
			found = strcmp(item->string, *k) == 0;
		if (!found) {
			struct path at = path_child(path, item->string);
			return error_set_field(err, EINVAL, at.text, "unknown field");
		}
	}
	return 0;
}

static int require_object(const cJSON *item, const struct path *path, struct error *err)
{
	return cJSON_IsObject(item) ? 0 : error_set_field(err, EINVAL, path->text, "must be an object");
}

/* An integer field: absent, null or (when zero_is_default) 0 give the default. */
static int parse_integer(const cJSON *object, const char *name, const struct path *parent, int64_t default_value,
                         bool zero_is_default, int64_t minimum, int64_t *ret, struct error *err)
{
	struct path path = path_child(parent, name);
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
	if (!item || cJSON_IsNull(item)) {
		*ret = default_value;
		return 0;
	}
	double value = item->valuedouble;
	if (!cJSON_IsNumber(item) || value != floor(value) || value > 2147483647.0 || value < -2147483648.0)
		return error_set_field(err, EINVAL, path.text, "must be an integer");
	if (value < (double)minimum)
		return error_set_field(err, EINVAL, path.text, "must be greater than or equal to %lld",
		                       (long long)minimum);
	*ret = value == 0 && zero_is_default ? default_value : (int64_t)value;
	return 0;
}

static bool has_control_characters(const char *s, bool allow_tab)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && !(allow_tab && *s == '\t')) || *s == 0x7f)
			return true;
	return false;
}

static bool valid_header_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
			return false;
	}
	return true;
}

/* port: a number, or the name of one of the container's ports (or a number in a string,
 * Kubernetes' "last ditch effort"). */
static int parse_port(const cJSON *object, const struct path *parent, const cJSON *container, uint16_t *ret,
                      struct error *err)
{
	struct path path = path_child(parent, "port");
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, "port");
	if (!item || cJSON_IsNull(item))
		return error_set_field(err, EINVAL, path.text, "Required value");
	double value;
	if (cJSON_IsNumber(item)) {
		value = item->valuedouble;
		if (value != floor(value))
			return error_set_field(err, EINVAL, path.text, "must be an integer or a port name");
	} else if (cJSON_IsString(item)) {
		const char *name = item->valuestring;
		const cJSON *ports = cJSON_GetObjectItemCaseSensitive(container, "ports");
		const cJSON *port;
		if (!cJSON_IsArray(ports))
			ports = NULL;
		cJSON_ArrayForEach(port, ports)
		{
			const cJSON *port_name = cJSON_GetObjectItemCaseSensitive(port, "name");
			const cJSON *number = cJSON_GetObjectItemCaseSensitive(port, "containerPort");
			if (cJSON_IsString(port_name) && strcmp(port_name->valuestring, name) == 0 &&
			    cJSON_IsNumber(number) && number->valuedouble >= 1 && number->valuedouble <= 65535) {
				*ret = (uint16_t)number->valuedouble;
				return 0;
			}
		}
		char *end = NULL;
		errno = 0;
		long number = strtol(name, &end, 10);
		if (!*name || *end || errno)
			return error_set_field(err, EINVAL, path.text, "no container port named '%s'", name);
		value = (double)number;
	} else {
		return error_set_field(err, EINVAL, path.text, "must be an integer or a port name");
	}
	if (value < 1 || value > 65535)
		return error_set_field(err, EINVAL, path.text, "must be between 1 and 65535, inclusive");
	*ret = (uint16_t)value;
	return 0;
}

static int parse_host(const cJSON *object, const struct path *parent, char **ret, struct error *err)
{
	struct path path = path_child(parent, "host");
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, "host");
	*ret = NULL;
	if (!item || cJSON_IsNull(item))
		return 0;
	if (!cJSON_IsString(item))
		return error_set_field(err, EINVAL, path.text, "must be a string");
	const char *host = item->valuestring;
	if (!*host)
		return 0; /* the pod's IP */
	unsigned char address[sizeof(struct in6_addr)];
	if (strcasecmp(host, "localhost") != 0 && inet_pton(AF_INET, host, address) != 1 &&
	    inet_pton(AF_INET6, host, address) != 1)
		return error_set_field(err, EINVAL, path.text,
		                       "must be an IP address: Bramble's prober does not resolve host names");
	*ret = xstrdup(host);
	return 0;
}

static int parse_exec(const cJSON *exec, const struct path *path, struct probe_handler *h, struct error *err)
{
	static const char *const known[] = { "command", NULL };
	int r = require_object(exec, path, err);
	if (r == 0)
		r = reject_unknown(exec, path, known, err);
	if (r < 0)
		return r;
	struct path command_path = path_child(path, "command");
	const cJSON *command = cJSON_GetObjectItemCaseSensitive(exec, "command");
	int count = cJSON_IsArray(command) ? cJSON_GetArraySize(command) : 0;
	if (!command || cJSON_IsNull(command) || (cJSON_IsArray(command) && count == 0))
		return error_set_field(err, EINVAL, command_path.text, "Required value: a command to run");
	if (!cJSON_IsArray(command))
		return error_set_field(err, EINVAL, command_path.text, "must be a list of strings");
	if (count > PROBER_COMMAND_MAX)
		return error_set_field(err, EINVAL, command_path.text, "must have at most %d arguments",
		                       PROBER_COMMAND_MAX);
	h->type = PROBE_HANDLER_EXEC;
	h->command = xcalloc((size_t)count + 1, sizeof(*h->command));
	for (int i = 0; i < count; i++) {
		const cJSON *argument = cJSON_GetArrayItem(command, i);
		if (!cJSON_IsString(argument)) {
			struct path at = path_index(&command_path, (size_t)i);
			return error_set_field(err, EINVAL, at.text, "must be a string");
		}
		h->command[i] = xstrdup(argument->valuestring);
	}
	return 0;
}

static int parse_tcp_socket(const cJSON *tcp, const struct path *path, const cJSON *container, struct probe_handler *h,
                            struct error *err)
{
	static const char *const known[] = { "port", "host", NULL };
	int r = require_object(tcp, path, err);
	if (r == 0)
		r = reject_unknown(tcp, path, known, err);
	if (r < 0)
		return r;
	h->type = PROBE_HANDLER_TCP_SOCKET;
	r = parse_port(tcp, path, container, &h->port, err);
	if (r == 0)
		r = parse_host(tcp, path, &h->host, err);
	return r;
}

static int parse_headers(const cJSON *list, const struct path *path, struct probe_handler *h, struct error *err)
{
	if (!list || cJSON_IsNull(list))
		return 0;
	if (!cJSON_IsArray(list))
		return error_set_field(err, EINVAL, path->text, "must be a list");
	int count = cJSON_GetArraySize(list);
	if (count > PROBER_HEADERS_MAX)
		return error_set_field(err, EINVAL, path->text, "must have at most %d headers", PROBER_HEADERS_MAX);
	h->headers = xcalloc((size_t)count + 1, sizeof(*h->headers));
	for (int i = 0; i < count; i++) {
		static const char *const known[] = { "name", "value", NULL };
		const cJSON *header = cJSON_GetArrayItem(list, i);
		struct path at = path_index(path, (size_t)i);
		int r = require_object(header, &at, err);
		if (r == 0)
			r = reject_unknown(header, &at, known, err);
		if (r < 0)
			return r;
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(header, "name");
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(header, "value");
		struct path name_path = path_child(&at, "name"), value_path = path_child(&at, "value");
		if (!cJSON_IsString(name) || !valid_header_name(name->valuestring))
			return error_set_field(err, EINVAL, name_path.text, "must be a valid HTTP header name");
		if (value && !cJSON_IsNull(value) && !cJSON_IsString(value))
			return error_set_field(err, EINVAL, value_path.text, "must be a string");
		const char *text = cJSON_IsString(value) ? value->valuestring : "";
		if (has_control_characters(text, true) || strlen(text) > 4096)
			return error_set_field(err, EINVAL, value_path.text,
			                       "must be at most 4096 characters without line breaks");
		h->headers[i].name = xstrdup(name->valuestring);
		h->headers[i].value = xstrdup(text);
		h->header_count++;
	}
	return 0;
}

static int parse_http_get(const cJSON *http, const struct path *path, const cJSON *container, struct probe_handler *h,
                          struct error *err)
{
	static const char *const known[] = { "path", "port", "host", "scheme", "httpHeaders", NULL };
	int r = require_object(http, path, err);
	if (r == 0)
		r = reject_unknown(http, path, known, err);
	if (r < 0)
		return r;
	h->type = PROBE_HANDLER_HTTP_GET;

	struct path scheme_path = path_child(path, "scheme");
	const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(http, "scheme");
	if (scheme && !cJSON_IsNull(scheme)) {
		if (!cJSON_IsString(scheme))
			return error_set_field(err, EINVAL, scheme_path.text, "must be a string");
		if (strcmp(scheme->valuestring, "HTTPS") == 0)
			return error_set_field(err, ENOTSUP, scheme_path.text,
			                       "HTTPS is not supported: Bramble's prober speaks plain HTTP "
			                       "(use HTTP, or a tcpSocket probe)");
		if (strcmp(scheme->valuestring, "HTTP") != 0)
			return error_set_field(err, EINVAL, scheme_path.text,
			                       "Unsupported value: \"%s\": supported values: \"HTTP\", \"HTTPS\"",
			                       scheme->valuestring);
	}

	struct path path_path = path_child(path, "path");
	const cJSON *request_path = cJSON_GetObjectItemCaseSensitive(http, "path");
	const char *text = "/";
	if (request_path && !cJSON_IsNull(request_path)) {
		if (!cJSON_IsString(request_path))
			return error_set_field(err, EINVAL, path_path.text, "must be a string");
		if (request_path->valuestring[0])
			text = request_path->valuestring;
	}
	if (strlen(text) > PROBER_PATH_MAX || has_control_characters(text, false))
		return error_set_field(err, EINVAL, path_path.text,
		                       "must be at most %d characters without control characters", PROBER_PATH_MAX);
	h->path = xstrdup(text);

	struct path headers_path = path_child(path, "httpHeaders");
	r = parse_port(http, path, container, &h->port, err);
	if (r == 0)
		r = parse_host(http, path, &h->host, err);
	if (r == 0)
		r = parse_headers(cJSON_GetObjectItemCaseSensitive(http, "httpHeaders"), &headers_path, h, err);
	return r;
}

static int parse_sleep(const cJSON *sleep, const struct path *path, struct probe_handler *h, struct error *err)
{
	static const char *const known[] = { "seconds", NULL };
	int r = require_object(sleep, path, err);
	if (r == 0)
		r = reject_unknown(sleep, path, known, err);
	if (r < 0)
		return r;
	if (!cJSON_GetObjectItemCaseSensitive(sleep, "seconds")) {
		struct path at = path_child(path, "seconds");
		return error_set_field(err, EINVAL, at.text, "Required value");
	}
	int64_t seconds;
	r = parse_integer(sleep, "seconds", path, 0, false, 0, &seconds, err);
	if (r < 0)
		return r;
	h->type = PROBE_HANDLER_SLEEP;
	h->sleep_ms = (uint64_t)seconds * 1000;
	return 0;
}

/* The handler of a probe or hook: exactly one of exec, httpGet, tcpSocket (, sleep for a
 * hook; grpc for a probe, refused by name). */
static int parse_handler(const cJSON *object, const struct path *path, bool hook, const cJSON *container,
                         struct probe_handler *h, struct error *err)
{
	static const char *const types[] = { "exec", "httpGet", "tcpSocket", "grpc", "sleep", NULL };
	const cJSON *found = NULL;
	int count = 0;
	for (const char *const *type = types; *type; type++) {
		if ((hook && strcmp(*type, "grpc") == 0) || (!hook && strcmp(*type, "sleep") == 0))
			continue;
		const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, *type);
		if (item && !cJSON_IsNull(item)) {
			count++;
			found = found ? found : item;
		}
	}
	if (count == 0)
		return error_set_field(err, EINVAL, path->text, "must specify a handler type (%s)",
		                       hook ? "exec, httpGet, tcpSocket or sleep" : "exec, httpGet or tcpSocket");
	if (count > 1)
		return error_set_field(err, EINVAL, path->text, "may not specify more than 1 handler type");
	struct path at = path_child(path, found->string);
	if (strcmp(found->string, "exec") == 0)
		return parse_exec(found, &at, h, err);
	if (strcmp(found->string, "httpGet") == 0)
		return parse_http_get(found, &at, container, h, err);
	if (strcmp(found->string, "tcpSocket") == 0)
		return parse_tcp_socket(found, &at, container, h, err);
	if (strcmp(found->string, "sleep") == 0)
		return parse_sleep(found, &at, h, err);
	return error_set_field(err, ENOTSUP, at.text,
	                       "gRPC probes are not supported by Bramble: use exec, httpGet or tcpSocket");
}

static void handler_clear(struct probe_handler *h)
{
	if (h->command)
		for (char **a = h->command; *a; a++)
			free(*a);
	free(h->command);
	free(h->host);
	free(h->path);
	for (size_t i = 0; i < h->header_count; i++) {
		free(h->headers[i].name);
		free(h->headers[i].value);
	}
	free(h->headers);
	memset(h, 0, sizeof(*h));
}

static void handler_copy(struct probe_handler *to, const struct probe_handler *from)
{
	*to = *from;
	to->command = NULL;
	if (from->command) {
		size_t n = 0;
		while (from->command[n])
			n++;
		to->command = xcalloc(n + 1, sizeof(*to->command));
		for (size_t i = 0; i < n; i++)
			to->command[i] = xstrdup(from->command[i]);
	}
	to->host = from->host ? xstrdup(from->host) : NULL;
	to->path = from->path ? xstrdup(from->path) : NULL;
	to->headers = xcalloc(from->header_count + 1, sizeof(*to->headers));
	for (size_t i = 0; i < from->header_count; i++) {
		to->headers[i].name = xstrdup(from->headers[i].name);
		to->headers[i].value = xstrdup(from->headers[i].value);
	}
}

void prober_handler_free(struct probe_handler *handler)
{
	if (!handler)
		return;
	handler_clear(handler);
	free(handler);
}

void prober_spec_free(struct probe_spec *spec)
{
	if (!spec)
		return;
	handler_clear(&spec->handler);
	free(spec);
}

static struct path base_path(const char *field_prefix, const char *name)
{
	struct path prefix = { "" };
	if (field_prefix)
		snprintf(prefix.text, sizeof(prefix.text), "%s", field_prefix);
	return path_child(&prefix, name);
}

int prober_parse_probe(const cJSON *container, enum probe_kind kind, const char *field_prefix,
                       struct probe_spec **ret_spec, struct error *err)
{
	static const char *const known[] = { "exec",
		                             "httpGet",
		                             "tcpSocket",
		                             "grpc",
		                             "initialDelaySeconds",
		                             "timeoutSeconds",
		                             "periodSeconds",
		                             "successThreshold",
		                             "failureThreshold",
		                             "terminationGracePeriodSeconds",
		                             NULL };
	*ret_spec = NULL;
	struct path path = base_path(field_prefix, prober_kind_field(kind));
	const cJSON *probe = cJSON_GetObjectItemCaseSensitive(container, prober_kind_field(kind));
	if (!probe || cJSON_IsNull(probe))
		return 0;
	int r = require_object(probe, &path, err);
	if (r == 0)
		r = reject_unknown(probe, &path, known, err);
	if (r < 0)
		return r;

	struct probe_spec *spec = xcalloc(1, sizeof(*spec));
	spec->kind = kind;
	int64_t delay, timeout, period, success, failure, grace;
	r = parse_handler(probe, &path, false, container, &spec->handler, err);
	if (r == 0)
		r = parse_integer(probe, "initialDelaySeconds", &path, 0, false, 0, &delay, err);
	if (r == 0)
		r = parse_integer(probe, "timeoutSeconds", &path, 1, true, 0, &timeout, err);
	if (r == 0)
		r = parse_integer(probe, "periodSeconds", &path, 10, true, 0, &period, err);
	if (r == 0)
		r = parse_integer(probe, "successThreshold", &path, 1, true, 0, &success, err);
	if (r == 0)
		r = parse_integer(probe, "failureThreshold", &path, 3, true, 0, &failure, err);
	if (r == 0)
		r = parse_integer(probe, "terminationGracePeriodSeconds", &path, -1, false, 1, &grace, err);
	if (r == 0 && success != 1 && kind != PROBE_READINESS) {
		struct path at = path_child(&path, "successThreshold");
		r = error_set_field(err, EINVAL, at.text, "must be 1");
	}
	if (r == 0 && grace >= 0 && kind == PROBE_READINESS) {
		struct path at = path_child(&path, "terminationGracePeriodSeconds");
		r = error_set_field(err, EINVAL, at.text, "must not be set for readinessProbes");
	}
	if (r < 0) {
		prober_spec_free(spec);
		return r;
	}
	spec->initial_delay_ms = (uint64_t)delay * 1000;
	spec->timeout_ms = (uint64_t)timeout * 1000;
	spec->period_ms = (uint64_t)period * 1000;
	spec->success_threshold = (unsigned)success;
	spec->failure_threshold = (unsigned)failure;
	spec->termination_grace_seconds = grace;
	*ret_spec = spec;
	return 0;
}

int prober_parse_hook(const cJSON *container, enum prober_hook_kind hook, const char *field_prefix,
                      struct probe_handler **ret_handler, struct error *err)
{
	static const char *const known_lifecycle[] = { "postStart", "preStop", NULL };
	static const char *const known[] = { "exec", "httpGet", "tcpSocket", "sleep", NULL };
	*ret_handler = NULL;
	struct path lifecycle_path = base_path(field_prefix, "lifecycle");
	const cJSON *lifecycle = cJSON_GetObjectItemCaseSensitive(container, "lifecycle");
	if (!lifecycle || cJSON_IsNull(lifecycle))
		return 0;
	int r = require_object(lifecycle, &lifecycle_path, err);
	if (r == 0)
		r = reject_unknown(lifecycle, &lifecycle_path, known_lifecycle, err);
	if (r < 0)
		return r;
	const char *name = hook == PROBER_POST_START ? "postStart" : "preStop";
	struct path path = path_child(&lifecycle_path, name);
	const cJSON *object = cJSON_GetObjectItemCaseSensitive(lifecycle, name);
	if (!object || cJSON_IsNull(object))
		return 0;
	r = require_object(object, &path, err);
	if (r == 0)
		r = reject_unknown(object, &path, known, err);
	if (r < 0)
		return r;
	struct probe_handler *handler = xcalloc(1, sizeof(*handler));
	r = parse_handler(object, &path, true, container, handler, err);
	if (r < 0) {
		prober_handler_free(handler);
		return r;
	}
	*ret_handler = handler;
	return 0;
}

/* --- the prober ---------------------------------------------------------------------------- */

struct prober {
	struct probe_spec spec;
	struct prober_target target; /* pod_ip and netns_fd are the prober's own copies */
	prober_fn fn;
	void *data;

	enum probe_result result;
	enum probe_result last;
	unsigned run;
	bool started, held, finished, attempted;
	int64_t started_at;       /* monotonic ms; signed: a running time longer than the clock's
	                           * value (a test's, on a board booted minutes ago) puts it before 0 */
	uint64_t last_attempt_at; /* monotonic ms, valid when attempted */
	struct loop_timer *timer;
	struct probe_check *check;
	char last_message[PROBER_MESSAGE_MAX];
};

static enum probe_result initial_result(enum probe_kind kind)
{
	switch (kind) {
	case PROBE_READINESS:
		return PROBE_FAILURE;
	case PROBE_LIVENESS:
		return PROBE_SUCCESS;
	case PROBE_STARTUP:
		break;
	}
	return PROBE_UNKNOWN;
}

static void cancel_attempts(struct prober *p)
{
	loop_cancel_timer(p->target.loop, p->timer);
	p->timer = NULL;
	probe_check_cancel(p->check);
	p->check = NULL;
}

static void on_attempt_done(enum probe_outcome outcome, const char *message, void *data);

static void on_timer(struct loop *loop, void *data)
{
	struct prober *p = data;
	p->timer = NULL;
	p->attempted = true;
	p->last_attempt_at = clock_monotonic_ms();
	p->check = probe_check_start(&p->spec.handler, &p->target, PROBE_CHECK_PROBE, p->spec.timeout_ms,
	                             on_attempt_done, p);
}

static void schedule(struct prober *p)
{
	if (!p->started || p->held || p->finished || p->check || p->timer)
		return;
	uint64_t now = clock_monotonic_ms();
	int64_t due = p->started_at + (int64_t)p->spec.initial_delay_ms;
	if (p->attempted && (int64_t)(p->last_attempt_at + p->spec.period_ms) > due)
		due = (int64_t)(p->last_attempt_at + p->spec.period_ms);
	p->timer = loop_add_timer(p->target.loop, due > (int64_t)now ? (uint64_t)(due - (int64_t)now) : 0, on_timer, p);
}

/* Kubernetes' worker: a run of threshold equal outcomes publishes the outcome. */
static void count(struct prober *p, enum probe_result outcome)
{
	if (p->last == outcome) {
		p->run++;
	} else {
		p->last = outcome;
		p->run = 1;
	}
	unsigned threshold = outcome == PROBE_SUCCESS ? p->spec.success_threshold : p->spec.failure_threshold;
	if (p->run < threshold)
		return;
	p->result = outcome;
	if (outcome == PROBE_FAILURE && p->spec.kind != PROBE_READINESS) {
		p->finished = true; /* on hold until the container restarts */
		p->run = 0;
	}
	if (outcome == PROBE_SUCCESS && p->spec.kind == PROBE_STARTUP)
		p->finished = true;
}

static void on_attempt_done(enum probe_outcome outcome, const char *message, void *data)
{
	struct prober *p = data;
	p->check = NULL;
	enum probe_result before = p->result;
	const char *kind = prober_kind_name(p->spec.kind);
	switch (outcome) {
	case PROBE_OUTCOME_SUCCESS:
		p->last_message[0] = '\0';
		count(p, PROBE_SUCCESS);
		break;
	case PROBE_OUTCOME_WARNING:
		snprintf(p->last_message, sizeof(p->last_message), "%s probe warning: %s", kind, message);
		count(p, PROBE_SUCCESS);
		break;
	case PROBE_OUTCOME_FAILURE:
		snprintf(p->last_message, sizeof(p->last_message), "%s probe failed: %s", kind, message);
		count(p, PROBE_FAILURE);
		break;
	case PROBE_OUTCOME_ERROR:
		/* not counted: Kubernetes throws away a probe that could not be made */
		snprintf(p->last_message, sizeof(p->last_message), "%s probe errored: %s", kind, message);
		break;
	}
	schedule(p);
	struct prober_update update = {
		.result = p->result,
		.changed = p->result != before,
		.message = p->last_message[0] ? p->last_message : NULL,
	};
	if (update.changed || update.message)
		p->fn(p, &update, p->data); /* last: the callback may free the prober */
}

int prober_new(const struct probe_spec *spec, const struct prober_target *target, prober_fn fn, void *data,
               struct prober **ret_prober, struct error *err)
{
	if (!spec || !target || !target->loop || !fn)
		return error_set(err, EINVAL, "prober_new: a spec, a target with a loop and a callback are needed");
	if (spec->period_ms == 0 || spec->timeout_ms == 0 || spec->success_threshold == 0 ||
	    spec->failure_threshold == 0)
		return error_set(err, EINVAL, "%s probe: period, timeout and thresholds must be positive",
		                 prober_kind_name(spec->kind));
	int netns_fd = -1;
	if (target->netns_fd >= 0) {
		netns_fd = fcntl(target->netns_fd, F_DUPFD_CLOEXEC, 3);
		if (netns_fd < 0)
			return error_set_errno(err, errno, "duplicate the pod's network namespace descriptor");
	}
	struct prober *p = xcalloc(1, sizeof(*p));
	p->spec = *spec;
	handler_copy(&p->spec.handler, &spec->handler);
	p->target = *target;
	p->target.pod_ip = target->pod_ip ? xstrdup(target->pod_ip) : NULL;
	p->target.netns_fd = netns_fd;
	p->fn = fn;
	p->data = data;
	p->result = initial_result(spec->kind);
	*ret_prober = p;
	return 0;
}

void prober_free(struct prober *p)
{
	if (!p)
		return;
	cancel_attempts(p);
	handler_clear(&p->spec.handler);
	free((char *)p->target.pod_ip);
	if (p->target.netns_fd >= 0)
		close(p->target.netns_fd);
	free(p);
}

void prober_start(struct prober *p, uint64_t running_ms)
{
	cancel_attempts(p);
	uint64_t now = clock_monotonic_ms();
	p->result = initial_result(p->spec.kind);
	p->last = PROBE_UNKNOWN;
	p->run = 0;
	p->finished = false;
	p->attempted = false;
	p->started = true;
	p->started_at = (int64_t)now - (int64_t)running_ms;
	p->last_message[0] = '\0';
	schedule(p);
}

void prober_stop(struct prober *p)
{
	cancel_attempts(p);
	p->started = false;
}

void prober_hold(struct prober *p, bool held)
{
	if (held == p->held)
		return;
	p->held = held;
	if (held) {
		cancel_attempts(p);
		return;
	}
	p->attempted = false; /* released: the next attempt is due at once (past the delay) */
	schedule(p);
}

enum probe_result prober_result(const struct prober *p)
{
	return p->result;
}

enum probe_kind prober_kind(const struct prober *p)
{
	return p->spec.kind;
}

const char *prober_last_message(const struct prober *p)
{
	return p->last_message;
}

bool prober_finished(const struct prober *p)
{
	return p->finished;
}

/* --- lifecycle hooks ----------------------------------------------------------------------- */

struct prober_hook {
	struct probe_check *check;
	prober_hook_fn done;
	void *data;
};

static void on_hook_done(enum probe_outcome outcome, const char *message, void *data)
{
	struct prober_hook *hook = data;
	prober_hook_fn done = hook->done;
	void *done_data = hook->data;
	free(hook);
	done(outcome == PROBE_OUTCOME_SUCCESS || outcome == PROBE_OUTCOME_WARNING, message, done_data);
}

int prober_hook_run(const struct probe_handler *handler, const struct prober_target *target, uint64_t timeout_ms,
                    prober_hook_fn done, void *data, struct prober_hook **ret_hook, struct error *err)
{
	if (!handler || !target || !target->loop || !done)
		return error_set(err, EINVAL,
		                 "prober_hook_run: a handler, a target with a loop and a callback are needed");
	struct prober_hook *hook = xcalloc(1, sizeof(*hook));
	hook->done = done;
	hook->data = data;
	hook->check = probe_check_start(handler, target, PROBE_CHECK_HOOK, timeout_ms, on_hook_done, hook);
	if (ret_hook)
		*ret_hook = hook;
	return 0;
}

void prober_hook_cancel(struct prober_hook *hook)
{
	if (!hook)
		return;
	probe_check_cancel(hook->check);
	free(hook);
}
