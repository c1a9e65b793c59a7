/* The native runtime driver: real containers. See runtime.h for the lifecycle.
 *
 * A sandbox is the pod's network, IPC and UTS namespaces. The calling thread unshares them,
 * sets the hostname, brings up loopback, keeps a descriptor of each and joins its own
 * namespaces again (no process is forked for it); the namespaces are pinned with bind mounts
 * in the sandbox's state directory, so they outlive (for adoption after a restart) the
 * agent. No pause process.
 *
 * A container is cloned with new mount and PID namespaces and talks to its parent over a
 * SOCK_SEQPACKET pair (close-on-exec, so a successful exec closes it):
 *
 *   parent (create)                     child
 *   clone ---------------------------->  reset signals, wait for "attached"
 *   attach(pid) to cgroups, send 'A' ->  enter its cgroups (v1; on v2 it was cloned into its
 *                                        group), join the sandbox's namespaces, new cgroup
 *                                        namespace,
 *                                        assemble the root (overlay, /proc, /dev, /sys,
 *                                        volumes), pivot_root, mask /proc paths
 *   wait for "ok" or "error: ..."   <--  send "ok", wait for "start"
 *   (start) send 'S' ----------------->  user and groups, capabilities, no_new_privs,
 *                                        seccomp, close every descriptor but 0-2, chdir,
 *                                        exec
 *   EOF: running; "error: ..." <-------  (only if exec failed)
 *
 * After start the container no longer dies with its creator (no parent-death signal): an
 * agent restart adopts it.
 *
 * exec: a helper forked by the caller enters the container's cgroup, joins its namespaces
 * through its pidfd (one setns, Linux 5.8+) and forks the command's process with
 * CLONE_PARENT, so that it is the caller's child and inside the container's PID namespace;
 * the helper reports its pid and ends; the process confines itself as the container's
 * process did (user, capabilities, no_new_privs, seccomp, descriptors) and execs.
 *
 * Start-up cost. `bramble run --rm IMAGE true` is benchmarked against crun
 * (tests/bench/start_latency.sh), so the path is kept short: the seccomp filter is compiled
 * to BPF once per process (seccomp_compile), the sandbox needs no fork, the child shares the
 * caller's memory until it execs (CLONE_VM, see native_create) and moves itself into its
 * cgroups (cgroups_procs_enter; on v2 it is cloned into its group), and a --rm container's
 * writable layer is a tmpfs of its own mount namespace (upper_in_memory) that no one has to
 * delete.
 *
 * Invariant: no user code runs before the process is in its cgroups, in its own root,
 * with its reduced privileges.
 */
#include "drivers/runtime_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/nsfs.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/cgroups.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"

#define CHILD_STACK_SIZE (256 * 1024)

#define namespace_names runtime_namespace_names
static const int namespace_flags[NS_COUNT] = { CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS };

/* --- sandboxes ---------------------------------------------------------------------------- */

static void bring_up_loopback(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
}

/* Opens a namespace pinned at path: -ENOENT when nothing (or no namespace of that kind)
 * is pinned there. */
static int open_pinned(const char *path, int flag)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int type = ioctl(fd, NS_GET_NSTYPE);
	if (type != flag) {
		close(fd);
		return -ENOENT; /* an empty file: the pin is gone (a reboot) */
	}
	return fd;
}

/* Bind-mounts the namespace (held by fd) onto <state_dir>/<name>, so that it outlives the
 * agent. */
static int pin_namespace(struct runtime_sandbox *s, int fd, int i, struct error *err)
{
	char source[64];
	cleanup_free char *target = xasprintf("%s/%s", s->state_dir, namespace_names[i]);
	snprintf(source, sizeof(source), "/proc/self/fd/%d", fd);
	int pin = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (pin < 0)
		return error_set_errno(err, errno, "create %s", target);
	close(pin);
	if (mount(source, target, NULL, MS_BIND, NULL) < 0)
		return error_set_errno(err, errno, "pin the sandbox's %s namespace on %s", namespace_names[i], target);
	s->pinned[i] = true;
	return 0;
}

static void sandbox_free(struct runtime_sandbox *s, bool unpin)
{
	if (!s)
		return;
	for (int i = 0; i < NS_COUNT; i++) {
		if (s->fds[i] >= 0)
			close(s->fds[i]);
		if (unpin && s->pinned[i]) {
			cleanup_free char *pinned = xasprintf("%s/%s", s->state_dir, namespace_names[i]);
			umount2(pinned, MNT_DETACH);
			unlink(pinned);
		}
	}
	free(s->state_dir);
	free(s);
}

