#include "drivers/runtime.h"
#include "drivers/runtime_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <stdio.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/cgroups.h"
#include "platform/error.h"
#include "platform/memory.h"

#include "tests/unit/unit.h"

TEST(default_capabilities_are_podmans)
{
	uint64_t expected = (1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_FOWNER) |
	                    (1ull << CAP_FSETID) | (1ull << CAP_KILL) | (1ull << CAP_NET_BIND_SERVICE) |
	                    (1ull << CAP_SETFCAP) | (1ull << CAP_SETGID) | (1ull << CAP_SETPCAP) |
	                    (1ull << CAP_SETUID) | (1ull << CAP_SYS_CHROOT);
	CHECK_INT(runtime_default_capabilities(), ==, expected);
	CHECK_INT(runtime_default_capabilities(), ==, 0x800405fbull);
}

TEST(capability_names_as_kubernetes_writes_them)
{
	CHECK_INT(runtime_capability_from_name("NET_ADMIN"), ==, CAP_NET_ADMIN);
	CHECK_INT(runtime_capability_from_name("CAP_SYS_ADMIN"), ==, CAP_SYS_ADMIN);
	CHECK_INT(runtime_capability_from_name("net_raw"), ==, CAP_NET_RAW);
	CHECK_INT(runtime_capability_from_name("BPF"), ==, CAP_BPF);
	CHECK_INT(runtime_capability_from_name("FLY"), ==, -EINVAL);
}

TEST(drivers_are_found_by_name)
{
	CHECK(runtime_by_name("native") == &runtime_native);
	CHECK(runtime_by_name("docker") == NULL);
}

TEST(the_process_driver_runs_waits_and_reports_no_stats_without_a_cgroup)
{
	const struct runtime_ops *driver = runtime_by_name("process");
	struct runtime_sandbox *sandbox;
	struct runtime_container *container;
	struct error err;
	CHECK_OK(driver->sandbox_create(&(struct sandbox_spec){ "unit", true, NULL }, &sandbox, &err));
	static const char *const argv[] = { "/bin/sh", "-c", "exit 3", NULL };
	static const char *const env[] = { "PATH=/bin:/usr/bin", NULL };
	struct container_spec spec = { .name = "unit", .argv = argv, .env = env, .stdout_fd = -1, .stderr_fd = -1 };
	CHECK_OK(driver->create(sandbox, &spec, &container, &err));
	CHECK_OK(driver->start(container, &err));
	int status = 0;
	CHECK_OK(driver->wait(container, &status));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	struct cgroups_usage usage;
	CHECK_INT(driver->stats(container, &usage, &err), ==, -ENODATA);
	driver->remove(container);
	driver->sandbox_destroy(sandbox);
}

/* Reads what fd gives until end of file (at most size - 1 bytes). */
static void read_all(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;
	while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
}

/* Runs argv through exec in the container; its output and wait status. */
static int exec_and_wait(const struct runtime_ops *driver, struct runtime_container *container, const char *const *argv,
                         const char *const *env, const char *cwd, char *out, size_t size, int *ret_status,
                         struct error *err)
{
	int pipe_fds[2];
	CHECK_OK(pipe2(pipe_fds, O_CLOEXEC));
	pid_t pid = -1;
	int r = driver->exec(container, &(struct exec_spec){ argv, env, cwd, pipe_fds[1], pipe_fds[1] }, &pid, err);
	close(pipe_fds[1]);
	if (r == 0) {
		read_all(pipe_fds[0], out, size);
		CHECK_INT(waitpid(pid, ret_status, 0), ==, pid);
	}
	close(pipe_fds[0]);
	return r;
}

