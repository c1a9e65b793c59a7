/* Events the agent writes about its pods, as the kubelet writes them (source component
 * "kubelet", the board as host): image pulls, probe failures, containers killed.
 *
 * Fire and forget: the POST goes over the agent's link when it is up and is dropped
 * otherwise (an Event is a hint for `bramble describe`, not state); nothing is written
 * unless something happens, so an idle board writes no Events. */
#ifndef BRAMBLE_AGENT_EVENTS_H
#define BRAMBLE_AGENT_EVENTS_H

#include <stdarg.h>

struct link;

/* Who an Event is about: a pod, and one of its containers (NULL: the pod itself). */
struct event_subject {
	const char *namespace, *pod, *uid, *container;
	const char *node; /* source.host; NULL: left out */
};

/* type: "Normal" or "Warning"; reason: Kubernetes' (Pulled, Unhealthy, Killing...). */
void event_post(struct link *link, const struct event_subject *about, const char *type, const char *reason,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void event_postv(struct link *link, const struct event_subject *about, const char *type, const char *reason,
                 const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#endif
