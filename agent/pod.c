/* One pod's life on the board.
 *
 * State kept per pod: the object (latest from the API), its ConfigMaps/Secrets, the
 * sandbox (namespaces held for the pod), the pod cgroup, and per container: the runtime
 * container while it runs, its cgroup, its state as Kubernetes reports it (waiting with a
 * reason, running since, terminated with exit code and reason), the last termination,
 * restarts and the back-off before the next start.
 *
 *   pod_new ──> sync: sandbox ──> init containers one by one (each must exit 0)
 *                 ──> containers started ──> exits: restart per restartPolicy, after back-off
 *                 (postStart, probes: see "probes and lifecycle hooks")
 *   pod_terminate ──> every container: preStop, SIGTERM ──(grace)──> SIGKILL ──> all reaped
 *                 ──> containers, sandbox, cgroups, state removed ──> env->terminated
 *
 * Everything happens on the agent's loop: starts are synchronous (clone + exec barrier,
 * a few ms), exits arrive through loop_watch_child, back-offs and grace periods are loop
 * timers. sync() runs from a zero-delay timer, so callbacks never re-enter it. The status
 * is derived from this state when asked for (pod_status); env->status_changed only says
 * that it may have changed.
 *
 * A container's output goes to <log-dir>/<container>/<restart>.log, opened for appending and
 * written by the container itself: output survives an agent restart.
 */
#include "agent/pod.h"

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/imagepull.h"
#include "agent/images.h"
#include "agent/network.h"
#include "agent/podspec.h"
#include "agent/prober.h"
#include "core/object.h"
#include "core/scheduler.h"
#include "drivers/runtime.h"
#include "platform/cgroups.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define POD_MESSAGE_MAX 512
#define POD_REASON_MAX 48
/* A container that ran this long without failing starts over at the initial back-off. */
#define POD_BACKOFF_RESET_MS (10 * 60 * 1000)

enum container_state { CONTAINER_WAITING, CONTAINER_RUNNING, CONTAINER_TERMINATED };

struct termination {
	int exit_code;
	int signal;
	char reason[POD_REASON_MAX];
	char message[POD_MESSAGE_MAX];
	time_t started_at, finished_at;
};

struct container {
	struct pod *pod;
	cJSON *spec; /* owned copy of the container's spec */
	const char *name;
	bool init;
	size_t index; /* in its list, for error messages */
	enum container_state state;
	char reason[POD_REASON_MAX]; /* waiting */
	char message[POD_MESSAGE_MAX];
	time_t started_at;
	struct termination last; /* terminated state, or lastState while waiting/running */
	bool has_last;
	bool ever_started;
	unsigned restarts;
	uint64_t backoff_ms;
	bool crashed_recently; /* the next restart backs off */
	uint64_t started_ms;
	struct loop_timer *restart_timer;
	struct runtime_container *runtime;
	bool exit_watched; /* adopted: its pidfd is on the loop (see pod_adopt) */
	pid_t pid;
	struct cgroups_group *cgroup;
	bool signalled;
	char image_id[IMAGES_DIGEST_MAX];
	struct container_lifecycle *lifecycle; /* probes, hooks, a stop under way: see below */
};

struct pod {
	struct pod_env env;
	cJSON *object;
	cJSON *config;
	char *uid, *name, *namespace;
	char *dir;         /* <state-dir>/<uid> */
	char *log_dir;     /* <log-dir>/<ns>_<name>_<uid> */
	char *volumes_dir; /* <dir>/volumes */
	char *saved_state; /* <dir>/pod.json as last written (pod_save_state) */
	char restart_policy[16];
	struct runtime_sandbox *sandbox;
	struct network_attachment net; /* podIP, resolv.conf */
	struct cgroups_group *cgroup;
	struct container *containers;
	size_t count, init_count;
	size_t next_init;
	bool initialized;
	bool setup_done;
	char setup_reason[POD_REASON_MAX];
	char setup_message[POD_MESSAGE_MAX];
	time_t start_time;
	time_t transitions[4]; /* lastTransitionTime of Initialized, ContainersReady, Ready, PodScheduled */
	bool last_values[4];
	bool terminating, terminated;
	char *evicted; /* the eviction's message (pod_evict), or NULL */
	struct loop_timer *sync_timer;
	struct loop_timer *setup_timer;
	uint64_t setup_backoff_ms;
};

static void schedule_sync(struct pod *pod);
static void unwatch_exit(struct container *c);

const char *pod_uid(const struct pod *pod)
{
	return pod->uid;
}
const char *pod_name(const struct pod *pod)
{
	return pod->name;
}
const char *pod_namespace(const struct pod *pod)
{
	return pod->namespace;
}
const cJSON *pod_object(const struct pod *pod)
{
	return pod->object;
}
bool pod_terminating(const struct pod *pod)
{
	return pod->terminating;
}
bool pod_terminated(const struct pod *pod)
{
	return pod->terminated;
}
bool pod_evicted(const struct pod *pod)
{
	return pod->evicted != NULL;
}

static void changed(struct pod *pod)
{
	if (pod->env.status_changed)
		pod->env.status_changed(pod, pod->env.data);
}

static bool host_network(const struct pod *pod)
{
	return cJSON_IsTrue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod->object, "spec"), "hostNetwork"));
}

static void set_waiting(struct container *c, const char *reason, const char *message)
{
	c->state = CONTAINER_WAITING;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
	snprintf(c->message, sizeof(c->message), "%s", message ? message : "");
}

/* --- probes and lifecycle hooks ------------------------------------------------------------ *
 *
 * Per container (struct container_lifecycle, made at its first start): its probers, its
 * postStart and preStop handlers, and the state of a stop the kubelet began.
 *
 *   started ──postStart (if any)──> probes started (liveness and readiness held until the
 *                                    startup probe succeeds)
 *   postStart failed, startup or liveness probe failed ──> stop_container:
 *   stop_container ──preStop (if any, within the grace period)──> SIGTERM ──(what is left
 *                    of the grace period, at least 2 s)──> SIGKILL
 *   exited ──> probes stopped, hooks abandoned, timers cancelled
 *
 * While postStart runs the container is reported waiting in ContainerCreating, as the
 * kubelet reports it. A container is ready when it runs, has started (startup probe passed,
 * or none) and its readiness probe passes (or it has none), and is not being stopped. Exec
 * probes and hooks run through the runtime driver's exec; network ones go to the pod's IP
 * from inside its network namespace (probe_target).
 */

/* Kubernetes' minimum after a preStop hook used up the grace period. */
#define POD_MINIMUM_GRACE_MS 2000

struct container_lifecycle {
	struct prober *probers[3]; /* by enum probe_kind; NULL: the container has none */
	int64_t probe_grace[3];    /* a probe's terminationGracePeriodSeconds; -1: the pod's */
	struct probe_handler *post_start, *pre_stop;
	bool prepared;            /* the above are read from the spec */
	bool adopted;             /* adopted running: probes start once the pod is set up */
	struct prober_hook *hook; /* postStart or preStop running */
	bool in_post_start;       /* started, postStart not done yet */
	bool post_start_failed;   /* and being stopped for it */
	bool stopping;            /* stop_container began */
	uint64_t stop_started_ms; /* monotonic */
	uint64_t grace_ms;        /* of that stop */
	struct loop_timer *kill_timer;
	char message[POD_MESSAGE_MAX]; /* why the kubelet stops it: lastState's message, or PostStartHookError's */
};

static void stop_container(struct container *c, int64_t grace_seconds);

static int64_t pod_grace_seconds(const struct pod *pod)
{
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod->object, "spec"),
	                                                  "terminationGracePeriodSeconds");
	return cJSON_IsNumber(g) && g->valuedouble >= 0 ? (int64_t)g->valuedouble : 30;
}

static int exec_in_container(void *data, const char *const *argv, int output_fd, pid_t *ret_pid, struct error *err)
{
	struct container *c = data;
	if (!c->runtime)
		return error_set(err, ESRCH, "container %s is not running", c->name);
	struct exec_spec spec = { .argv = argv, .stdout_fd = output_fd, .stderr_fd = output_fd };
	return c->pod->env.driver->exec(c->runtime, &spec, ret_pid, err);
}

/* Network probes and hooks go to the pod's IP (the board's for hostNetwork pods; the pod's
 * loopback when it has none), from inside the sandbox's network namespace (borrowed: the
 * probers keep a copy, hooks use it only to open their socket). */
static struct prober_target probe_target(struct container *c)
{
	const struct pod *pod = c->pod;
	const struct pod_env *env = &pod->env;
	const char *pod_ip = host_network(pod) ? env->host_ip : pod->net.pod_ip;
	return (struct prober_target){
		.loop = env->loop,
		.pod_ip = pod_ip && pod_ip[0] ? pod_ip : NULL,
		.netns_fd = runtime_sandbox_netns(pod->sandbox),
		.exec = exec_in_container,
		.exec_data = c,
	};
}

