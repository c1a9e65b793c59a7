/* The API server: Kubernetes paths and verbs over CoAP, on a transport, backed by the store.
 *
 *   /api/v1/namespaces/{ns}/{resource}[/{name}[/status]]      namespaced, core group
 *   /api/v1/{resource}[/{name}[/status]]                       cluster-scoped, or all namespaces
 *   /apis/{group}/{version}/...                                the same for other groups
 *   /version, /healthz, /.well-known/core
 *
 *   GET      get; list (labelSelector, fieldSelector, limit, continue); with Observe: watch;
 *            with watch=1&resourceVersion=N: the events since N
 *   POST     create (on a collection)
 *   PUT      replace (a stale metadata.resourceVersion is refused with 4.12)
 *   PATCH / iPATCH   JSON merge patch (RFC 7386 / RFC 8132)
 *   DELETE   delete (graceful where Kubernetes is: finalizers, pods bound to a node)
 *
 * Errors are a CoAP code and {"reason","message","field"}. Writes are answered only after
 * the store has committed them (separate responses, group commit per burst of requests).
 */
#ifndef BRAMBLE_CORE_APISERVER_H
#define BRAMBLE_CORE_APISERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/controllers.h"

struct apiserver;
struct error;
struct registry;
struct store;
struct transport;

#define APISERVER_DEFAULT_MAX_BODY (1024 * 1024)
#define APISERVER_DEFAULT_LIST_PAGE 500

struct apiserver_options {
	size_t max_body_bytes;                  /* larger requests get 4.13; 0: default */
	size_t max_list_page;                   /* objects per list page, at most; 0: default */
	size_t max_watches_per_client;          /* 0: default */
	const char *version_json;               /* what GET /version answers */
	bool no_scheduler;                      /* do not bind pending pods (core/binder.c) */
	bool no_controllers;                    /* run no controllers (core/controllers.c) */
	struct controllers_options controllers; /* grace periods, eviction rate ...; zero: defaults */
	struct registry *registry;              /* serves /registry/... (core/registry.h); may be NULL */
	/* Told the PSK identity of each request before it is served (core/bootstrap.c learns
	 * that a board switched to a new credential); may be NULL. */
	void (*on_identity)(void *data, const char *identity);
	void *on_identity_data;
};

int apiserver_new(struct transport *transport, struct store *store, const struct apiserver_options *options,
                  struct apiserver **ret_apiserver, struct error *err);
void apiserver_free(struct apiserver *apiserver);

/* Creates the namespaces every cluster has (default, kube-system, kube-public,
 * kube-node-lease) when missing. Writes only on a new store. */
int apiserver_bootstrap(struct apiserver *apiserver, struct error *err);

size_t apiserver_watch_count(const struct apiserver *apiserver);

#endif