static void native_sandbox_destroy(struct runtime_sandbox *s)
{
	sandbox_free(s, true);
}

static void native_sandbox_release(struct runtime_sandbox *s)
{
	sandbox_free(s, false);
}

static int sandbox_flags(const struct sandbox_spec *spec)
{
	return CLONE_NEWIPC | (spec->host_network ? 0 : CLONE_NEWNET | CLONE_NEWUTS);
}

static int native_sandbox_adopt(const struct sandbox_spec *spec, struct runtime_sandbox **ret_sandbox,
                                struct error *err)
{
	if (!spec->state_dir)
		return error_set(err, EINVAL, "sandbox %s: only a sandbox with a state directory can be adopted",
		                 spec->name);
	struct runtime_sandbox *s = xcalloc(1, sizeof(*s));
	s->state_dir = xstrdup(spec->state_dir);
	int flags = sandbox_flags(spec);
	int r = 0;
	for (int i = 0; i < NS_COUNT; i++) {
		s->fds[i] = -1;
		if (r < 0 || !(flags & namespace_flags[i]))
			continue;
		cleanup_free char *path = xasprintf("%s/%s", spec->state_dir, namespace_names[i]);
		s->fds[i] = open_pinned(path, namespace_flags[i]);
		s->pinned[i] = s->fds[i] >= 0;
		if (s->fds[i] == -ENOENT)
			r = error_set(err, ENOENT, "sandbox %s: no %s namespace is pinned at %s", spec->name,
			              namespace_names[i], path);
		else if (s->fds[i] < 0)
			r = error_set_errno(err, -s->fds[i], "sandbox %s: open %s", spec->name, path);
	}
	if (r < 0) {
		native_sandbox_release(s);
		return r;
	}
	*ret_sandbox = s;
	return 0;
}

/* Makes the sandbox's namespaces in the calling thread and returns it to its own: keeps the
 * old ones open, unshares, sets the hostname and brings up loopback, keeps descriptors of
 * the new ones in fds and joins the old ones again. No process is forked for it (a fork
 * costs more than the namespaces). Namespaces are per thread, so other threads of the
 * caller never see the new ones. */
