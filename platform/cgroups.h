/* Control groups through libcgroup, on cgroup v1 and v2.
 *
 * The agent opens the module once with a parent name ("bramble"); every pod gets a cgroup
 * <parent>/pod-<uid> and each of its containers one below it, <parent>/pod-<uid>/<name>.
 * Limits are given in Kubernetes' units (millicores, bytes, a pid count) and mapped to the
 * files of whichever cgroup version the board runs; the caller never sees a file name
 * except in an error message.
 *
 *   struct cgroups *cg;
 *   cgroups_open("bramble", &cg, &err);                  // detects v1/v2, checks controllers
 *   cgroups_pod_create(cg, uid, &pod_limits, &pod, &err);
 *   cgroups_container_create(pod, "web", &limits, &ctr, &err);
 *   cgroups_procs_open(ctr, &procs, &err);               // before fork
 *   ... child: cgroups_procs_enter(&procs); exec ...     // placed before user code runs
 *   cgroups_usage(ctr, &usage, &err);                    // cpu time, memory, pids, OOM kills
 *   cgroups_remove(pod, CGROUPS_REMOVE_KILL, &err);      // containers, then the pod
 *
 * Processes live only in container cgroups (leaves), never in a pod cgroup or the parent:
 * cgroup v2 forbids processes in a group whose controllers are delegated to children.
 * All functions return 0 or a negative errno and fill err naming the cgroup path and file.
 */
#ifndef BRAMBLE_PLATFORM_CGROUPS_H
#define BRAMBLE_PLATFORM_CGROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct error;

/* Bounds on what callers may ask for. */
#define CGROUPS_NAME_MAX 64                    /* parent, pod uid, container name */
#define CGROUPS_CPU_MILLICORES_MAX 1024000u    /* 1024 cpus */
#define CGROUPS_MEMORY_MIN ((uint64_t)1 << 20) /* a limit below 1 MiB cannot run anything */
#define CGROUPS_MEMORY_MAX ((uint64_t)1 << 50) /* 1 PiB */
#define CGROUPS_PIDS_MAX 4194304u              /* the kernel's PID_MAX_LIMIT */
#define CGROUPS_HIERARCHIES_MAX 8              /* v1: cpu, cpuacct, memory, pids (+ co-mounts) */

/* The CFS period Bramble uses for cpu limits, as Kubernetes does (100 ms). */
#define CGROUPS_CPU_PERIOD_US 100000u
/* The smallest quota the kernel accepts (1 ms); smaller limits are rounded up to it. */
#define CGROUPS_CPU_QUOTA_MIN_US 1000u

enum cgroups_version {
	CGROUPS_V1 = 1, /* legacy or hybrid: one hierarchy per controller */
	CGROUPS_V2 = 2, /* unified: one hierarchy, controllers enabled per subtree */
};

/* 0 means "none" everywhere: no cpu limit, no memory limit, no pids limit. A cpu request of
 * 0 gets the smallest share (2, weight 1), as Kubernetes gives a BestEffort container. */
struct cgroups_limits {
	uint32_t cpu_request_millicores;
	uint32_t cpu_limit_millicores;
	uint64_t memory_limit_bytes; /* swap is turned off where the kernel allows it */
	uint32_t pids_limit;
};

struct cgroups_usage {
	uint64_t cpu_time_ns;          /* user + system time of every process ever in the group */
	uint64_t memory_current_bytes; /* including page cache, as the kernel counts it */
	uint64_t memory_peak_bytes;    /* high-water mark; 0 where the kernel keeps none */
	uint64_t pids_current;
	uint64_t oom_kills;   /* processes the OOM killer killed in the group (OOMKilled) */
	bool oom_kills_known; /* false on v1 kernels older than 4.13 (no oom_kill counter) */
	/* Page cache the kernel may reclaim first; memory_current less this is the working set
	 * (what Kubernetes' metrics report). 0 where memory.stat does not say. */
	uint64_t memory_inactive_file_bytes;
};

struct cgroups;       /* the module, opened once per agent */
struct cgroups_group; /* one pod or container cgroup */

/* Fds of the group's membership files (v1: `tasks`, one per hierarchy; v2: cgroup.procs),
 * opened before fork so that the child can move itself with cgroups_procs_enter() between
 * fork and exec, while it is still single-threaded. */
struct cgroups_procs {
	int fds[CGROUPS_HIERARCHIES_MAX];
	int count;
};

/* "libcgroup 3.1.0", read from the library. */
void cgroups_library_version(char *buf, size_t size);

/* Initialises libcgroup, detects the cgroup version, checks that the cpu, memory and pids
 * controllers (and cpuacct on v1) are there, and creates <parent> under each hierarchy.
 * A missing memory controller gets a message saying what to add to the kernel command line. */
int cgroups_open(const char *parent, struct cgroups **ret, struct error *err);

/* For tests: the module over a plain directory tree standing in for the hierarchies (v2:
 * root itself; v1: root/<controller>), without libcgroup and without the kernel's checks.
 * Opening groups, writing limits (cgroups_update), cgroups_directory_open and removal work
 * on it; group creation on v2 and usage reads go through libcgroup and do not. This is
 * how the v2 files are checked on a v1 machine. <root>/<parent> must exist. */