static struct container_lifecycle *lifecycle_of(struct container *c)
{
	if (!c->lifecycle) {
		c->lifecycle = xcalloc(1, sizeof(*c->lifecycle));
		for (size_t i = 0; i < 3; i++)
			c->lifecycle->probe_grace[i] = -1;
	}
	return c->lifecycle;
}

static void lifecycle_free(struct container *c)
{
	struct container_lifecycle *l = c->lifecycle;
	if (!l)
		return;
	for (size_t i = 0; i < 3; i++)
		prober_free(l->probers[i]);
	prober_hook_cancel(l->hook);
	prober_handler_free(l->post_start);
	prober_handler_free(l->pre_stop);
	loop_cancel_timer(c->pod->env.loop, l->kill_timer);
	free(l);
	c->lifecycle = NULL;
}

static void on_probe(struct prober *prober, const struct prober_update *update, void *data);

/* Reads the container's probes and hooks (once): a spec Bramble cannot follow holds the
 * container in CreateContainerConfigError, naming the field. */
static int lifecycle_prepare(struct container *c, const char *where, struct error *err)
{
	if (c->init || (c->lifecycle && c->lifecycle->prepared))
		return 0;
	struct container_lifecycle *l = lifecycle_of(c);
	for (size_t i = 0; i < 3; i++) {
		prober_free(l->probers[i]);
		l->probers[i] = NULL;
	}
	prober_handler_free(l->post_start);
	prober_handler_free(l->pre_stop);
	l->post_start = l->pre_stop = NULL;
	int r;
	if ((r = prober_parse_hook(c->spec, PROBER_POST_START, where, &l->post_start, err)) < 0 ||
	    (r = prober_parse_hook(c->spec, PROBER_PRE_STOP, where, &l->pre_stop, err)) < 0)
		return r;
	struct prober_target target = probe_target(c);
	for (enum probe_kind kind = PROBE_LIVENESS; kind <= PROBE_STARTUP; kind++) {
		struct probe_spec *spec = NULL;
		if ((r = prober_parse_probe(c->spec, kind, where, &spec, err)) < 0)
			return r;
		if (!spec)
			continue;
		l->probe_grace[kind] = spec->termination_grace_seconds;
		r = prober_new(spec, &target, on_probe, c, &l->probers[kind], err);
		prober_spec_free(spec);
		if (r < 0)
			return r;
	}
	l->prepared = true;
	return 0;
}

/* running_ms: how long the container has run (0 when it has just started). */
static void probes_start(struct container *c, uint64_t running_ms)
{
	struct container_lifecycle *l = c->lifecycle;
	bool held = l->probers[PROBE_STARTUP] != NULL;
	for (enum probe_kind kind = PROBE_LIVENESS; kind <= PROBE_STARTUP; kind++) {
		if (!l->probers[kind])
			continue;
		if (kind != PROBE_STARTUP)
			prober_hold(l->probers[kind], held);
		prober_start(l->probers[kind], running_ms);
	}
}

static void probes_stop(struct container_lifecycle *l)
{
	for (size_t i = 0; i < 3; i++)
		if (l->probers[i])
			prober_stop(l->probers[i]);
}

static const char *handler_kind(const struct probe_handler *h)
{
	switch (h->type) {
	case PROBE_HANDLER_EXEC:
		return "Exec";
	case PROBE_HANDLER_HTTP_GET:
		return "HTTP";
	case PROBE_HANDLER_TCP_SOCKET:
		return "TCP";
	case PROBE_HANDLER_SLEEP:
		return "Sleep";
	}
	return "?";
}

static void on_post_start_done(bool succeeded, const char *message, void *data)
{
	struct container *c = data;
	struct container_lifecycle *l = c->lifecycle;
	struct pod *pod = c->pod;
	l->hook = NULL;
	l->in_post_start = false;
	if (succeeded) {
		probes_start(c, 0);
	} else {
		snprintf(l->message, sizeof(l->message),
		         "%s lifecycle hook for Container \"%s\" in Pod \"%s_%s(%s)\" failed - error: %s",
		         handler_kind(l->post_start), c->name, pod->name, pod->namespace, pod->uid, message);
		log_warnx("pod %s/%s: FailedPostStartHook: %s", pod->namespace, pod->name, l->message);
		l->post_start_failed = true;
		stop_container(c, pod_grace_seconds(pod));
	}
	changed(pod);
}

/* The container runs (again): postStart, then its probes. */
static void lifecycle_started(struct container *c)
{
	if (c->init)
		return;
	struct container_lifecycle *l = lifecycle_of(c);
	l->stopping = l->post_start_failed = false;
	l->message[0] = '\0';
	if (!l->post_start) {
		probes_start(c, 0);
		return;
	}
	struct prober_target target = probe_target(c);
	struct error err = { 0 };
	l->in_post_start = true;
	if (prober_hook_run(l->post_start, &target, 0, on_post_start_done, c, &l->hook, &err) < 0)
		on_post_start_done(false, err.message, c);
}

/* A container adopted from an earlier agent process (its postStart ran then): its probes
 * start over as the kubelet's do after a restart (readiness failing until it passes), with
 * the initial delay counted from the container's own start, once the pod is set up again
 * (its IP known): lifecycle_resume_adopted. */
static void lifecycle_adopted(struct container *c)
{
	if (!c->init)
		lifecycle_of(c)->adopted = true;
}

static void lifecycle_resume_adopted(struct pod *pod)
{
	for (size_t i = 0; i < pod->count; i++) {
		struct container *c = &pod->containers[i];
		if (!c->lifecycle || !c->lifecycle->adopted || !c->runtime)
			continue;
		c->lifecycle->adopted = false;
		char where[64];
		snprintf(where, sizeof(where), "spec.containers[%zu]", c->index);
		struct error err = { 0 };
		if (lifecycle_prepare(c, where, &err) < 0) {
			log_warnx("pod %s/%s: container %s: no probes: %s", pod->namespace, pod->name, c->name,
			          err.message);
			continue;
		}
		uint64_t now = clock_monotonic_ms();
		probes_start(c, now > c->started_ms ? now - c->started_ms : 0);
	}
}

/* The container has exited: nothing more to probe or stop. Says in its last termination
 * why the kubelet stopped it, if it did. */
static void lifecycle_exited(struct container *c)
{
	struct container_lifecycle *l = c->lifecycle;
	if (!l)
		return;
	probes_stop(l);
	prober_hook_cancel(l->hook);
	l->hook = NULL;
	loop_cancel_timer(c->pod->env.loop, l->kill_timer);
	l->kill_timer = NULL;
	if (l->stopping && l->message[0])
		snprintf(c->last.message, sizeof(c->last.message), "%s", l->message);
	l->in_post_start = l->stopping = l->post_start_failed = l->adopted = false;
}

static void on_probe(struct prober *prober, const struct prober_update *update, void *data)
{
	struct container *c = data;
	struct container_lifecycle *l = c->lifecycle;
	struct pod *pod = c->pod;
	enum probe_kind kind = prober_kind(prober);
	if (update->message)
		log_message(update->changed ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, 0, "pod %s/%s: container %s: %s",
		            pod->namespace, pod->name, c->name, update->message);
	if (!update->changed)
		return;
	/* An Event when a probe turns to failure, not one per failed attempt as the kubelet
	 * writes (it folds them into a count): a pod that stays unready writes nothing more. */
	if (update->result == PROBE_FAILURE && pod->env.event)
		pod->env.event(pod, c->name, "Warning", "Unhealthy", update->message ? update->message : "probe failed",
		               pod->env.data);
	if (kind == PROBE_STARTUP && update->result == PROBE_SUCCESS) {
		for (enum probe_kind k = PROBE_LIVENESS; k <= PROBE_READINESS; k++)
			if (l->probers[k])
				prober_hold(l->probers[k], false);
	} else if (kind != PROBE_READINESS && update->result == PROBE_FAILURE) {
		bool restart = strcmp(pod->restart_policy, "Never") != 0;
		char killing[POD_MESSAGE_MAX]; /* the kubelet's words; lastState adds the probe's */
		snprintf(killing, sizeof(killing), "Container %s failed %s probe%s", c->name,
		         kind == PROBE_STARTUP ? "startup" : "liveness", restart ? ", will be restarted" : "");
		snprintf(l->message, sizeof(l->message), "%s%s%s", killing, update->message ? ": " : "",
		         update->message ? update->message : "");
		log_info("pod %s/%s: %s", pod->namespace, pod->name, l->message);
		if (pod->env.event)
			pod->env.event(pod, c->name, "Normal", "Killing", killing, pod->env.data);
		int64_t grace = l->probe_grace[kind] >= 0 ? l->probe_grace[kind] : pod_grace_seconds(pod);
		stop_container(c, grace);
	}
	changed(pod);
}

static void kill_due(struct loop *loop, void *data)
{
	(void)loop;
	struct container *c = data;
	c->lifecycle->kill_timer = NULL;
	if (c->runtime)
		c->pod->env.driver->signal(c->runtime, SIGKILL);
}

static void send_sigterm(struct container *c, uint64_t grace_ms)
{
	struct container_lifecycle *l = c->lifecycle;
	c->pod->env.driver->signal(c->runtime, SIGTERM);
	loop_cancel_timer(c->pod->env.loop, l->kill_timer);
	l->kill_timer = loop_add_timer(c->pod->env.loop, grace_ms, kill_due, c);
}

