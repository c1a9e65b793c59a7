/* Control groups through libcgroup, on cgroup v1 and v2.
 *
 * Layout. Under each hierarchy's mount point (v1: /sys/fs/cgroup/<controller>, several;
 * v2: /sys/fs/cgroup, one):
 *
 *   <parent>/                      created by cgroups_open(), never holds a process
 *   <parent>/pod-<uid>/            one per pod (pod-level limits), never holds a process
 *   <parent>/pod-<uid>/<container> one per container: the only place processes live
 *
 * Versions. v1 has one hierarchy per controller (cpu, cpuacct, memory, pids; on some
 * kernels cpu and cpuacct are co-mounted), so one group is a directory in each, and a
 * process must be written into each. v2 has one tree; a controller works in a group only if
 * the parent lists it in cgroup.subtree_control (libcgroup's cgroup_create_cgroup() enables
 * it down from the root), and a group that delegates controllers may hold no process —
 * hence processes only in container groups. The files differ too; the mapping lives in two
 * backends behind struct cgroups_backend, chosen once in cgroups_open() from the version of
 * the hierarchy that holds the cpu controller (legacy and hybrid setups are v1: systemd's
 * hybrid mode mounts an empty v2 tree beside the v1 controllers, as on this CI machine):
 *
 *   limit / usage        v1 file                              v2 file
 *   cpu request          cpu.shares                           cpu.weight (Kubernetes' conversion)
 *   cpu limit            cpu.cfs_period_us, cpu.cfs_quota_us  cpu.max "quota period"
 *   memory limit         memory.limit_in_bytes (+ memsw)      memory.max (+ memory.swap.max 0)
 *   pids limit           pids.max                             pids.max
 *   cpu time             cpuacct.usage (ns)                   cpu.stat usage_usec
 *   memory, peak         memory.usage_in_bytes, max_usage     memory.current, memory.peak
 *   OOM kills            memory.oom_control oom_kill          memory.events oom_kill
 *   kill all             SIGKILL each pid in cgroup.procs     cgroup.kill (5.14+), else pids
 *
 * What goes through libcgroup, and what does not. libcgroup discovers the hierarchies
 * (cgroup_init, cgroup_get_controller_version, cgroup_get_subsys_mount_point: which version,
 * which controllers, where each is mounted), creates groups on v2 (cgroup_create_cgroup,
 * which also enables the controllers in cgroup.subtree_control of every ancestor) and reads
 * usage (cgroup_read_value_*, which read only the file asked for). The rest are single
 * file operations on the paths libcgroup discovered: limit writes, v1 mkdir, rmdir, moving
 * a process, killing. The reason is cost: libcgroup 3.1 re-reads /proc/self/mounts before
 * every mkdir and every value it writes (cg_test_mounted_fs), about 13 times per container
 * start, which made cgroups half of `bramble run`'s start latency. Writing a value ourselves
 * also lets an error name the file and keeps v1's memsw >= limit ordering explicit. Moving
 * a process: cgroups_attach writes cgroup.procs (every thread; libcgroup would write v1's
 * "tasks", one thread); a new child moves itself (cgroups_procs_enter, below).
 *
 * Invariants:
 *  - A process is placed in its container group before it runs user code: the runtime
 *    opens cgroup.procs before fork (cgroups_procs_open) and the child writes itself in
 *    (cgroups_procs_enter) before exec; a child that cannot exits without exec.
 *  - A removed pod leaves no directory in any hierarchy: cgroups_remove() removes children
 *    before parents with rmdir, which refuses a group that holds processes (nothing is ever
 *    moved up into the parent, which must stay empty); a busy group is killed (when asked)
 *    and retried for at most CGROUPS_REMOVE_TIMEOUT_MS while killed processes exit.
 *  - Every name is one path component of [A-Za-z0-9._-], at most CGROUPS_NAME_MAX bytes,
 *    not starting with '.'; every limit is within the bounds in cgroups.h.
 *
 * libcgroup keeps global state; the agent calls this module from its one event-loop thread.
 */
#include "platform/cgroups.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libcgroup.h>

#include "platform/clock.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"

/* How long cgroups_remove() waits for killed processes to exit before giving up. */
#define CGROUPS_REMOVE_TIMEOUT_MS 5000
/* Without CGROUPS_REMOVE_KILL, how long exiting processes are given. */
#define CGROUPS_REMOVE_QUIET_MS 200
#define CGROUPS_REMOVE_STEP_MS 5
/* Groups found below one group while removing (pods under the parent, containers in a pod). */
#define CGROUPS_CHILDREN_MAX 65536
/* Depth below the parent: pod, container. One more level is tolerated for what others made. */
#define CGROUPS_DEPTH_MAX 3
/* cgroup.procs of a group: at most ~100000 pids of 7 digits. */
#define CGROUPS_PROCS_FILE_MAX (1u << 20)
#define CGROUPS_LINE_MAX 256
#define CGROUPS_CONTROLLERS_MAX 4

struct cgroups_controller {
	const char *name;
	char *mount; /* e.g. /sys/fs/cgroup/memory (v1) or /sys/fs/cgroup (v2) */
	bool procs;  /* the first controller on its mount: its cgroup.procs is written */
};

struct cgroups {
	enum cgroups_version version;
	const struct cgroups_backend *backend;
	char *parent;
	struct cgroups_controller controllers[CGROUPS_CONTROLLERS_MAX];
	int controller_count;
	bool memory_swap; /* v1 memory.memsw.*, v2 memory.swap.max: swap accounting is on */
	bool memory_peak; /* v2 memory.peak (5.19+); v1 always has max_usage_in_bytes */
	bool oom_kill;    /* v1 oom_control has an oom_kill line (4.13+); v2 always */
	bool cgroup_kill; /* v2 cgroup.kill (5.14+) */
};

