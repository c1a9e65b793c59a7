/* One pod on this board: its sandbox, cgroups and containers, kept converging on the pod's
 * spec, and the status that says how far it got. The kubelet (agent/kubelet.c) owns the
 * pods and talks to the control plane; this module talks only to the runtime driver, the
 * image store and cgroups, and tells its owner when the status changed or the pod is gone.
 * See the design comment in pod.c.
 */
#ifndef BRAMBLE_AGENT_POD_H
#define BRAMBLE_AGENT_POD_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct cgroups;
struct images_store;
struct imagepull;
struct loop;
struct network;
struct pod;
struct runtime_ops;

/* What every pod of the board shares. */
struct pod_env {
	struct loop *loop;
	const struct runtime_ops *driver;
	struct images_store *images;
	struct imagepull *pulls; /* pulls missing images from the control plane; NULL: the store only */
	struct cgroups *cgroups;
	const char *node_name;
	const char *host_ip;         /* the board's address: hostIP, and podIP of hostNetwork pods */
	const char *state_dir;       /* <state-dir>/pods/<uid>: namespaces, root filesystems */
	const char *log_dir;         /* <data-dir>/pods/<ns>_<name>_<uid>/<container>/<restart>.log */
	struct network *network;     /* pod addresses and resolv.conf (agent/network.c); NULL: none */
	uint64_t backoff_initial_ms; /* first restart delay of a crashing container (10 s) */
	uint64_t backoff_max_ms;     /* its cap (300 s, as the kubelet) */
	/* The status changed (write it back) / the pod has stopped everything and cleaned up. */
	void (*status_changed)(struct pod *pod, void *data);
	void (*terminated)(struct pod *pod, void *data);
	/* Something worth a Kubernetes Event happened to a container (a probe failed, the
	 * container is killed for it); NULL: none are written. */
	void (*event)(struct pod *pod, const char *container, const char *type, const char *reason, const char *message,
	              void *data);
	void *data;
};

/* Starts running a pod (a copy of the object is kept). config: the ConfigMaps and Secrets its
 * spec refers to, as {"configmaps": {name: object}, "secrets": {name: object}} (may be NULL
 * when it refers to none); a missing one holds its containers in CreateContainerConfigError. */
struct pod *pod_new(const struct pod_env *env, const cJSON *object, const cJSON *config);
/* Stops everything at once and frees (agent shutdown: containers are killed). */
void pod_free(struct pod *pod);

/* Like pod_new, for a pod an earlier agent process may have left running (see the adoption
 * section of pod.c): its sandbox, cgroups and running containers are re-opened, not made
 * again (same pids, restart counts kept); what cannot be re-opened is removed first. */
struct pod *pod_adopt(const struct pod_env *env, const cJSON *object, const cJSON *config);
/* The ConfigMaps and Secrets the pod uses, fetched again: when they differ, its configMap
 * and secret volumes are rewritten (environment variables keep their values). */
void pod_update_config(struct pod *pod, const cJSON *config);
/* Evicts the pod (phase Failed, reason Evicted, the message): its containers stop within
 * its grace period; the pod stays in the API, as Kubernetes keeps evicted pods. */
void pod_evict(struct pod *pod, const char *message);
/* Evicts the pod when a disk emptyDir holds more than its sizeLimit (the kubelet's check). */
void pod_check_volumes(struct pod *pod);
bool pod_evicted(const struct pod *pod);
/* Everything stopped and cleaned up (the terminated callback has been called). */
bool pod_terminated(const struct pod *pod);
/* Agent shutdown as the kubelet does it: writes the pod's state for a later pod_adopt, then
 * frees the pod, leaving its containers, sandbox and cgroups running. */
void pod_release(struct pod *pod);
/* A pod an earlier agent left running that nobody wants now: its containers killed, its
 * sandbox, cgroups and state removed. */
void pod_discard_orphan(const struct pod_env *env, const char *uid);
/* Writes <state-dir>/<uid>/pod.json when what a later pod_adopt needs has changed. */
struct error;
int pod_save_state(struct pod *pod, struct error *err);

/* A newer version of the object from the API (labels, deletionTimestamp ...). */
void pod_update(struct pod *pod, const cJSON *object);
/* Stops the containers gracefully (grace_seconds, then SIGKILL), removes them, then calls
 * env->terminated. Idempotent. */
void pod_terminate(struct pod *pod, int64_t grace_seconds);

const char *pod_uid(const struct pod *pod);
const char *pod_name(const struct pod *pod);
const char *pod_namespace(const struct pod *pod);
const cJSON *pod_object(const struct pod *pod);
bool pod_terminating(const struct pod *pod);

/* The pod's status as the kubelet reports it: phase, conditions, hostIP, podIP, startTime,
 * initContainerStatuses, containerStatuses. Caller frees. */
cJSON *pod_status(const struct pod *pod);

/* Restarts summed over the pod's containers (for tests and `bramble describe`). */
unsigned pod_restart_count(const struct pod *pod);

#endif
