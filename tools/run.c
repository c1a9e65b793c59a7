/* `bramble run`: one container in the foreground, like `crun run` or `docker run`, through
 * the native runtime driver. Returns the container's exit code (128 + signal when killed).
 *
 * State lives in /run/bramble/run/<name>: the root's mountpoint, and the writable layer
 * (upper, work) unless --read-only. --rm removes it afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/container_log.h"
#include "agent/images.h"
#include "drivers/runtime.h"
#include "platform/cgroups.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/loop.h"
#include "platform/memory.h"
#include "tools/verbs.h"

#define RUN_MAX_ENV 256

static void usage(FILE *out)
{
	fputs("usage: bramble run [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
	      "       bramble run [OPTIONS] --rootfs DIR [--] COMMAND [ARG...]\n"
	      "       bramble run --driver process [OPTIONS] [--] COMMAND [ARG...]\n"
	      "\n"
	      "Runs one container in the foreground and exits with its exit code.\n"
	      "  IMAGE               an imported image (bramble image import): its layers, and its\n"
	      "                      Entrypoint, Cmd, Env, WorkingDir and User as defaults\n"
	      "  --data-dir DIR      where the images are (default /var/lib/bramble)\n"
	      "  --rootfs DIR        a root filesystem directory instead of an image\n"
	      "  --driver NAME       native (a container, the default) or process (a host process\n"
	      "                      with limits only)\n"
	      "  --rm                remove the container's writable layer afterwards\n"
	      "  --name NAME         container and host name (default: run-<random>)\n"
	      "  --read-only         no writable layer: the root is mounted read-only\n"
	      "  -e, --env K=V       set an environment variable (repeatable)\n"
	      "  -w, --workdir DIR   working directory inside the container\n"
	      "  -u, --user UID[:GID]\n"
	      "  --cap-add CAP, --cap-drop CAP   change the default capabilities (repeatable)\n"
	      "  --net host          use the board's network instead of a new namespace\n"
	      "  -v, --volume SRC:DST[:ro]       bind a host path into the container (repeatable)\n"
	      "  --memory SIZE       memory limit (K, M, G suffixes); exceeding it is OOMKilled\n"
	      "  --cpus N            cpu limit in cores (0.5 = half a core)\n"
	      "  --pids-limit N      most processes at once\n"
	      "  --cgroup-parent NAME  the cgroup the container's goes under (default bramble)\n"
	      "  --log-file PATH     write stdout and stderr there (CRI format) instead of here\n"
	      "  --log-max-size SIZE rotate the log file at this size (default 1M)\n"
	      "  --log-max-files N   log files kept, the current one included (default 2)\n",
	      out);
}

/* An image's configuration as defaults, as docker run takes it: the command is the
 * Entrypoint followed by the arguments given (or the image's Cmd); -e overrides the image's
 * Env; -w and -u override WorkingDir and User. Layers become overlayfs' order, top first. */
