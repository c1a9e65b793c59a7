#include "drivers/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/cgroups.h"
#include "platform/error.h"

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
