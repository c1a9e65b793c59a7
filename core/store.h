/* The store: objects in SQLite (WAL), one global revision, a change log for watches.
 *
 * Like etcd, every committed change takes the next value of one cluster-wide revision
 * counter, which becomes the object's metadata.resourceVersion. All mutations go through
 * store_apply() — the single place where a request becomes a change record, and where
 * replication (Raft) will slot in. Nothing else writes the database.
 *
 * Group commit: store_apply() writes into an open transaction; store_commit() makes every
 * change since the last commit durable at once and then reports each to the change hook
 * (watchers never see uncommitted data). The API server commits once per event-loop
 * iteration and only then answers the writes, so an acknowledged write survives a crash.
 * An idle store writes nothing: no timers, no checkpoints without writes.
 *
 * Secrets are encrypted at rest (AES-256-GCM) in both the object table and the change log.
 */
#ifndef BRAMBLE_CORE_STORE_H
#define BRAMBLE_CORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct error;
struct store;

#define STORE_SECRET_KEY_SIZE 32
#define STORE_DEFAULT_CHANGE_LOG_LIMIT 10000

struct store_options {
	const char *path;          /* the SQLite file */
	const uint8_t *secret_key; /* STORE_SECRET_KEY_SIZE bytes */
	uint64_t change_log_limit; /* changes kept for watch replay; 0: default */
	bool durable;              /* fsync at every commit (synchronous=FULL) */
	size_t cache_kib;          /* SQLite page cache; 0: 2048 */
};

enum store_event { STORE_ADDED, STORE_MODIFIED, STORE_DELETED };

struct store_change {
	enum store_event type;
	uint64_t revision;
	const char *resource;  /* "pods" (group-qualified for non-core groups: "deployments.apps") */
	const char *namespace; /* "" for cluster-scoped objects */
	const char *name;
	const char *object;   /* JSON: the new state, or the last state for STORE_DELETED */
	const char *previous; /* JSON before the change; NULL for STORE_ADDED and in replays */
};

typedef void (*store_change_fn)(const struct store_change *change, void *data);
/* Return a negative value to stop a listing early; it is returned by the listing. */
typedef int (*store_object_fn)(const char *object, size_t length, void *data);

int store_open(const struct store_options *options, struct store **ret_store, struct error *err);
void store_close(struct store *store);

/* The revision of the last committed change (0 for an empty store). */
uint64_t store_revision(const struct store *store);
/* The oldest revision still in the change log (replays from before it are refused). */
uint64_t store_oldest_revision(const struct store *store);

/* Called after each commit, once per change, in revision order. */
void store_set_change_hook(struct store *store, store_change_fn fn, void *data);

/* -ENOENT when absent. */
int store_get(struct store *store, const char *resource, const char *namespace, const char *name, char **ret_object,
              struct error *err);

/* Objects of a resource in (namespace, name) order; namespace NULL lists all namespaces.
 * Resumes after the key continue_from (as returned in *ret_continue) and stops after limit
 * objects (0: no limit), setting *ret_continue (NULL when the listing is complete). */
int store_list(struct store *store, const char *resource, const char *namespace, const char *continue_from,
               size_t limit, store_object_fn fn, void *data, char **ret_continue, struct error *err);

enum store_op { STORE_CREATE, STORE_REPLACE, STORE_DELETE };

struct store_request {
	enum store_op op;
	const char *resource;
	const char *namespace; /* "" for cluster-scoped */
	const char *name;
	cJSON *object;              /* CREATE and REPLACE: the full object; resourceVersion is set here */
	uint64_t expected_revision; /* REPLACE and DELETE: 0 = any, else the stored resourceVersion */
};

/* The one mutation path. CREATE of an existing key: -EEXIST; REPLACE or DELETE of a
 * missing one: -ENOENT; expected_revision not the stored one: -ESTALE. On success the
 * stored JSON (with its new resourceVersion) is returned in *ret_object (may be NULL). */
int store_apply(struct store *store, const struct store_request *request, char **ret_object, uint64_t *ret_revision,
                struct error *err);

/* Changes applied since the last commit. */
size_t store_pending(const struct store *store);

/* Makes pending changes durable, then runs the change hook for each. On failure every
 * pending change is rolled back (and the hook is not run). */
int store_commit(struct store *store, struct error *err);

/* Replays committed changes of resource (NULL: all) with revision > after, in order.
 * -ERANGE when `after` is older than the change log reaches (the caller must re-list). */
int store_changes_since(struct store *store, const char *resource, uint64_t after, store_change_fn fn, void *data,
                        struct error *err);

/* "SQLite 3.46.1", read from the library. */
void store_library_version(char *buf, size_t size);

#endif