static int apply_image(const struct images_image *image, char **args, const char *const *env, const char **workdir,
                       bool user_given, uid_t *uid, gid_t *gid, const char ***ret_layers, size_t *ret_layer_count,
                       const char *const **ret_command, const char *const **ret_env, struct error *err)
{
	size_t n = 0, count = 0;
	for (char **p = image->entrypoint; p && *p; p++)
		count++;
	char **tail = args && *args ? args : image->cmd;
	for (char **p = tail; p && *p; p++)
		count++;
	if (count == 0)
		return error_set(err, EINVAL, "the image has no Entrypoint or Cmd: give a command after the image");
	const char **command = xcalloc(count + 1, sizeof(*command));
	for (char **p = image->entrypoint; p && *p; p++)
		command[n++] = *p;
	for (char **p = tail; p && *p; p++)
		command[n++] = *p;

	size_t env_count = 0, given = 0;
	for (char **p = image->env; p && *p; p++)
		env_count++;
	for (const char *const *p = env; *p; p++)
		given++;
	const char **merged = xcalloc(env_count + given + 1, sizeof(*merged));
	size_t m = 0;
	for (char **p = image->env; p && *p; p++)
		merged[m++] = *p;
	/* env[0] is the default PATH: it yields to the image's own. */
	bool image_has_path = false;
	for (size_t i = 0; i < m; i++)
		image_has_path = image_has_path || strncmp(merged[i], "PATH=", 5) == 0;
	for (const char *const *p = image_has_path ? env + 1 : env; *p; p++) {
		size_t key = strcspn(*p, "=") + 1;
		size_t i;
		for (i = 0; i < m && strncmp(merged[i], *p, key) != 0; i++)
			;
		merged[i == m ? m++ : i] = *p; /* PATH and -e replace the image's value */
	}
	if (!*workdir && image->working_dir && image->working_dir[0])
		*workdir = image->working_dir;
	if (!user_given && image->user && image->user[0]) {
		char *end;
		*uid = (uid_t)strtoul(image->user, &end, 10);
		*gid = *end == ':' ? (gid_t)strtoul(end + 1, &end, 10) : *uid;
		if (end == image->user || *end != '\0') {
			free(command);
			free(merged);
			return error_set(err, ENOTSUP, "the image's User \"%s\" is a name: give -u UID[:GID]",
			                 image->user);
		}
	}
	const char **layers = xcalloc(image->layer_count + 1, sizeof(*layers));
	for (size_t i = 0; i < image->layer_count; i++)
		layers[i] = image->layers[image->layer_count - 1 - i];
	*ret_layers = layers;
	*ret_layer_count = image->layer_count;
	*ret_command = command;
	*ret_env = merged;
	return 0;
}

static int enter_cgroup(void *data)
{
	return cgroups_procs_enter(data);
}

struct exit_watch {
	bool done;
	int status;
};

static void on_container_exit(struct loop *loop, pid_t pid, int status, void *data)
{
	(void)loop;
	(void)pid;
	struct exit_watch *w = data;
	w->done = true;
	w->status = status;
}

static pid_t forwarded_pid;

static void forward_signal(int signo)
{
	if (forwarded_pid > 0)
		kill(forwarded_pid, signo);
}