struct cgroups_group {
	struct cgroups *cgroups;
	char *name; /* below the mount point: "<parent>/pod-<uid>[/<container>]" */
	int depth;  /* 1 pod, 2 container */
};

struct cgroups_backend {
	enum cgroups_version version;
	const char *const *controllers; /* needed, NULL-terminated; the first is "cpu" */
	/* fresh: the group was just made, so its files hold the kernel's defaults (no cpu, memory
	 * or pids limit), and writing a default again can be skipped. */
	int (*apply_limits)(struct cgroups_group *group, const struct cgroups_limits *limits, bool fresh,
	                    struct error *err);
	int (*read_usage)(struct cgroups_group *group, struct cgroups_usage *ret, struct error *err);
	/* Signals every process in the group and below; returns how many were signalled. */
	int (*kill)(struct cgroups_group *group, const char *name, struct error *err);
};

static const struct cgroups_backend cgroups_v1, cgroups_v2;

void cgroups_library_version(char *buf, size_t size)
{
	const struct cgroup_library_version *v = cgroup_version();
	if (v)
		snprintf(buf, size, "libcgroup %d.%d.%d", v->major, v->minor, v->release);
	else
		snprintf(buf, size, "libcgroup (unknown version)");
}

/* ---- libcgroup glue ---- */

/* libcgroup's codes (ECG*, above 50000) as a negative errno. */
static int library_errno(int code)
{
	switch (code) {
	case 0:
		return 0;
	case ECGOTHER: {
		int e = cgroup_get_last_errno();
		return e > 0 ? -e : -EIO;
	}
	case ECGROUPNOTEXIST:
	case ECGROUPVALUENOTEXIST:
		return -ENOENT;
	case ECGROUPNOTMOUNTED:
	case ECGROUPSUBSYSNOTMOUNTED:
		return -ENODEV;
	case ECGROUPNOTOWNER:
		return -EPERM;
	case ECGROUPNOTALLOWED:
		return -EACCES;
	case ECGNONEMPTY:
		return -EBUSY;
	case ECGINVAL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* Sets err from a libcgroup code: "<what>: <libcgroup's text>". */
static int library_error(struct error *err, int code, const char *what)
{
	int r = library_errno(code);
	if (code == ECGOTHER)
		return error_set_errno(err, -r, "%s", what);
	return error_set(err, -r, "%s: %s", what, cgroup_strerror(code));
}

static const struct cgroups_controller *controller_find(const struct cgroups *cg, const char *name)
{
	for (int i = 0; i < cg->controller_count; i++)
		if (strcmp(cg->controllers[i].name, name) == 0)
			return &cg->controllers[i];
	return NULL;
}

/* "<mount>/<name>/<file>" of a controller, for messages and direct access. */
static char *controller_path(const struct cgroups *cg, const char *controller, const char *name, const char *file)
{
	const struct cgroups_controller *c = controller_find(cg, controller);
	return xasprintf("%s/%s%s%s", c ? c->mount : "?", name, file ? "/" : "", file ? file : "");
}

/* A libcgroup description of the group in every hierarchy this module uses. */
static struct cgroup *library_group(const struct cgroups *cg, const char *name)
{
	struct cgroup *c = cgroup_new_cgroup(name);
	if (!c)
		abort(); /* names are bounded, so only out of memory gets here */
	for (int i = 0; i < cg->controller_count; i++)
		if (!cgroup_add_controller(c, cg->controllers[i].name))
			abort();
	return c;
}

/* Writes one value straight to the group's file (see the design comment for why not through
 * cgroup_modify_cgroup()); the error names the file. */
static int value_write(struct cgroups_group *group, const char *controller, const char *file, const char *value,
                       struct error *err)
{
	cleanup_free char *path = controller_path(group->cgroups, controller, group->name, file);
	/* O_TRUNC as a shell's `echo v > file`: cgroupfs ignores it, a plain file (tests) needs it. */
	cleanup_close int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	size_t length = strlen(value);
	if (fd < 0 || write(fd, value, length) != (ssize_t)length)
		return error_set_errno(err, errno, "writing \"%s\" to %s", value, path);
	return 0;
}

/* v1: makes the group's directory in each hierarchy (an existing one is kept: re-opening
 * after an agent restart). 1 when every directory is new, 0 when one existed. On failure,
 * what this call made is removed again. */
static int v1_mkdir(const struct cgroups *cg, const char *name, struct error *err)
{
	bool made[CGROUPS_CONTROLLERS_MAX] = { false };
	int fresh = 1;
	for (int i = 0; i < cg->controller_count; i++) {
		if (!cg->controllers[i].procs)
			continue;
		cleanup_free char *path = controller_path(cg, cg->controllers[i].name, name, NULL);
		if (mkdir(path, 0755) == 0) {
			made[i] = true;
			continue;
		}
		if (errno == EEXIST) {
			fresh = 0;
			continue;
		}
		int r = error_set_errno(err, errno, "creating cgroup %s", path);
		for (int j = 0; j < i; j++) {
			if (!made[j])
				continue;
			cleanup_free char *undo = controller_path(cg, cg->controllers[j].name, name, NULL);
			rmdir(undo);
		}
		return r;
	}
	return fresh;
}

/* Creates a group: v1 with mkdir (above), v2 through libcgroup, which also enables the
 * controllers in cgroup.subtree_control of every ancestor. 1 when the group is new, 0 when
 * it existed. */
static int group_mkdir(const struct cgroups *cg, const char *name, struct error *err)
{
	if (cg->version == CGROUPS_V1)
		return v1_mkdir(cg, name, err);
	cleanup_free char *existing = controller_path(cg, "cpu", name, NULL);
	int fresh = access(existing, F_OK) < 0;
	struct cgroup *c = library_group(cg, name);
	int r = cgroup_create_cgroup(c, 1);
	cgroup_free(&c);
	if (r == 0)
		return fresh;
	cleanup_free char *path = controller_path(cg, "memory", name, NULL);
	cleanup_free char *what = xasprintf("creating cgroup %s", path);
	return library_error(err, r, what);
}

/* Removes one empty group from every hierarchy: 0 once no directory of it is left, -EBUSY
 * while processes are in it. */
static int group_rmdir(const struct cgroups *cg, const char *name, struct error *err)
{
	for (int i = 0; i < cg->controller_count; i++) {
		if (!cg->controllers[i].procs)
			continue;
		cleanup_free char *path = controller_path(cg, cg->controllers[i].name, name, NULL);
		if (rmdir(path) < 0 && errno != ENOENT)
			return errno == EBUSY ? -EBUSY : error_set_errno(err, errno, "removing cgroup %s", path);
	}
	return 0;
}

/* Reads a file of the group with libcgroup. With key NULL, the first line's number; else
 * the number on the line "<key> <number>" (cpu.stat, memory.events, memory.oom_control). */
static int value_read(struct cgroups_group *group, const char *controller, const char *file, const char *key,
                      uint64_t *ret, struct error *err)
{
	char line[CGROUPS_LINE_MAX];
	void *handle = NULL;
	size_t key_length = key ? strlen(key) : 0;
	int r = cgroup_read_value_begin(controller, group->name, file, &handle, line, sizeof(line));
	int found = 0;
	while (r == 0) {
		if (!key || (strncmp(line, key, key_length) == 0 && line[key_length] == ' ')) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(line + key_length, &end, 10);
			if (errno || end == line + key_length || (*end != '\n' && *end != '\0')) {
				r = -1;
				break;
			}
			*ret = v;
			found = 1;
			break;
		}
		r = cgroup_read_value_next(&handle, line, sizeof(line));
	}
	int library_code = r;
	if (handle)
		cgroup_read_value_end(&handle);
	if (found)
		return 0;
	cleanup_free char *path = controller_path(group->cgroups, controller, group->name, file);
	if (library_code == -1)
		return error_set(err, EBADMSG, "%s: unexpected content \"%.64s\"", path, line);
	if (library_code == ECGEOF)
		return error_set(err, ENODATA, "%s: no %s%s", path, key ? key : "value", key ? " line" : "");
	cleanup_free char *what = xasprintf("reading %s", path);
	return library_error(err, library_code, what);
}

static int path_exists(const struct cgroups *cg, const char *controller, const char *name, const char *file)
{
	cleanup_free char *path = controller_path(cg, controller, name, file);
	return access(path, F_OK) == 0;
}

/* ---- validation and the pure mapping ---- */

static int name_check(const char *name, const char *what, struct error *err)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0)
		return error_set(err, EINVAL, "%s: empty name", what);
	if (n > CGROUPS_NAME_MAX)
		return error_set(err, ENAMETOOLONG, "%s \"%.*s...\": longer than %d bytes", what, 32, name,
		                 CGROUPS_NAME_MAX);
	if (name[0] == '.')
		return error_set(err, EINVAL, "%s \"%s\": may not start with '.'", what, name);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return error_set(err, EINVAL, "%s \"%s\": only letters, digits, '-', '_' and '.' are allowed",
			                 what, name);
	}
	return 0;
}

