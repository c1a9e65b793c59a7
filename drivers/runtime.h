/* Runtime drivers: how a container becomes a process, behind one small ops table.
 *
 *   native   a real container: new mount, PID and cgroup namespaces inside the pod's shared
 *            network/IPC/UTS namespaces, an overlayfs root with pivot_root, a minimal /dev,
 *            masked and read-only /proc paths, reduced capabilities, no_new_privs, a default
 *            seccomp filter, every descriptor but 0-2 closed (drivers/native.c)
 *   process  a supervised host process with cgroup limits only, for board services that
 *            need no image (drivers/process.c)
 *
 * The lifecycle follows OCI runtimes: sandbox_create holds the pod's namespaces;
 * create prepares a container up to the point of running user code (the process exists,
 * is in its cgroups, has its root filesystem) and waits; start lets it exec; signal, then
 * the caller reaps it (loop_watch_child on runtime_container_pid) and removes it.
 * Placing the process in its cgroups is the caller's attach callback, run by the parent
 * between create's clone and the start barrier: no user code runs outside its cgroups.
 *
 * Adoption. A started container outlives the process that made it (an agent restart, a
 * `bramble run --detach`). runtime_container_state() gives what a later process needs to
 * re-open it (host pid, the pid's start time from /proc/PID/stat against pid reuse, user,
 * capabilities, cgroup path), as JSON text the caller persists; sandbox_adopt re-opens a
 * sandbox from the namespaces pinned in its state_dir, adopt re-opens a container. An
 * adopted container is not the caller's child: its exit is learnt by polling
 * runtime_container_pidfd() (readable once it exited), and its exit status is unknown
 * (wait returns -ECHILD). signal, stats, exec and remove work on it as on any container.
 * sandbox_release and remove free handles only: what runs keeps running.
 *
 * exec runs a further process in a running container (exec probes, lifecycle hooks):
 * in its namespaces, root, cgroup and confinement. It does not block on the command: the
 * caller gets the host pid of a child of its own, reaps it (loop_watch_child) and may kill
 * it on a timeout; the command's exit code is that child's exit status.
 */
#ifndef BRAMBLE_DRIVERS_RUNTIME_H
#define BRAMBLE_DRIVERS_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cgroups_group;
struct cgroups_usage;
struct error;
struct runtime_sandbox;
struct runtime_container;

#define RUNTIME_MAX_LAYERS 64
#define RUNTIME_MAX_MOUNTS 64

struct sandbox_spec {
	const char *name;      /* the pod's name: the hostname inside */
	bool host_network;     /* share the board's network (and UTS) namespace */
	const char *state_dir; /* where the namespaces are pinned (survives an agent restart) */
};

struct runtime_mount {
	const char *source; /* a host path (a volume's directory or file) */
	const char *target; /* an absolute path in the container */
	bool read_only;
};

struct container_spec {
	const char *name;
	/* The root filesystem: image layers (top first) under a writable upper directory, or a
	 * single directory used as it is. */
	const char *const *layers;
	size_t layer_count;
	const char *upper_dir; /* NULL with read_only_root */
	const char *work_dir;  /* overlayfs' work directory, on the same filesystem as upper_dir */
	bool read_only_root;
	/* The writable layer in memory: a tmpfs mounted on upper_dir in the container's own
	 * mount namespace holds overlayfs' upper and work directories (work_dir is unused), and
	 * rootfs_mountpoint too when it lies inside upper_dir (it is then made there). It goes
	 * with the container's last process and never touches the disk; its pages count against
	 * the container's memory limit. For containers whose writes are thrown away (bramble
	 * run --rm). */
	bool upper_in_memory;
	const char *rootfs_mountpoint; /* an empty directory the root is assembled on */

	const char *const *argv; /* argv[0] is looked up in the container's PATH */
	const char *const *env;  /* NAME=value, NULL-terminated */
	const char *cwd;         /* NULL: / */
	uid_t uid;
	gid_t gid;
	uint64_t capabilities_add;  /* bits of CAP_* beyond the default set */
	uint64_t capabilities_drop; /* bits of CAP_* removed from it */
	const struct runtime_mount *mounts;
	size_t mount_count;

	int stdout_fd; /* become the container's 1 and 2; -1: /dev/null */
	int stderr_fd;

	/* Runs in the parent with the container's host pid, before it may exec. */
	int (*attach)(pid_t pid, void *data, struct error *err);
	void *attach_data;
	/* Or: runs in the child itself, first thing, before it joins any namespace (moving
	 * oneself into a cgroup is cheaper than being moved); async-signal-safe (it may share
	 * the caller's memory: no allocation), 0 or -errno. */
	int (*enter)(void *data);
	void *enter_data;
	/* The container's cgroup, for stats; may be NULL (stats then answer -ENODATA). On
	 * cgroup v2 (Linux 5.7+) the native driver starts the process in it directly (clone3
	 * CLONE_INTO_CGROUP) and then runs neither attach nor enter: with cgroup set, they must
	 * place the process in that same group. */
	struct cgroups_group *cgroup;
};