int run_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "rootfs", required_argument, NULL, 'r' },
		{ "rm", no_argument, NULL, 'R' },
		{ "name", required_argument, NULL, 'n' },
		{ "read-only", no_argument, NULL, 'o' },
		{ "env", required_argument, NULL, 'e' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "cap-add", required_argument, NULL, 'A' },
		{ "cap-drop", required_argument, NULL, 'D' },
		{ "net", required_argument, NULL, 'N' },
		{ "volume", required_argument, NULL, 'v' },
		{ "driver", required_argument, NULL, 'd' },
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "pids-limit", required_argument, NULL, 'p' },
		{ "cgroup-parent", required_argument, NULL, 'g' },
		{ "data-dir", required_argument, NULL, 'P' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "log-max-size", required_argument, NULL, 'M' },
		{ "log-max-files", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *rootfs = NULL, *name = NULL, *workdir = NULL;
	const struct runtime_ops *driver = &runtime_native;
	const char *cgroup_parent = "bramble";
	const char *data_dir = "/var/lib/bramble";
	const char *log_file = NULL;
	size_t log_max_bytes = 0;
	unsigned log_max_files = 0;
	bool user_given = false;
	struct cgroups_limits limits = { 0 };
	bool remove = false, read_only = false, host_network = false;
	const char *env[RUN_MAX_ENV + 2] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
	size_t env_count = 1;
	struct runtime_mount mounts[RUNTIME_MAX_MOUNTS];
	size_t mount_count = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	uint64_t cap_add = 0, cap_drop = 0;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+e:w:u:v:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'r':
			rootfs = optarg;
			break;
		case 'R':
			remove = true;
			break;
		case 'n':
			name = optarg;
			break;
		case 'o':
			read_only = true;
			break;
		case 'e':
			if (!strchr(optarg, '=') || env_count == RUN_MAX_ENV) {
				fprintf(stderr, "bramble run: --env %s: expected NAME=value (at most %d)\n", optarg,
				        RUN_MAX_ENV);
				return 2;
			}
			env[env_count++] = optarg;
			break;
		case 'w':
			workdir = optarg;
			break;
		case 'u': {
			char *end;
			uid = (uid_t)strtoul(optarg, &end, 10);
			gid = *end == ':' ? (gid_t)strtoul(end + 1, &end, 10) : uid;
			user_given = true;
			if (*end != '\0') {
				fprintf(stderr, "bramble run: --user %s: expected UID or UID:GID\n", optarg);
				return 2;
			}
			break;
		}
		case 'A':
		case 'D': {
			int cap = runtime_capability_from_name(optarg);
			if (cap < 0) {
				fprintf(stderr, "bramble run: unknown capability %s\n", optarg);
				return 2;
			}
			*(opt == 'A' ? &cap_add : &cap_drop) |= 1ull << cap;
			break;
		}
		case 'N':
			if (strcmp(optarg, "host") != 0) {
				fprintf(stderr, "bramble run: --net takes only 'host'\n");
				return 2;
			}
			host_network = true;
			break;
		case 'v': {
			char *copy = xstrdup(optarg); /* lives until exit */
			char *target = strchr(copy, ':');
			if (!target || mount_count == RUNTIME_MAX_MOUNTS) {
				fprintf(stderr, "bramble run: --volume %s: expected SOURCE:TARGET[:ro]\n", optarg);
				return 2;
			}
			*target++ = '\0';
			char *mode = strchr(target, ':');
			if (mode)
				*mode++ = '\0';
			mounts[mount_count++] = (struct runtime_mount){ copy, target, mode && strcmp(mode, "ro") == 0 };
			break;
		}
		case 'd':
			driver = runtime_by_name(optarg);
			if (!driver) {
				fprintf(stderr, "bramble run: unknown driver %s (native, process)\n", optarg);
				return 2;
			}
			break;
		case 'm': {
			char *end;
			double v = strtod(optarg, &end);
			double unit = *end == 'K' || *end == 'k'   ? 1024.0
			              : *end == 'M' || *end == 'm' ? 1024.0 * 1024
			              : *end == 'G' || *end == 'g' ? 1024.0 * 1024 * 1024
			                                           : 1.0;
			if (unit > 1.0)
				end++;
			if (*end != '\0' || v <= 0) {
				fprintf(stderr, "bramble run: --memory %s: expected a size such as 64M\n", optarg);
				return 2;
			}
			limits.memory_limit_bytes = (uint64_t)(v * unit);
			break;
		}
		case 'c': {
			char *end;
			double v = strtod(optarg, &end);
			if (*end != '\0' || v <= 0 || v > 1024) {
				fprintf(stderr, "bramble run: --cpus %s: expected a number of cores such as 0.5\n",
				        optarg);
				return 2;
			}
			limits.cpu_limit_millicores = (uint32_t)(v * 1000 + 0.5);
			limits.cpu_request_millicores = limits.cpu_limit_millicores;
			break;
		}
		case 'p':
			limits.pids_limit = (uint32_t)strtoul(optarg, NULL, 10);
			if (limits.pids_limit == 0) {
				fprintf(stderr, "bramble run: --pids-limit %s: expected a positive number\n", optarg);
				return 2;
			}
			break;
		case 'g':
			cgroup_parent = optarg;
			break;
		case 'P':
			data_dir = optarg;
			break;
		case 'L':
			log_file = optarg;
			break;
		case 'M': {
			char *end;
			unsigned long long v = strtoull(optarg, &end, 10);
			v *= *end == 'K' || *end == 'k' ? 1024ull : *end == 'M' || *end == 'm' ? 1048576ull : 1ull;
			if (v < 1024) {
				fprintf(stderr, "bramble run: --log-max-size %s: at least 1K\n", optarg);
				return 2;
			}
			log_max_bytes = (size_t)v;
			break;
		}
		case 'F':
			log_max_files = (unsigned)strtoul(optarg, NULL, 10);
			if (log_max_files < 1 || log_max_files > 100) {
				fprintf(stderr, "bramble run: --log-max-files %s: 1 to 100\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	bool native = driver == &runtime_native;
	const char *image_reference = NULL;
	if (native && !rootfs && optind < argc)
		image_reference = argv[optind++];
	if ((native && !rootfs && !image_reference) || (!image_reference && optind >= argc)) {
		fprintf(stderr, "bramble run: %s\n",
		        native && !rootfs && !image_reference ? "an IMAGE or --rootfs DIR is required"
		                                              : "no command given");
		usage(stderr);
		return 2;
	}
	char generated[32];
	if (!name) {
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)getpid();
		snprintf(generated, sizeof(generated), "run-%08x", r);
		name = generated;
	}
	struct error err = { 0 };
	cleanup_free char *state = xasprintf("/run/bramble/run/%s", name);
	cleanup_free char *mountpoint = xasprintf("%s/rootfs", state);
	cleanup_free char *upper = xasprintf("%s/upper", state);
	cleanup_free char *work = xasprintf("%s/work", state);
	struct runtime_sandbox *sandbox = NULL;
	struct runtime_container *container = NULL;
	struct cgroups *cgroups = NULL;
	struct cgroups_group *pod = NULL, *group = NULL;
	struct cgroups_procs procs = { .count = 0 };
	struct images_store images = { 0 };
	struct images_image image = { 0 };
	struct container_log *log = NULL;
	struct loop *loop = NULL;
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
	const char *single_layer[] = { rootfs };
	const char **layers = single_layer;
	size_t layer_count = rootfs ? 1 : 0;
	const char *const *command = (const char *const *)argv + optind;
	const char *const *environment = env;
	int exit_code = 125, r;
	if (access(state, F_OK) == 0) {
		fprintf(stderr, "bramble run: a container named %s exists (%s)\n", name, state);
		return 125;
	}
	if ((r = file_mkdir_p(mountpoint, 0700, &err)) < 0 || (r = file_mkdir_p(upper, 0755, &err)) < 0 ||
	    (r = file_mkdir_p(work, 0700, &err)) < 0)
		goto out;
	/* One cgroup for the run (as for a pod) with the container's under it, like the kubelet. */
	if ((r = cgroups_open(cgroup_parent, &cgroups, &err)) < 0 ||
	    (r = cgroups_pod_create(cgroups, name, &(struct cgroups_limits){ 0 }, &pod, &err)) < 0 ||
	    (r = cgroups_container_create(pod, "main", &limits, &group, &err)) < 0 ||
	    (r = cgroups_procs_open(group, &procs, &err)) < 0)
		goto out;
	if (image_reference) {
		cleanup_free char *store_dir = xasprintf("%s/images", data_dir);
		if ((r = images_open(&images, store_dir, 0, NULL, NULL, &err)) < 0 ||
		    (r = images_resolve(&images, image_reference, &image, &err)) < 0 ||
		    (r = apply_image(&image, argv + optind, env, &workdir, user_given, &uid, &gid, &layers,
		                     &layer_count, &command, &environment, &err)) < 0)
			goto out;
	}
	/* A foreground run is never adopted after a restart: its namespaces need no pinning. */
	struct sandbox_spec sandbox_spec = { name, host_network, NULL };
	if ((r = driver->sandbox_create(&sandbox_spec, &sandbox, &err)) < 0)
		goto out;
	struct container_spec spec = {
		.name = name,
		.layers = layers,
		.layer_count = layer_count,
		.upper_dir = read_only ? NULL : upper,
		.work_dir = work,
		.read_only_root = read_only,
		.rootfs_mountpoint = mountpoint,
		.argv = command,
		.env = environment,
		.cwd = workdir,
		.uid = uid,
		.gid = gid,
		.capabilities_add = cap_add,
		.capabilities_drop = cap_drop,
		.mounts = mounts,
		.mount_count = mount_count,
		.stdout_fd = STDOUT_FILENO,
		.stderr_fd = STDERR_FILENO,
		.enter = enter_cgroup,
		.enter_data = &procs,
		.cgroup = group,
	};
	if (log_file) {
		if ((r = container_log_open(log_file, log_max_bytes, log_max_files, &log, &err)) < 0)
			goto out;
		if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
			r = error_set_errno(&err, errno, "pipes for the container's output");
			goto out;
		}
		spec.stdout_fd = out_pipe[1];
		spec.stderr_fd = err_pipe[1];
	}
	r = driver->create(sandbox, &spec, &container, &err);
	cgroups_procs_close(&procs); /* the container has entered, or failed to */
	/* The container holds its own copies of the write ends: ours must go for EOF to come. */
	if (out_pipe[1] >= 0)
		close(out_pipe[1]), out_pipe[1] = -1;
	if (err_pipe[1] >= 0)
		close(err_pipe[1]), err_pipe[1] = -1;
	if (r < 0)
		goto out;
	forwarded_pid = runtime_container_pid(container);
	signal(SIGINT, forward_signal);
	signal(SIGTERM, forward_signal);
	bool started = (r = driver->start(container, &err)) == 0;
	if (!started)
		driver->signal(container, SIGKILL);
	int status = 0;
	if (log) {
		/* Copy the output into the log until both streams end and the container exits. */
		int open_streams = 2;
		struct exit_watch exited = { false, 0 };
		if ((r = loop_new(&loop)) < 0 ||
		    (r = container_log_pump(loop, log, "stdout", out_pipe[0], &open_streams, &err)) < 0 ||
		    (out_pipe[0] = -1, r = container_log_pump(loop, log, "stderr", err_pipe[0], &open_streams, &err)) <
		            0 ||
		    (err_pipe[0] = -1, r = loop_watch_child(loop, forwarded_pid, on_container_exit, &exited)) < 0) {
			if (!err.message[0])
				error_set_errno(&err, -r, "watch the container");
			driver->signal(container, SIGKILL);
			while (waitpid(forwarded_pid, &status, 0) < 0 && errno == EINTR)
				;
			goto out;
		}
		while (open_streams > 0 || !exited.done)
			if (loop_run_once(loop, -1) < 0)
				break;
		status = exited.status;
	} else {
		driver->wait(container, &status);
	}
	/* As docker run: the command's own code, 128 + signal, or 127 when it could not run. */
	exit_code = started ? (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) : 127;
	struct cgroups_usage used;
	if (driver->stats(container, &used, &err) == 0 && used.oom_kills > 0)
		fprintf(stderr, "bramble run: OOMKilled: the container exceeded its memory limit of %llu bytes\n",
		        (unsigned long long)limits.memory_limit_bytes);
out:
	if (r < 0)
		fprintf(stderr, "bramble run: %s\n", err.message);
	driver->remove(container);
	driver->sandbox_destroy(sandbox);
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
	}
	container_log_close(log);
	loop_free(loop);
	struct error cleanup_err;
	if (pod && cgroups_remove(pod, CGROUPS_REMOVE_KILL, &cleanup_err) < 0)
		fprintf(stderr, "bramble run: %s\n", cleanup_err.message);
	cgroups_procs_close(&procs);
	cgroups_group_free(group);
	cgroups_group_free(pod);
	cgroups_close(cgroups);
	if (image_reference) {
		if (layers != single_layer)
			free(layers);
		if (command != (const char *const *)argv + optind)
			free((void *)command);
		if (environment != env)
			free((void *)environment);
		images_image_free(&image);
		if (images.dir)
			images_close(&images);
	}
	if (remove || r < 0)
		file_remove_tree(state);
	return exit_code;
}
