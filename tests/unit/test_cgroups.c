/* cgroups on this machine's real hierarchies (v1 here, v2 on Raspberry Pi OS).
 *
 * Every test that touches the kernel runs its body in a child process under a parent group
 * of its own ("bramble-test-<pid>-<random>"); the test process waits for the body, then
 * removes the parent and checks that no directory is left — also when a check in the body
 * failed (a failed check ends only the body's process). Groups left by a test that was
 * killed outright (time limit) are swept by the next test: their <pid> no longer runs.
 */
#include "platform/cgroups.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libcgroup.h>

#include "platform/clock.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

#define TEST_PREFIX "bramble-test-"
#define MIB ((uint64_t)1 << 20)
#define CGROUP2_MAGIC 0x63677270

static const char *const controllers[] = { "cpu", "cpuacct", "memory", "pids" };

static void require_root(void)
{
	if (geteuid() != 0)
		unit_fail(__FILE__, __LINE__,
		          "the cgroups tests need root (they create real cgroups; CI runs as root)");
}

/* <mount of controller>/<name>, or NULL when the controller is not mounted. */
static char *group_dir(const char *controller, const char *name)
{
	char *mount = NULL;
	if (cgroup_get_subsys_mount_point(controller, &mount) != 0)
		return NULL;
	char *path = xasprintf("%s/%s", mount, name);
	free(mount);
	return path;
}

static int dir_exists(const char *path)
{
	DIR *d = opendir(path);
	if (d)
		closedir(d);
	return d != NULL;
}

/* Removes parents left by test processes that no longer run. */
static void sweep_stale(void)
{
	if (cgroup_init() != 0)
		return;
	char *mount = NULL;
	if (cgroup_get_subsys_mount_point("memory", &mount) != 0)
		return;
	DIR *d = opendir(mount);
	free(mount);
	if (!d)
		return;
	char stale[16][CGROUPS_NAME_MAX + 1];
	int count = 0;
	struct dirent *e;
	while ((e = readdir(d)) && count < 16) {
		int pid;
		if (sscanf(e->d_name, TEST_PREFIX "%d-", &pid) != 1 || strlen(e->d_name) > CGROUPS_NAME_MAX)
			continue;
		if (kill(pid, 0) < 0 && errno == ESRCH)
			snprintf(stale[count++], CGROUPS_NAME_MAX + 1, "%s", e->d_name);
	}
	closedir(d);
	for (int i = 0; i < count; i++) {
		struct cgroups *cg = NULL;
		if (cgroups_open(stale[i], &cg, NULL) == 0) {
			cgroups_remove_parent(cg, CGROUPS_REMOVE_KILL, NULL);
			cgroups_close(cg);
		}
	}
}

/* Runs body(cg) in a child under a fresh parent group; removes the parent whatever happens. */
static void with_parent(void (*body)(struct cgroups *cg))
{
	require_root();
	sweep_stale();
	char parent[CGROUPS_NAME_MAX + 1];
	srandom((unsigned)(getpid() ^ clock_monotonic_us()));
	snprintf(parent, sizeof(parent), TEST_PREFIX "%d-%08lx", (int)getpid(), (unsigned long)random());
	struct error err = { 0 };
	struct cgroups *cg = NULL;
	if (cgroups_open(parent, &cg, &err) < 0)
		unit_fail(__FILE__, __LINE__, "cgroups_open %s: %s", parent, err.message);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(45); /* before the runner's limit, so that the cleanup below still runs */
		body(cg);
		exit(0);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int removed = cgroups_remove_parent(cg, CGROUPS_REMOVE_KILL, &err);
	cgroups_close(cg);
	if (removed < 0)
		unit_fail(__FILE__, __LINE__, "removing %s: %s", parent, err.message);
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		cleanup_free char *dir = group_dir(controllers[i], parent);
		if (dir && dir_exists(dir))
			unit_fail(__FILE__, __LINE__, "%s is still there after removal", dir);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		unit_fail(__FILE__, __LINE__, "the test body failed (status 0x%x)", status);
}