static int limits_check(const struct cgroups_limits *l, struct error *err)
{
	if (l->cpu_request_millicores > CGROUPS_CPU_MILLICORES_MAX)
		return error_set(err, EINVAL, "cpu request %" PRIu32 "m: more than %um", l->cpu_request_millicores,
		                 CGROUPS_CPU_MILLICORES_MAX);
	if (l->cpu_limit_millicores > CGROUPS_CPU_MILLICORES_MAX)
		return error_set(err, EINVAL, "cpu limit %" PRIu32 "m: more than %um", l->cpu_limit_millicores,
		                 CGROUPS_CPU_MILLICORES_MAX);
	if (l->memory_limit_bytes && l->memory_limit_bytes < CGROUPS_MEMORY_MIN)
		return error_set(err, EINVAL, "memory limit %" PRIu64 " bytes: less than 1 MiB", l->memory_limit_bytes);
	if (l->memory_limit_bytes > CGROUPS_MEMORY_MAX)
		return error_set(err, EINVAL, "memory limit %" PRIu64 " bytes: more than 1 PiB", l->memory_limit_bytes);
	if (l->pids_limit > CGROUPS_PIDS_MAX)
		return error_set(err, EINVAL, "pids limit %" PRIu32 ": more than %u", l->pids_limit, CGROUPS_PIDS_MAX);
	return 0;
}

uint64_t cgroups_cpu_shares(uint32_t request_millicores)
{
	/* Kubernetes' MilliCPUToShares: 1024 shares per cpu, clamped to the kernel's [2, 262144]. */
	uint64_t shares = (uint64_t)request_millicores * 1024 / 1000;
	if (shares < 2)
		return 2;
	return shares > 262144 ? 262144 : shares;
}