TEST(the_process_driver_execs_beside_its_process_with_its_user_environment_and_confinement)
{
	const struct runtime_ops *driver = runtime_by_name("process");
	struct runtime_sandbox *sandbox;
	struct runtime_container *container;
	struct error err;
	CHECK_OK(driver->sandbox_create(&(struct sandbox_spec){ "unit", true, NULL }, &sandbox, &err));
	static const char *const argv[] = { "/bin/sh", "-c", "exec sleep 60", NULL };
	static const char *const env[] = { "PATH=/bin:/usr/bin", "FROM=container", NULL };
	struct container_spec spec = {
		.name = "unit", .argv = argv, .env = env, .uid = 65534, .gid = 65534, .stdout_fd = -1, .stderr_fd = -1
	};
	CHECK_OK(driver->create(sandbox, &spec, &container, &err));
	CHECK_OK(driver->start(container, &err));

	char out[4096];
	int status = -1;
	static const char *const exit_3[] = { "sh", "-c", "exit 3", NULL };
	CHECK_OK(exec_and_wait(driver, container, exit_3, NULL, NULL, out, sizeof(out), &status, &err));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);

	/* The container's environment and user by default; output captured; cwd set. */
	static const char *const show[] = { "sh", "-c", "echo $FROM $(id -u) $(pwd); echo to-stderr >&2", NULL };
	CHECK_OK(exec_and_wait(driver, container, show, NULL, "/tmp", out, sizeof(out), &status, &err));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_STR(out, "container 65534 /tmp\nto-stderr\n");
	static const char *const own_env[] = { "PATH=/bin:/usr/bin", "FROM=exec", NULL };
	static const char *const echo_from[] = { "sh", "-c", "echo $FROM", NULL };
	CHECK_OK(exec_and_wait(driver, container, echo_from, own_env, NULL, out, sizeof(out), &status, &err));
	CHECK_STR(out, "exec\n");

	/* Confined as the process is: no_new_privs, only 0-2 open (the pipe is 1 and 2). */
	static const char *const status_file[] = { "grep", "NoNewPrivs", "/proc/self/status", NULL };
	CHECK_OK(exec_and_wait(driver, container, status_file, NULL, NULL, out, sizeof(out), &status, &err));
	CHECK_CONTAINS(out, "NoNewPrivs:\t1");
	int stray = open("/dev/null", O_RDONLY); /* not close-on-exec: must still not leak */
	static const char *const fds[] = { "ls", "/proc/self/fd", NULL };
	CHECK_OK(exec_and_wait(driver, container, fds, NULL, NULL, out, sizeof(out), &status, &err));
	close(stray);
	CHECK_STR(out, "0\n1\n2\n3\n"); /* 3: ls's own directory */

	/* A command that cannot run is an error, its process reaped. */
	static const char *const missing[] = { "nonexistent-command", NULL };
	CHECK_INT(exec_and_wait(driver, container, missing, NULL, NULL, out, sizeof(out), &status, &err), <, 0);
	CHECK_CONTAINS(err.message, "exec \"nonexistent-command\": no such file in PATH");
	CHECK_INT(waitpid(-1, NULL, WNOHANG), ==, 0); /* only the supervised process is our child */
	static const char *const empty[] = { NULL };
	CHECK_INT(exec_and_wait(driver, container, empty, NULL, NULL, out, sizeof(out), &status, &err), ==, -EINVAL);

	CHECK_OK(driver->signal(container, SIGKILL));
	CHECK_OK(driver->wait(container, &status));
	CHECK_INT(exec_and_wait(driver, container, exit_3, NULL, NULL, out, sizeof(out), &status, &err), ==, -ESRCH);
	CHECK_CONTAINS(err.message, "not running");
	driver->remove(container);
	driver->sandbox_destroy(sandbox);
}

/* A cgroup parent of this test's own, removed at the end (test_cgroups.c sweeps what a
 * killed test leaves: the same prefix). */
static char *test_parent(void)
{
	char *name = xasprintf("bramble-test-%d-runtime", (int)getpid());
	return name;
}

static int enter_procs(void *data)
{
	return cgroups_procs_enter(data);
}

