/* What both runtime drivers share: capabilities, the parent/child protocol of
 * runtime_internal.h, and the ops that do not depend on the driver. */
#include "drivers/runtime_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "platform/cgroups.h"
#include "platform/error.h"
#include "platform/memory.h"

/* --- capabilities --------------------------------------------------------------------- */

static const char *const capability_names[] = {
	"CHOWN",
	"DAC_OVERRIDE",
	"DAC_READ_SEARCH",
	"FOWNER",
	"FSETID",
	"KILL",
	"SETGID",
	"SETUID",
	"SETPCAP",
	"LINUX_IMMUTABLE",
	"NET_BIND_SERVICE",
	"NET_BROADCAST",
	"NET_ADMIN",
	"NET_RAW",
	"IPC_LOCK",
	"IPC_OWNER",
	"SYS_MODULE",
	"SYS_RAWIO",
	"SYS_CHROOT",
	"SYS_PTRACE",
	"SYS_PACCT",
	"SYS_ADMIN",
	"SYS_BOOT",
	"SYS_NICE",
	"SYS_RESOURCE",
	"SYS_TIME",
	"SYS_TTY_CONFIG",
	"MKNOD",
	"LEASE",
	"AUDIT_WRITE",
	"AUDIT_CONTROL",
	"SETFCAP",
	"MAC_OVERRIDE",
	"MAC_ADMIN",
	"SYSLOG",
	"WAKE_ALARM",
	"BLOCK_SUSPEND",
	"AUDIT_READ",
	"PERFMON",
	"BPF",
	"CHECKPOINT_RESTORE",
};

int runtime_capability_from_name(const char *name)
{
	if (strncmp(name, "CAP_", 4) == 0)
		name += 4;
	for (size_t i = 0; i < ARRAY_SIZE(capability_names); i++)
		if (strcasecmp(capability_names[i], name) == 0)
			return (int)i;
	return -EINVAL;
}

uint64_t runtime_default_capabilities(void)
{
	static const int defaults[] = { CAP_CHOWN,   CAP_DAC_OVERRIDE,     CAP_FOWNER,    CAP_FSETID,
		                        CAP_KILL,    CAP_NET_BIND_SERVICE, CAP_SETFCAP,   CAP_SETGID,
		                        CAP_SETPCAP, CAP_SETUID,           CAP_SYS_CHROOT };
	uint64_t set = 0;
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
		set |= 1ull << defaults[i];
	return set;
}

const char *const runtime_namespace_names[NS_COUNT] = { "net", "ipc", "uts" };

/* --- messages between parent and child -------------------------------------------------- */