static void on_pre_stop_done(bool succeeded, const char *message, void *data)
{
	struct container *c = data;
	struct container_lifecycle *l = c->lifecycle;
	l->hook = NULL;
	if (!succeeded)
		log_warnx("pod %s/%s: FailedPreStopHook: container %s: %s", c->pod->namespace, c->pod->name, c->name,
		          message);
	if (!c->runtime)
		return;
	uint64_t spent = clock_monotonic_ms() - l->stop_started_ms;
	uint64_t left = spent < l->grace_ms ? l->grace_ms - spent : 0;
	send_sigterm(c, left < POD_MINIMUM_GRACE_MS ? POD_MINIMUM_GRACE_MS : left);
}

/* Stops a running container as the kubelet does: its preStop hook, then SIGTERM, then
 * SIGKILL once grace_seconds (counted from here, preStop included) have passed. A stop
 * under way is only ever hastened: grace_seconds 0 kills at once. */
static void stop_container(struct container *c, int64_t grace_seconds)
{
	if (!c->runtime)
		return;
	struct container_lifecycle *l = lifecycle_of(c);
	c->signalled = true;
	if (grace_seconds <= 0) {
		l->stopping = true;
		c->pod->env.driver->signal(c->runtime, SIGKILL);
		return;
	}
	if (l->stopping)
		return;
	l->stopping = true;
	probes_stop(l);
	if (l->hook) { /* postStart still running: abandoned */
		prober_hook_cancel(l->hook);
		l->hook = NULL;
		l->in_post_start = false;
	}
	l->grace_ms = (uint64_t)grace_seconds * 1000;
	l->stop_started_ms = clock_monotonic_ms();
	if (!l->pre_stop) {
		send_sigterm(c, l->grace_ms);
		return;
	}
	struct prober_target target = probe_target(c);
	struct error err = { 0 };
	log_info("pod %s/%s: container %s: running its preStop hook", c->pod->namespace, c->pod->name, c->name);
	if (prober_hook_run(l->pre_stop, &target, l->grace_ms, on_pre_stop_done, c, &l->hook, &err) < 0)
		on_pre_stop_done(false, err.message, c);
}

/* Ready: running, started, passing its readiness probe, not being stopped. */
static bool container_ready(const struct container *c)
{
	const struct container_lifecycle *l = c->lifecycle;
	if (c->state != CONTAINER_RUNNING || c->init || c->pod->terminating)
		return false;
	if (!l)
		return true;
	if (l->in_post_start || l->stopping)
		return false;
	if (l->probers[PROBE_STARTUP] && prober_result(l->probers[PROBE_STARTUP]) != PROBE_SUCCESS)
		return false;
	return !l->probers[PROBE_READINESS] || prober_result(l->probers[PROBE_READINESS]) == PROBE_SUCCESS;
}

/* containerStatuses[].started: running, and past postStart and the startup probe. */
static bool container_started(const struct container *c)
{
	const struct container_lifecycle *l = c->lifecycle;
	if (c->state != CONTAINER_RUNNING)
		return false;
	return !l || (!l->in_post_start && !l->post_start_failed &&
	              (!l->probers[PROBE_STARTUP] || prober_result(l->probers[PROBE_STARTUP]) == PROBE_SUCCESS));
}

/* A running container reported as waiting: in postStart (ContainerCreating), or being
 * stopped because postStart failed (PostStartHookError). */
static bool container_reported_waiting(const struct container *c, const char **ret_reason, const char **ret_message)
{
	const struct container_lifecycle *l = c->lifecycle;
	if (c->state != CONTAINER_RUNNING || !l)
		return false;
	if (l->in_post_start) {
		*ret_reason = "ContainerCreating";
		*ret_message = "";
		return true;
	}
	if (l->post_start_failed) {
		*ret_reason = "PostStartHookError";
		*ret_message = l->message;
		return true;
	}
	return false;
}

/* --- starting a container -------------------------------------------------------------- */

static int enter_cgroup(void *data)
{
	return cgroups_procs_enter(data);
}

static void on_container_exit(struct loop *loop, pid_t pid, int status, void *data);

static uint64_t next_backoff(struct container *c)
{
	const struct pod_env *env = &c->pod->env;
	if (c->backoff_ms == 0)
		return c->backoff_ms = env->backoff_initial_ms;
	c->backoff_ms = c->backoff_ms * 2 > env->backoff_max_ms ? env->backoff_max_ms : c->backoff_ms * 2;
	return c->backoff_ms;
}

static void restart_due(struct loop *loop, void *data)
{
	(void)loop;
	struct container *c = data;
	c->restart_timer = NULL;
	set_waiting(c, "ContainerCreating", NULL);
	schedule_sync(c->pod);
}

/* The container cannot start or has exited and will start again: wait out the back-off. */
static void back_off(struct container *c, const char *reason)
{
	uint64_t delay = next_backoff(c);
	char message[POD_MESSAGE_MAX];
	snprintf(message, sizeof(message), "back-off %llus restarting failed container=%s pod=%s_%s(%s)",
	         (unsigned long long)(delay / 1000), c->name, c->pod->name, c->pod->namespace, c->pod->uid);
	set_waiting(c, reason, message);
	if (c->restart_timer)
		loop_cancel_timer(c->pod->env.loop, c->restart_timer);
	c->restart_timer = loop_add_timer(c->pod->env.loop, delay, restart_due, c);
}

/* A container that could not be created: its waiting reason, and a retry after back-off. */
static void start_failed(struct container *c, const char *reason, const struct error *err)
{
	log_warnx("pod %s/%s: container %s: %s", c->pod->namespace, c->pod->name, c->name, err->message);
	back_off(c, reason);
	snprintf(c->message, sizeof(c->message), "%s", err->message);
}

static const char *image_reference(const struct container *c)
{
	const char *image = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->spec, "image"));
	return image ? image : "";
}

/* A pull this container waits for reports how far it is. */
static void on_image_progress(void *data, const char *message)
{
	struct container *c = data;
	if (c->state != CONTAINER_WAITING)
		return;
	set_waiting(c, "ContainerCreating", message);
	changed(c->pod);
}

/* A pull this container waited for has ended (agent/imagepull.c). */
static void on_image_pulled(void *data, const char *reason, const struct error *err)
{
	struct container *c = data;
	if (err) {
		struct error failure = *err;
		error_prefix(&failure, "image \"%s\"", image_reference(c));
		start_failed(c, reason, &failure);
		changed(c->pod);
		return;
	}
	schedule_sync(c->pod);
}

static int open_log(struct container *c, struct error *err)
{
	cleanup_free char *dir = xasprintf("%s/%s", c->pod->log_dir, c->name);
	int r = file_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	cleanup_free char *path = xasprintf("%s/%u.log", dir, c->restarts);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_set_errno(err, errno, "open the log %s", path);
	return fd;
}