static int make_namespaces(const struct sandbox_spec *spec, int flags, int fds[NS_COUNT], struct error *err)
{
	int old[NS_COUNT];
	int r = 0;
	for (int i = 0; i < NS_COUNT; i++) {
		old[i] = -1;
		if (r < 0 || !(flags & namespace_flags[i]))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", namespace_names[i]);
		old[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (old[i] < 0)
			r = error_set_errno(err, errno, "open %s", path);
	}
	if (r == 0 && unshare(flags) < 0)
		r = error_set_errno(err, errno, "creating the namespaces of pod %s", spec->name);
	bool unshared = r == 0;
	if (r == 0 && !spec->host_network) {
		if (sethostname(spec->name, strlen(spec->name)) < 0)
			r = error_set_errno(err, errno, "sethostname %s", spec->name);
		else
			bring_up_loopback();
	}
	for (int i = 0; r == 0 && i < NS_COUNT; i++) {
		if (!(flags & namespace_flags[i]))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", namespace_names[i]);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			r = error_set_errno(err, errno, "open %s", path);
	}
	for (int i = 0; i < NS_COUNT; i++) {
		if (old[i] < 0)
			continue;
		/* Going back cannot fail for root with descriptors of its own namespaces; if it
		 * did, the agent would go on in the pod's network: stop instead. */
		if (unshared && setns(old[i], namespace_flags[i]) < 0)
			abort();
		close(old[i]);
	}
	return r;
}

static int seccomp_compile(struct error *err);

static int native_sandbox_create(const struct sandbox_spec *spec, struct runtime_sandbox **ret_sandbox,
                                 struct error *err)
{
	/* The pod's containers will need the filter: compiled now, once per process. */
	int compiled = seccomp_compile(err);
	if (compiled < 0)
		return compiled;
	struct runtime_sandbox *s = xcalloc(1, sizeof(*s));
	for (int i = 0; i < NS_COUNT; i++)
		s->fds[i] = -1;
	int flags = sandbox_flags(spec);
	if (spec->state_dir) {
		int r = file_mkdir_p(spec->state_dir, 0700, err);
		for (int i = 0; r == 0 && i < NS_COUNT; i++) {
			cleanup_free char *path = xasprintf("%s/%s", spec->state_dir, namespace_names[i]);
			int fd = open_pinned(path, namespace_flags[i]);
			if (fd >= 0) {
				close(fd);
				r = error_set(err, EEXIST,
				              "sandbox %s: a %s namespace is pinned at %s already: adopt it",
				              spec->name, namespace_names[i], path);
			}
		}
		if (r < 0) {
			free(s);
			return r;
		}
		s->state_dir = xstrdup(spec->state_dir);
	}
	int r = make_namespaces(spec, flags, s->fds, err);
	for (int i = 0; r == 0 && s->state_dir && i < NS_COUNT; i++)
		if (s->fds[i] >= 0)
			r = pin_namespace(s, s->fds[i], i, err);
	if (r < 0) {
		native_sandbox_destroy(s);
		return r;
	}
	*ret_sandbox = s;
	return 0;
}

/* --- the container's root ---------------------------------------------------------------- */

/* Creates path (absolute, inside the current root) component by component, never
 * following a symbolic link, so a volume target cannot be redirected out of the root. */
static int make_path_in_root(const char *root, const char *path, bool directory)
{
	int dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	char buf[4096];
	if (strlen(path) >= sizeof(buf)) {
		close(dir);
		return -ENAMETOOLONG;
	}
	strcpy(buf, path);
	char *save = NULL;
	int r = 0;
	for (char *part = strtok_r(buf, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		bool last = save == NULL || *save == '\0';
		if (strcmp(part, "..") == 0 || strcmp(part, ".") == 0) {
			r = -EINVAL;
			break;
		}
		if (last && !directory) {
			int fd = openat(dir, part, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (fd < 0 && errno != EISDIR)
				r = -errno;
			if (fd >= 0)
				close(fd);
			break;
		}
		if (mkdirat(dir, part, 0755) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		int next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			r = errno == ELOOP || errno == ENOTDIR ? -ELOOP : -errno;
			break;
		}
		close(dir);
		dir = next;
	}
	close(dir);
	return r;
}

static void mount_root(int fd, const struct container_spec *spec)
{
	const char *root = spec->rootfs_mountpoint;
	if (spec->layer_count == 0)
		runtime_child_report(fd, "error: no root filesystem"), _exit(127);
	if (spec->layer_count == 1 && (spec->read_only_root || !spec->upper_dir)) {
		if (mount(spec->layers[0], root, NULL, MS_BIND | MS_REC, NULL) < 0)
			runtime_child_fail(fd, "bind the root filesystem");
		return;
	}
	/* The kernel takes mount options of at most a page. */
	char options[4096];
	size_t length = (size_t)snprintf(options, sizeof(options), "lowerdir=");
	for (size_t i = 0; i < spec->layer_count && length < sizeof(options); i++)
		length += (size_t)snprintf(options + length, sizeof(options) - length, "%s%s", i ? ":" : "",
		                           spec->layers[i]);
	if (!spec->read_only_root && spec->upper_dir && spec->upper_in_memory && length < sizeof(options)) {
		/* Mounted in this mount namespace only: it ends with the container. */
		char upper[4096], work[4096];
		snprintf(upper, sizeof(upper), "%s/upper", spec->upper_dir);
		snprintf(work, sizeof(work), "%s/work", spec->upper_dir);
		if (mount("tmpfs", spec->upper_dir, "tmpfs", 0, "mode=755") < 0 || mkdir(upper, 0755) < 0 ||
		    mkdir(work, 0700) < 0 || (mkdir(root, 0700) < 0 && errno != EEXIST))
			runtime_child_fail(fd, "the in-memory writable layer");
		length += (size_t)snprintf(options + length, sizeof(options) - length, ",upperdir=%s,workdir=%s", upper,
		                           work);
	} else if (!spec->read_only_root && spec->upper_dir && length < sizeof(options)) {
		length += (size_t)snprintf(options + length, sizeof(options) - length, ",upperdir=%s,workdir=%s",
		                           spec->upper_dir, spec->work_dir);
	}
	if (length >= sizeof(options))
		runtime_child_report(fd, "error: too many image layers for one overlay mount"), _exit(127);
	if (mount("overlay", root, "overlay", 0, options) < 0)
		runtime_child_fail(fd, "mount the overlay root filesystem");
}

static void mount_dev(int fd, const char *root)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/dev", root);
	if (make_path_in_root(root, "/dev", true) < 0 ||
	    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0)
		runtime_child_fail(fd, "mount /dev");
	/* The tmpfs is new and empty, and only this process sees it: its entries are made
	 * relative to it with nothing to check on the way. */
	int dev = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dev < 0)
		runtime_child_fail(fd, "open /dev");
	static const char *const devices[] = { "null", "zero", "full", "random", "urandom", "tty" };
	for (size_t i = 0; i < ARRAY_SIZE(devices); i++) {
		char source[32];
		snprintf(source, sizeof(source), "/dev/%s", devices[i]);
		snprintf(path, sizeof(path), "%s/dev/%s", root, devices[i]);
		int node = openat(dev, devices[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (node < 0 || close(node) < 0 || mount(source, path, NULL, MS_BIND, NULL) < 0)
			runtime_child_fail(fd, source);
	}
	if (mkdirat(dev, "pts", 0755) < 0 || mkdirat(dev, "shm", 0755) < 0)
		runtime_child_fail(fd, "populate /dev");
	snprintf(path, sizeof(path), "%s/dev/pts", root);
	if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
		runtime_child_fail(fd, "mount /dev/pts");
	snprintf(path, sizeof(path), "%s/dev/shm", root);
	if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
		runtime_child_fail(fd, "mount /dev/shm");
	static const char *const links[][2] = { { "pts/ptmx", "ptmx" },
		                                { "/proc/self/fd", "fd" },
		                                { "/proc/self/fd/0", "stdin" },
		                                { "/proc/self/fd/1", "stdout" },
		                                { "/proc/self/fd/2", "stderr" } };
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][0], dev, links[i][1]) < 0)
			runtime_child_fail(fd, "populate /dev");
	close(dev);
}