void runtime_child_report(int fd, const char *fmt, ...)
{
	char message[RUNTIME_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (n > 0 && send(fd, message, strnlen(message, sizeof(message)), MSG_NOSIGNAL) < 0)
		_exit(126);
}

/* Reports "error: <what>: <strerror>" and ends the child. */
void runtime_child_fail(int fd, const char *what)
{
	/* strerrordesc_np: no translation, no locale lock (the child may share our memory). */
	runtime_child_report(fd, "error: %s: %s", what, strerrordesc_np(errno));
	_exit(127);
}

int runtime_wait_byte(int fd, char want)
{
	char c;
	ssize_t n;
	while ((n = recv(fd, &c, 1, 0)) < 0 && errno == EINTR)
		;
	return n == 1 && c == want ? 0 : -1;
}

/* Reads the child's answer: 0 for "ok" or end of file (an exec closed the socket). */
int runtime_read_answer(int fd, const char *stage, struct error *err)
{
	char message[RUNTIME_MESSAGE_MAX + 1];
	ssize_t n;
	while ((n = recv(fd, message, RUNTIME_MESSAGE_MAX, 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return error_set_errno(err, errno, "%s: reading the container's answer", stage);
	if (n == 0 || (n == 2 && memcmp(message, "ok", 2) == 0))
		return 0;
	message[n] = '\0';
	return error_set(err, EINVAL, "%s: %s", stage, strncmp(message, "error: ", 7) == 0 ? message + 7 : message);
}

void runtime_child_reset_signals(void)
{
	/* The agent blocks signals for its event loop; a container starts clean. Handlers go
	 * first: a signal let through must not run one of the caller's handlers here. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void runtime_child_set_output_fds(int fd, int out, int err)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(out >= 0 ? out : null, 1) < 0 || dup2(err >= 0 ? err : null, 2) < 0)
		runtime_child_fail(fd, "set up standard output");
	close(null);
}

void runtime_child_set_output(int fd, const struct container_spec *spec)
{
	runtime_child_set_output_fds(fd, spec->stdout_fd, spec->stderr_fd);
}

void runtime_child_close_descriptors(int keep)
{
	if (syscall(SYS_close_range, 3, (unsigned)keep - 1, 0) < 0 || syscall(SYS_close_range, keep + 1, ~0u, 0) < 0) {
		for (int i = 3; i < 65536; i++)
			if (i != keep)
				close(i);
	}
}

void runtime_child_exec_argv(int fd, const char *const *argv, const char *const *env, const char *not_found)
{
	/* As execvp, but in env's PATH and without setting environ, which this process may
	 * share with its caller (see drivers/native.c). */
	const char *file = argv[0];
	int error = ENOENT;
	if (strchr(file, '/')) {
		execve(file, (char *const *)argv, (char *const *)env);
		error = errno;
	} else {
		const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		for (const char *const *p = env; p && *p; p++)
			if (strncmp(*p, "PATH=", 5) == 0)
				path = *p + 5;
		bool denied = false;
		size_t file_length = strlen(file);
		for (const char *dir = path;; dir++) {
			size_t length = strcspn(dir, ":");
			char candidate[4096];
			if (length + 1 + file_length < sizeof(candidate)) {
				/* An empty element is the working directory, as for execvp. */
				memcpy(candidate, length ? dir : ".", length ? length : 1);
				size_t n = length ? length : 1;
				candidate[n] = '/';
				memcpy(candidate + n + 1, file, file_length + 1);
				execve(candidate, (char *const *)argv, (char *const *)env);
				if (errno == EACCES)
					denied = true;
				else if (errno != ENOENT && errno != ENOTDIR) {
					error = errno;
					break;
				}
			}
			dir += length;
			if (*dir == '\0') {
				error = denied ? EACCES : ENOENT;
				break;
			}
		}
	}
	runtime_child_report(fd, "error: exec \"%s\": %s", file, error == ENOENT ? not_found : strerrordesc_np(error));
	_exit(127);
}

void runtime_child_exec(int fd, const struct container_spec *spec, const char *not_found)
{
	runtime_child_exec_argv(fd, spec->argv, spec->env, not_found);
}

/* Field 22 of /proc/PID/stat, when the process started (clock ticks after boot), and its
 * state letter (field 3). -ESRCH when there is no such process. */
static int process_start_time(pid_t pid, uint64_t *ret_start_time, char *ret_state)
{
	char path[32], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int saved = errno;
	close(fd);
	if (n <= 0)
		return n < 0 && saved != ESRCH ? -saved : -ESRCH;
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: fields follow the last ')'. */
	char *p = strrchr(buf, ')');
	char state;
	unsigned long long start_time;
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
	                 &state, &start_time) != 2)
		return -EBADMSG;
	*ret_start_time = start_time;
	*ret_state = state;
	return 0;
}

pid_t runtime_clone_into_cgroup(int cgroup_fd, unsigned long flags)
{
#ifdef SYS_clone3
	/* struct clone_args of <linux/sched.h>, up to its cgroup field (CLONE_ARGS_SIZE_VER2). */
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
		        set_tid_size, cgroup;
	} args;
	memset(&args, 0, sizeof(args));
	args.flags = flags | 0x200000000ull; /* CLONE_INTO_CGROUP */
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)cgroup_fd;
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
#else
	(void)cgroup_fd;
	(void)flags;
	errno = ENOSYS;
	return -1;
#endif
}