static void start_container(struct container *c)
{
	struct pod *pod = c->pod;
	const struct pod_env *env = &pod->env;
	struct error err = { 0 };
	char where[96];
	snprintf(where, sizeof(where), "spec.%s[%zu]", c->init ? "initContainers" : "containers", c->index);
	struct images_image image = { 0 };
	char **argv = NULL, **envp = NULL;
	struct runtime_mount *mounts = NULL;
	size_t mount_count = 0;
	struct cgroups_procs procs = { .count = 0 };
	const char **layers = NULL;
	int log_fd = -1;
	const char *reason = "CreateContainerConfigError";
	char *dir = NULL, *rootfs = NULL, *upper = NULL, *work = NULL;

	/* Image: present on the board (pulled first where the policy says), or waiting for it. */
	const char *policy = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->spec, "imagePullPolicy"));
	if (env->pulls) {
		const char *pull_reason = NULL;
		struct imagepull_who who = { pod->namespace, pod->name,      pod->uid,
			                     c->name,        env->node_name, on_image_progress };
		int pulled = imagepull_ensure(env->pulls, image_reference(c), policy, &who, on_image_pulled, c,
		                              &pull_reason, &err);
		if (pulled == -EINPROGRESS) {
			set_waiting(c, "ContainerCreating", err.message);
			changed(pod);
			return;
		}
		if (pulled < 0) {
			reason = pull_reason;
			error_prefix(&err, "image \"%s\"", image_reference(c));
			goto fail;
		}
	}
	if (images_resolve(env->images, image_reference(c), &image, &err) < 0) {
		reason = policy && strcmp(policy, "Never") == 0 ? "ErrImageNeverPull" : "ImagePullBackOff";
		error_prefix(&err, "image \"%s\"", image_reference(c));
		goto fail;
	}
	snprintf(c->image_id, sizeof(c->image_id), "%s", image.digest);
	uid_t uid;
	gid_t gid;
	uint64_t cap_add, cap_drop;
	bool read_only_root;
	struct cgroups_limits limits;
	if (podspec_command(c->spec, &image, where, &argv, &err) < 0 ||
	    podspec_env(pod->object, c->spec, &image, pod->config, host_network(pod) ? env->host_ip : NULL,
	                env->host_ip, where, &envp, &err) < 0 ||
	    podspec_user(pod->object, c->spec, &image, where, &uid, &gid, &err) < 0 ||
	    podspec_security(c->spec, where, &cap_add, &cap_drop, &read_only_root, &err) < 0 ||
	    podspec_limits(c->spec, where, &limits, &err) < 0 ||
	    podspec_mounts(pod->object, c->spec, pod->volumes_dir, where, &mounts, &mount_count, &err) < 0 ||
	    lifecycle_prepare(c, where, &err) < 0)
		goto fail;
	network_add_mounts(&pod->net, &mounts, &mount_count);

	reason = "RunContainerError";
	dir = xasprintf("%s/containers/%s", pod->dir, c->name);
	rootfs = xasprintf("%s/rootfs", dir);
	upper = xasprintf("%s/upper", dir);
	work = xasprintf("%s/work", dir);
	file_remove_tree(dir); /* a fresh root filesystem for every start, as Kubernetes gives */
	if (file_mkdir_p(rootfs, 0700, &err) < 0 || file_mkdir_p(upper, 0755, &err) < 0 ||
	    file_mkdir_p(work, 0700, &err) < 0)
		goto fail;
	if (c->cgroup) {
		cgroups_remove(c->cgroup, CGROUPS_REMOVE_KILL, NULL);
		cgroups_group_free(c->cgroup);
		c->cgroup = NULL;
	}
	if (cgroups_container_create(pod->cgroup, c->name, &limits, &c->cgroup, &err) < 0 ||
	    cgroups_procs_open(c->cgroup, &procs, &err) < 0)
		goto fail;
	if ((log_fd = open_log(c, &err)) < 0)
		goto fail;
	layers = xcalloc(image.layer_count + 1, sizeof(*layers));
	for (size_t i = 0; i < image.layer_count; i++)
		layers[i] = image.layers[image.layer_count - 1 - i];
	const char *workdir = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->spec, "workingDir"));
	if ((!workdir || !workdir[0]) && image.working_dir && image.working_dir[0])
		workdir = image.working_dir;
	struct container_spec spec = {
		.name = c->name,
		.layers = layers,
		.layer_count = image.layer_count,
		.upper_dir = read_only_root ? NULL : upper,
		.work_dir = work,
		.read_only_root = read_only_root,
		.rootfs_mountpoint = rootfs,
		.argv = (const char *const *)argv,
		.env = (const char *const *)envp,
		.cwd = workdir && workdir[0] ? workdir : NULL,
		.uid = uid,
		.gid = gid,
		.capabilities_add = cap_add,
		.capabilities_drop = cap_drop,
		.mounts = mounts,
		.mount_count = mount_count,
		.stdout_fd = log_fd,
		.stderr_fd = log_fd,
		.enter = enter_cgroup,
		.enter_data = &procs,
		.cgroup = c->cgroup,
	};
	int r = env->driver->create(pod->sandbox, &spec, &c->runtime, &err);
	cgroups_procs_close(&procs);
	if (r < 0)
		goto fail;
	c->pid = runtime_container_pid(c->runtime);
	if (env->driver->start(c->runtime, &err) < 0) {
		/* The command could not be executed (missing, not executable): StartError, exit 128. */
		env->driver->signal(c->runtime, SIGKILL);
		int status;
		env->driver->wait(c->runtime, &status);
		env->driver->remove(c->runtime);
		c->runtime = NULL;
		c->pid = 0;
		c->state = CONTAINER_TERMINATED;
		c->has_last = true;
		c->last = (struct termination){ .exit_code = 128, .started_at = time(NULL), .finished_at = time(NULL) };
		snprintf(c->last.reason, sizeof(c->last.reason), "StartError");
		snprintf(c->last.message, sizeof(c->last.message), "%s", err.message);
		c->ever_started = true;
		log_warnx("pod %s/%s: container %s: %s", pod->namespace, pod->name, c->name, err.message);
		goto out;
	}
	loop_watch_child(env->loop, c->pid, on_container_exit, c);
	c->state = CONTAINER_RUNNING;
	c->started_at = time(NULL);
	c->started_ms = clock_monotonic_ms();
	c->ever_started = true;
	c->signalled = false;
	c->reason[0] = c->message[0] = '\0';
	log_info("pod %s/%s: container %s started (pid %d)", pod->namespace, pod->name, c->name, (int)c->pid);
	lifecycle_started(c);
	goto out;
fail:
	cgroups_procs_close(&procs);
	start_failed(c, reason, &err);
out:
	if (log_fd >= 0)
		close(log_fd);
	free(dir);
	free(rootfs);
	free(upper);
	free(work);
	free(layers);
	podspec_mounts_free(mounts, mount_count);
	podspec_strv_free(argv);
	podspec_strv_free(envp);
	images_image_free(&image);
	changed(pod);
	/* A StartError counts as an exit: decide on a restart now. */
	if (c->state == CONTAINER_TERMINATED && !c->runtime)
		schedule_sync(pod);
}

/* --- exits ------------------------------------------------------------------------------- */

static bool should_restart(const struct container *c)
{
	const char *policy = c->pod->restart_policy;
	if (c->pod->terminating)
		return false;
	if (strcmp(policy, "Always") == 0)
		return !c->init || c->last.exit_code != 0; /* an init container that succeeded is done */
	if (strcmp(policy, "OnFailure") == 0)
		return c->last.exit_code != 0;
	return false;
}

static bool any_running(const struct pod *pod)
{
	for (size_t i = 0; i < pod->count; i++)
		if (pod->containers[i].runtime)
			return true;
	return false;
}

static void on_container_exit(struct loop *loop, pid_t pid, int status, void *data)
{
	(void)loop;
	(void)pid;
	struct container *c = data;
	struct pod *pod = c->pod;
	struct cgroups_usage usage = { 0 };
	struct error err;
	bool oom = pod->env.driver->stats(c->runtime, &usage, &err) == 0 && usage.oom_kills > 0;
	pod->env.driver->remove(c->runtime);
	c->runtime = NULL;
	c->pid = 0;
	c->has_last = true;
	c->last = (struct termination){ .started_at = c->started_at, .finished_at = time(NULL) };
	if (WIFEXITED(status)) {
		c->last.exit_code = WEXITSTATUS(status);
	} else {
		c->last.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		c->last.exit_code = 128 + c->last.signal;
	}
	snprintf(c->last.reason, sizeof(c->last.reason), "%s",
	         oom                      ? "OOMKilled"
	         : c->last.exit_code == 0 ? "Completed"
	                                  : "Error");
	lifecycle_exited(c);
	c->state = CONTAINER_TERMINATED;
	if (clock_monotonic_ms() - c->started_ms >= POD_BACKOFF_RESET_MS) {
		c->backoff_ms = 0;
		c->crashed_recently = false;
	}
	log_info("pod %s/%s: container %s exited with %d (%s)", pod->namespace, pod->name, c->name, c->last.exit_code,
	         c->last.reason);
	changed(pod);
	schedule_sync(pod);
}

/* --- termination ------------------------------------------------------------------------ */

static void cleanup(struct pod *pod)
{
	struct error err;
	for (size_t i = 0; i < pod->count; i++) {
		struct container *c = &pod->containers[i];
		if (c->restart_timer)
			loop_cancel_timer(pod->env.loop, c->restart_timer);
		c->restart_timer = NULL;
		lifecycle_free(c);
		imagepull_cancel(pod->env.pulls, c);
		cgroups_group_free(c->cgroup);
		c->cgroup = NULL;
	}
	if (pod->sandbox) {
		pod->env.driver->sandbox_destroy(pod->sandbox);
		pod->sandbox = NULL;
	}
	if (pod->cgroup) {
		if (cgroups_remove(pod->cgroup, CGROUPS_REMOVE_KILL, &err) < 0)
			log_warnx("pod %s/%s: %s", pod->namespace, pod->name, err.message);
		cgroups_group_free(pod->cgroup);
		pod->cgroup = NULL;
	}
	file_unmount_below(pod->dir); /* emptyDir tmpfs volumes */
	file_remove_tree(pod->dir);
}

static void finish_termination(struct pod *pod)
{
	if (pod->terminated || any_running(pod))
		return;
	network_pod_release(pod->env.network, pod->uid);
	cleanup(pod);
	pod->terminated = true;
	log_info("pod %s/%s: stopped", pod->namespace, pod->name);
	if (pod->env.terminated)
		pod->env.terminated(pod, pod->env.data);
}

void pod_terminate(struct pod *pod, int64_t grace_seconds)
{
	if (pod->terminating)
		return;
	pod->terminating = true;
	for (size_t i = 0; i < pod->count; i++) {
		struct container *c = &pod->containers[i];
		if (c->restart_timer) {
			loop_cancel_timer(pod->env.loop, c->restart_timer);
			c->restart_timer = NULL;
		}
		stop_container(c, grace_seconds); /* preStop, SIGTERM, SIGKILL after the grace period */
	}
	changed(pod);
	schedule_sync(pod);
}

