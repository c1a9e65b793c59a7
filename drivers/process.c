/* The process runtime driver: a supervised host process, for board services that need no
 * image (a sensor reader, a GPIO daemon). It shares the board's namespaces and root
 * filesystem and gets cgroup limits (through the attach callback), its user and group,
 * no_new_privs, its environment and working directory, and only descriptors 0-2; the
 * create/start protocol is the native driver's (runtime_internal.h). Layers, mounts and
 * capabilities of the spec do not apply and are refused when given, not ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drivers/runtime_internal.h"
#include "platform/cgroups.h"
#include "platform/error.h"
#include "platform/memory.h"

static int process_sandbox_create(const struct sandbox_spec *spec, struct runtime_sandbox **ret_sandbox,
                                  struct error *err)
{
	(void)spec;
	(void)err;
	struct runtime_sandbox *s = xcalloc(1, sizeof(*s));
	for (int i = 0; i < NS_COUNT; i++)
		s->fds[i] = -1; /* a process shares the board's namespaces */
	*ret_sandbox = s;
	return 0;
}

static void process_sandbox_destroy(struct runtime_sandbox *sandbox)
{
	free(sandbox);
}

static void __attribute__((noreturn))
confine_and_exec(int fd, const char *cwd, uid_t uid, gid_t gid, const char *const *argv, const char *const *env)
{
	if (chdir(cwd ? cwd : "/") < 0)
		runtime_child_fail(fd, cwd ? cwd : "/");
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		runtime_child_fail(fd, "set the user and group");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		runtime_child_fail(fd, "set no_new_privs");
	runtime_child_close_descriptors(fd);
	runtime_child_exec_argv(fd, argv, env, "no such file in PATH");
}

static void __attribute__((noreturn)) child(int fd, const struct container_spec *spec)
{
	runtime_child_reset_signals();
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (runtime_wait_byte(fd, 'A') < 0)
		_exit(127);
	if (spec->enter && spec->enter(spec->enter_data) < 0)
		runtime_child_fail(fd, "enter the process's cgroups");
	runtime_child_set_output(fd, spec);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0)
		runtime_child_fail(fd, "set up standard input");
	close(null);
	runtime_child_report(fd, "ok");
	if (runtime_wait_byte(fd, 'S') < 0)
		_exit(127);
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0); /* outlives its creator, as a container does */
	confine_and_exec(fd, spec->cwd, spec->uid, spec->gid, spec->argv, spec->env);
}

static int process_create(struct runtime_sandbox *sandbox, const struct container_spec *spec,
                          struct runtime_container **ret_container, struct error *err)
{
	(void)sandbox;
	if (!spec->argv || !spec->argv[0])
		return error_set(err, EINVAL, "process %s: no command to run", spec->name);
	if (spec->layer_count || spec->mount_count || spec->capabilities_add)
		return error_set(err, EINVAL,
		                 "process %s: the process driver runs on the board itself: no image, volumes or "
		                 "added capabilities",
		                 spec->name);
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		return error_set_errno(err, errno, "socketpair");
	pid_t pid = fork();
	if (pid < 0) {
		close(pair[0]);
		close(pair[1]);
		return error_set_errno(err, errno, "fork process %s", spec->name);
	}
	if (pid == 0) {
		close(pair[0]);
		child(pair[1], spec);
	}
	close(pair[1]);
	return runtime_finish_create("process", pid, pair[0], false, spec, ret_container, err);
}

/* A further process beside the supervised one: its cgroup, user and confinement. */
static int process_exec(struct runtime_container *c, const struct exec_spec *spec, pid_t *ret_pid, struct error *err)
{
	if (!spec->argv || !spec->argv[0])
		return error_set(err, EINVAL, "exec: no command to run");
	if (!c->started || runtime_container_exited(c))
		return error_set(err, ESRCH, "exec \"%s\": the process is not running", spec->argv[0]);
	struct cgroups_procs procs = { .count = 0 };
	int r = c->cgroup ? cgroups_procs_open(c->cgroup, &procs, err) : 0;
	if (r < 0)
		return r;
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		cgroups_procs_close(&procs);
		return error_set_errno(err, errno, "socketpair");
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pair[0]);
		runtime_child_reset_signals();
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (cgroups_procs_enter(&procs) < 0)
			runtime_child_fail(pair[1], "enter the process's cgroups");
		if (runtime_wait_byte(pair[1], 'S') < 0)
			_exit(127);
		runtime_child_set_output_fds(pair[1], spec->stdout_fd, spec->stderr_fd);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null < 0 || dup2(null, 0) < 0)
			runtime_child_fail(pair[1], "set up standard input");
		close(null);
		confine_and_exec(pair[1], spec->cwd, c->uid, c->gid, spec->argv, runtime_exec_env(c, spec));
	}
	int saved = errno;
	cgroups_procs_close(&procs);
	close(pair[1]);
	if (pid < 0) {
		close(pair[0]);
		return error_set_errno(err, saved, "fork for exec");
	}
	return runtime_finish_exec(0, pid, pair[0], "exec beside the process", ret_pid, err);
}

static int process_adopt(struct runtime_sandbox *sandbox, const char *state, struct cgroups_group *cgroup,
                         struct runtime_container **ret_container, struct error *err)
{
	return runtime_adopt("process", sandbox, state, cgroup, ret_container, err);
}

const struct runtime_ops runtime_process = {
	.name = "process",
	.sandbox_create = process_sandbox_create,
	.sandbox_destroy = process_sandbox_destroy,
	.create = process_create,
	.start = runtime_start,
	.signal = runtime_signal,
	.wait = runtime_wait,
	.stats = runtime_stats,
	.exec = process_exec,
	.remove = runtime_remove,
	.sandbox_adopt = process_sandbox_create, /* a process's sandbox holds nothing */
	.sandbox_release = process_sandbox_destroy,
	.adopt = process_adopt,
};