int runtime_finish_create(const char *driver, pid_t pid, int sync_fd, bool placed, const struct container_spec *spec,
                          struct runtime_container **ret_container, struct error *err)
{
	int r = spec->attach && !placed ? spec->attach(pid, spec->attach_data, err) : 0;
	if (r == 0 && send(sync_fd, "A", 1, MSG_NOSIGNAL) != 1)
		r = error_set_errno(err, errno, "container %s", spec->name);
	if (r == 0)
		r = runtime_read_answer(sync_fd, spec->name, err);
	if (r < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(sync_fd);
		return r;
	}
	struct runtime_container *c = xcalloc(1, sizeof(*c));
	c->driver = driver;
	c->pid = pid;
	/* Our unreaped child: the pid cannot be reused before the pidfd holds it. */
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	char state;
	process_start_time(pid, &c->start_time, &state);
	c->sync_fd = sync_fd;
	c->cgroup = spec->cgroup;
	c->uid = spec->uid;
	c->gid = spec->gid;
	c->capabilities = (runtime_default_capabilities() | spec->capabilities_add) & ~spec->capabilities_drop;
	c->env = runtime_strv_copy(spec->env);
	*ret_container = c;
	return 0;
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int runtime_finish_exec(pid_t helper, pid_t pid, int sync_fd, const char *what, pid_t *ret_pid, struct error *err)
{
	int r = 0;
	if (helper > 0) {
		/* The helper joined the namespaces and forked the process: its pid, or why not. */
		char message[RUNTIME_MESSAGE_MAX + 1];
		ssize_t n;
		while ((n = recv(sync_fd, message, RUNTIME_MESSAGE_MAX, 0)) < 0 && errno == EINTR)
			;
		message[n > 0 ? n : 0] = '\0';
		long value = 0;
		if (n < 0)
			r = error_set_errno(err, errno, "%s: reading the helper's answer", what);
		else if (sscanf(message, "pid %ld", &value) == 1 && value > 0)
			pid = (pid_t)value;
		else if (strncmp(message, "error: ", 7) == 0)
			r = error_set(err, EINVAL, "%s: %s", what, message + 7);
		else
			r = error_set(err, EIO, "%s: the helper ended without an answer", what);
		reap(helper);
	}
	if (r == 0 && send(sync_fd, "S", 1, MSG_NOSIGNAL) != 1)
		r = error_set_errno(err, errno, "%s", what);
	if (r == 0)
		r = runtime_read_answer(sync_fd, what, err);
	close(sync_fd);
	if (r < 0) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			reap(pid);
		}
		return r;
	}
	*ret_pid = pid;
	return 0;
}