void pod_evict(struct pod *pod, const char *message)
{
	if (pod->evicted || pod->terminating)
		return;
	pod->evicted = xstrdup(message);
	log_warnx("pod %s/%s: evicted: %s", pod->namespace, pod->name, message);
	const cJSON *grace = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod->object, "spec"),
	                                                      "terminationGracePeriodSeconds");
	pod_terminate(pod, cJSON_IsNumber(grace) && grace->valuedouble >= 0 ? (int64_t)grace->valuedouble : 30);
}

static uint64_t usage_bytes;
static int add_usage(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	usage_bytes += (uint64_t)st->st_blocks * 512;
	return 0;
}

void pod_check_volumes(struct pod *pod)
{
	if (pod->terminating || !pod->setup_done)
		return;
	const cJSON *volume;
	cJSON_ArrayForEach(volume, cJSON_GetObjectItemCaseSensitive(
	                                   cJSON_GetObjectItemCaseSensitive(pod->object, "spec"), "volumes"))
	{
		const cJSON *dir = cJSON_GetObjectItemCaseSensitive(volume, "emptyDir");
		const char *limit = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dir, "sizeLimit"));
		const char *medium = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dir, "medium"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(volume, "name"));
		int64_t bytes = 0;
		if (!limit || !name || (medium && strcmp(medium, "Memory") == 0) ||
		    scheduler_parse_quantity(limit, 0, &bytes) < 0 || bytes <= 0)
			continue; /* a Memory medium is a tmpfs of that size: the kernel holds the limit */
		cleanup_free char *path = xasprintf("%s/%s", pod->volumes_dir, name);
		usage_bytes = 0;
		if (nftw(path, add_usage, 16, FTW_PHYS | FTW_MOUNT) < 0)
			continue;
		if (usage_bytes > (uint64_t)bytes) {
			/* Kubernetes' words for it */
			cleanup_free char *message =
			        xasprintf("Usage of EmptyDir volume \"%s\" exceeds the limit \"%s\". ", name, limit);
			pod_evict(pod, message);
			return;
		}
	}
}

/* --- sync ---------------------------------------------------------------------------------- */

static void retry_setup(struct loop *loop, void *data)
{
	(void)loop;
	struct pod *pod = data;
	pod->setup_timer = NULL;
	schedule_sync(pod);
}

/* The sandbox, the pod cgroup and the volumes. */
static int setup(struct pod *pod, struct error *err)
{
	const struct pod_env *env = &pod->env;
	int r;
	if (!pod->cgroup) {
		struct cgroups_limits limits = { 0 };
		const cJSON *item;
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(
		                                 cJSON_GetObjectItemCaseSensitive(pod->object, "spec"), "containers"))
		{
			struct cgroups_limits one;
			if (podspec_limits(item, "spec.containers", &one, NULL) == 0) {
				limits.cpu_request_millicores += one.cpu_request_millicores;
				limits.cpu_limit_millicores += one.cpu_limit_millicores;
				limits.memory_limit_bytes += one.memory_limit_bytes;
			}
		}
		if ((r = cgroups_pod_create(env->cgroups, pod->uid, &limits, &pod->cgroup, err)) < 0)
			return r;
	}
	if ((r = podspec_volumes_write(pod->object, pod->config, pod->volumes_dir, err)) < 0)
		return r;
	if (!pod->sandbox) {
		cleanup_free char *ns_dir = xasprintf("%s/ns", pod->dir);
		if ((r = file_mkdir_p(ns_dir, 0700, err)) < 0)
			return r;
		struct sandbox_spec spec = { pod->name, host_network(pod), ns_dir };
		if ((r = env->driver->sandbox_create(&spec, &pod->sandbox, err)) < 0)
			return r;
	}
	return network_pod_setup(env->network, pod->object, runtime_sandbox_netns(pod->sandbox), pod->dir, &pod->net,
	                         err);
}

/* A container that exited and is to run again: the first restart after a quiet spell is
 * immediate, later ones wait out a back-off that doubles (CrashLoopBackOff). Returns true
 * when the restart is left to the back-off timer. */
static bool restart_later(struct container *c)
{
	c->restarts++;
	if (!c->crashed_recently) {
		c->crashed_recently = true;
		return false;
	}
	back_off(c, "CrashLoopBackOff");
	changed(c->pod);
	return true;
}

static void pod_sync(struct pod *pod)
{
	if (pod->terminated)
		return;
	if (pod->terminating) {
		finish_termination(pod);
		return;
	}
	if (!pod->setup_done) {
		if (pod->setup_timer)
			return;
		struct error err = { 0 };
		if (setup(pod, &err) < 0) {
			log_warnx("pod %s/%s: %s", pod->namespace, pod->name, err.message);
			snprintf(pod->setup_reason, sizeof(pod->setup_reason), "%s",
			         err.code == ENOENT ? "CreateContainerConfigError" : "ContainerCreating");
			snprintf(pod->setup_message, sizeof(pod->setup_message), "%s", err.message);
			pod->setup_backoff_ms = pod->setup_backoff_ms ? pod->setup_backoff_ms * 2 : 1000;
			if (pod->setup_backoff_ms > pod->env.backoff_max_ms)
				pod->setup_backoff_ms = pod->env.backoff_max_ms;
			pod->setup_timer = loop_add_timer(pod->env.loop, pod->setup_backoff_ms, retry_setup, pod);
			changed(pod);
			return;
		}
		pod->setup_done = true;
		pod->setup_reason[0] = pod->setup_message[0] = '\0';
		lifecycle_resume_adopted(pod);
	}
	/* Init containers, one at a time, each to a successful exit. */
	while (!pod->initialized) {
		if (pod->next_init >= pod->init_count) {
			pod->initialized = true;
			changed(pod);
			break;
		}
		struct container *c = &pod->containers[pod->next_init];
		if (c->state == CONTAINER_RUNNING || c->restart_timer)
			return;
		if (c->state == CONTAINER_TERMINATED) {
			if (c->last.exit_code == 0) {
				pod->next_init++;
				continue;
			}
			if (!should_restart(c))
				return; /* the pod has failed */
			if (restart_later(c))
				return;
		}
		start_container(c);
		return;
	}
	for (size_t i = pod->init_count; i < pod->count; i++) {
		struct container *c = &pod->containers[i];
		if (c->state == CONTAINER_RUNNING || c->restart_timer)
			continue;
		if (c->state == CONTAINER_TERMINATED) {
			if (!should_restart(c))
				continue;
			if (restart_later(c))
				continue;
		}
		start_container(c);
	}
}

static void sync_due(struct loop *loop, void *data)
{
	(void)loop;
	struct pod *pod = data;
	pod->sync_timer = NULL;
	pod_sync(pod);
}

static void schedule_sync(struct pod *pod)
{
	if (!pod->sync_timer)
		pod->sync_timer = loop_add_timer(pod->env.loop, 0, sync_due, pod);
}

/* --- life ---------------------------------------------------------------------------------- */

static void add_containers(struct pod *pod, const cJSON *list, bool init)
{
	const cJSON *item;
	size_t index = 0;
	cJSON_ArrayForEach(item, list)
	{
		struct container *c = &pod->containers[pod->count++];
		c->pod = pod;
		c->spec = cJSON_Duplicate(item, 1);
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->spec, "name"));
		c->name = name ? name : "";
		c->init = init;
		c->index = index++;
		set_waiting(c, init ? "PodInitializing" : "ContainerCreating", NULL);
	}
}

struct pod *pod_new(const struct pod_env *env, const cJSON *object, const cJSON *config)
{
	struct pod *pod = xcalloc(1, sizeof(*pod));
	pod->env = *env;
	pod->object = cJSON_Duplicate(object, 1);
	pod->config = config ? cJSON_Duplicate(config, 1) : NULL;
	const char *uid = object_string_at(object, "metadata.uid");
	pod->uid = xstrdup(uid ? uid : "");
	pod->name = xstrdup(object_name(object) ? object_name(object) : "");
	pod->namespace = xstrdup(object_namespace(object) ? object_namespace(object) : "default");
	pod->dir = xasprintf("%s/%s", env->state_dir, pod->uid);
	pod->volumes_dir = xasprintf("%s/volumes", pod->dir);
	pod->log_dir = xasprintf("%s/%s_%s_%s", env->log_dir, pod->namespace, pod->name, pod->uid);
	const char *policy = object_string_at(object, "spec.restartPolicy");
	snprintf(pod->restart_policy, sizeof(pod->restart_policy), "%s", policy ? policy : "Always");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod->object, "spec");
	const cJSON *init = cJSON_GetObjectItemCaseSensitive(spec, "initContainers");
	const cJSON *main = cJSON_GetObjectItemCaseSensitive(spec, "containers");
	size_t total = (size_t)cJSON_GetArraySize(init) + (size_t)cJSON_GetArraySize(main);
	pod->containers = xcalloc(total ? total : 1, sizeof(*pod->containers));
	add_containers(pod, init, true);
	pod->init_count = pod->count;
	add_containers(pod, main, false);
	pod->start_time = time(NULL);
	time_t now = time(NULL);
	for (size_t i = 0; i < 4; i++)
		pod->transitions[i] = now;
	pod->last_values[3] = true;
	log_info("pod %s/%s: starting (%zu containers, %zu init)", pod->namespace, pod->name,
	         pod->count - pod->init_count, pod->init_count);
	schedule_sync(pod);
	return pod;
}

