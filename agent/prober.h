/* The kubelet's prober: liveness, readiness and startup probes, and the lifecycle hooks
 * (postStart, preStop), as Kubernetes defines them, driven by Bramble's event loop.
 *
 * 1. Parse: prober_parse_probe() / prober_parse_hook() read a container's JSON (cJSON)
 *    into a probe_spec / probe_handler, resolving named ports against the container's
 *    ports[].name, applying Kubernetes' defaults, and rejecting what Bramble cannot do with
 *    an error naming the field ("livenessProbe.httpGet.port: no container port named 'web'").
 * 2. Probe: a prober per (container, kind) makes an attempt initialDelaySeconds after the
 *    container started, then every periodSeconds, each bounded by timeoutSeconds, and counts
 *    consecutive outcomes against successThreshold / failureThreshold exactly as the
 *    kubelet's probe worker does. It calls back on every change of result and on every
 *    failed attempt, with Kubernetes' event text ("Liveness probe failed: HTTP probe failed
 *    with statuscode: 500").
 * 3. Hooks: prober_hook_run() runs one lifecycle handler once and calls back when done.
 *
 * Executors (agent/probe_check.c): exec through the caller's exec function (the runtime
 * driver's "run this in the container"); tcpSocket: a non-blocking connect; httpGet: a
 * minimal non-blocking HTTP/1.1 client (agent/probe_http.c). Sockets are opened inside the
 * pod's network namespace when the caller gives one, so a pod reachable only on its own
 * loopback can be probed. Nothing blocks the loop.
 *
 * Where Bramble differs from the kubelet, on purpose:
 *   - httpGet.scheme HTTPS is rejected when parsed (the agent's TLS library is built for
 *     DTLS with ECDSA only; Kubernetes itself would not verify the certificate anyway).
 *   - host must be an IP address (or "localhost"): the agent resolves no names.
 *   - gRPC probes are rejected when parsed, naming the field.
 *   - An HTTP probe decides on the response head alone and does not read the body.
 *   - The first attempt after initialDelaySeconds is made at that moment, not at the next
 *     tick of a ticker started with the pod.
 *   - A lifecycle tcpSocket handler connects (Kubernetes accepts the field but always fails
 *     the hook).
 */
#ifndef BRAMBLE_AGENT_PROBER_H
#define BRAMBLE_AGENT_PROBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "agent/probe_http.h"

struct error;
struct loop;
struct prober;
struct prober_hook;

#define PROBER_USER_AGENT "kube-probe/1.30"
#define PROBER_HOOK_USER_AGENT "kube-lifecycle/1.30"
#define PROBER_OUTPUT_MAX 1024  /* bytes of a command's output kept for a message */
#define PROBER_COMMAND_MAX 256  /* arguments of an exec command */
#define PROBER_HEADERS_MAX 64   /* httpGet.httpHeaders */
#define PROBER_PATH_MAX 2048    /* httpGet.path */
#define PROBER_REDIRECTS_MAX 10 /* same-host redirects followed, as Go's client */
#define PROBER_MESSAGE_MAX 1536

enum probe_kind {
	PROBE_LIVENESS,
	PROBE_READINESS,
	PROBE_STARTUP,
};

enum probe_result {
	PROBE_UNKNOWN,
	PROBE_SUCCESS,
	PROBE_FAILURE,
};

enum probe_handler_type {
	PROBE_HANDLER_EXEC,
	PROBE_HANDLER_HTTP_GET,
	PROBE_HANDLER_TCP_SOCKET,
	PROBE_HANDLER_SLEEP, /* lifecycle hooks only */
};

enum prober_hook_kind {
	PROBER_POST_START,
	PROBER_PRE_STOP,
};

struct probe_handler {
	enum probe_handler_type type;
	char **command;                    /* exec: NULL-terminated, at least one argument */
	char *host;                        /* httpGet, tcpSocket: an IP literal, or NULL for the pod's IP */
	uint16_t port;                     /* httpGet, tcpSocket: resolved from a name if it was one */
	char *path;                        /* httpGet: as written, "/" by default */
	struct probe_http_header *headers; /* httpGet */
	size_t header_count;
	uint64_t sleep_ms; /* sleep */
};

/* Durations are kept in milliseconds: parsing multiplies Kubernetes' seconds, tests may set
 * shorter ones directly. */
struct probe_spec {
	enum probe_kind kind;
	struct probe_handler handler;
	uint64_t initial_delay_ms;         /* initialDelaySeconds, 0 */
	uint64_t period_ms;                /* periodSeconds, 10 s */
	uint64_t timeout_ms;               /* timeoutSeconds, 1 s */
	unsigned success_threshold;        /* successThreshold, 1 (must be 1 for liveness, startup) */
	unsigned failure_threshold;        /* failureThreshold, 3 */
	int64_t termination_grace_seconds; /* the probe's terminationGracePeriodSeconds, or -1 */
};