static char *read_text(const char *controller, const char *name, const char *file)
{
	cleanup_free char *dir = group_dir(controller, name);
	CHECK(dir != NULL);
	cleanup_free char *path = xasprintf("%s/%s", dir, file);
	char *data = NULL;
	struct error err = { 0 };
	if (file_read(path, 65536, &data, NULL, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	char *nl = strchr(data, '\n');
	if (nl && nl[1] == '\0')
		*nl = '\0';
	return data;
}

#define CHECK_FILE(controller, group, file, expected)                                                                  \
	do {                                                                                                           \
		cleanup_free char *text_ = read_text(controller, cgroups_group_name(group), file);                     \
		CHECK_STR(text_, expected);                                                                            \
	} while (0)

/* A pod and one container "main" under it. */
static void make_container(struct cgroups *cg, const char *uid, const struct cgroups_limits *limits,
                           struct cgroups_group **ret_pod, struct cgroups_group **ret_container)
{
	struct error err = { 0 };
	struct cgroups_limits none = { 0 };
	if (cgroups_pod_create(cg, uid, &none, ret_pod, &err) < 0)
		unit_fail(__FILE__, __LINE__, "pod: %s", err.message);
	if (cgroups_container_create(*ret_pod, "main", limits, ret_container, &err) < 0)
		unit_fail(__FILE__, __LINE__, "container: %s", err.message);
}

/* Forks a child that enters group before running fn (as the runtime does before exec). */
static pid_t spawn_in(struct cgroups_group *group, void (*fn)(int fd), int fd)
{
	struct cgroups_procs procs;
	struct error err = { 0 };
	if (cgroups_procs_open(group, &procs, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (cgroups_procs_enter(&procs) < 0)
			_exit(120);
		fn(fd);
		_exit(0);
	}
	cgroups_procs_close(&procs);
	return pid;
}

static void wait_forever(int fd)
{
	(void)fd;
	for (;;)
		pause();
}

TEST(library_version_is_read_from_libcgroup)
{
	char buf[64];
	int major = -1, minor = -1, release = -1;
	cgroups_library_version(buf, sizeof(buf));
	CHECK_INT(sscanf(buf, "libcgroup %d.%d.%d", &major, &minor, &release), ==, 3);
	CHECK_INT(major, >=, 3);
}

TEST(cpu_requests_map_to_shares_and_weight_as_in_kubernetes)
{
	CHECK_INT(cgroups_cpu_shares(0), ==, 2);
	CHECK_INT(cgroups_cpu_shares(1), ==, 2);
	CHECK_INT(cgroups_cpu_shares(100), ==, 102);
	CHECK_INT(cgroups_cpu_shares(250), ==, 256);
	CHECK_INT(cgroups_cpu_shares(1000), ==, 1024);
	CHECK_INT(cgroups_cpu_shares(CGROUPS_CPU_MILLICORES_MAX), ==, 262144);
	CHECK_INT(cgroups_cpu_weight(2), ==, 1);
	CHECK_INT(cgroups_cpu_weight(102), ==, 4);
	CHECK_INT(cgroups_cpu_weight(1024), ==, 39);
	CHECK_INT(cgroups_cpu_weight(262144), ==, 10000);
	CHECK_INT(cgroups_cpu_quota_us(0), ==, 0);
	CHECK_INT(cgroups_cpu_quota_us(500), ==, 50000);
	CHECK_INT(cgroups_cpu_quota_us(2500), ==, 250000);
	CHECK_INT(cgroups_cpu_quota_us(5), ==, CGROUPS_CPU_QUOTA_MIN_US);
}

TEST(limits_map_to_the_files_of_each_version)
{
	char buf[64];
	struct cgroups_limits none = { 0 };
	struct cgroups_limits l = { .cpu_request_millicores = 1000,
		                    .cpu_limit_millicores = 500,
		                    .memory_limit_bytes = 64 * MIB,
		                    .pids_limit = 10 };
	CHECK_STR(cgroups_limit_value(CGROUPS_V2, "cpu", &l, buf, sizeof(buf)), "cpu.weight");
	CHECK_STR(buf, "39");
	CHECK_STR(cgroups_limit_value(CGROUPS_V2, "cpu-limit", &l, buf, sizeof(buf)), "cpu.max");
	CHECK_STR(buf, "50000 100000");
	CHECK_STR(cgroups_limit_value(CGROUPS_V2, "cpu-limit", &none, buf, sizeof(buf)), "cpu.max");
	CHECK_STR(buf, "max 100000");
	CHECK_STR(cgroups_limit_value(CGROUPS_V2, "memory", &l, buf, sizeof(buf)), "memory.max");
	CHECK_STR(buf, "67108864");
	CHECK_STR(cgroups_limit_value(CGROUPS_V2, "memory", &none, buf, sizeof(buf)), "memory.max");
	CHECK_STR(buf, "max");
	CHECK_STR(cgroups_limit_value(CGROUPS_V2, "pids", &l, buf, sizeof(buf)), "pids.max");
	CHECK_STR(buf, "10");
	CHECK_STR(cgroups_limit_value(CGROUPS_V2, "pids", &none, buf, sizeof(buf)), "pids.max");
	CHECK_STR(buf, "max");

	CHECK_STR(cgroups_limit_value(CGROUPS_V1, "cpu", &l, buf, sizeof(buf)), "cpu.shares");
	CHECK_STR(buf, "1024");
	CHECK_STR(cgroups_limit_value(CGROUPS_V1, "cpu", &none, buf, sizeof(buf)), "cpu.shares");
	CHECK_STR(buf, "2");
	CHECK_STR(cgroups_limit_value(CGROUPS_V1, "cpu-limit", &l, buf, sizeof(buf)), "cpu.cfs_quota_us");
	CHECK_STR(buf, "50000");
	CHECK_STR(cgroups_limit_value(CGROUPS_V1, "cpu-limit", &none, buf, sizeof(buf)), "cpu.cfs_quota_us");
	CHECK_STR(buf, "-1");
	CHECK_STR(cgroups_limit_value(CGROUPS_V1, "memory", &none, buf, sizeof(buf)), "memory.limit_in_bytes");
	CHECK_STR(buf, "-1");
	CHECK(cgroups_limit_value(CGROUPS_V1, "blkio", &l, buf, sizeof(buf)) == NULL);
}

TEST(missing_memory_controller_message_says_what_to_add)
{
	char buf[ERROR_MESSAGE_MAX];
	cgroups_missing_controller_message("memory", buf, sizeof(buf));
	CHECK_CONTAINS(buf, "memory cgroup controller is not enabled");
	CHECK_CONTAINS(buf, "cgroup_enable=memory cgroup_memory=1");
	CHECK_CONTAINS(buf, "/boot/firmware/cmdline.txt");
	CHECK_CONTAINS(buf, "/boot/cmdline.txt");
	cgroups_missing_controller_message("pids", buf, sizeof(buf));
	CHECK_CONTAINS(buf, "pids cgroup controller is not available");
}

static void body_missing_controller(struct cgroups *cg)
{
	struct error err = { 0 };
	CHECK_INT(cgroups_controller_check(cg, "nosuchcontroller", &err), ==, -ENODEV);
	CHECK_CONTAINS(err.message, "nosuchcontroller cgroup controller is not available");
	CHECK_OK(cgroups_controller_check(cg, "memory", NULL));
	CHECK_OK(cgroups_controller_check(cg, "pids", NULL));
}

TEST(a_missing_controller_is_reported)
{
	with_parent(body_missing_controller);
}

static void body_mode(struct cgroups *cg)
{
	struct statfs fs;
	CHECK_OK(statfs("/sys/fs/cgroup", &fs));
	/* Unified: /sys/fs/cgroup itself is cgroup2. Legacy and hybrid: a tmpfs of v1 mounts. */
	CHECK_INT(cgroups_version(cg), ==, (long)fs.f_type == CGROUP2_MAGIC ? CGROUPS_V2 : CGROUPS_V1);
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		if (cgroups_version(cg) == CGROUPS_V2 && strcmp(controllers[i], "cpuacct") == 0)
			continue;
		cleanup_free char *dir = group_dir(controllers[i], "");
		CHECK(dir != NULL);
	}
}

TEST(cgroup_version_is_detected)
{
	with_parent(body_mode);
}

static void body_validation(struct cgroups *cg)
{
	struct error err = { 0 };
	struct cgroups_limits none = { 0 };
	struct cgroups_group *g = NULL;
	CHECK_INT(cgroups_pod_create(cg, "a/b", &none, &g, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "pod uid \"a/b\"");
	CHECK_INT(cgroups_pod_create(cg, "..", &none, &g, &err), ==, -EINVAL);
	CHECK_INT(cgroups_pod_create(cg, "", &none, &g, &err), ==, -EINVAL);
	char long_name[CGROUPS_NAME_MAX + 2];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	CHECK_INT(cgroups_pod_create(cg, long_name, &none, &g, &err), ==, -ENAMETOOLONG);
	struct cgroups_limits tiny = { .memory_limit_bytes = 4096 };
	CHECK_INT(cgroups_pod_create(cg, "p", &tiny, &g, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "memory limit 4096 bytes");
	struct cgroups_limits many = { .pids_limit = CGROUPS_PIDS_MAX + 1 };
	CHECK_INT(cgroups_pod_create(cg, "p", &many, &g, &err), ==, -EINVAL);
	struct cgroups_limits cpus = { .cpu_limit_millicores = CGROUPS_CPU_MILLICORES_MAX + 1 };
	CHECK_INT(cgroups_pod_create(cg, "p", &cpus, &g, &err), ==, -EINVAL);
	CHECK(g == NULL);
	CHECK_INT(cgroups_open("x/y", (struct cgroups **)&g, &err), ==, -EINVAL);

	struct cgroups_group *pod = NULL, *ctr = NULL;
	CHECK_OK(cgroups_pod_create(cg, "p", &none, &pod, &err));
	CHECK_INT(cgroups_container_create(pod, "../x", &none, &ctr, &err), ==, -EINVAL);
	CHECK_INT(cgroups_container_create(pod, ".hidden", &none, &ctr, &err), ==, -EINVAL);
	CHECK_OK(cgroups_container_create(pod, "c", &none, &ctr, &err));
	/* containers live in pods only */
	struct cgroups_group *nested = NULL;
	CHECK_INT(cgroups_container_create(ctr, "d", &none, &nested, &err), ==, -EINVAL);
	cgroups_group_free(ctr);
	cgroups_group_free(pod);
}

TEST(names_and_limits_are_validated)
{
	with_parent(body_validation);
}

static void body_memory(struct cgroups *cg)
{
	struct error err = { 0 };
	struct cgroups_group *pod, *ctr;
	struct cgroups_limits l = { .memory_limit_bytes = 64 * MIB };
	make_container(cg, "mem", &l, &pod, &ctr);
	const char *name = cgroups_group_name(ctr);
	CHECK_CONTAINS(name, "/pod-mem/main");
	cleanup_free char *memsw = group_dir("memory", name);
	memsw = xrealloc(memsw, strlen(memsw) + 64);
	strcat(memsw, "/memory.memsw.limit_in_bytes");
	int has_memsw = access(memsw, F_OK) == 0;
	if (cgroups_version(cg) == CGROUPS_V1) {
		CHECK_FILE("memory", ctr, "memory.limit_in_bytes", "67108864");
		if (has_memsw)
			CHECK_FILE("memory", ctr, "memory.memsw.limit_in_bytes", "67108864");
	} else {
		CHECK_FILE("memory", ctr, "memory.max", "67108864");
	}
	/* raised: memsw must be lifted before the limit on v1 */
	l.memory_limit_bytes = 128 * MIB;
	if (cgroups_update(ctr, &l, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	CHECK_FILE("memory", ctr, cgroups_version(cg) == CGROUPS_V1 ? "memory.limit_in_bytes" : "memory.max",
	           "134217728");
	if (cgroups_version(cg) == CGROUPS_V1 && has_memsw)
		CHECK_FILE("memory", ctr, "memory.memsw.limit_in_bytes", "134217728");
	/* lowered, then lifted */
	l.memory_limit_bytes = 32 * MIB;
	CHECK_OK(cgroups_update(ctr, &l, &err));
	CHECK_FILE("memory", ctr, cgroups_version(cg) == CGROUPS_V1 ? "memory.limit_in_bytes" : "memory.max",
	           "33554432");
	l.memory_limit_bytes = 0;
	CHECK_OK(cgroups_update(ctr, &l, &err));
	if (cgroups_version(cg) == CGROUPS_V1) {
		cleanup_free char *text = read_text("memory", name, "memory.limit_in_bytes");
		CHECK_INT(strtoull(text, NULL, 10), >, 1ull << 60); /* the kernel's "unlimited" */
	} else {
		CHECK_FILE("memory", ctr, "memory.max", "max");
	}
	cgroups_group_free(ctr);
	cgroups_group_free(pod);
}

TEST(memory_limit_is_written_and_read_back)
{
	with_parent(body_memory);
}

static void body_cpu(struct cgroups *cg)
{
	struct error err = { 0 };
	struct cgroups_group *pod, *ctr;
	struct cgroups_limits l = { .cpu_request_millicores = 250, .cpu_limit_millicores = 500 };
	make_container(cg, "cpu", &l, &pod, &ctr);
	if (cgroups_version(cg) == CGROUPS_V1) {
		CHECK_FILE("cpu", ctr, "cpu.shares", "256");
		CHECK_FILE("cpu", ctr, "cpu.cfs_period_us", "100000");
		CHECK_FILE("cpu", ctr, "cpu.cfs_quota_us", "50000");
	} else {
		CHECK_FILE("cpu", ctr, "cpu.weight", "10");
		CHECK_FILE("cpu", ctr, "cpu.max", "50000 100000");
	}
	l.cpu_limit_millicores = 0;
	l.cpu_request_millicores = 1000;
	CHECK_OK(cgroups_update(ctr, &l, &err));
	if (cgroups_version(cg) == CGROUPS_V1) {
		CHECK_FILE("cpu", ctr, "cpu.shares", "1024");
		CHECK_FILE("cpu", ctr, "cpu.cfs_quota_us", "-1");
	} else {
		CHECK_FILE("cpu", ctr, "cpu.weight", "39");
		CHECK_FILE("cpu", ctr, "cpu.max", "max 100000");
	}
	cgroups_group_free(ctr);
	cgroups_group_free(pod);
}

TEST(cpu_shares_and_quota_are_written)
{
	with_parent(body_cpu);
}

/* Forks until the pids limit says no; reports the count and errno on fd, then waits. */
static void quiet_stderr(void)
{
	/* Under qemu-user a forked child that cannot start qemu's own thread at the limit
	 * aborts with a message; expected here, so kept out of the test log. */
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 2);
		close(null);
	}
}

static void fork_until_refused(int fd)
{
	quiet_stderr();
	int forks = 0, error = 0;
	for (int i = 0; i < 1000; i++) {
		pid_t pid = fork();
		if (pid == 0)
			wait_forever(-1);
		if (pid < 0) {
			error = errno;
			break;
		}
		forks++;
	}
	int report[2] = { forks, error };
	if (write(fd, report, sizeof(report)) != sizeof(report))
		_exit(1);
	wait_forever(-1);
}

static void body_pids(struct cgroups *cg)
{
	struct error err = { 0 };
	struct cgroups_group *pod, *ctr;
	struct cgroups_limits l = { .pids_limit = 8 };
	make_container(cg, "pids", &l, &pod, &ctr);
	CHECK_FILE("pids", ctr, "pids.max", "8");
	int fds[2];
	CHECK_OK(pipe(fds));
	spawn_in(ctr, fork_until_refused, fds[1]);
	close(fds[1]);
	int report[2] = { 0, 0 };
	CHECK_INT(read(fds[0], report, sizeof(report)), ==, sizeof(report));
	CHECK_INT(report[1], ==, EAGAIN);
	CHECK_INT(report[0], <, 8);
	struct cgroups_usage u;
	CHECK_OK(cgroups_usage(ctr, &u, &err));
	/* Exactly 8 natively; under qemu-user children that could not start qemu's helper
	 * thread at the limit die, so fewer may be left by now. Never more. */
	CHECK_INT(u.pids_current, <=, 8);
	CHECK_INT(u.pids_current, >=, 2);
	/* the removal at the end kills all eight */
	cgroups_group_free(ctr);
	cgroups_group_free(pod);
}

TEST(pids_limit_is_enforced)
{
	with_parent(body_pids);
}

static int pid_listed(struct cgroups_group *g, pid_t pid)
{
	pid_t pids[64];
	int n = cgroups_pids(g, pids, ARRAY_SIZE(pids), NULL);
	CHECK_OK(n);
	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return 1;
	return 0;
}

static void body_attach(struct cgroups *cg)
{
	struct error err = { 0 };
	struct cgroups_group *pod, *ctr;
	struct cgroups_limits none = { 0 };
	make_container(cg, "attach", &none, &pod, &ctr);

	/* after the fact, by pid */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		wait_forever(-1);
	CHECK(!pid_listed(ctr, pid));
	if (cgroups_attach(ctr, pid, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	CHECK(pid_listed(ctr, pid));
	cleanup_free char *procs_path = xasprintf("/proc/%d/cgroup", (int)pid);
	cleanup_free char *own = NULL;
	CHECK_OK(file_read(procs_path, 65536, &own, NULL, NULL));
	CHECK_CONTAINS(own, cgroups_group_name(ctr));
	/* every hierarchy, not only one (v1) */
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		cleanup_free char *dir = group_dir(controllers[i], cgroups_group_name(ctr));
		if (!dir || cgroups_version(cg) == CGROUPS_V2)
			continue;
		cleanup_free char *text = read_text(controllers[i], cgroups_group_name(ctr), "cgroup.procs");
		char needle[16];
		snprintf(needle, sizeof(needle), "%d", (int)pid);
		CHECK_CONTAINS(text, needle);
	}

	/* before exec, from the child */
	pid_t early = spawn_in(ctr, wait_forever, -1);
	for (int i = 0; i < 200 && !pid_listed(ctr, early); i++)
		usleep(5000);
	CHECK(pid_listed(ctr, early));

	CHECK_INT(cgroups_attach(ctr, 0, &err), ==, -EINVAL);
	CHECK_INT(cgroups_remove(pod, 0, &err), ==, -EBUSY);
	CHECK_CONTAINS(err.message, "processes are still in it");
	cgroups_group_free(ctr);
	cgroups_group_free(pod);
}

TEST(attached_processes_are_in_cgroup_procs)
{
	with_parent(body_attach);
}

static void burn_and_allocate(int fd)
{
	uint64_t start = clock_monotonic_ms();
	volatile uint64_t x = 0;
	while (clock_monotonic_ms() - start < 300)
		x += 1;
	(void)x;
	size_t size = 32 * MIB;
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(2);
	for (size_t i = 0; i < size; i += 4096)
		p[i] = 1;
	if (write(fd, "k", 1) != 1)
		_exit(3);
	wait_forever(-1);
}

static void body_usage(struct cgroups *cg)
{
	struct error err = { 0 };
	struct cgroups_group *pod, *ctr;
	struct cgroups_limits none = { 0 };
	make_container(cg, "usage", &none, &pod, &ctr);
	struct cgroups_usage u;
	if (cgroups_usage(ctr, &u, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	CHECK_INT(u.pids_current, ==, 0);
	int fds[2];
	CHECK_OK(pipe(fds));
	spawn_in(ctr, burn_and_allocate, fds[1]);
	close(fds[1]);
	char c;
	CHECK_INT(read(fds[0], &c, 1), ==, 1);
	if (cgroups_usage(ctr, &u, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	CHECK_INT(u.cpu_time_ns, >, 10 * 1000000ull); /* of the 300 ms burnt (less of it on a loaded machine) */
	CHECK_INT(u.memory_current_bytes, >, 16 * MIB);
	if (u.memory_peak_bytes)
		CHECK_INT(u.memory_peak_bytes, >=, u.memory_current_bytes);
	CHECK_INT(u.pids_current, >=, 1);
	CHECK(u.oom_kills_known);
	CHECK_INT(u.oom_kills, ==, 0);
	/* the pod sees its container's use */
	struct cgroups_usage pod_usage;
	CHECK_OK(cgroups_usage(pod, &pod_usage, &err));
	CHECK_INT(pod_usage.cpu_time_ns, >=, u.cpu_time_ns);
	cgroups_group_free(ctr);
	cgroups_group_free(pod);
}

TEST(usage_is_readable)
{
	with_parent(body_usage);
}

static void allocate_too_much(int fd)
{
	(void)fd;
	size_t size = 256 * MIB;
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(2);
	for (size_t i = 0; i < size; i += 4096)
		p[i] = 1;
	_exit(3); /* survived: the limit did not hold */
}

static void body_oom(struct cgroups *cg)
{
	struct error err = { 0 };
	struct cgroups_group *pod, *ctr;
	struct cgroups_limits l = { .memory_limit_bytes = 64 * MIB };
	make_container(cg, "oom", &l, &pod, &ctr);
	pid_t pid = spawn_in(ctr, allocate_too_much, -1);
	int status = 0;
	CHECK_INT(waitpid(pid, &status, 0), ==, pid);
	CHECK(WIFSIGNALED(status));
	CHECK_INT(WTERMSIG(status), ==, SIGKILL);
	struct cgroups_usage u;
	if (cgroups_usage(ctr, &u, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	CHECK(u.oom_kills_known);
	CHECK_INT(u.oom_kills, >=, 1);
	CHECK_INT(u.memory_peak_bytes, <=, 64 * MIB);
	cgroups_group_free(ctr);
	cgroups_group_free(pod);
}

TEST(oom_kill_is_counted)
{
	with_parent(body_oom);
}

/* Keeps forking (bounded by the pids limit) until killed, to race the removal. */
static void fork_forever(int fd)
{
	(void)fd;
	quiet_stderr();
	for (;;) {
		if (fork() == 0)
			wait_forever(-1);
		usleep(1000);
	}
}

/* Waits (at most 5 s) until pid is listed in the group: on a loaded machine a forked child
 * may not have moved itself in before the test goes on. */
static void wait_listed(struct cgroups_group *group, pid_t pid)
{
	for (int i = 0; i < 5000; i++) {
		pid_t pids[64];
		struct error err = { 0 };
		int n = cgroups_pids(group, pids, ARRAY_SIZE(pids), &err);
		for (int j = 0; j < n; j++)
			if (pids[j] == pid)
				return;
		usleep(1000);
	}
	unit_fail(__FILE__, __LINE__, "pid %d never showed in %s", (int)pid, cgroups_group_name(group));
}

static void body_remove(struct cgroups *cg)
{
	struct error err = { 0 };
	struct cgroups_group *pod, *ctr, *sidecar;
	struct cgroups_limits l = { .memory_limit_bytes = 64 * MIB, .pids_limit = 16 };
	make_container(cg, "rm", &l, &pod, &ctr);
	CHECK_OK(cgroups_container_create(pod, "sidecar", &l, &sidecar, &err));
	pid_t a = spawn_in(ctr, wait_forever, -1);
	pid_t b = spawn_in(sidecar, fork_forever, -1); /* forks while we kill */
	wait_listed(ctr, a);
	wait_listed(sidecar, b);
	usleep(20000);
	if (cgroups_remove(pod, CGROUPS_REMOVE_KILL, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		cleanup_free char *dir = group_dir(controllers[i], cgroups_group_name(pod));
		if (dir)
			CHECK(!dir_exists(dir));
	}
	int status = 0;
	CHECK_INT(waitpid(a, &status, 0), ==, a);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK_INT(waitpid(b, &status, 0), ==, b);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* removing again is not an error: nothing is left to remove */
	CHECK_OK(cgroups_remove(pod, 0, &err));
	cgroups_group_free(sidecar);
	cgroups_group_free(ctr);
	cgroups_group_free(pod);
}

TEST(removal_kills_and_leaves_no_directory)
{
	with_parent(body_remove);
}

static void body_adopt(struct cgroups *cg)
{
	struct error err = { 0 };
	struct cgroups_limits none = { 0 };
	struct cgroups_group *b, *a, *ctr;
	CHECK_OK(cgroups_pod_create(cg, "uid-b", &none, &b, &err));
	make_container(cg, "uid-a", &none, &a, &ctr);
	cgroups_group_free(ctr);
	cgroups_group_free(a);
	cgroups_group_free(b);

	char **uids = NULL;
	size_t count = 0;
	CHECK_OK(cgroups_pods_list(cg, &uids, &count, &err));
	CHECK_INT(count, ==, 2);
	CHECK_STR(uids[0], "uid-a");
	CHECK_STR(uids[1], "uid-b");
	cgroups_pods_free(uids, count);

	/* as after an agent restart: a second handle on the same parent finds them */
	struct cgroups *again = NULL;
	char parent[CGROUPS_NAME_MAX + 1];
	struct cgroups_group *probe = NULL;
	CHECK_OK(cgroups_pod_open(cg, "uid-a", &probe, &err));
	snprintf(parent, sizeof(parent), "%s", cgroups_group_name(probe));
	*strchr(parent, '/') = '\0';
	cgroups_group_free(probe);
	CHECK_OK(cgroups_open(parent, &again, &err));
	CHECK_OK(cgroups_pod_open(again, "uid-a", &a, &err));
	CHECK_OK(cgroups_container_open(a, "main", &ctr, &err));
	CHECK_INT(cgroups_container_open(a, "other", &probe, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "/pod-uid-a/other does not exist");
	CHECK_INT(cgroups_pod_open(again, "uid-z", &probe, &err), ==, -ENOENT);
	cgroups_group_free(ctr);
	cgroups_group_free(a);
	cgroups_close(again);
}

TEST(pods_are_listed_and_reopened_for_adoption)
{
	with_parent(body_adopt);
}

/* The v2 backend's files, on a directory tree standing in for a v2 hierarchy (this machine
 * has v1 controllers): what cgroups_update writes, and the directory for CLONE_INTO_CGROUP. */
static char *read_file_text(const char *dir, const char *file)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, file);
	char *data = NULL;
	struct error err = { 0 };
	if (file_read(path, 4096, &data, NULL, &err) < 0)
		unit_fail(__FILE__, __LINE__, "%s", err.message);
	return data;
}

#define check_file(dir, file, want)                                                                                    \
	do {                                                                                                           \
		char *text_ = read_file_text(dir, file);                                                               \
		CHECK_STR(text_, want);                                                                                \
		free(text_);                                                                                           \
	} while (0)

static void touch_files(const char *dir, const char *const *files)
{
	for (const char *const *f = files; *f; f++) {
		cleanup_free char *path = xasprintf("%s/%s", dir, *f);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		CHECK(fd >= 0);
		close(fd);
	}
}

TEST(v2_limits_are_written_to_the_v2_files)
{
	char root[] = "/tmp/bramble-test-v2.XXXXXX";
	CHECK(mkdtemp(root) != NULL);
	static const char *const files[] = { "cpu.weight", "cpu.max",      "memory.max", "memory.swap.max",
		                             "pids.max",   "cgroup.procs", NULL };
	cleanup_free char *parent = xasprintf("%s/bramble", root);
	cleanup_free char *pod_dir = xasprintf("%s/pod-uid", parent);
	cleanup_free char *ctr_dir = xasprintf("%s/web", pod_dir);
	struct error err = { 0 };
	CHECK_OK(file_mkdir_p(ctr_dir, 0755, &err));
	touch_files(parent, files);
	touch_files(ctr_dir, files);
	struct cgroups *cg = NULL;
	struct cgroups_group *pod = NULL, *ctr = NULL;
	CHECK_OK(cgroups_open_directory(CGROUPS_V2, root, "bramble", &cg, &err));
	CHECK_INT(cgroups_version(cg), ==, CGROUPS_V2);
	CHECK_OK(cgroups_pod_open(cg, "uid", &pod, &err));
	CHECK_OK(cgroups_container_open(pod, "web", &ctr, &err));
	struct cgroups_limits l = { .cpu_request_millicores = 250,
		                    .cpu_limit_millicores = 500,
		                    .memory_limit_bytes = 64 * MIB,
		                    .pids_limit = 100 };
	CHECK_OK(cgroups_update(ctr, &l, &err));
	check_file(ctr_dir, "cpu.weight", "10");
	check_file(ctr_dir, "cpu.max", "50000 100000");
	check_file(ctr_dir, "memory.max", "67108864");
	check_file(ctr_dir, "memory.swap.max", "0");
	check_file(ctr_dir, "pids.max", "100");
	/* Lifting every limit writes v2's "max" spellings. */
	CHECK_OK(cgroups_update(ctr, &(struct cgroups_limits){ 0 }, &err));
	check_file(ctr_dir, "cpu.weight", "1");
	check_file(ctr_dir, "cpu.max", "max 100000");
	check_file(ctr_dir, "memory.max", "max");
	check_file(ctr_dir, "pids.max", "max");
	/* The directory a container is cloned into (CLONE_INTO_CGROUP). */
	int fd = cgroups_directory_open(ctr);
	CHECK(fd >= 0);
	struct stat a, b;
	CHECK(fstat(fd, &a) == 0 && stat(ctr_dir, &b) == 0 && a.st_ino == b.st_ino);
	close(fd);
	/* A write that fails names the file. */
	cleanup_free char *weight = xasprintf("%s/cpu.weight", ctr_dir);
	unlink(weight);
	CHECK(cgroups_update(ctr, &l, &err) < 0);
	CHECK_CONTAINS(err.message, weight);
	cgroups_group_free(ctr);
	cgroups_group_free(pod);
	cgroups_close(cg);
	file_remove_tree(root);
}

TEST(v1_groups_have_no_directory_to_clone_into)
{
	char root[] = "/tmp/bramble-test-v1.XXXXXX";
	CHECK(mkdtemp(root) != NULL);
	struct error err = { 0 };
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		cleanup_free char *dir = xasprintf("%s/%s/bramble/pod-uid", root, controllers[i]);
		CHECK_OK(file_mkdir_p(dir, 0755, &err));
	}
	struct cgroups *cg = NULL;
	struct cgroups_group *pod = NULL;
	CHECK_OK(cgroups_open_directory(CGROUPS_V1, root, "bramble", &cg, &err));
	CHECK_OK(cgroups_pod_open(cg, "uid", &pod, &err));
	CHECK_INT(cgroups_directory_open(pod), ==, -EOPNOTSUPP);
	/* Removal is rmdir in every hierarchy. */
	CHECK_OK(cgroups_remove(pod, 0, &err));
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		cleanup_free char *dir = xasprintf("%s/%s/bramble/pod-uid", root, controllers[i]);
		CHECK(!dir_exists(dir));
	}
	cgroups_group_free(pod);
	cgroups_close(cg);
	file_remove_tree(root);
}