void pod_update(struct pod *pod, const cJSON *object)
{
	cJSON_Delete(pod->object);
	pod->object = cJSON_Duplicate(object, 1);
}

void pod_update_config(struct pod *pod, const cJSON *config)
{
	if (!config || (pod->config && cJSON_Compare(pod->config, config, 1)))
		return;
	cJSON_Delete(pod->config);
	pod->config = cJSON_Duplicate(config, 1);
	/* Environment variables keep the values they started with, as in Kubernetes; the
	 * files of configMap and secret volumes change at once (the ..data swap). */
	struct error err;
	if (access(pod->volumes_dir, F_OK) == 0 &&
	    podspec_volumes_write(pod->object, pod->config, pod->volumes_dir, &err) < 0)
		log_warnx("pod %s/%s: volumes not updated: %s", pod->namespace, pod->name, err.message);
	else
		log_info("pod %s/%s: configMap and secret volumes updated", pod->namespace, pod->name);
}

void pod_free(struct pod *pod)
{
	if (!pod)
		return;
	struct loop *loop = pod->env.loop;
	for (size_t i = 0; i < pod->count; i++) {
		struct container *c = &pod->containers[i];
		unwatch_exit(c);
		if (c->runtime) {
			/* Agent shutdown: the container goes with it, reaped here. */
			pod->env.driver->signal(c->runtime, SIGKILL);
			int status;
			pod->env.driver->wait(c->runtime, &status);
			pod->env.driver->remove(c->runtime);
			c->runtime = NULL;
		}
	}
	if (!pod->terminated)
		cleanup(pod);
	for (size_t i = 0; i < pod->count; i++) {
		lifecycle_free(&pod->containers[i]);
		cJSON_Delete(pod->containers[i].spec);
	}
	if (pod->sync_timer)
		loop_cancel_timer(loop, pod->sync_timer);
	if (pod->setup_timer)
		loop_cancel_timer(loop, pod->setup_timer);
	free(pod->containers);
	network_attachment_clear(&pod->net);
	cJSON_Delete(pod->object);
	cJSON_Delete(pod->config);
	free(pod->uid);
	free(pod->name);
	free(pod->namespace);
	free(pod->dir);
	free(pod->volumes_dir);
	free(pod->evicted);
	free(pod->log_dir);
	free(pod->saved_state);
	free(pod);
}

unsigned pod_restart_count(const struct pod *pod)
{
	unsigned n = 0;
	for (size_t i = 0; i < pod->count; i++)
		n += pod->containers[i].restarts;
	return n;
}

/* --- status -------------------------------------------------------------------------------- */

static void add_time(cJSON *object, const char *key, time_t t)
{
	char text[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339(t, text);
	cJSON_AddStringToObject(object, key, text);
}

static cJSON *termination_json(const struct termination *t, const char *container_id)
{
	cJSON *terminated = cJSON_CreateObject();
	cJSON_AddNumberToObject(terminated, "exitCode", t->exit_code);
	if (t->signal)
		cJSON_AddNumberToObject(terminated, "signal", t->signal);
	cJSON_AddStringToObject(terminated, "reason", t->reason);
	if (t->message[0])
		cJSON_AddStringToObject(terminated, "message", t->message);
	add_time(terminated, "startedAt", t->started_at);
	add_time(terminated, "finishedAt", t->finished_at);
	if (container_id)
		cJSON_AddStringToObject(terminated, "containerID", container_id);
	return terminated;
}

static cJSON *container_status(const struct container *c)
{
	cJSON *status = cJSON_CreateObject();
	cJSON_AddStringToObject(status, "name", c->name);
	cJSON *state = cJSON_AddObjectToObject(status, "state");
	char id[96];
	snprintf(id, sizeof(id), "bramble://%s/%s/%u", c->pod->uid, c->name, c->restarts);
	bool ready = false;
	switch (c->state) {
	case CONTAINER_RUNNING: {
		const char *reason, *message;
		if (container_reported_waiting(c, &reason, &message)) {
			cJSON *waiting = cJSON_AddObjectToObject(state, "waiting");
			cJSON_AddStringToObject(waiting, "reason", reason);
			if (message[0])
				cJSON_AddStringToObject(waiting, "message", message);
			break;
		}
		cJSON *running = cJSON_AddObjectToObject(state, "running");
		add_time(running, "startedAt", c->started_at);
		ready = container_ready(c);
		break;
	}
	case CONTAINER_TERMINATED:
		cJSON_AddItemToObject(state, "terminated", termination_json(&c->last, id));
		break;
	case CONTAINER_WAITING: {
		cJSON *waiting = cJSON_AddObjectToObject(state, "waiting");
		const char *reason = c->reason;
		const char *message = c->message;
		if (!c->pod->setup_done && c->pod->setup_reason[0]) {
			reason = c->pod->setup_reason;
			message = c->pod->setup_message;
		}
		cJSON_AddStringToObject(waiting, "reason", reason);
		if (message[0])
			cJSON_AddStringToObject(waiting, "message", message);
		break;
	}
	}
	cJSON *last = cJSON_AddObjectToObject(status, "lastState");
	if (c->has_last && c->state != CONTAINER_TERMINATED)
		cJSON_AddItemToObject(last, "terminated", termination_json(&c->last, NULL));
	cJSON_AddBoolToObject(status, "ready", ready);
	cJSON_AddNumberToObject(status, "restartCount", c->restarts);
	cJSON_AddStringToObject(status, "image", image_reference(c));
	cJSON_AddStringToObject(status, "imageID", c->image_id);
	if (c->ever_started)
		cJSON_AddStringToObject(status, "containerID", id);
	cJSON_AddBoolToObject(status, "started", container_started(c));
	return status;
}

static const char *phase_of(const struct pod *pod)
{
	if (pod->evicted)
		return "Failed"; /* as the kubelet's eviction manager reports it, at once */
	if (!pod->initialized) {
		/* A failed init container that will not be retried fails the pod. */
		for (size_t i = 0; i < pod->init_count; i++) {
			const struct container *c = &pod->containers[i];
			if (c->state == CONTAINER_TERMINATED && c->last.exit_code != 0 && !c->restart_timer &&
			    strcmp(pod->restart_policy, "Never") == 0)
				return "Failed";
		}
		return "Pending";
	}
	size_t running = 0, succeeded = 0, failed = 0, waiting = 0;
	for (size_t i = pod->init_count; i < pod->count; i++) {
		const struct container *c = &pod->containers[i];
		const char *reason, *message;
		if (c->state == CONTAINER_RUNNING && c->restarts == 0 &&
		    container_reported_waiting(c, &reason, &message))
			waiting++; /* in its first postStart: the pod is not running yet */
		else if (c->state == CONTAINER_RUNNING)
			running++;
		else if (c->state == CONTAINER_TERMINATED && c->last.exit_code == 0)
			succeeded++;
		else if (c->state == CONTAINER_TERMINATED)
			failed++;
		else if (c->ever_started)
			running++; /* restarting after a crash: the pod still runs */
		else
			waiting++;
	}
	size_t regular = pod->count - pod->init_count;
	if (waiting > 0)
		return "Pending";
	if (running > 0)
		return "Running";
	if (regular > 0 && succeeded == regular)
		return strcmp(pod->restart_policy, "Always") == 0 ? "Running" : "Succeeded";
	if (failed > 0)
		return strcmp(pod->restart_policy, "Never") == 0 ? "Failed" : "Running";
	return "Pending";
}

static void add_condition(cJSON *conditions, struct pod *pod, size_t slot, const char *type, bool value,
                          const char *reason)
{
	if (pod->last_values[slot] != value) {
		pod->last_values[slot] = value;
		pod->transitions[slot] = time(NULL);
	}
	cJSON *condition = cJSON_CreateObject();
	cJSON_AddStringToObject(condition, "type", type);
	cJSON_AddStringToObject(condition, "status", value ? "True" : "False");
	if (!value && reason)
		cJSON_AddStringToObject(condition, "reason", reason);
	cJSON_AddNullToObject(condition, "lastProbeTime");
	add_time(condition, "lastTransitionTime", pod->transitions[slot]);
	cJSON_AddItemToArray(conditions, condition);
}

/* Kubernetes' message on Ready and ContainersReady when they are False for containers:
 * "containers with unready status: [a b]". */
static void add_unready_message(cJSON *conditions, const struct pod *pod)
{
	char names[POD_MESSAGE_MAX] = "";
	size_t length = 0;
	for (size_t i = pod->init_count; i < pod->count && length < sizeof(names); i++)
		if (!container_ready(&pod->containers[i]))
			length += (size_t)snprintf(names + length, sizeof(names) - length, "%s%s", length ? " " : "",
			                           pod->containers[i].name);
	if (!names[0])
		return;
	cJSON *condition;
	cJSON_ArrayForEach(condition, conditions)
	{
		const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(condition, "type"));
		const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(condition, "status"));
		if (type && status && strcmp(status, "False") == 0 &&
		    (strcmp(type, "Ready") == 0 || strcmp(type, "ContainersReady") == 0)) {
			char *message = xasprintf("containers with unready status: [%s]", names);
			cJSON_AddStringToObject(condition, "message", message);
			free(message);
		}
	}
}