uint64_t cgroups_cpu_weight(uint64_t shares)
{
	/* Maps [2, 262144] onto cpu.weight's [1, 10000] (Kubernetes, runc, crun agree). */
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t cgroups_cpu_quota_us(uint32_t limit_millicores)
{
	if (limit_millicores == 0)
		return 0;
	uint64_t quota = (uint64_t)limit_millicores * CGROUPS_CPU_PERIOD_US / 1000;
	return quota < CGROUPS_CPU_QUOTA_MIN_US ? CGROUPS_CPU_QUOTA_MIN_US : quota;
}

const char *cgroups_limit_value(enum cgroups_version version, const char *what, const struct cgroups_limits *l,
                                char *buf, size_t size)
{
	bool v2 = version == CGROUPS_V2;
	if (strcmp(what, "cpu") == 0) {
		uint64_t shares = cgroups_cpu_shares(l->cpu_request_millicores);
		snprintf(buf, size, "%" PRIu64, v2 ? cgroups_cpu_weight(shares) : shares);
		return v2 ? "cpu.weight" : "cpu.shares";
	}
	if (strcmp(what, "cpu-limit") == 0) {
		uint64_t quota = cgroups_cpu_quota_us(l->cpu_limit_millicores);
		if (v2 && quota)
			snprintf(buf, size, "%" PRIu64 " %u", quota, CGROUPS_CPU_PERIOD_US);
		else if (v2)
			snprintf(buf, size, "max %u", CGROUPS_CPU_PERIOD_US);
		else if (quota)
			snprintf(buf, size, "%" PRIu64, quota);
		else
			snprintf(buf, size, "-1");
		return v2 ? "cpu.max" : "cpu.cfs_quota_us";
	}
	if (strcmp(what, "memory") == 0) {
		if (l->memory_limit_bytes)
			snprintf(buf, size, "%" PRIu64, l->memory_limit_bytes);
		else
			snprintf(buf, size, "%s", v2 ? "max" : "-1");
		return v2 ? "memory.max" : "memory.limit_in_bytes";
	}
	if (strcmp(what, "pids") == 0) {
		if (l->pids_limit)
			snprintf(buf, size, "%" PRIu32, l->pids_limit);
		else
			snprintf(buf, size, "max");
		return "pids.max";
	}
	return NULL;
}

/* ---- the v1 backend ---- */

static int v1_apply_limits(struct cgroups_group *group, const struct cgroups_limits *l, bool fresh, struct error *err)
{
	struct cgroups *cg = group->cgroups;
	char value[64], period[32];
	/* Always: a request of 0 is 2 shares, not the kernel's 1024. */
	const char *file = cgroups_limit_value(CGROUPS_V1, "cpu", l, value, sizeof(value));
	int r = value_write(group, "cpu", file, value, err);
	if (r < 0)
		return r;
	if (!fresh || l->cpu_limit_millicores) {
		/* The period first: the quota is checked against it. */
		snprintf(period, sizeof(period), "%u", CGROUPS_CPU_PERIOD_US);
		r = value_write(group, "cpu", "cpu.cfs_period_us", period, err);
		if (r < 0)
			return r;
		file = cgroups_limit_value(CGROUPS_V1, "cpu-limit", l, value, sizeof(value));
		r = value_write(group, "cpu", file, value, err);
		if (r < 0)
			return r;
	}
	if (!fresh || l->memory_limit_bytes) {
		/* The kernel insists on memsw >= limit at every step: lift memsw, set the limit,
		 * then lower memsw to it (memory + swap = memory: no swap). */
		if (cg->memory_swap) {
			r = value_write(group, "memory", "memory.memsw.limit_in_bytes", "-1", err);
			if (r < 0)
				return r;
		}
		file = cgroups_limit_value(CGROUPS_V1, "memory", l, value, sizeof(value));
		r = value_write(group, "memory", file, value, err);
		if (r < 0)
			return r;
		if (cg->memory_swap && l->memory_limit_bytes) {
			r = value_write(group, "memory", "memory.memsw.limit_in_bytes", value, err);
			if (r < 0)
				return r;
		}
	}
	if (fresh && !l->pids_limit)
		return 0;
	file = cgroups_limit_value(CGROUPS_V1, "pids", l, value, sizeof(value));
	return value_write(group, "pids", file, value, err);
}

static int v1_read_usage(struct cgroups_group *group, struct cgroups_usage *u, struct error *err)
{
	struct cgroups *cg = group->cgroups;
	int r = value_read(group, "cpuacct", "cpuacct.usage", NULL, &u->cpu_time_ns, err);
	if (r >= 0)
		r = value_read(group, "memory", "memory.usage_in_bytes", NULL, &u->memory_current_bytes, err);
	if (r >= 0)
		r = value_read(group, "memory", "memory.max_usage_in_bytes", NULL, &u->memory_peak_bytes, err);
	if (r >= 0)
		r = value_read(group, "pids", "pids.current", NULL, &u->pids_current, err);
	if (r >= 0 && cg->oom_kill) {
		r = value_read(group, "memory", "memory.oom_control", "oom_kill", &u->oom_kills, err);
		u->oom_kills_known = r >= 0;
	}
	if (r >= 0 &&
	    value_read(group, "memory", "memory.stat", "total_inactive_file", &u->memory_inactive_file_bytes, NULL) < 0)
		u->memory_inactive_file_bytes = 0;
	return r;
}

/* ---- the v2 backend ---- */

static int v2_apply_limits(struct cgroups_group *group, const struct cgroups_limits *l, bool fresh, struct error *err)
{
	char value[64];
	/* Always: the weight of a request (1 for none), not the kernel's 100. */
	const char *file = cgroups_limit_value(CGROUPS_V2, "cpu", l, value, sizeof(value));
	int r = value_write(group, "cpu", file, value, err);
	if (r < 0)
		return r;
	if (!fresh || l->cpu_limit_millicores) {
		file = cgroups_limit_value(CGROUPS_V2, "cpu-limit", l, value, sizeof(value));
		r = value_write(group, "cpu", file, value, err);
		if (r < 0)
			return r;
	}
	if (!fresh || l->memory_limit_bytes) {
		file = cgroups_limit_value(CGROUPS_V2, "memory", l, value, sizeof(value));
		r = value_write(group, "memory", file, value, err);
		if (r < 0)
			return r;
	}
	/* Kubernetes' NoSwap: a container never swaps, limited or not (the default is max). */
	if (group->cgroups->memory_swap) {
		r = value_write(group, "memory", "memory.swap.max", "0", err);
		if (r < 0)
			return r;
	}
	if (fresh && !l->pids_limit)
		return 0;
	file = cgroups_limit_value(CGROUPS_V2, "pids", l, value, sizeof(value));
	return value_write(group, "pids", file, value, err);
}

static int v2_read_usage(struct cgroups_group *group, struct cgroups_usage *u, struct error *err)
{
	uint64_t usec = 0;
	int r = value_read(group, "cpu", "cpu.stat", "usage_usec", &usec, err);
	u->cpu_time_ns = usec * 1000;
	if (r >= 0)
		r = value_read(group, "memory", "memory.current", NULL, &u->memory_current_bytes, err);
	if (r >= 0 && group->cgroups->memory_peak)
		r = value_read(group, "memory", "memory.peak", NULL, &u->memory_peak_bytes, err);
	if (r >= 0)
		r = value_read(group, "pids", "pids.current", NULL, &u->pids_current, err);
	if (r >= 0) {
		r = value_read(group, "memory", "memory.events", "oom_kill", &u->oom_kills, err);
		u->oom_kills_known = r >= 0;
	}
	if (r >= 0 &&
	    value_read(group, "memory", "memory.stat", "inactive_file", &u->memory_inactive_file_bytes, NULL) < 0)
		u->memory_inactive_file_bytes = 0;
	return r;
}

/* ---- processes ---- */

/* Reads the pids of one cgroup.procs file. */
static int procs_read(const char *path, pid_t *pids, size_t max, struct error *err)
{
	cleanup_free char *data = NULL;
	int r = file_read(path, CGROUPS_PROCS_FILE_MAX, &data, NULL, err);
	if (r < 0)
		return r;
	size_t count = 0;
	for (char *p = data; *p && count < max;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v <= 0)
			return error_set(err, EBADMSG, "%s: unexpected content", path);
		pids[count++] = (pid_t)v;
		p = end;
		while (*p == '\n')
			p++;
	}
	return (int)count;
}