bool runtime_container_exited(const struct runtime_container *c)
{
	if (c->pidfd < 0)
		return kill(c->pid, 0) < 0 && errno == ESRCH;
	struct pollfd p = { .fd = c->pidfd, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

const char *const *runtime_exec_env(const struct runtime_container *c, const struct exec_spec *spec)
{
	static const char *const default_env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		                                   NULL };
	if (spec->env)
		return spec->env;
	return c->env ? (const char *const *)c->env : default_env;
}

char **runtime_strv_copy(const char *const *v)
{
	if (!v)
		return NULL;
	size_t n = 0;
	while (v[n])
		n++;
	char **copy = xcalloc(n + 1, sizeof(*copy));
	for (size_t i = 0; i < n; i++)
		copy[i] = xstrdup(v[i]);
	return copy;
}

void runtime_strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

static void release_child_memory(struct runtime_container *c)
{
	if (c->child_memory)
		c->child_memory_free(c->child_memory);
	c->child_memory = NULL;
}

int runtime_start(struct runtime_container *c, struct error *err)
{
	if (c->started)
		return error_set(err, EINVAL, "container already started");
	c->started = true;
	if (send(c->sync_fd, "S", 1, MSG_NOSIGNAL) != 1)
		return error_set_errno(err, errno, "start the container");
	int r = runtime_read_answer(c->sync_fd, "starting the container", err);
	close(c->sync_fd);
	c->sync_fd = -1;
	/* End of file: the child exec'd (or died) and no longer uses our memory. */
	if (r == 0 || runtime_container_exited(c))
		release_child_memory(c);
	return r;
}

int runtime_signal(struct runtime_container *c, int signo)
{
	/* Through the pidfd: never a process that reused the pid. */
	if (c->pidfd >= 0)
		return syscall(SYS_pidfd_send_signal, c->pidfd, signo, NULL, 0) < 0 ? -errno : 0;
	return kill(c->pid, signo) < 0 ? -errno : 0;
}

int runtime_wait(struct runtime_container *c, int *ret_wait_status)
{
	if (c->adopted) {
		/* Not our child: wait for the exit, whose status went to the process's parent. */
		struct pollfd p = { .fd = c->pidfd, .events = POLLIN };
		if (c->pidfd >= 0)
			while (poll(&p, 1, -1) < 0 && errno == EINTR)
				;
		else
			while (kill(c->pid, 0) == 0)
				usleep(10000);
		return -ECHILD;
	}
	int status;
	pid_t r;
	while ((r = waitpid(c->pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (r < 0)
		return -errno;
	*ret_wait_status = status;
	return 0;
}

int runtime_stats(struct runtime_container *c, struct cgroups_usage *ret_usage, struct error *err)
{
	if (!c->cgroup)
		return error_set(err, ENODATA, "the container was created without a cgroup");
	return cgroups_usage(c->cgroup, ret_usage, err);
}

void runtime_remove(struct runtime_container *c)
{
	if (!c)
		return;
	if (c->sync_fd >= 0)
		close(c->sync_fd);
	/* A child that neither exec'd nor exited may still run on its stack: that memory is
	 * left to it (removing a container that was created, never started and not killed). */
	if (c->child_memory && runtime_container_exited(c))
		release_child_memory(c);
	if (c->pidfd >= 0)
		close(c->pidfd);
	runtime_strv_free(c->env);
	free(c);
}

int runtime_sandbox_netns(const struct runtime_sandbox *sandbox)
{
	return sandbox ? sandbox->fds[NS_NET] : -1;
}

pid_t runtime_container_pid(const struct runtime_container *container)
{
	return container->pid;
}

int runtime_container_pidfd(const struct runtime_container *container)
{
	return container->pidfd;
}

bool runtime_container_adopted(const struct runtime_container *container)
{
	return container->adopted;
}

/* --- adoption ----------------------------------------------------------------------------- */

int runtime_container_state(const struct runtime_container *c, char **ret_state, struct error *err)
{
	if (!c->started)
		return error_set(err, EINVAL, "a container is adoptable only once started");
	cJSON *state = cJSON_CreateObject();
	cJSON_AddStringToObject(state, "driver", c->driver);
	cJSON_AddNumberToObject(state, "pid", c->pid);
	cJSON_AddNumberToObject(state, "startTime", (double)c->start_time);
	cJSON_AddNumberToObject(state, "uid", c->uid);
	cJSON_AddNumberToObject(state, "gid", c->gid);
	cJSON_AddNumberToObject(state, "capabilities", (double)c->capabilities);
	if (c->cgroup)
		cJSON_AddStringToObject(state, "cgroup", cgroups_group_name(c->cgroup));
	char *text = cJSON_PrintUnformatted(state);
	cJSON_Delete(state);
	if (!text)
		abort(); /* only out of memory */
	*ret_state = text;
	return 0;
}

/* A whole number field of the state, at most max. */
static int state_number(const cJSON *state, const char *name, double max, uint64_t *ret, struct error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(state, name);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max ||
	    v->valuedouble != (double)(uint64_t)v->valuedouble)
		return error_set(err, EINVAL, "container state: \"%s\" is not a number from 0 to %.0f", name, max);
	*ret = (uint64_t)v->valuedouble;
	return 0;
}

/* Whether pid's namespace of the sandbox's kind i is the sandbox's. */
static bool in_namespace(pid_t pid, int ns_fd, int i)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, runtime_namespace_names[i]);
	struct stat a, b;
	return stat(path, &a) == 0 && fstat(ns_fd, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

int runtime_adopt(const char *driver, struct runtime_sandbox *sandbox, const char *text, struct cgroups_group *cgroup,
                  struct runtime_container **ret_container, struct error *err)
{
	if (!text || strnlen(text, RUNTIME_STATE_MAX + 1) > RUNTIME_STATE_MAX)
		return error_set(err, EINVAL, "container state: missing or longer than %d bytes", RUNTIME_STATE_MAX);
	cJSON *state = cJSON_Parse(text);
	if (!cJSON_IsObject(state)) {
		cJSON_Delete(state);
		return error_set(err, EINVAL, "container state: not a JSON object");
	}
	uint64_t pid = 0, start_time = 0, uid = 0, gid = 0, capabilities = 0;
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(state, "driver");
	const cJSON *path = cJSON_GetObjectItemCaseSensitive(state, "cgroup");
	int r = 0;
	if (!cJSON_IsString(name) || strcmp(name->valuestring, driver) != 0)
		r = error_set(err, EINVAL, "container state: of driver \"%s\", not %s",
		              cJSON_IsString(name) ? name->valuestring : "?", driver);
	else if (path && !cJSON_IsString(path))
		r = error_set(err, EINVAL, "container state: \"cgroup\" is not a string");
	else if (!cgroup != !path || (cgroup && strcmp(path->valuestring, cgroups_group_name(cgroup)) != 0))
		r = error_set(err, EINVAL, "container state: its cgroup is %s, given %s",
		              path ? path->valuestring : "none", cgroup ? cgroups_group_name(cgroup) : "none");
	if (r == 0)
		r = state_number(state, "pid", 4194304, &pid, err);
	if (r == 0)
		r = state_number(state, "startTime", 9007199254740992.0, &start_time, err);
	if (r == 0)
		r = state_number(state, "uid", 4294967294.0, &uid, err);
	if (r == 0)
		r = state_number(state, "gid", 4294967294.0, &gid, err);
	if (r == 0)
		r = state_number(state, "capabilities", 9007199254740992.0, &capabilities, err);
	cJSON_Delete(state);
	if (r < 0)
		return r;
	if (pid == 0)
		return error_set(err, EINVAL, "container state: pid 0");

	/* The pidfd first, then the start time: if it matches, the pidfd is the container's. */
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0 && errno == ESRCH)
		return error_set(err, ESRCH, "container process %d has exited", (int)pid);
	uint64_t now_start_time = 0;
	char letter = '?';
	r = process_start_time((pid_t)pid, &now_start_time, &letter);
	if (r == 0 && now_start_time != start_time)
		r = error_set(err, ESRCH, "container process %d has exited (the pid is another process's now)",
		              (int)pid);
	else if (r == 0 && (letter == 'Z' || letter == 'X'))
		r = error_set(err, ESRCH, "container process %d has exited", (int)pid);
	else if (r == -ESRCH)
		r = error_set(err, ESRCH, "container process %d has exited", (int)pid);
	else if (r < 0)
		r = error_set_errno(err, -r, "reading /proc/%d/stat", (int)pid);
	for (int i = 0; r == 0 && sandbox && i < NS_COUNT; i++)
		if (sandbox->fds[i] >= 0 && !in_namespace((pid_t)pid, sandbox->fds[i], i))
			r = error_set(err, ESRCH, "process %d is not in the sandbox's %s namespace", (int)pid,
			              runtime_namespace_names[i]);
	if (r < 0) {
		if (pidfd >= 0)
			close(pidfd);
		return r;
	}
	struct runtime_container *c = xcalloc(1, sizeof(*c));
	c->driver = driver;
	c->pid = (pid_t)pid;
	c->pidfd = pidfd;
	c->start_time = start_time;
	c->sync_fd = -1;
	c->started = true;
	c->adopted = true;
	c->cgroup = cgroup;
	c->uid = (uid_t)uid;
	c->gid = (gid_t)gid;
	c->capabilities = capabilities;
	*ret_container = c;
	return 0;
}

const struct runtime_ops *runtime_by_name(const char *name)
{
	static const struct runtime_ops *const drivers[] = { &runtime_native, &runtime_process };
	for (size_t i = 0; i < ARRAY_SIZE(drivers); i++)
		if (strcmp(name, drivers[i]->name) == 0)
			return drivers[i];
	return NULL;
}
