/* Private to the controllers: core/controllers.c (the manager), core/controller.c (what
 * every controller uses) and one file per controller (replicaset.c, deployment.c, ...).
 *
 * A controller is four functions (struct controller_ops): it is told of every committed
 * change to a pod, a node or a cached object (before the cache takes it, so it sees the old
 * and the new state) and answers by queueing keys; controllers_run() then calls its sync()
 * once per queued key. sync() reads the object it reconciles from the store (which includes
 * writes not yet committed), the rest from the caches (as of the last commit), and writes
 * through store_apply only what differs from what is stored.
 *
 * Why the caches never lead to double work: a key is synced at most once per run, and every
 * write a sync makes comes back through the change hook at the next commit, together with
 * the cache update, before the key can be synced again.
 */
#ifndef BRAMBLE_CORE_CONTROLLER_H
#define BRAMBLE_CORE_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/controllers.h"
#include "platform/map.h"

struct error;
struct kind;
struct loop;
struct loop_timer;
struct store;

/* --- the compact pod and node of the caches ------------------------------------------ */

#define POD_MAX_OWNERS 4 /* owner references kept per pod (more are ignored) */
#define POD_MAX_PORTS 32 /* container ports kept per pod */

enum pod_phase { POD_PENDING, POD_RUNNING, POD_SUCCEEDED, POD_FAILED, POD_UNKNOWN };

struct pod_owner {
	char *api_version, *kind, *name, *uid;
	bool controller, block;
};

struct pod_port {
	char *name; /* may be NULL */
	int port;
	char protocol[8];
};

struct pod {
	char *key; /* namespace/name */
	char *namespace, *name, *uid;
	cJSON *labels; /* an object, never NULL */
	struct pod_owner owners[POD_MAX_OWNERS];
	int owner_count;
	int controller; /* index into owners of the controller reference, or -1 */
	char *node_name;
	char *target_node; /* unbound: the one node its required affinity allows (metadata.name In [x]) */
	enum pod_phase phase;
	bool ready;
	int64_t ready_since_ms; /* wall clock: the Ready condition's lastTransitionTime */
	bool deleting;          /* metadata.deletionTimestamp set */
	int64_t created_ms;     /* wall clock */
	int64_t finished_ms;    /* wall clock: the latest container termination, 0: none */
	int restarts;
	char *pod_ip, *hostname, *subdomain;
	struct pod_port ports[POD_MAX_PORTS];
	int port_count;
	cJSON *tolerations;   /* spec.tolerations, or NULL */
	uint64_t evict_at_ms; /* node lifecycle: wall-clock time of a planned eviction, 0: none */
};

bool pod_active(const struct pod *pod); /* neither terminated nor being deleted */
bool pod_available(const struct pod *pod, int min_ready_seconds, int64_t now_ms);
/* Did anything an owning controller counts change (labels, owner, phase, readiness,
 * deletion, node, restarts)? Either may be NULL. */
bool pod_changed_for_owner(const struct pod *old, const struct pod *new);
/* The owner reference with controller=true when it names kind; NULL otherwise. */
const struct pod_owner *pod_controller(const struct pod *pod, const char *kind);

enum node_ready { NODE_READY_UNKNOWN, NODE_READY_TRUE, NODE_READY_FALSE };

struct node {
	char *name, *uid;
	cJSON *labels; /* an object, never NULL */
	cJSON *taints; /* spec.taints (an array, never NULL) */
	bool unschedulable;
	enum node_ready ready;
	uint64_t heartbeat_ms; /* monotonic: the last heartbeat, or when first seen */
};

/* --- the manager's state, shared by every controller --------------------------------- */

enum controller_id {
	CONTROLLER_NAMESPACE,
	CONTROLLER_GARBAGE,
	CONTROLLER_DEPLOYMENT,
	CONTROLLER_REPLICASET,
	CONTROLLER_DAEMONSET,
	CONTROLLER_JOB,
	CONTROLLER_ENDPOINTS,
	CONTROLLER_NODE_LIFECYCLE,
	CONTROLLER_HPA,
	CONTROLLER_NODE_IPAM,
	CONTROLLER_COUNT
};