int cgroups_open_directory(enum cgroups_version version, const char *root, const char *parent, struct cgroups **ret,
                           struct error *err);

/* Frees the module; cgroups on disk stay (the agent adopts them after a restart). */
void cgroups_close(struct cgroups *cg);

enum cgroups_version cgroups_version(const struct cgroups *cg);

/* The check cgroups_open() runs on each controller it needs: 0 when the controller is
 * mounted with the board's cgroup version, else -ENODEV and a message saying what to do. */
int cgroups_controller_check(const struct cgroups *cg, const char *controller, struct error *err);

/* What the user is told when a controller is missing; "memory" names the kernel command
 * line switches that turn it on (off by default on Raspberry Pi kernels). */
void cgroups_missing_controller_message(const char *controller, char *buf, size_t size);

/* Creates (or, after an agent restart, re-opens and re-limits) <parent>/pod-<uid>. */
int cgroups_pod_create(struct cgroups *cg, const char *pod_uid, const struct cgroups_limits *limits,
                       struct cgroups_group **ret, struct error *err);

/* Creates <pod>/<name> with its limits. */
int cgroups_container_create(struct cgroups_group *pod, const char *name, const struct cgroups_limits *limits,
                             struct cgroups_group **ret, struct error *err);

/* Opens an existing pod or container cgroup (adoption); -ENOENT when it does not exist. */
int cgroups_pod_open(struct cgroups *cg, const char *pod_uid, struct cgroups_group **ret, struct error *err);
int cgroups_container_open(struct cgroups_group *pod, const char *name, struct cgroups_group **ret, struct error *err);

/* Pod uids with a cgroup under the parent, sorted; free with cgroups_pods_free(). */
int cgroups_pods_list(struct cgroups *cg, char ***ret_uids, size_t *ret_count, struct error *err);
void cgroups_pods_free(char **uids, size_t count);

/* Rewrites every limit (0 lifts one). */
int cgroups_update(struct cgroups_group *group, const struct cgroups_limits *limits, struct error *err);

/* Moves a whole process (every thread) into a container cgroup. */
int cgroups_attach(struct cgroups_group *group, pid_t pid, struct error *err);

/* Opens the group's cgroup.procs files O_CLOEXEC, to be written by a forked child. */
int cgroups_procs_open(struct cgroups_group *group, struct cgroups_procs *ret, struct error *err);
/* Moves the calling process into the group. Async-signal-safe: for the child between fork
 * and exec. Returns 0 or a negative errno (the child should then _exit without exec). */
int cgroups_procs_enter(const struct cgroups_procs *procs);
void cgroups_procs_close(struct cgroups_procs *procs);

/* v2: an O_PATH descriptor of the group's directory (O_CLOEXEC), for clone3() with
 * CLONE_INTO_CGROUP, which starts a process in the group: no one writes cgroup.procs, whose
 * write takes a global lock that waits out an RCU grace period. -EOPNOTSUPP on v1 (a group
 * spans several hierarchies there), else -errno. */
int cgroups_directory_open(struct cgroups_group *group);

int cgroups_usage(struct cgroups_group *group, struct cgroups_usage *ret, struct error *err);

/* Pids in the group (one hierarchy's cgroup.procs), at most max of them; returns how many. */
int cgroups_pids(struct cgroups_group *group, pid_t *pids, size_t max, struct error *err);

enum {
	CGROUPS_REMOVE_KILL = 1, /* SIGKILL what is still running instead of failing with -EBUSY */
};

/* Removes the group and every group below it (a pod's containers first) from every
 * hierarchy, retrying for a bounded time while killed processes exit. The group handle
 * stays valid (for its name) and must still be freed. */
int cgroups_remove(struct cgroups_group *group, unsigned flags, struct error *err);

/* Removes the parent and everything below it (uninstall, tests). */
int cgroups_remove_parent(struct cgroups *cg, unsigned flags, struct error *err);

/* "bramble/pod-<uid>/<name>": the group's path below each hierarchy's mount point. */
const char *cgroups_group_name(const struct cgroups_group *group);

void cgroups_group_free(struct cgroups_group *group);

/* The mapping from Kubernetes' units to cgroup values, pure functions (tested without a
 * kernel, so the v2 mapping is tested on v1 machines too). */
uint64_t cgroups_cpu_shares(uint32_t request_millicores); /* Kubernetes' MilliCPUToShares */
uint64_t cgroups_cpu_weight(uint64_t shares);             /* 1 + ((shares - 2) * 9999) / 262142 */
uint64_t cgroups_cpu_quota_us(uint32_t limit_millicores); /* per CGROUPS_CPU_PERIOD_US */

/* Formats the value a backend writes for one limit into buf: the v2 strings ("max",
 * "50000 100000") and the v1 numbers ("-1"). Returns the file name written, or NULL if the
 * backend does not have that limit. What is one of "cpu", "cpu-limit", "memory", "pids". */
const char *cgroups_limit_value(enum cgroups_version version, const char *what, const struct cgroups_limits *limits,
                                char *buf, size_t size);

#endif