static void mount_volumes(int fd, const struct container_spec *spec)
{
	const char *root = spec->rootfs_mountpoint;
	for (size_t i = 0; i < spec->mount_count; i++) {
		const struct runtime_mount *m = &spec->mounts[i];
		struct stat st;
		if (stat(m->source, &st) < 0)
			runtime_child_fail(fd, m->source);
		int r = m->target[0] == '/' ? make_path_in_root(root, m->target, S_ISDIR(st.st_mode)) : -EINVAL;
		if (r < 0) {
			errno = -r;
			runtime_child_report(fd, "error: volume target %s: %s", m->target,
			                     r == -ELOOP ? "a symbolic link is in the way" : strerrordesc_np(-r));
			_exit(127);
		}
		char target[4096];
		snprintf(target, sizeof(target), "%s%s", root, m->target);
		if (mount(m->source, target, NULL, MS_BIND | MS_REC, NULL) < 0)
			runtime_child_fail(fd, m->target);
		if (m->read_only && mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) < 0)
			runtime_child_fail(fd, m->target);
	}
}

/* Paths of /proc and /sys that leak the host or let a container hurt it (the same lists
 * as Podman's defaults). */
static const char *const masked_paths[] = { "/proc/acpi",          "/proc/kcore",      "/proc/keys",
	                                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
	                                    "/proc/sched_debug",   "/proc/scsi",       "/sys/firmware",
	                                    "/sys/dev/block",      "/sys/fs/selinux",  "/proc/interrupts" };
static const char *const read_only_paths[] = { "/proc/asound", "/proc/bus", "/proc/fs",
	                                       "/proc/irq",    "/proc/sys", "/proc/sysrq-trigger" };