/* Keys to sync: unique, in the order queued. */
struct queue {
	struct map keys;
};

/* A sync that took long (a ReplicaSet of thousands of pods) is not run again within a few
 * times its cost: under a stream of pod changes it would otherwise run after every commit. */
struct sync_cost {
	uint64_t at_ms;   /* monotonic: when it ended */
	uint64_t cost_us; /* how long it took */
};

struct delayed {
	uint64_t due_ms; /* monotonic */
	enum controller_id id;
	char *key;
};

/* The object caches: resource key ("deployments.apps") -> map of "namespace/name" -> cJSON. */
enum cached_kind {
	CACHED_REPLICASETS,
	CACHED_DEPLOYMENTS,
	CACHED_DAEMONSETS,
	CACHED_JOBS,
	CACHED_SERVICES,
	CACHED_NAMESPACES,
	CACHED_COUNT
};

struct event_memory {
	char *what; /* uid|reason|message */
	int64_t at_ms;
};

#define CONTROLLER_EVENT_MEMORY 256

struct controllers {
	struct store *store;
	struct loop *loop;
	struct controllers_options options;
	controllers_kick_fn kick;
	void *kick_data;
	int64_t clock_offset_ms; /* tests move time forward */

	/* caches, as of the last commit */
	struct map pods;              /* key -> struct pod */
	struct map pods_by_owner;     /* owner uid -> map of key -> pod */
	struct map pods_by_node;      /* node name -> map of key -> pod */
	struct map pods_by_namespace; /* namespace -> map of key -> pod */
	struct map orphans;           /* namespace -> map of key -> pod without a controller reference */
	struct map nodes;             /* name -> struct node */
	struct map objects[CACHED_COUNT];

	struct queue queues[CONTROLLER_COUNT];
	struct map costs[CONTROLLER_COUNT]; /* key -> struct sync_cost, for costly syncs only */
	struct delayed *delayed;
	size_t delayed_count, delayed_capacity;
	struct loop_timer *timer;
	uint64_t timer_due_ms;
	bool running;

	struct event_memory events[CONTROLLER_EVENT_MEMORY];
	size_t event_next;

	/* garbage collector: owner uid -> map of "resource/namespace/name" -> (void *)1, for the
	 * dependents other than pods (those are in pods_by_owner) */
	struct map dependents;

	/* node lifecycle */
	double eviction_tokens;
	uint64_t eviction_tokens_ms;
	bool disrupted;

	/* horizontal pod autoscaler: "namespace/name" -> its recent recommendations */
	struct map hpa_history;
};

struct pod_change {
	const struct pod *old, *new; /* NULL when absent */
};

struct controller_ops {
	const char *name;
	void (*on_pod)(struct controllers *c, const struct pod *old, const struct pod *new);
	/* A change to a cached object or a node; which says which; old/new NULL when absent. */
	void (*on_object)(struct controllers *c, enum cached_kind which, const cJSON *old, const cJSON *new);
	void (*on_node)(struct controllers *c, const struct node *old, const struct node *new);
	/* Other committed changes (kinds without a cache): resource key, old and new JSON. */
	void (*on_other)(struct controllers *c, const struct store_change *change, const cJSON *object);
	/* Returns the number of writes made, or a negative errno (logged; the run goes on). */
	int (*sync)(struct controllers *c, const char *key, struct error *err);
};

extern const struct controller_ops replicaset_controller, deployment_controller, daemonset_controller, job_controller,
        endpoints_controller, garbage_controller, namespace_controller, node_lifecycle_controller, hpa_controller;
extern const struct controller_ops node_ipam_controller; /* core/nodeipam.c */

void garbage_free_index(struct controllers *c);
void hpa_free_state(struct controllers *c);

/* --- the manager's services ------------------------------------------------------------ */

void controller_enqueue(struct controllers *c, enum controller_id id, const char *key);
/* Queues key again after delay_ms (the earliest request wins when queued twice). */
void controller_enqueue_after(struct controllers *c, enum controller_id id, const char *key, uint64_t delay_ms);
/* Queues the key at wall-clock time at_ms (a Kubernetes timestamp plus a duration). */
void controller_enqueue_at_wall(struct controllers *c, enum controller_id id, const char *key, int64_t at_ms);

