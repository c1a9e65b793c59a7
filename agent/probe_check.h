/* One attempt of a probe handler (exec, tcpSocket, httpGet, sleep), on the event loop.
 * Used by agent/prober.c for probes and hooks; private to the prober.
 *
 * A check always completes through its callback, from the loop, never from inside
 * probe_check_start() (so a caller's state is settled before it hears back): failures to
 * even begin (no socket, no exec function) are delivered on the next loop iteration.
 */
#ifndef BRAMBLE_AGENT_PROBE_CHECK_H
#define BRAMBLE_AGENT_PROBE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/prober.h"

struct probe_check;

enum probe_outcome {
	PROBE_OUTCOME_SUCCESS,
	PROBE_OUTCOME_WARNING, /* a success with something to say (a redirect not followed) */
	PROBE_OUTCOME_FAILURE,
	PROBE_OUTCOME_ERROR, /* the probe could not be made at all: Kubernetes discards it */
};

enum probe_check_mode {
	PROBE_CHECK_PROBE, /* HTTP 200-399 succeeds */
	PROBE_CHECK_HOOK,  /* any HTTP response succeeds; exec failures say the exit code */
};

/* message is never NULL ("" for a quiet success). The check is freed before the call. */
typedef void (*probe_check_fn)(enum probe_outcome outcome, const char *message, void *data);

/* timeout_ms 0: no limit (hooks only). handler and target are used during the call only
 * (copied where needed). */
struct probe_check *probe_check_start(const struct probe_handler *handler, const struct prober_target *target,
                                      enum probe_check_mode mode, uint64_t timeout_ms, probe_check_fn done, void *data);
/* Abandons a check: sockets closed, timers cancelled, an exec child killed (and reaped
 * later by the loop). done is not called. NULL is allowed. */
void probe_check_cancel(struct probe_check *check);

/* Exec children killed by a cancel or a timeout and not reaped yet (tests wait for 0). */
unsigned probe_check_children_pending(void);

/* Opens a socket in the network namespace netns_fd (-1: the current one) and returns to
 * the current namespace before returning, on every path. */
int probe_socket_in_netns(int netns_fd, int family, int type, struct error *err);

#endif