static void protect_paths(int fd)
{
	for (size_t i = 0; i < ARRAY_SIZE(masked_paths); i++) {
		struct stat st;
		if (stat(masked_paths[i], &st) < 0)
			continue;
		int r = S_ISDIR(st.st_mode) ? mount("tmpfs", masked_paths[i], "tmpfs", MS_RDONLY, "size=0")
		                            : mount("/dev/null", masked_paths[i], NULL, MS_BIND, NULL);
		if (r < 0)
			runtime_child_fail(fd, masked_paths[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(read_only_paths); i++) {
		if (access(read_only_paths[i], F_OK) < 0)
			continue;
		if (mount(read_only_paths[i], read_only_paths[i], NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount(NULL, read_only_paths[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) < 0)
			runtime_child_fail(fd, read_only_paths[i]);
	}
}

static void assemble_root(int fd, const struct container_spec *spec, bool own_network)
{
	const char *root = spec->rootfs_mountpoint;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		runtime_child_fail(fd, "make mounts private");
	mount_root(fd, spec);
	char path[4096];
	snprintf(path, sizeof(path), "%s/proc", root);
	if (make_path_in_root(root, "/proc", true) < 0 ||
	    mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		runtime_child_fail(fd, "mount /proc");
	mount_dev(fd, root);
	snprintf(path, sizeof(path), "%s/sys", root);
	if (make_path_in_root(root, "/sys", true) < 0)
		runtime_child_fail(fd, "create /sys");
	if (own_network) {
		if (mount("sysfs", path, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			runtime_child_fail(fd, "mount /sys");
	} else if (mount("/sys", path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	           mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) < 0) {
		runtime_child_fail(fd, "bind /sys");
	}
	mount_volumes(fd, spec);
	/* pivot_root with new and old root the same directory, then detach the old one (as
	 * crun does): no directory of the host stays reachable. */
	if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		runtime_child_fail(fd, "pivot_root");
	protect_paths(fd);
	if (spec->read_only_root && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		runtime_child_fail(fd, "make the root read-only");
}

/* --- privileges --------------------------------------------------------------------------- */

/* Kernel modules, mounts, keyrings, tracing, BPF, rebooting, swap, clocks and namespaces:
 * what a container has no business doing (Docker's and Podman's default profiles refuse
 * these too). */
static const char *const denied_syscalls[] = {
	"init_module",
	"finit_module",
	"delete_module",
	"mount",
	"umount2",
	"umount",
	"pivot_root",
	"keyctl",
	"add_key",
	"request_key",
	"ptrace",
	"bpf",
	"reboot",
	"swapon",
	"swapoff",
	"kexec_load",
	"kexec_file_load",
	"open_by_handle_at",
	"name_to_handle_at",
	"unshare",
	"setns",
	"perf_event_open",
	"userfaultfd",
	"acct",
	"quotactl",
	"lookup_dcookie",
	"iopl",
	"ioperm",
	"clock_settime",
	"clock_adjtime",
	"settimeofday",
	"adjtimex",
	"syslog",
	"process_vm_readv",
	"process_vm_writev",
	"kcmp",
	"fsopen",
	"fsconfig",
	"fsmount",
	"move_mount",
	"open_tree",
	"fspick",
	"mount_setattr",
	"nfsservctl",
	"vhangup",
	"uselib",
	"_sysctl",
	"stime",
	"create_module",
	"get_kernel_syms",
	"query_module",
};

/* The filter as BPF, compiled once per process by libseccomp and kept: every container and
 * exec'd process loads the same program, and compiling it (libseccomp probes the kernel's
 * seccomp API, builds its rule tree, then generates BPF) costs more than loading it. Built by
 * the parent before it forks, so the child only makes one prctl(). */
static struct sock_fprog seccomp_filter;

static int seccomp_compile(struct error *err)
{
	if (seccomp_filter.filter)
		return 0;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return error_set(err, ENOMEM, "building the seccomp filter");
	int r = 0;
	for (size_t i = 0; i < ARRAY_SIZE(denied_syscalls) && r == 0; i++) {
		int nr = seccomp_syscall_resolve_name(denied_syscalls[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a syscall on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	/* clone may not make namespaces; clone3 (whose flags live in memory a filter cannot
	 * read) answers "not implemented", and libc falls back to clone. */
	static const unsigned long namespace_clone_flags[] = { CLONE_NEWNS,    CLONE_NEWUTS, CLONE_NEWIPC,
		                                               CLONE_NEWUSER,  CLONE_NEWPID, CLONE_NEWNET,
		                                               CLONE_NEWCGROUP };
	for (size_t i = 0; i < ARRAY_SIZE(namespace_clone_flags) && r == 0; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
		                     SCMP_A0(SCMP_CMP_MASKED_EQ, namespace_clone_flags[i], namespace_clone_flags[i]));
	int clone3 = seccomp_syscall_resolve_name("clone3");
	if (r == 0 && clone3 != __NR_SCMP_ERROR)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
	size_t size = 0;
	if (r == 0)
		r = seccomp_export_bpf_mem(ctx, NULL, &size);
	struct sock_filter *program = NULL;
	if (r == 0 && (size == 0 || size % sizeof(*program) != 0 || size / sizeof(*program) > BPF_MAXINSNS))
		r = -E2BIG;
	if (r == 0) {
		program = xmalloc(size);
		r = seccomp_export_bpf_mem(ctx, program, &size);
	}
	seccomp_release(ctx);
	if (r < 0) {
		free(program);
		return error_set_errno(err, -r, "building the seccomp filter");
	}
	seccomp_filter.len = (unsigned short)(size / sizeof(*program));
	seccomp_filter.filter = program;
	return 0;
}

/* In the child, after no_new_privs: the filter seccomp_compile() made. */
static int load_seccomp(void)
{
	if (!seccomp_filter.filter)
		return -EINVAL;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &seccomp_filter, 0, 0) < 0 ? -errno : 0;
}

static void drop_privileges(int fd, uid_t uid, gid_t gid, uint64_t caps)
{
	for (int cap = 0; cap <= 63; cap++) {
		if (caps & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL)
			break; /* past the kernel's last capability */
		runtime_child_fail(fd, "drop a capability from the bounding set");
	}
	/* Raw system calls: libc's wrappers would broadcast the change to every thread it knows
	 * of, and this process may share its memory (and so libc's thread list) with the
	 * caller (see native_create). */
	if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
	    syscall(SYS_setresuid, uid, uid, uid) < 0)
		runtime_child_fail(fd, "set the user and group");
	/* A non-root user keeps no capabilities, as in Kubernetes. */
	if (uid != 0)
		caps = 0;
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	for (int i = 0; i < 2; i++)
		data[i].effective = data[i].permitted = data[i].inheritable = (uint32_t)(caps >> (32 * i));
	if (syscall(SYS_capset, &header, data) < 0)
		runtime_child_fail(fd, "set capabilities");
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		runtime_child_fail(fd, "set no_new_privs");
}

/* --- the container's process --------------------------------------------------------------- */

/* The last steps of the container's process and of every exec'd one, inside the root. */
static void __attribute__((noreturn)) confine_and_exec(int fd, const char *cwd, uid_t uid, gid_t gid, uint64_t caps,
                                                       const char *const *argv, const char *const *env)
{
	if (cwd && cwd[0] != '/')
		runtime_child_report(fd, "error: working directory %s is not absolute", cwd), _exit(127);
	if (chdir(cwd ? cwd : "/") < 0)
		runtime_child_fail(fd, cwd);
	/* After pivot_root every reachable path is inside the root; a working directory that is
	 * not (an inherited descriptor's directory) shows as "(unreachable)". */
	char path[4096];
	if (!getcwd(path, sizeof(path)) || path[0] != '/')
		runtime_child_report(fd, "error: working directory is outside the container"), _exit(127);
	drop_privileges(fd, uid, gid, caps);
	/* Every descriptor but 0-2 and our socket (close-on-exec) goes now. */
	runtime_child_close_descriptors(fd);
	if (load_seccomp() < 0)
		runtime_child_report(fd, "error: cannot load the seccomp filter"), _exit(127);
	runtime_child_exec_argv(fd, argv, env, "no such file in the container's PATH");
}

/* What the container's process works from. It shares the caller's memory until it execs
 * (native_create): the spec is read only during create, while the caller waits in it; what
 * is needed at start (the command, environment, working directory, user) is a copy owned
 * here, since the caller's spec need not outlive create. */
struct child_args {
	const struct container_spec *spec;
	const struct runtime_sandbox *sandbox;
	int sync_fd;
	char **argv;
	char **env;
	char *cwd;
	uid_t uid;
	gid_t gid;
	uint64_t capabilities;
	char *stack;
	bool placed; /* cloned into its cgroup: enter is not run */
};

/* One stack is kept for the next container once its child has exec'd: an unmap would make
 * the kernel flush the other CPUs' TLBs, and a new mapping costs a page fault per page the
 * child touches. Used from the caller's one thread, as the rest of create. */
static char *spare_stack;

static char *stack_get(void)
{
	char *stack = spare_stack;
	spare_stack = NULL;
	if (stack)
		return stack;
	stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	return stack == MAP_FAILED ? NULL : stack;
}

static void child_args_free(void *data)
{
	struct child_args *a = data;
	if (!a)
		return;
	if (a->stack && !spare_stack)
		spare_stack = a->stack;
	else if (a->stack)
		munmap(a->stack, CHILD_STACK_SIZE);
	runtime_strv_free(a->argv);
	runtime_strv_free(a->env);
	free(a->cwd);
	free(a);
}

static int child_main(void *data)
{
	struct child_args *a = data;
	const struct container_spec *spec = a->spec;
	int fd = a->sync_fd;
	runtime_child_reset_signals();
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (runtime_wait_byte(fd, 'A') < 0)
		_exit(127);
	if (!a->placed && spec->enter && spec->enter(spec->enter_data) < 0)
		runtime_child_fail(fd, "enter the container's cgroups");
	for (int i = 0; i < NS_COUNT; i++)
		if (a->sandbox && a->sandbox->fds[i] >= 0 && setns(a->sandbox->fds[i], namespace_flags[i]) < 0)
			runtime_child_fail(fd, "join the pod's namespaces");
	if (unshare(CLONE_NEWCGROUP) < 0 && errno != EINVAL)
		runtime_child_fail(fd, "new cgroup namespace");
	runtime_child_set_output(fd, spec);
	assemble_root(fd, spec, a->sandbox && a->sandbox->fds[NS_NET] >= 0);
	/* Standard input is the container's own /dev/null, opened inside its root. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0)
		runtime_child_fail(fd, "set up standard input");
	close(null);
	runtime_child_report(fd, "ok");
	/* The caller's spec may be gone from here on: only a's copies are used. */
	if (runtime_wait_byte(fd, 'S') < 0)
		_exit(127);

	/* From here on the container outlives its creator (an agent restart adopts it). */
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	confine_and_exec(fd, a->cwd, a->uid, a->gid, a->capabilities, (const char *const *)a->argv,
	                 (const char *const *)a->env);
}

/* The container's process is cloned with CLONE_VM: it shares the caller's memory until it
 * execs, as posix_spawn's vfork does. No page table is copied and neither process takes a
 * copy-on-write fault for every page it then writes, which is much of what a fork costs on
 * a small board (and far more on a paravirtualised machine). It is safe because the two
 * never run at once on shared data: the caller waits on the socket from clone until "ok"
 * and from "start" until the exec closes the socket, and in between the child waits. The
 * child runs on a stack of its own, allocates nothing (libc's allocator state is the
 * caller's), makes the credential system calls raw (libc's wrappers walk the caller's
 * thread list), looks the command up without environ, and has its own descriptor table and
 * signal handlers (no CLONE_FILES, no CLONE_SIGHAND). Its stack and arguments are freed once
 * it has exec'd or exited (runtime_start, runtime_remove). */
static int native_create(struct runtime_sandbox *sandbox, const struct container_spec *spec,
                         struct runtime_container **ret_container, struct error *err)
{
	if (!spec->argv || !spec->argv[0])
		return error_set(err, EINVAL, "container %s: no command to run", spec->name);
	int r = seccomp_compile(err);
	if (r < 0)
		return r;
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		return error_set_errno(err, errno, "socketpair");
	struct child_args *args = xcalloc(1, sizeof(*args));
	args->spec = spec;
	args->sandbox = sandbox;
	args->sync_fd = pair[1];
	args->argv = runtime_strv_copy(spec->argv);
	args->env = runtime_strv_copy(spec->env);
	args->cwd = spec->cwd ? xstrdup(spec->cwd) : NULL;
	args->uid = spec->uid;
	args->gid = spec->gid;
	args->capabilities = (runtime_default_capabilities() | spec->capabilities_add) & ~spec->capabilities_drop;
	args->stack = stack_get();
	if (!args->stack) {
		child_args_free(args);
		close(pair[0]);
		close(pair[1]);
		return error_set_errno(err, errno, "a stack for the container %s", spec->name);
	}
	/* On cgroup v2 the process starts in its cgroup (see cgroups_directory_open); that clone
	 * is a fork, as clone3 cannot run a function on a new stack without assembly. */
	pid_t pid = -1;
	int cgroup_fd = spec->cgroup ? cgroups_directory_open(spec->cgroup) : -EOPNOTSUPP;
	if (cgroup_fd >= 0) {
		pid = runtime_clone_into_cgroup(cgroup_fd, CLONE_NEWNS | CLONE_NEWPID);
		if (pid == 0) {
			args->placed = true;
			child_main(args);
			_exit(127); /* not reached: child_main execs or exits */
		}
		int saved = errno;
		close(cgroup_fd);
		errno = saved;
		if (pid > 0)
			args->placed = true;
	}
	/* Elsewhere (v1, or a kernel before 5.7) the child enters its cgroups itself. */
	if (pid < 0 && (cgroup_fd < 0 || errno == ENOSYS || errno == E2BIG || errno == EINVAL))
		pid = clone(child_main, args->stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_NEWNS | CLONE_NEWPID | SIGCHLD,
		            args);
	int saved = errno;
	close(pair[1]);
	if (pid < 0) {
		child_args_free(args);
		close(pair[0]);
		return error_set_errno(err, saved, "clone the container %s", spec->name);
	}
	r = runtime_finish_create("native", pid, pair[0], args->placed, spec, ret_container, err);
	if (r < 0) {
		child_args_free(args); /* the child is reaped */
		return r;
	}
	(*ret_container)->child_memory = args;
	(*ret_container)->child_memory_free = child_args_free;
	return 0;
}

/* --- exec ---------------------------------------------------------------------------------- */

/* The exec'd process: a child of the caller (CLONE_PARENT), already in the container's
 * namespaces and cgroup; its pid is known to the caller before it goes on. */
static void __attribute__((noreturn))
exec_child(int fd, const struct runtime_container *c, const struct exec_spec *spec)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* a probe does not outlive its caller */
	if (runtime_wait_byte(fd, 'S') < 0)
		_exit(127);
	runtime_child_set_output_fds(fd, spec->stdout_fd, spec->stderr_fd);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0)
		runtime_child_fail(fd, "set up standard input");
	close(null);
	confine_and_exec(fd, spec->cwd, c->uid, c->gid, c->capabilities, spec->argv, runtime_exec_env(c, spec));
}

/* The helper between the caller and the exec'd process: joins the container's cgroup and
 * namespaces (a PID namespace is entered only by children), forks the process as the
 * caller's child, says its pid and ends. */
static void __attribute__((noreturn))
exec_helper(int fd, const struct runtime_container *c, const struct exec_spec *spec, const struct cgroups_procs *procs)
{
	runtime_child_reset_signals();
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (procs && cgroups_procs_enter(procs) < 0)
		runtime_child_fail(fd, "enter the container's cgroups");
	if (setns(c->pidfd, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP) <
	    0)
		runtime_child_fail(fd, "join the container's namespaces");
	/* A clone with no new stack returns in both processes, as fork does. */
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		runtime_child_fail(fd, "fork in the container");
	if (pid == 0)
		exec_child(fd, c, spec);
	runtime_child_report(fd, "pid %d", (int)pid);
	_exit(0);
}

static int native_exec(struct runtime_container *c, const struct exec_spec *spec, pid_t *ret_pid, struct error *err)
{
	if (!spec->argv || !spec->argv[0])
		return error_set(err, EINVAL, "exec: no command to run");
	if (!c->started || c->pidfd < 0 || runtime_container_exited(c))
		return error_set(err, ESRCH, "exec \"%s\": the container is not running", spec->argv[0]);
	int r = seccomp_compile(err);
	if (r < 0)
		return r;
	struct cgroups_procs procs = { .count = 0 };
	r = c->cgroup ? cgroups_procs_open(c->cgroup, &procs, err) : 0;
	if (r < 0)
		return r;
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		cgroups_procs_close(&procs);
		return error_set_errno(err, errno, "socketpair");
	}
	pid_t helper = fork();
	if (helper == 0) {
		close(pair[0]);
		exec_helper(pair[1], c, spec, c->cgroup ? &procs : NULL);
	}
	int saved = errno;
	cgroups_procs_close(&procs);
	close(pair[1]);
	if (helper < 0) {
		close(pair[0]);
		return error_set_errno(err, saved, "fork for exec");
	}
	return runtime_finish_exec(helper, 0, pair[0], "exec in the container", ret_pid, err);
}

static int native_adopt(struct runtime_sandbox *sandbox, const char *state, struct cgroups_group *cgroup,
                        struct runtime_container **ret_container, struct error *err)
{
	return runtime_adopt("native", sandbox, state, cgroup, ret_container, err);
}

const struct runtime_ops runtime_native = {
	.name = "native",
	.sandbox_create = native_sandbox_create,
	.sandbox_destroy = native_sandbox_destroy,
	.create = native_create,
	.start = runtime_start,
	.signal = runtime_signal,
	.wait = runtime_wait,
	.stats = runtime_stats,
	.exec = native_exec,
	.remove = runtime_remove,
	.sandbox_adopt = native_sandbox_adopt,
	.sandbox_release = native_sandbox_release,
	.adopt = native_adopt,
};