/* Lists the child groups of name (union over the hierarchies), sorted. */
static int children_list(const struct cgroups *cg, const char *name, const char *prefix, char ***ret, size_t *ret_count,
                         struct error *err)
{
	char **names = NULL;
	size_t count = 0, capacity = 0;
	int r = 0;
	for (int i = 0; i < cg->controller_count && r >= 0; i++) {
		if (!cg->controllers[i].procs)
			continue;
		cleanup_free char *dir_path = controller_path(cg, cg->controllers[i].name, name, NULL);
		DIR *dir = opendir(dir_path);
		if (!dir) {
			if (errno == ENOENT)
				continue;
			r = error_set_errno(err, errno, "opendir %s", dir_path);
			break;
		}
		struct dirent *e;
		while ((e = readdir(dir))) {
			if (e->d_type != DT_DIR || e->d_name[0] == '.')
				continue;
			if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0)
				continue;
			bool seen = false;
			for (size_t j = 0; j < count && !seen; j++)
				seen = strcmp(names[j], e->d_name) == 0;
			if (seen)
				continue;
			if (count == CGROUPS_CHILDREN_MAX) {
				r = error_set(err, E2BIG, "%s: more than %d groups", dir_path, CGROUPS_CHILDREN_MAX);
				break;
			}
			if (count == capacity) {
				capacity = capacity ? capacity * 2 : 16;
				names = xrealloc(names, capacity * sizeof(*names));
			}
			names[count++] = xstrdup(e->d_name);
		}
		closedir(dir);
	}
	if (r < 0) {
		cgroups_pods_free(names, count);
		return r;
	}
	for (size_t i = 1; i < count; i++) /* insertion sort: small lists, stable output for callers */
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	*ret = names;
	*ret_count = count;
	return 0;
}

/* SIGKILLs every pid listed in the group's and its descendants' cgroup.procs. */
static int kill_listed(struct cgroups_group *group, const char *name, int depth, struct error *err)
{
	struct cgroups *cg = group->cgroups;
	int signalled = 0;
	char **children = NULL;
	size_t child_count = 0;
	if (depth < CGROUPS_DEPTH_MAX) {
		int r = children_list(cg, name, NULL, &children, &child_count, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < child_count; i++) {
		cleanup_free char *child = xasprintf("%s/%s", name, children[i]);
		int r = kill_listed(group, child, depth + 1, err);
		if (r < 0) {
			cgroups_pods_free(children, child_count);
			return r;
		}
		signalled += r;
	}
	cgroups_pods_free(children, child_count);
	pid_t pids[256]; /* per pass: remove_tree() kills again while the group is busy */
	for (int i = 0; i < cg->controller_count; i++) {
		if (!cg->controllers[i].procs)
			continue;
		cleanup_free char *path = controller_path(cg, cg->controllers[i].name, name, "cgroup.procs");
		int n = procs_read(path, pids, ARRAY_SIZE(pids), err);
		if (n == -ENOENT)
			continue;
		if (n < 0)
			return n;
		for (int j = 0; j < n; j++)
			if (kill(pids[j], SIGKILL) == 0)
				signalled++;
	}
	return signalled;
}

static int v1_kill(struct cgroups_group *group, const char *name, struct error *err)
{
	return kill_listed(group, name, 0, err);
}

static int v2_kill(struct cgroups_group *group, const char *name, struct error *err)
{
	/* cgroup.kill kills the whole subtree at once, racing no fork. */
	if (group->cgroups->cgroup_kill) {
		cleanup_free char *path = controller_path(group->cgroups, "cpu", name, "cgroup.kill");
		cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0 && write(fd, "1", 1) == 1)
			return 1;
		if (fd < 0 && errno == ENOENT)
			return 0;
	}
	return kill_listed(group, name, 0, err);
}

