/* What the runtime drivers share (drivers/runtime.c): the container handle, and the small
 * protocol a parent and its not-yet-exec'd child speak over a SOCK_SEQPACKET pair:
 *   parent -> child  'A' (the child is in its cgroups), 'S' (start: exec now)
 *   child -> parent  "ok" (ready), "error: <what>" (then it exits 127); end of file once the
 *                    exec succeeded (the socket is close-on-exec)
 */
#ifndef BRAMBLE_DRIVERS_RUNTIME_INTERNAL_H
#define BRAMBLE_DRIVERS_RUNTIME_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>

#include "drivers/runtime.h"

#define RUNTIME_MESSAGE_MAX 512

enum { NS_NET, NS_IPC, NS_UTS, NS_COUNT };
extern const char *const runtime_namespace_names[NS_COUNT]; /* "net", "ipc", "uts" */

/* A pod's shared namespaces; -1 where the pod uses the board's own (host network, and the
 * process driver's sandboxes, which hold none). */
struct runtime_sandbox {
	int fds[NS_COUNT];
	bool pinned[NS_COUNT]; /* bind-mounted at <state_dir>/<name>: unpinned by destroy */
	char *state_dir;
};

struct runtime_container {
	const char *driver; /* the runtime_ops name, for the state */
	pid_t pid;
	int pidfd;           /* refers to pid for as long as the handle lives (no pid reuse) */
	uint64_t start_time; /* of pid, in clock ticks after boot (/proc/PID/stat) */
	int sync_fd;         /* -1 once started */
	bool started;
	bool adopted;                 /* made by an earlier process: not our child */
	struct cgroups_group *cgroup; /* borrowed from the spec */
	/* What exec gives a further process: the container's user, capabilities and
	 * environment (copied). */
	uid_t uid;
	gid_t gid;
	uint64_t capabilities;
	char **env;
	/* A child cloned with CLONE_VM (drivers/native.c) uses this memory of ours (its stack
	 * and arguments) until it execs: freed once it has exec'd or exited. */
	void *child_memory;
	void (*child_memory_free)(void *child_memory);
};

/* In the child. */
void runtime_child_report(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void runtime_child_fail(int fd, const char *what) __attribute__((noreturn));
void runtime_child_reset_signals(void);
/* In the child: dup2 the spec's output descriptors onto 1 and 2 (/dev/null when -1). */
void runtime_child_set_output(int fd, const struct container_spec *spec);
/* In the child: every descriptor from 3 up closed, except keep. */
void runtime_child_close_descriptors(int keep);
/* In the child: execs the spec's command in its environment; on failure reports it, naming
 * `where` the command was not found, and exits 127. */
void runtime_child_exec(int fd, const struct container_spec *spec, const char *not_found) __attribute__((noreturn));
/* In the child: dup2 out and err onto 1 and 2 (/dev/null when -1). */
void runtime_child_set_output_fds(int fd, int out, int err);
/* In the child: exec argv in env; on failure reports it, naming `where` the command was not
 * found, and exits 127. */
void runtime_child_exec_argv(int fd, const char *const *argv, const char *const *env, const char *not_found)
        __attribute__((noreturn));
/* Waits for byte want; 0 when it came. */
int runtime_wait_byte(int fd, char want);
/* Reads the child's answer: 0 for "ok" or end of file, else the child's error. */
int runtime_read_answer(int fd, const char *stage, struct error *err);

/* The parent's half of create: attach (unless placed: the child was cloned into its cgroup),
 * send 'A', read the answer; kills and reaps the child on failure. Takes ownership of
 * sync_fd. */
int runtime_finish_create(const char *driver, pid_t pid, int sync_fd, bool placed, const struct container_spec *spec,
                          struct runtime_container **ret_container, struct error *err);

/* A fork (no CLONE_VM: it returns in both processes, 0 in the child) with flags, started in
 * the cgroup v2 directory cgroup_fd (clone3 CLONE_INTO_CGROUP, Linux 5.7+). -1 with errno
 * ENOSYS where the kernel or architecture has no clone3. */
pid_t runtime_clone_into_cgroup(int cgroup_fd, unsigned long flags);

/* The parent's half of exec, once the process that will exec is forked: reads its host pid
 * (as "pid N") when first is set, else takes pid, then waits for the exec (end of file) or
 * an error, after which the process is reaped. Takes ownership of sync_fd. */
int runtime_finish_exec(pid_t helper, pid_t pid, int sync_fd, const char *what, pid_t *ret_pid, struct error *err);

/* The environment of an exec'd process: the spec's, else the container's, else a default
 * PATH. */
const char *const *runtime_exec_env(const struct runtime_container *c, const struct exec_spec *spec);
/* Whether the container's process has exited (reaped or not). */
bool runtime_container_exited(const struct runtime_container *c);
/* A NULL-terminated copy of v (NULL for NULL); free with runtime_strv_free. */
char **runtime_strv_copy(const char *const *v);
void runtime_strv_free(char **v);

/* The ops every driver shares. */
int runtime_start(struct runtime_container *container, struct error *err);
int runtime_signal(struct runtime_container *container, int signo);
int runtime_wait(struct runtime_container *container, int *ret_wait_status);
int runtime_stats(struct runtime_container *container, struct cgroups_usage *ret_usage, struct error *err);
void runtime_remove(struct runtime_container *container);
int runtime_adopt(const char *driver, struct runtime_sandbox *sandbox, const char *state, struct cgroups_group *cgroup,
                  struct runtime_container **ret_container, struct error *err);

#endif