TEST(a_container_is_adopted_by_a_later_process_with_signal_stats_exec_and_its_exit_seen)
{
	if (geteuid() != 0)
		unit_fail(__FILE__, __LINE__, "needs root (real cgroups; CI runs as root)");
	const struct runtime_ops *driver = runtime_by_name("process");
	struct error err;
	cleanup_free char *parent = test_parent();
	struct cgroups *cg;
	struct cgroups_group *pod, *group;
	CHECK_OK(cgroups_open(parent, &cg, &err));
	CHECK_OK(cgroups_pod_create(cg, "adopt", &(struct cgroups_limits){ 0 }, &pod, &err));
	CHECK_OK(cgroups_container_create(pod, "main", &(struct cgroups_limits){ 0 }, &group, &err));

	/* The creator: makes and starts the container, hands its state over and exits. */
	int state_pipe[2];
	CHECK_OK(pipe2(state_pipe, O_CLOEXEC));
	pid_t creator = fork();
	CHECK_OK(creator);
	if (creator == 0) {
		struct runtime_sandbox *sandbox;
		struct runtime_container *container;
		struct cgroups_procs procs;
		static const char *const argv[] = { "/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done",
			                            NULL };
		static const char *const env[] = { "PATH=/bin:/usr/bin", NULL };
		struct container_spec spec = { .name = "adopt",
			                       .argv = argv,
			                       .env = env,
			                       .uid = 65534,
			                       .gid = 65534,
			                       .stdout_fd = -1,
			                       .stderr_fd = -1,
			                       .enter = enter_procs,
			                       .enter_data = &procs,
			                       .cgroup = group };
		char *state = NULL;
		if (cgroups_procs_open(group, &procs, &err) < 0 ||
		    driver->sandbox_create(&(struct sandbox_spec){ "adopt", true, NULL }, &sandbox, &err) < 0 ||
		    driver->create(sandbox, &spec, &container, &err) < 0 || driver->start(container, &err) < 0 ||
		    runtime_container_state(container, &state, &err) < 0)
			_exit(1);
		if (write(state_pipe[1], state, strlen(state)) < 0)
			_exit(1);
		driver->remove(container); /* the handle only: it keeps running */
		driver->sandbox_release(sandbox);
		_exit(0);
	}
	close(state_pipe[1]);
	char state[RUNTIME_STATE_MAX + 1];
	read_all(state_pipe[0], state, sizeof(state));
	close(state_pipe[0]);
	int status;
	CHECK_INT(waitpid(creator, &status, 0), ==, creator);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_CONTAINS(state, "\"driver\":\"process\"");

	struct runtime_sandbox *sandbox;
	struct runtime_container *container;
	CHECK_OK(driver->sandbox_adopt(&(struct sandbox_spec){ "adopt", true, NULL }, &sandbox, &err));
	CHECK_OK(driver->adopt(sandbox, state, group, &container, &err));
	CHECK(runtime_container_adopted(container));
	CHECK_INT(runtime_container_pidfd(container), >=, 0);

	/* stats from its cgroup; exec as its user, in its cgroup. */
	struct cgroups_usage usage;
	CHECK_OK(driver->stats(container, &usage, &err));
	CHECK_INT(usage.pids_current, >=, 1);
	char out[256];
	static const char *const id[] = { "id", "-u", NULL };
	CHECK_OK(exec_and_wait(driver, container, id, NULL, NULL, out, sizeof(out), &status, &err));
	CHECK_STR(out, "65534\n");
	char cgroup_line[512];
	snprintf(cgroup_line, sizeof(cgroup_line), ":pids:/%s\n", cgroups_group_name(group));
	static const char *const own_cgroup[] = { "grep", ":pids:", "/proc/self/cgroup", NULL };
	CHECK_OK(exec_and_wait(driver, container, own_cgroup, NULL, NULL, out, sizeof(out), &status, &err));
	CHECK_CONTAINS(out, cgroup_line);

	/* Misfits are refused: another driver, another cgroup, a bad text, a reused pid. */
	struct runtime_container *other;
	CHECK_INT(runtime_native.adopt(sandbox, state, group, &other, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "of driver \"process\", not native");
	CHECK_INT(driver->adopt(sandbox, state, pod, &other, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "its cgroup is");
	CHECK_INT(driver->adopt(sandbox, "{\"driver\":", group, &other, &err), ==, -EINVAL);
	CHECK_INT(driver->adopt(sandbox, "{\"driver\":\"process\",\"pid\":-4}", group, &other, &err), ==, -EINVAL);
	char reused[RUNTIME_STATE_MAX + 16];
	const char *start = strstr(state, "\"startTime\":");
	CHECK(start);
	snprintf(reused, sizeof(reused), "%.*s\"startTime\":1,%s", (int)(start - state), state, strchr(start, ',') + 1);
	CHECK_INT(driver->adopt(sandbox, reused, group, &other, &err), ==, -ESRCH);
	CHECK_CONTAINS(err.message, "another process's now");

	/* Signalled through its pidfd; its exit is seen there; the status is not ours. */
	CHECK_OK(driver->signal(container, SIGTERM));
	struct pollfd exited = { .fd = runtime_container_pidfd(container), .events = POLLIN };
	CHECK_INT(poll(&exited, 1, 10000), ==, 1);
	CHECK_INT(driver->wait(container, &status), ==, -ECHILD);
	CHECK_INT(exec_and_wait(driver, container, id, NULL, NULL, out, sizeof(out), &status, &err), ==, -ESRCH);
	CHECK_INT(driver->adopt(sandbox, state, group, &other, &err), ==, -ESRCH);
	CHECK_CONTAINS(err.message, "has exited");
	driver->remove(container);
	driver->sandbox_destroy(sandbox);

	CHECK_OK(cgroups_remove(pod, CGROUPS_REMOVE_KILL, &err));
	CHECK_OK(cgroups_remove_parent(cg, 0, &err));
	cgroups_group_free(group);
	cgroups_group_free(pod);
	cgroups_close(cg);
}

/* The cgroup v2 placement of the native driver (clone3 CLONE_INTO_CGROUP), checked on a
 * cgroup2 file system mounted in a private mount namespace: any cgroup2 mount works for it,
 * controllers or not, so this runs on v1 machines too. The child reports 0 when
 * /proc/self/cgroup shows the group. */
static int clone_into_cgroup_check(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 10;
	char top[] = "/tmp/bramble-cgroup2.XXXXXX";
	if (!mkdtemp(top))
		return 11;
	int result = 12;
	if (mount("cgroup2", top, "cgroup2", 0, NULL) == 0) {
		char name[64], dir[128];
		snprintf(name, sizeof(name), "bramble-test-clone-%d", (int)getpid());
		snprintf(dir, sizeof(dir), "%s/%s", top, name);
		result = 13;
		if (mkdir(dir, 0755) == 0) {
			int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
			pid_t pid = fd >= 0 ? runtime_clone_into_cgroup(fd, 0) : -1;
			if (pid == 0) {
				char buf[4096] = "", want[128];
				int f = open("/proc/self/cgroup", O_RDONLY);
				ssize_t n = f >= 0 ? read(f, buf, sizeof(buf) - 1) : -1;
				buf[n > 0 ? n : 0] = '\0';
				snprintf(want, sizeof(want), "0::/%s\n", name);
				_exit(strstr(buf, want) ? 0 : 1);
			}
			int status = 0;
			result = pid < 0                                                ? 14
			         : waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? WEXITSTATUS(status)
			                                                                : 15;
			if (fd >= 0)
				close(fd);
			rmdir(dir);
		}
		umount2(top, MNT_DETACH);
	}
	rmdir(top);
	return result;
}

TEST(a_process_is_cloned_straight_into_a_cgroup_v2_group)
{
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(clone_into_cgroup_check());
	int status = 0;
	CHECK_INT(waitpid(pid, &status, 0), ==, pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), ==, 0);
}