static const char *const v1_controllers[] = { "cpu", "cpuacct", "memory", "pids", NULL };
static const char *const v2_controllers[] = { "cpu", "memory", "pids", NULL };

static const struct cgroups_backend cgroups_v1 = {
	.version = CGROUPS_V1,
	.controllers = v1_controllers,
	.apply_limits = v1_apply_limits,
	.read_usage = v1_read_usage,
	.kill = v1_kill,
};

static const struct cgroups_backend cgroups_v2 = {
	.version = CGROUPS_V2,
	.controllers = v2_controllers,
	.apply_limits = v2_apply_limits,
	.read_usage = v2_read_usage,
	.kill = v2_kill,
};

/* ---- opening ---- */

void cgroups_missing_controller_message(const char *controller, char *buf, size_t size)
{
	if (strcmp(controller, "memory") == 0)
		snprintf(buf, size,
		         "the kernel's memory cgroup controller is not enabled: add `cgroup_enable=memory "
		         "cgroup_memory=1` to the kernel command line (on Raspberry Pi OS the one line of "
		         "/boot/firmware/cmdline.txt, or /boot/cmdline.txt on older releases) and reboot");
	else
		snprintf(buf, size,
		         "the kernel's %s cgroup controller is not available: it is missing from /proc/cgroups "
		         "or not mounted under /sys/fs/cgroup (enable it in the kernel, or mount it)",
		         controller);
}

int cgroups_controller_check(const struct cgroups *cg, const char *controller, struct error *err)
{
	enum cg_version_t version = CGROUP_UNK;
	char message[ERROR_MESSAGE_MAX];
	if (cgroup_get_controller_version(controller, &version) != 0 || version == CGROUP_UNK) {
		cgroups_missing_controller_message(controller, message, sizeof(message));
		return error_set(err, ENODEV, "%s", message);
	}
	enum cg_version_t wanted = cg->version == CGROUPS_V2 ? CGROUP_V2 : CGROUP_V1;
	if (version != wanted)
		return error_set(err, ENODEV,
		                 "the %s cgroup controller is on a cgroup v%d hierarchy and cpu on v%d: Bramble "
		                 "needs cpu, memory and pids on the same version (boot with "
		                 "systemd.unified_cgroup_hierarchy=1 for v2)",
		                 controller, version == CGROUP_V2 ? 2 : 1, cg->version);
	return 0;
}

/* oom_control has an oom_kill line since Linux 4.13. */
static bool v1_has_oom_kill(struct cgroups *cg)
{
	struct cgroups_group parent = { .cgroups = cg, .name = cg->parent };
	uint64_t v;
	return value_read(&parent, "memory", "memory.oom_control", "oom_kill", &v, NULL) == 0;
}

int cgroups_open(const char *parent, struct cgroups **ret, struct error *err)
{
	int r = name_check(parent, "cgroup parent", err);
	if (r < 0)
		return r;
	/* Library code does not log: libcgroup's own messages would go to stderr. */
	cgroup_set_logger(NULL, CGROUP_LOG_ERROR, NULL);
	r = cgroup_init();
	if (r != 0) {
		if (r == ECGROUPNOTMOUNTED)
			return error_set(err, ENODEV,
			                 "no cgroup file system is mounted (expected under /sys/fs/cgroup)");
		return library_error(err, r, "initialising libcgroup");
	}

	struct cgroups *cg = xcalloc(1, sizeof(*cg));
	cg->parent = xstrdup(parent);
	/* The version of the hierarchy that holds cpu decides (see the design comment). */
	enum cg_version_t cpu_version = CGROUP_UNK;
	if (cgroup_get_controller_version("cpu", &cpu_version) != 0 || cpu_version == CGROUP_UNK) {
		char message[ERROR_MESSAGE_MAX];
		cgroups_missing_controller_message("cpu", message, sizeof(message));
		r = error_set(err, ENODEV, "%s", message);
		goto fail;
	}
	cg->backend = cpu_version == CGROUP_V2 ? &cgroups_v2 : &cgroups_v1;
	cg->version = cg->backend->version;

	for (const char *const *name = cg->backend->controllers; *name; name++) {
		r = cgroups_controller_check(cg, *name, err);
		if (r < 0)
			goto fail;
		struct cgroups_controller *c = &cg->controllers[cg->controller_count++];
		c->name = *name;
		r = cgroup_get_subsys_mount_point(*name, &c->mount);
		if (r != 0) {
			r = library_error(err, r, *name);
			goto fail;
		}
		c->procs = true;
		for (int i = 0; i < cg->controller_count - 1; i++)
			if (strcmp(cg->controllers[i].mount, c->mount) == 0)
				c->procs = false;
	}

	r = group_mkdir(cg, cg->parent, err);
	if (r < 0)
		goto fail;

	if (cg->version == CGROUPS_V1) {
		cg->memory_swap = path_exists(cg, "memory", cg->parent, "memory.memsw.limit_in_bytes");
		cg->oom_kill = v1_has_oom_kill(cg);
	} else {
		cg->memory_swap = path_exists(cg, "memory", cg->parent, "memory.swap.max");
		cg->memory_peak = path_exists(cg, "memory", cg->parent, "memory.peak");
		cg->cgroup_kill = path_exists(cg, "cpu", cg->parent, "cgroup.kill");
		cg->oom_kill = true;
	}
	*ret = cg;
	return 0;
fail:
	cgroups_close(cg);
	return r;
}