/* A further process in a running container. */
struct exec_spec {
	const char *const *argv; /* argv[0] is looked up in the container's PATH */
	const char *const *env;  /* NAME=value, NULL-terminated; NULL: the container's own (as
	                          * given to create) */
	const char *cwd;         /* NULL: / */
	int stdout_fd;           /* become the process's 1 and 2 (-1: /dev/null); 0 is /dev/null */
	int stderr_fd;
};

struct runtime_ops {
	const char *name;
	int (*sandbox_create)(const struct sandbox_spec *spec, struct runtime_sandbox **ret_sandbox, struct error *err);
	void (*sandbox_destroy)(struct runtime_sandbox *sandbox);
	int (*create)(struct runtime_sandbox *sandbox, const struct container_spec *spec,
	              struct runtime_container **ret_container, struct error *err);
	/* Lets the container exec its command; a failed exec (missing command) is reported here. */
	int (*start)(struct runtime_container *container, struct error *err);
	int (*signal)(struct runtime_container *container, int signo);
	/* Blocks until the container's process exits and reaps it: its wait status. The agent
	 * does not block: it reaps from its event loop (loop_watch_child on the pid). For an
	 * adopted container: waits for the exit, then -ECHILD (the status is not ours). */
	int (*wait)(struct runtime_container *container, int *ret_wait_status);
	/* Usage from the container's cgroup (spec.cgroup): cpu time, memory, pids, OOM kills. */
	int (*stats)(struct runtime_container *container, struct cgroups_usage *ret_usage, struct error *err);
	/* Starts spec's command in the started, running container: in its mount, PID, network,
	 * IPC, UTS and cgroup namespaces, its root, its cgroup (spec.cgroup of create), as its
	 * user, with its capabilities, no_new_privs, the seccomp filter and only descriptors
	 * 0-2. Returns once the command is exec'd, with *ret_pid the host pid of a child of the
	 * caller, which the caller reaps. A command that cannot be run (not found, a bad working
	 * directory) is an error here, its process already reaped; -ESRCH when the container
	 * is not running. */
	int (*exec)(struct runtime_container *container, const struct exec_spec *spec, pid_t *ret_pid,
	            struct error *err);
	/* Frees the handle (the process reaped, or left running for a later adopt). */
	void (*remove)(struct runtime_container *container);

	/* Re-opens the sandbox an earlier process made with this spec (same name, host_network,
	 * state_dir): -ENOENT when its namespaces are not pinned there (never made, destroyed,
	 * or the board rebooted). */
	int (*sandbox_adopt)(const struct sandbox_spec *spec, struct runtime_sandbox **ret_sandbox, struct error *err);
	/* Frees the handle only: the namespaces stay pinned for a later sandbox_adopt. */
	void (*sandbox_release)(struct runtime_sandbox *sandbox);
	/* Re-opens a started container of the sandbox from its runtime_container_state().
	 * cgroup: the container's cgroup re-opened by the caller (cgroups_container_open), or
	 * NULL when it had none; the state's path must match it. -ESRCH when the process is
	 * gone (exited, or its pid now names another process); -EINVAL for a state that is not
	 * one. Environment is not kept in the state: exec with env NULL then gets a default
	 * PATH only. */
	int (*adopt)(struct runtime_sandbox *sandbox, const char *state, struct cgroups_group *cgroup,
	             struct runtime_container **ret_container, struct error *err);
};

extern const struct runtime_ops runtime_native;
extern const struct runtime_ops runtime_process;

const struct runtime_ops *runtime_by_name(const char *name);
pid_t runtime_container_pid(const struct runtime_container *container);
/* The sandbox's network namespace (owned by the sandbox), or -1 when it uses the board's. */
int runtime_sandbox_netns(const struct runtime_sandbox *sandbox);
/* Readable (poll, loop_add_fd) once the container's process has exited: how a caller learns
 * that an adopted container ended. -1 where the kernel has no pidfds (before 5.3). */
int runtime_container_pidfd(const struct runtime_container *container);
bool runtime_container_adopted(const struct runtime_container *container);
/* The started container's state as JSON text (malloc'd, at most RUNTIME_STATE_MAX bytes),
 * for adopt in a later process; -EINVAL before start. */
int runtime_container_state(const struct runtime_container *container, char **ret_state, struct error *err);
#define RUNTIME_STATE_MAX 4096

/* The default capabilities, no wider than Podman's: CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
 * KILL, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT. */
uint64_t runtime_default_capabilities(void);
/* "NET_ADMIN" or "CAP_NET_ADMIN" -> its bit number; -EINVAL when unknown. */
int runtime_capability_from_name(const char *name);

#endif