/* The queueing of every controller that owns pods through a selector (ReplicaSet,
 * DaemonSet, Job), for its on_pod hook: a pod that changed in a way its owner cares about
 * queues its controlling owner of owner_kind; a pod without a controller queues every
 * object of the cache in its namespace whose selector matches its labels (it may adopt). */
void controller_enqueue_pod_owners(struct controllers *c, enum controller_id id, enum cached_kind cache,
                                   const char *owner_kind, const struct pod *old, const struct pod *new);
/* For an on_object hook: a change of an object of the cache queues its own key. */
void controller_enqueue_cached(struct controllers *c, enum controller_id id, enum cached_kind cache,
                               enum cached_kind which, const cJSON *old, const cJSON *new);

int64_t controller_now_ms(const struct controllers *c);        /* wall clock */
uint64_t controller_monotonic_ms(const struct controllers *c); /* for intervals */
void controller_now_rfc3339(const struct controllers *c, char buf[21]);
/* A Kubernetes timestamp in wall-clock milliseconds; 0 when absent or malformed. */
int64_t controller_parse_time(const char *rfc3339);

const cJSON *controller_cached(const struct controllers *c, enum cached_kind which, const char *key);
const char *controller_cached_resource(enum cached_kind which); /* "deployments.apps" */

/* --- reading and writing the store -------------------------------------------------- */

/* "namespace/name" split; false when the key has no '/'. */
bool controller_split_key(const char *key, char *ns, size_t ns_size, const char **ret_name);
char *controller_key(const cJSON *object); /* "namespace/name" of an object */

/* The stored object (with writes not yet committed), or NULL when absent. */
cJSON *controller_get(struct controllers *c, const char *resource, const char *ns, const char *name);

/* Creates a new object as the API server would (uid, creationTimestamp, generation 1,
 * defaults, validation); a name ending in '-' is a generateName prefix and gets five
 * random characters (retried on a clash). Refused with -EPERM in a namespace being
 * deleted. Returns 0 and the name given in ret_name (may be NULL; size 254). */
int controller_create(struct controllers *c, const char *resource, cJSON *object, char *ret_name, struct error *err);

/* Replaces `stored` by `updated` when they differ (generation bumped on a spec change,
 * the stored resourceVersion as precondition). Returns 1 written, 0 nothing to write,
 * or a negative errno (-ESTALE, -ENOENT: the object moved on; its change will bring the
 * key back). Takes ownership of neither. */
int controller_update(struct controllers *c, const char *resource, const cJSON *stored, cJSON *updated,
                      struct error *err);
/* The end of a workload controller's sync: controller_update of the status it computed,
 * counted with the sync's earlier writes. Returns writes (+1 when written), writes alone
 * when the object moved on meanwhile (its change queues the next sync), or a negative
 * errno. Takes ownership of neither. */
int controller_finish_sync(struct controllers *c, const char *resource, const cJSON *stored, cJSON *updated, int writes,
                           struct error *err);

enum propagation { PROPAGATE_BACKGROUND, PROPAGATE_FOREGROUND, PROPAGATE_ORPHAN };

/* Deletes as the API server does (see controllers_plan_delete): graceful where Kubernetes
 * is, finalizers added for Foreground and Orphan. uid, when not NULL, must match (a
 * precondition: an object re-created under the same name is left alone). Returns 1 when
 * something was written, 0 when there was nothing to do (absent, already being deleted). */
int controller_delete(struct controllers *c, const char *resource, const char *ns, const char *name, const char *uid,
                      enum propagation policy, struct error *err);
/* Deletes at once, whatever the object says (a pod whose node is gone). */
int controller_force_delete(struct controllers *c, const char *resource, const char *ns, const char *name,
                            const char *uid, struct error *err);

/* Records an Event about object (kind from its "kind" member) unless the same reason and
 * message were recorded for it within the last ten minutes. Failures are logged only. */
void controller_event(struct controllers *c, const cJSON *object, const char *type, const char *reason, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));

/* --- small helpers ---------------------------------------------------------------------- */