cJSON *pod_status(const struct pod *const_pod)
{
	struct pod *pod = (struct pod *)const_pod; /* condition transition times are remembered */
	cJSON *status = cJSON_CreateObject();
	const char *phase = phase_of(pod);
	cJSON_AddStringToObject(status, "phase", phase);
	if (pod->evicted) {
		cJSON_AddStringToObject(status, "reason", "Evicted");
		cJSON_AddStringToObject(status, "message", pod->evicted);
	}
	bool all_ready = pod->count > pod->init_count && !pod->terminating;
	for (size_t i = pod->init_count; i < pod->count; i++)
		all_ready = all_ready && container_ready(&pod->containers[i]);
	const char *not_ready = "ContainersNotReady";
	cJSON *conditions = cJSON_AddArrayToObject(status, "conditions");
	add_condition(conditions, pod, 0, "Initialized", pod->initialized, "ContainersNotInitialized");
	add_condition(conditions, pod, 2, "Ready", all_ready, not_ready);
	add_condition(conditions, pod, 1, "ContainersReady", all_ready, not_ready);
	add_condition(conditions, pod, 3, "PodScheduled", true, NULL);
	add_unready_message(conditions, pod);
	if (pod->env.host_ip && pod->env.host_ip[0]) {
		cJSON_AddStringToObject(status, "hostIP", pod->env.host_ip);
		cJSON *ips = cJSON_AddArrayToObject(status, "hostIPs");
		cJSON *ip = cJSON_CreateObject();
		cJSON_AddStringToObject(ip, "ip", pod->env.host_ip);
		cJSON_AddItemToArray(ips, ip);
	}
	const char *pod_ip = host_network(pod) ? pod->env.host_ip : pod->net.pod_ip;
	if (pod_ip && pod_ip[0] && pod->setup_done) {
		cJSON_AddStringToObject(status, "podIP", pod_ip);
		cJSON *ips = cJSON_AddArrayToObject(status, "podIPs");
		cJSON *ip = cJSON_CreateObject();
		cJSON_AddStringToObject(ip, "ip", pod_ip);
		cJSON_AddItemToArray(ips, ip);
	}
	add_time(status, "startTime", pod->start_time);
	if (pod->init_count) {
		cJSON *list = cJSON_AddArrayToObject(status, "initContainerStatuses");
		for (size_t i = 0; i < pod->init_count; i++)
			cJSON_AddItemToArray(list, container_status(&pod->containers[i]));
	}
	cJSON *list = cJSON_AddArrayToObject(status, "containerStatuses");
	for (size_t i = pod->init_count; i < pod->count; i++)
		cJSON_AddItemToArray(list, container_status(&pod->containers[i]));
	cJSON_AddStringToObject(status, "qosClass", "BestEffort");
	return status;
}

/* --- adoption: a pod outlives the agent process ---------------------------------------------
 *
 * pod_save_state keeps <dir>/pod.json (dir is under the state directory, a tmpfs: no SD card
 * write) up to date with what a later agent process needs: per container its runtime state
 * (drivers/runtime.h), restarts, last termination and start time. pod_release frees the
 * pod's handles and leaves its sandbox, cgroups and containers running. pod_adopt makes a
 * pod as pod_new does, then, before its first sync, re-opens what pod.json names: the pod
 * cgroup, the sandbox's pinned namespaces and each container that still runs (same pid,
 * same log file, restart count unchanged). An adopted container is not the agent's child:
 * its exit is seen through its pidfd, with an unknown exit status (reported as 255,
 * reason Unknown), and handled by the restart policy as any exit. What cannot be re-opened
 * (a reboot emptied the state directory) is removed and the pod starts afresh.
 */

#define POD_STATE_FILE "pod.json"
#define POD_STATE_MAX (256 * 1024)

static cJSON *termination_record(const struct termination *t)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "exitCode", t->exit_code);
	cJSON_AddNumberToObject(o, "signal", t->signal);
	cJSON_AddStringToObject(o, "reason", t->reason);
	cJSON_AddStringToObject(o, "message", t->message);
	cJSON_AddNumberToObject(o, "startedAt", (double)t->started_at);
	cJSON_AddNumberToObject(o, "finishedAt", (double)t->finished_at);
	return o;
}

static double number_at(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void termination_from_record(const cJSON *o, struct termination *t)
{
	memset(t, 0, sizeof(*t));
	t->exit_code = (int)number_at(o, "exitCode");
	t->signal = (int)number_at(o, "signal");
	snprintf(t->reason, sizeof(t->reason), "%s",
	         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "reason")) ?: "");
	snprintf(t->message, sizeof(t->message), "%s",
	         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "message")) ?: "");
	t->started_at = (time_t)number_at(o, "startedAt");
	t->finished_at = (time_t)number_at(o, "finishedAt");
}

int pod_save_state(struct pod *pod, struct error *err)
{
	if (pod->terminated || !pod->sandbox)
		return 0; /* nothing to adopt (yet, or any more) */
	cJSON *state = cJSON_CreateObject();
	cJSON_AddStringToObject(state, "uid", pod->uid);
	cJSON_AddStringToObject(state, "name", pod->name);
	cJSON_AddBoolToObject(state, "hostNetwork", host_network(pod));
	cJSON_AddNumberToObject(state, "startTime", (double)pod->start_time);
	cJSON_AddBoolToObject(state, "initialized", pod->initialized);
	cJSON_AddNumberToObject(state, "nextInit", (double)pod->next_init);
	cJSON *list = cJSON_AddArrayToObject(state, "containers");
	for (size_t i = 0; i < pod->count; i++) {
		const struct container *c = &pod->containers[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", c->name);
		cJSON_AddStringToObject(o, "state",
		                        c->state == CONTAINER_RUNNING      ? "running"
		                        : c->state == CONTAINER_TERMINATED ? "terminated"
		                                                           : "waiting");
		char *runtime = NULL;
		if (c->runtime && runtime_container_state(c->runtime, &runtime, NULL) == 0) {
			cJSON_AddStringToObject(o, "runtime", runtime);
			free(runtime);
		}
		cJSON_AddNumberToObject(o, "restarts", c->restarts);
		cJSON_AddNumberToObject(o, "startedAt", (double)c->started_at);
		cJSON_AddBoolToObject(o, "everStarted", c->ever_started);
		cJSON_AddBoolToObject(o, "crashedRecently", c->crashed_recently);
		cJSON_AddNumberToObject(o, "backoffMs", (double)c->backoff_ms);
		cJSON_AddStringToObject(o, "imageID", c->image_id);
		if (c->has_last)
			cJSON_AddItemToObject(o, "last", termination_record(&c->last));
		cJSON_AddItemToArray(list, o);
	}
	char *text = cJSON_PrintUnformatted(state);
	cJSON_Delete(state);
	if (pod->saved_state && strcmp(pod->saved_state, text) == 0) {
		free(text);
		return 0;
	}
	/* Replaced atomically, not synced: the state directory is a tmpfs, and what it says is
	 * worthless after a power cut anyway (the containers went with it). */
	cleanup_free char *path = xasprintf("%s/" POD_STATE_FILE, pod->dir);
	cleanup_free char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = fd < 0 ? -errno : file_write_all(fd, text, strlen(text));
	if (fd >= 0)
		close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		free(text);
		return error_set_errno(err, -r, "write %s", path);
	}
	free(pod->saved_state);
	pod->saved_state = text;
	return 0;
}

static void unwatch_exit(struct container *c)
{
	if (c->exit_watched) {
		loop_remove_fd(c->pod->env.loop, runtime_container_pidfd(c->runtime));
		c->exit_watched = false;
	}
}

/* An adopted container ended: its status went to whoever reaped it, not to us. */
static void on_adopted_exit(struct loop *loop, int fd, uint32_t events, void *data)
{
	(void)fd;
	(void)events;
	struct container *c = data;
	unwatch_exit(c);
	on_container_exit(loop, c->pid, 255 << 8, c);
	if (strcmp(c->last.reason, "OOMKilled") != 0) {
		snprintf(c->last.reason, sizeof(c->last.reason), "Unknown");
		snprintf(c->last.message, sizeof(c->last.message),
		         "exit status not known: the container was adopted after an agent restart");
	}
}