int cgroups_open_directory(enum cgroups_version version, const char *root, const char *parent, struct cgroups **ret,
                           struct error *err)
{
	int r = name_check(parent, "cgroup parent", err);
	if (r < 0)
		return r;
	struct cgroups *cg = xcalloc(1, sizeof(*cg));
	cg->parent = xstrdup(parent);
	cg->backend = version == CGROUPS_V2 ? &cgroups_v2 : &cgroups_v1;
	cg->version = cg->backend->version;
	for (const char *const *name = cg->backend->controllers; *name; name++) {
		struct cgroups_controller *c = &cg->controllers[cg->controller_count++];
		c->name = *name;
		c->mount = version == CGROUPS_V2 ? xstrdup(root) : xasprintf("%s/%s", root, *name);
		c->procs = version == CGROUPS_V1 || cg->controller_count == 1;
	}
	cg->memory_swap = path_exists(cg, "memory", parent,
	                              version == CGROUPS_V2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes");
	cg->cgroup_kill = version == CGROUPS_V2 && path_exists(cg, "cpu", parent, "cgroup.kill");
	cg->oom_kill = true;
	*ret = cg;
	return 0;
}

void cgroups_close(struct cgroups *cg)
{
	if (!cg)
		return;
	for (int i = 0; i < cg->controller_count; i++)
		free(cg->controllers[i].mount);
	free(cg->parent);
	free(cg);
}

enum cgroups_version cgroups_version(const struct cgroups *cg)
{
	return cg->version;
}

/* ---- groups ---- */

static struct cgroups_group *group_new(struct cgroups *cg, char *name, int depth)
{
	struct cgroups_group *g = xcalloc(1, sizeof(*g));
	g->cgroups = cg;
	g->name = name;
	g->depth = depth;
	return g;
}

static int group_create(struct cgroups *cg, char *name, int depth, const struct cgroups_limits *limits,
                        struct cgroups_group **ret, struct error *err)
{
	struct cgroups_group *g = group_new(cg, name, depth);
	int fresh = group_mkdir(cg, name, err);
	if (fresh < 0) {
		cgroups_group_free(g);
		return fresh;
	}
	int r = cg->backend->apply_limits(g, limits, fresh, err);
	if (r < 0) {
		/* Leave nothing half-made; a group that holds processes (adopted) stays. */
		group_rmdir(cg, name, NULL);
		cgroups_group_free(g);
		return r;
	}
	*ret = g;
	return 0;
}

int cgroups_pod_create(struct cgroups *cg, const char *pod_uid, const struct cgroups_limits *limits,
                       struct cgroups_group **ret, struct error *err)
{
	int r = name_check(pod_uid, "pod uid", err);
	if (r >= 0)
		r = limits_check(limits, err);
	if (r < 0)
		return r;
	return group_create(cg, xasprintf("%s/pod-%s", cg->parent, pod_uid), 1, limits, ret, err);
}

int cgroups_container_create(struct cgroups_group *pod, const char *name, const struct cgroups_limits *limits,
                             struct cgroups_group **ret, struct error *err)
{
	if (pod->depth != 1)
		return error_set(err, EINVAL, "%s is not a pod cgroup", pod->name);
	int r = name_check(name, "container name", err);
	if (r >= 0)
		r = limits_check(limits, err);
	if (r < 0)
		return r;
	return group_create(pod->cgroups, xasprintf("%s/%s", pod->name, name), 2, limits, ret, err);
}

static int group_open(struct cgroups *cg, char *name, int depth, struct cgroups_group **ret, struct error *err)
{
	for (int i = 0; i < cg->controller_count; i++) {
		if (!path_exists(cg, cg->controllers[i].name, name, NULL)) {
			cleanup_free char *path = controller_path(cg, cg->controllers[i].name, name, NULL);
			free(name);
			return error_set(err, ENOENT, "cgroup %s does not exist", path);
		}
	}
	*ret = group_new(cg, name, depth);
	return 0;
}

int cgroups_pod_open(struct cgroups *cg, const char *pod_uid, struct cgroups_group **ret, struct error *err)
{
	int r = name_check(pod_uid, "pod uid", err);
	if (r < 0)
		return r;
	return group_open(cg, xasprintf("%s/pod-%s", cg->parent, pod_uid), 1, ret, err);
}

int cgroups_container_open(struct cgroups_group *pod, const char *name, struct cgroups_group **ret, struct error *err)
{
	if (pod->depth != 1)
		return error_set(err, EINVAL, "%s is not a pod cgroup", pod->name);
	int r = name_check(name, "container name", err);
	if (r < 0)
		return r;
	return group_open(pod->cgroups, xasprintf("%s/%s", pod->name, name), 2, ret, err);
}

int cgroups_pods_list(struct cgroups *cg, char ***ret_uids, size_t *ret_count, struct error *err)
{
	char **names = NULL;
	size_t count = 0;
	int r = children_list(cg, cg->parent, "pod-", &names, &count, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < count; i++)
		memmove(names[i], names[i] + 4, strlen(names[i] + 4) + 1); /* drop "pod-" */
	*ret_uids = names;
	*ret_count = count;
	return 0;
}

void cgroups_pods_free(char **uids, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(uids[i]);
	free(uids);
}

int cgroups_update(struct cgroups_group *group, const struct cgroups_limits *limits, struct error *err)
{
	int r = limits_check(limits, err);
	if (r < 0)
		return r;
	return group->cgroups->backend->apply_limits(group, limits, false, err);
}

int cgroups_attach(struct cgroups_group *group, pid_t pid, struct error *err)
{
	if (pid <= 0)
		return error_set(err, EINVAL, "attaching pid %d to %s: not a process id", (int)pid, group->name);
	struct cgroups *cg = group->cgroups;
	/* cgroup.procs moves every thread (libcgroup would write v1's "tasks", moving one). */
	char text[16];
	int length = snprintf(text, sizeof(text), "%d", (int)pid);
	for (int i = 0; i < cg->controller_count; i++) {
		if (!cg->controllers[i].procs)
			continue;
		cleanup_free char *path = controller_path(cg, cg->controllers[i].name, group->name, "cgroup.procs");
		cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return error_set_errno(err, errno, "open %s", path);
		if (write(fd, text, (size_t)length) != length)
			return error_set_errno(err, errno, "writing pid %d to %s", (int)pid, path);
	}
	return 0;
}

int cgroups_procs_open(struct cgroups_group *group, struct cgroups_procs *ret, struct error *err)
{
	struct cgroups *cg = group->cgroups;
	struct cgroups_procs procs = { .count = 0 };
	for (int i = 0; i < cg->controller_count; i++) {
		if (!cg->controllers[i].procs)
			continue;
		/* On v1 the child writes "0" to `tasks`: a thread moving itself skips the kernel's
		 * global threadgroup lock, whose writer waits out an RCU grace period (5-15 ms per
		 * container start); cgroup.procs would take it. Between fork and exec the child is
		 * single-threaded, so moving the thread moves the process. v2 has no `tasks`. */
		const char *file = cg->version == CGROUPS_V1 ? "tasks" : "cgroup.procs";
		cleanup_free char *path = controller_path(cg, cg->controllers[i].name, group->name, file);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			int r = error_set_errno(err, errno, "open %s", path);
			cgroups_procs_close(&procs);
			return r;
		}
		procs.fds[procs.count++] = fd;
	}
	*ret = procs;
	return 0;
}