/* The ownerReference with controller=true, or NULL. */
const cJSON *controller_ref_of(const cJSON *object);
/* True when object's controller reference is the owner with this uid. */
bool controller_owned_by(const cJSON *object, const char *uid);
/* {apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true} for owner. */
cJSON *controller_owner_reference(const cJSON *owner);
/* Sets (replaces) the controller reference of object's metadata; NULL removes it. */
void controller_set_controller_ref(cJSON *object, const cJSON *owner);

/* Adopts (owner not NULL: sets it as the controller reference, if the object has none) or
 * releases (owner NULL: removes the controller reference when it is release_uid) the
 * object; uid is a precondition. Returns 1 written, 0 nothing to do, or a negative errno. */
int controller_claim(struct controllers *c, const char *resource, const char *ns, const char *name, const char *uid,
                     const cJSON *owner, const char *release_uid, struct error *err);

/* The pods `owner` controls as its selector says: pods it controls that stop matching are
 * released, matching pods without a controller adopted (not while `deleting`). Fills
 * ret_pods (free() it) with the pods kept, terminated and deleting ones included; returns
 * the writes made or a negative errno. */
struct selector;
/* The owner's spec.selector, parsed; NULL (after an InvalidSelector Warning Event on the
 * owner) when it is malformed or empty, which would select every pod. */
struct selector *controller_owner_selector(struct controllers *c, const cJSON *owner);
int controller_claim_pods(struct controllers *c, const cJSON *owner, const struct selector *selector, bool deleting,
                          const struct pod ***ret_pods, size_t *ret_count, struct error *err);

/* Sets a status count; a zero is left out when omit_zero (Kubernetes' omitempty). */
void controller_set_count(cJSON *status, const char *name, int64_t value, bool omit_zero);

/* Pods from a template: labels, annotations, spec; the name prefix "<owner>-". */
cJSON *controller_pod_from_template(const cJSON *owner, const cJSON *template, const char *name_prefix);

int64_t controller_int_at(const cJSON *object, const char *dotted_path, int64_t fallback);
cJSON *controller_child(cJSON *object, const char *name); /* the object member, created when missing */
void controller_set_string(cJSON *object, const char *name, const char *value);
void controller_set_number(cJSON *object, const char *name, double value);
const char *controller_annotation(const cJSON *object, const char *name);
void controller_set_annotation(cJSON *object, const char *name, const char *value); /* NULL removes */
const char *controller_label(const cJSON *object, const char *name);

/* Kubernetes' conditions: returns the condition of that type or NULL. */
cJSON *controller_condition(const cJSON *status, const char *type);
/* Removes the condition of that type (and an emptied conditions list). */
void controller_remove_condition(cJSON *status, const char *type);
/* Sets a condition as Kubernetes' SetCondition helpers do: nothing when the status and
 * reason are already those (unless `touch`: lastUpdateTime becomes now, keeping
 * lastTransitionTime when the status is unchanged). lastUpdateTime only for kinds that have
 * it (with_update_time). Returns true when it changed something. */
bool controller_set_condition(cJSON *status, const char *type, const char *value, const char *reason,
                              const char *message, const char *now, bool with_update_time, bool touch);

/* intstr.GetScaledValueFromIntOrPercent: 3 -> 3, "25%" of total rounded up or down. */
int controller_scaled_value(const cJSON *value, int total, bool round_up, int fallback);

/* A stable digest of a JSON value (keys sorted), as Kubernetes' ComputeHash encodes it:
 * FNV-1a 32 of the text (with collision_count appended when not negative), the decimal
 * digits mapped onto "bcdfghjklmnpqrstvwxz2456789". */
void controller_hash(const cJSON *value, int64_t collision_count, char out[16]);

/* Does toleration match the taint (key, operator, value, effect)? */
bool controller_tolerates(const cJSON *toleration, const cJSON *taint);
/* Do the tolerations tolerate every taint of the node with one of the effects given? */
bool controller_tolerates_all(const cJSON *tolerations, const cJSON *taints, bool no_schedule, bool no_execute);

/* The node matches the pod spec's nodeSelector and required node affinity. */
bool controller_node_matches(const cJSON *pod_spec, const struct node *node);

#endif