/* What an earlier agent left of this pod that cannot be adopted: killed and removed. */
static void discard_leftovers(struct pod *pod)
{
	struct error err;
	const struct pod_env *env = &pod->env;
	struct cgroups_group *group = pod->cgroup;
	if (group || cgroups_pod_open(env->cgroups, pod->uid, &group, NULL) == 0) {
		if (cgroups_remove(group, CGROUPS_REMOVE_KILL, &err) < 0)
			log_warnx("pod %s/%s: %s", pod->namespace, pod->name, err.message);
		cgroups_group_free(group);
	}
	pod->cgroup = NULL;
	if (pod->sandbox) {
		env->driver->sandbox_destroy(pod->sandbox);
		pod->sandbox = NULL;
	} else {
		cleanup_free char *ns_dir = xasprintf("%s/ns", pod->dir);
		struct sandbox_spec spec = { pod->name, host_network(pod), ns_dir };
		struct runtime_sandbox *sandbox;
		if (env->driver->sandbox_adopt(&spec, &sandbox, NULL) == 0)
			env->driver->sandbox_destroy(sandbox);
	}
	for (size_t i = 0; i < pod->count; i++) {
		cgroups_group_free(pod->containers[i].cgroup);
		pod->containers[i].cgroup = NULL;
	}
}

static void adopt_container(struct pod *pod, struct container *c, const cJSON *record)
{
	const struct pod_env *env = &pod->env;
	c->restarts = (unsigned)number_at(record, "restarts");
	c->started_at = (time_t)number_at(record, "startedAt");
	c->ever_started = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(record, "everStarted"));
	c->crashed_recently = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(record, "crashedRecently"));
	c->backoff_ms = (uint64_t)number_at(record, "backoffMs");
	snprintf(c->image_id, sizeof(c->image_id), "%s",
	         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "imageID")) ?: "");
	const cJSON *last = cJSON_GetObjectItemCaseSensitive(record, "last");
	if (cJSON_IsObject(last)) {
		termination_from_record(last, &c->last);
		c->has_last = true;
	}
	const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "state")) ?: "";
	if (strcmp(state, "terminated") == 0) {
		c->state = CONTAINER_TERMINATED;
		return;
	}
	const char *runtime = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "runtime"));
	if (strcmp(state, "running") != 0 || !runtime)
		return; /* waiting: started by the first sync */
	struct error err;
	int r = cgroups_container_open(pod->cgroup, c->name, &c->cgroup, &err);
	if (r == 0)
		r = env->driver->adopt(pod->sandbox, runtime, c->cgroup, &c->runtime, &err);
	if (r == 0) {
		c->pid = runtime_container_pid(c->runtime);
		c->state = CONTAINER_RUNNING;
		c->started_ms = clock_monotonic_ms() - (uint64_t)(time(NULL) - c->started_at) * 1000;
		int pidfd = runtime_container_pidfd(c->runtime);
		if (pidfd >= 0 && loop_add_fd(env->loop, pidfd, EPOLLIN, on_adopted_exit, c) == 0)
			c->exit_watched = true;
		else
			log_warnx("pod %s/%s: container %s: no pidfd to learn of its exit", pod->namespace, pod->name,
			          c->name);
		log_info("pod %s/%s: container %s adopted (pid %d, restarts %u)", pod->namespace, pod->name, c->name,
		         (int)c->pid, c->restarts);
		lifecycle_adopted(c);
		return;
	}
	/* Gone while no agent watched it: an exit with an unknown status. */
	log_info("pod %s/%s: container %s not adopted: %s", pod->namespace, pod->name, c->name, err.message);
	if (c->cgroup)
		cgroups_remove(c->cgroup, CGROUPS_REMOVE_KILL, NULL);
	c->state = CONTAINER_TERMINATED;
	c->has_last = true;
	c->last = (struct termination){ .exit_code = 255, .started_at = c->started_at, .finished_at = time(NULL) };
	snprintf(c->last.reason, sizeof(c->last.reason), "Unknown");
	snprintf(c->last.message, sizeof(c->last.message), "the container exited while the agent was away");
}

/* Re-opens what an earlier agent process left; false when nothing could be (start afresh). */
static bool adopt_from_state(struct pod *pod)
{
	const struct pod_env *env = &pod->env;
	cleanup_free char *path = xasprintf("%s/" POD_STATE_FILE, pod->dir);
	cleanup_free char *text = NULL;
	struct error err;
	if (file_read(path, POD_STATE_MAX, &text, NULL, NULL) < 0)
		return false;
	cJSON *state = cJSON_Parse(text);
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(state, "uid"));
	if (!uid || strcmp(uid, pod->uid) != 0) {
		cJSON_Delete(state);
		return false;
	}
	if (cgroups_pod_open(env->cgroups, pod->uid, &pod->cgroup, &err) < 0) {
		log_info("pod %s/%s: nothing to adopt: %s", pod->namespace, pod->name, err.message);
		cJSON_Delete(state);
		return false;
	}
	cleanup_free char *ns_dir = xasprintf("%s/ns", pod->dir);
	struct sandbox_spec spec = { pod->name, host_network(pod), ns_dir };
	if (env->driver->sandbox_adopt(&spec, &pod->sandbox, &err) < 0) {
		log_info("pod %s/%s: nothing to adopt: %s", pod->namespace, pod->name, err.message);
		cJSON_Delete(state);
		return false;
	}
	pod->start_time = (time_t)number_at(state, "startTime");
	pod->initialized = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "initialized"));
	pod->next_init = (size_t)number_at(state, "nextInit");
	if (pod->next_init > pod->init_count)
		pod->next_init = pod->init_count;
	const cJSON *record;
	size_t adopted = 0;
	cJSON_ArrayForEach(record, cJSON_GetObjectItemCaseSensitive(state, "containers"))
	{
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "name"));
		for (size_t i = 0; name && i < pod->count; i++) {
			struct container *c = &pod->containers[i];
			if (strcmp(c->name, name) != 0)
				continue;
			adopt_container(pod, c, record);
			adopted += c->runtime != NULL;
		}
	}
	/* A container the record does not show running may have been started just before the
	 * agent died: nothing of it may run beside the one the first sync starts. */
	for (size_t i = 0; i < pod->count; i++) {
		struct container *c = &pod->containers[i];
		struct cgroups_group *group;
		if (!c->runtime && !c->cgroup && cgroups_container_open(pod->cgroup, c->name, &group, NULL) == 0) {
			cgroups_remove(group, CGROUPS_REMOVE_KILL, NULL);
			cgroups_group_free(group);
		}
	}
	cJSON_Delete(state);
	log_info("pod %s/%s: adopted (%zu running containers)", pod->namespace, pod->name, adopted);
	changed(pod);
	return true;
}

struct pod *pod_adopt(const struct pod_env *env, const cJSON *object, const cJSON *config)
{
	struct pod *pod = pod_new(env, object, config); /* its first sync is due, not run yet */
	if (!adopt_from_state(pod))
		discard_leftovers(pod);
	return pod;
}

void pod_release(struct pod *pod)
{
	if (!pod)
		return;
	struct error err;
	if (pod_save_state(pod, &err) < 0)
		log_warnx("pod %s/%s: %s", pod->namespace, pod->name, err.message);
	for (size_t i = 0; i < pod->count; i++) {
		struct container *c = &pod->containers[i];
		unwatch_exit(c);
		if (c->restart_timer)
			loop_cancel_timer(pod->env.loop, c->restart_timer);
		c->restart_timer = NULL;
		if (c->runtime)
			pod->env.driver->remove(c->runtime); /* the handle only: it keeps running */
		c->runtime = NULL;
		cgroups_group_free(c->cgroup);
		c->cgroup = NULL;
	}
	if (pod->sandbox)
		pod->env.driver->sandbox_release(pod->sandbox);
	pod->sandbox = NULL;
	cgroups_group_free(pod->cgroup);
	pod->cgroup = NULL;
	pod->terminated = true; /* pod_free: nothing left to stop or clean up */
	pod_free(pod);
}

void pod_discard_orphan(const struct pod_env *env, const char *uid)
{
	cleanup_free char *dir = xasprintf("%s/%s", env->state_dir, uid);
	cleanup_free char *path = xasprintf("%s/" POD_STATE_FILE, dir);
	cleanup_free char *text = NULL;
	struct error err;
	struct cgroups_group *group;
	if (cgroups_pod_open(env->cgroups, uid, &group, NULL) == 0) {
		if (cgroups_remove(group, CGROUPS_REMOVE_KILL, &err) < 0)
			log_warnx("pod %s: %s", uid, err.message);
		cgroups_group_free(group);
	}
	if (file_read(path, POD_STATE_MAX, &text, NULL, NULL) == 0) {
		cJSON *state = cJSON_Parse(text);
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(state, "name"));
		cleanup_free char *ns_dir = xasprintf("%s/ns", dir);
		struct sandbox_spec spec = { name ? name : "",
			                     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "hostNetwork")),
			                     ns_dir };
		struct runtime_sandbox *sandbox;
		if (env->driver->sandbox_adopt(&spec, &sandbox, NULL) == 0)
			env->driver->sandbox_destroy(sandbox);
		cJSON_Delete(state);
	}
	file_unmount_below(dir);
	file_remove_tree(dir);
	log_info("pod %s: left by an earlier agent and no longer wanted: stopped and removed", uid);
}