/* "Liveness", "Readiness", "Startup" (as Kubernetes' events say them). */
const char *prober_kind_name(enum probe_kind kind);
/* "livenessProbe", "readinessProbe", "startupProbe" (the container's field). */
const char *prober_kind_field(enum probe_kind kind);

/* Parses container.<livenessProbe|readinessProbe|startupProbe>. *ret_spec is NULL (and 0
 * returned) when the container has no such probe. field_prefix ("spec.containers[0]", or
 * NULL) is put in front of the field named in an error. */
int prober_parse_probe(const cJSON *container, enum probe_kind kind, const char *field_prefix,
                       struct probe_spec **ret_spec, struct error *err);
void prober_spec_free(struct probe_spec *spec);

/* Parses container.lifecycle.<postStart|preStop>; *ret_handler NULL when there is none. */
int prober_parse_hook(const cJSON *container, enum prober_hook_kind hook, const char *field_prefix,
                      struct probe_handler **ret_handler, struct error *err);
void prober_handler_free(struct probe_handler *handler);

/* Starts command in the container with output_fd as its stdout and stderr (the callee
 * dup2()s it; the prober closes its own copy after the call) and returns the pid of a
 * child of this process, which the prober reaps with loop_watch_child() and SIGKILLs on
 * timeout. The child must unblock the signals the loop blocks (see platform/loop.h). */
typedef int (*prober_exec_fn)(void *data, const char *const *argv, int output_fd, pid_t *ret_pid, struct error *err);

/* Where and how to probe one container. Everything is copied: the caller may free it. */
struct prober_target {
	struct loop *loop;
	const char *pod_ip; /* the host of httpGet / tcpSocket without one; NULL: 127.0.0.1 */
	int netns_fd;       /* the pod's network namespace (duplicated); -1: the agent's own */
	prober_exec_fn exec;
	void *exec_data;
};

/* What an attempt did, given to the prober's callback. */
struct prober_update {
	enum probe_result result; /* the result now (after this attempt) */
	bool changed;             /* result differs from the one before: act on it */
	const char *message;      /* "Liveness probe failed: ..." / "... warning: ..." /
	                           * "... errored: ...", or NULL for a quiet success */
};

/* Called after every attempt that changed the result or produced a message. The callback
 * may call prober_stop/start/hold or prober_free on this prober. */
typedef void (*prober_fn)(struct prober *prober, const struct prober_update *update, void *data);

/* A prober starts idle: prober_start() when the container runs. spec is copied. */
int prober_new(const struct probe_spec *spec, const struct prober_target *target, prober_fn fn, void *data,
               struct prober **ret_prober, struct error *err);
/* Stops any attempt in flight (an exec child is killed) and frees. NULL is allowed. */
void prober_free(struct prober *prober);

/* The container (re)started running_ms ago (0: now; more after an agent restart that
 * adopted it): the result goes back to its initial value without a callback (readiness:
 * FAILURE, liveness: SUCCESS, startup: UNKNOWN), counts restart, attempts are scheduled. */
void prober_start(struct prober *prober, uint64_t running_ms);
/* The container is not running: no more attempts; the result stays as it is. */
void prober_stop(struct prober *prober);
/* While held no attempt is made (one in flight is abandoned). The kubelet holds liveness
 * and readiness until the startup probe succeeds; on release an attempt is made at once
 * (after the initial delay), as Kubernetes triggers readiness when the container starts. */
void prober_hold(struct prober *prober, bool held);

enum probe_result prober_result(const struct prober *prober);
enum probe_kind prober_kind(const struct prober *prober);
/* The last attempt's message ("" when none yet), for the container status. */
const char *prober_last_message(const struct prober *prober);

/* After a liveness or startup FAILURE, or a startup SUCCESS, the prober makes no more
 * attempts until the next prober_start(): the container is being restarted, or has
 * started. */
bool prober_finished(const struct prober *prober);

/* Runs a lifecycle handler once. Success for exec: exit status 0; httpGet: any HTTP
 * response (as Kubernetes); tcpSocket: a connection; sleep: the time passed. timeout_ms 0:
 * none. done is called exactly once, from the loop, unless the hook is cancelled first;
 * the hook is already freed when done runs (do not cancel it from there). */
typedef void (*prober_hook_fn)(bool succeeded, const char *message, void *data);
int prober_hook_run(const struct probe_handler *handler, const struct prober_target *target, uint64_t timeout_ms,
                    prober_hook_fn done, void *data, struct prober_hook **ret_hook, struct error *err);
/* Abandons a hook still running (an exec child is killed); done is not called. */
void prober_hook_cancel(struct prober_hook *hook);

#endif