int cgroups_procs_enter(const struct cgroups_procs *procs)
{
	/* "0" is the writer itself: no getpid() needed after fork, nothing but write(2). */
	for (int i = 0; i < procs->count; i++)
		if (write(procs->fds[i], "0", 1) != 1)
			return -errno;
	return 0;
}

void cgroups_procs_close(struct cgroups_procs *procs)
{
	for (int i = 0; i < procs->count; i++)
		close(procs->fds[i]);
	procs->count = 0;
}

int cgroups_directory_open(struct cgroups_group *group)
{
	if (group->cgroups->version != CGROUPS_V2)
		return -EOPNOTSUPP;
	cleanup_free char *path = controller_path(group->cgroups, "cpu", group->name, NULL);
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int cgroups_usage(struct cgroups_group *group, struct cgroups_usage *ret, struct error *err)
{
	struct cgroups_usage usage = { 0 };
	int r = group->cgroups->backend->read_usage(group, &usage, err);
	if (r < 0)
		return r;
	*ret = usage;
	return 0;
}

int cgroups_pids(struct cgroups_group *group, pid_t *pids, size_t max, struct error *err)
{
	cleanup_free char *path = controller_path(group->cgroups, "pids", group->name, "cgroup.procs");
	return procs_read(path, pids, max, err);
}

/* ---- removal ---- */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Removes name and its descendants, children first, each from every hierarchy. */
static int remove_tree(struct cgroups_group *group, const char *name, int depth, unsigned flags, uint64_t deadline_ms,
                       struct error *err)
{
	struct cgroups *cg = group->cgroups;
	if (depth < CGROUPS_DEPTH_MAX) {
		char **children = NULL;
		size_t count = 0;
		int r = children_list(cg, name, NULL, &children, &count, err);
		if (r < 0)
			return r;
		for (size_t i = 0; i < count && r >= 0; i++) {
			cleanup_free char *child = xasprintf("%s/%s", name, children[i]);
			r = remove_tree(group, child, depth + 1, flags, deadline_ms, err);
		}
		cgroups_pods_free(children, count);
		if (r < 0)
			return r;
	}
	for (;;) {
		int r = group_rmdir(cg, name, err);
		if (r == 0)
			return 0;
		if (r != -EBUSY)
			return r;
		if (clock_monotonic_ms() >= deadline_ms) {
			cleanup_free char *path = controller_path(cg, "memory", name, NULL);
			return error_set(err, EBUSY, "removing cgroup %s: processes are still in it%s", path,
			                 flags & CGROUPS_REMOVE_KILL ? " after SIGKILL" : "");
		}
		/* A process forked while we killed its parent may have escaped the first pass. */
		if (flags & CGROUPS_REMOVE_KILL) {
			r = cg->backend->kill(group, name, err);
			if (r < 0)
				return r;
		}
		sleep_ms(CGROUPS_REMOVE_STEP_MS);
	}
}

static int remove_named(struct cgroups_group *group, unsigned flags, struct error *err)
{
	uint64_t deadline = clock_monotonic_ms() +
	                    ((flags & CGROUPS_REMOVE_KILL) ? CGROUPS_REMOVE_TIMEOUT_MS : CGROUPS_REMOVE_QUIET_MS);
	/* No kill pass first: remove_tree() kills a group only when rmdir finds it busy, so
	 * removing groups whose processes have exited (the common case) reads no cgroup.procs. */
	return remove_tree(group, group->name, group->depth, flags, deadline, err);
}

int cgroups_remove(struct cgroups_group *group, unsigned flags, struct error *err)
{
	return remove_named(group, flags, err);
}

int cgroups_remove_parent(struct cgroups *cg, unsigned flags, struct error *err)
{
	struct cgroups_group parent = { .cgroups = cg, .name = cg->parent, .depth = 0 };
	return remove_named(&parent, flags, err);
}

const char *cgroups_group_name(const struct cgroups_group *group)
{
	return group->name;
}

void cgroups_group_free(struct cgroups_group *group)
{
	if (!group)
		return;
	free(group->name);
	free(group);
}
