/* `bramble run`: one container in the foreground, like `crun run` or `docker run`, through
 * the native runtime driver. Returns the container's exit code (128 + signal when killed).
 * `bramble run --detach` leaves it running instead, and `bramble container ls|exec|kill|rm`
 * reach it from later processes by adopting it (drivers/runtime.h), as the agent adopts its
 * pods' containers after a restart.
 *
 * State lives in /run/bramble/run/<name>: the root's mountpoint, and the writable layer
 * (upper, work) unless --read-only. A --rm container has no state directory: its root and
 * writable layer are in a tmpfs it mounts, in its own mount namespace, on the shared empty
 * directory /run/bramble/run/.rm (upper_in_memory), so nothing of it is ever on disk; its
 * name is reserved by its pod cgroup. A detached container also
 * has run.json (its driver, cgroup parent, network mode, environment and the runtime's
 * state) and ns/, where its sandbox's namespaces are pinned; its cgroup
 * <parent>/pod-<name>/main stays until `bramble container rm`.
 *
 *   run --detach --> running --(exits, or container kill)--> exited --(container rm)--> gone
 *                       \------------------(container rm -f)-------------------------/
 */
#include <dirent.h>
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

#include <cjson/cJSON.h>

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
	      "  --rm                throw the container's writes away: its writable layer is\n"
	      "                      kept in memory (counted in its memory limit) and goes with it\n"
	      "  -d, --detach        leave the container running and print its name (output goes\n"
	      "                      to /dev/null); see bramble container\n"
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

/* The run's cgroups: one for the run (as for a pod) with the container's under it, like the
 * kubelet. (Making them on a helper thread while the image is resolved and the sandbox made
 * was tried: on a loaded machine the extra wake-up cost more than the overlap saved.) */
struct cgroup_setup {
	const char *parent;
	const char *name;
	const struct cgroups_limits *limits;
	struct cgroups *cgroups;
	struct cgroups_group *pod, *group;
	struct cgroups_procs procs;
	struct error err;
	int r;
};

static void cgroup_setup_run(struct cgroup_setup *s)
{
	struct cgroups_group *existing = NULL;
	if ((s->r = cgroups_open(s->parent, &s->cgroups, &s->err)) < 0)
		return;
	/* The name is taken while its pod cgroup exists (a --rm container has no state
	 * directory to say so). */
	if (cgroups_pod_open(s->cgroups, s->name, &existing, NULL) == 0) {
		s->r = error_set(&s->err, EEXIST, "a container named %s exists (cgroup %s)", s->name,
		                 cgroups_group_name(existing));
		cgroups_group_free(existing);
		return;
	}
	/* One cgroup for the run (as for a pod) with the container's under it, like the kubelet. */
	if ((s->r = cgroups_pod_create(s->cgroups, s->name, &(struct cgroups_limits){ 0 }, &s->pod, &s->err)) < 0 ||
	    (s->r = cgroups_container_create(s->pod, "main", s->limits, &s->group, &s->err)) < 0)
		return;
	s->r = cgroups_procs_open(s->group, &s->procs, &s->err);
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

#define RUN_STATE_DIR "/run/bramble/run"
#define RUN_FILE_MAX (256 * 1024) /* run.json: the runtime's state and up to RUN_MAX_ENV variables */

/* Writes <state>/run.json for the later `bramble container` commands. */
static int save_detached(const char *state, const struct runtime_ops *driver, const char *cgroup_parent,
                         bool host_network, const char *const *env, struct runtime_container *container,
                         struct error *err)
{
	char *runtime_state = NULL;
	int r = runtime_container_state(container, &runtime_state, err);
	if (r < 0)
		return r;
	cJSON *run = cJSON_CreateObject();
	cJSON_AddStringToObject(run, "driver", driver->name);
	cJSON_AddStringToObject(run, "cgroupParent", cgroup_parent);
	cJSON_AddBoolToObject(run, "hostNetwork", host_network);
	cJSON *variables = cJSON_AddArrayToObject(run, "env");
	for (const char *const *p = env; p && *p; p++)
		cJSON_AddItemToArray(variables, cJSON_CreateString(*p));
	cJSON_AddStringToObject(run, "runtime", runtime_state);
	free(runtime_state);
	char *text = cJSON_Print(run);
	cJSON_Delete(run);
	cleanup_free char *path = xasprintf("%s/run.json", state);
	r = file_write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	return r;
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
		{ "detach", no_argument, NULL, 'X' },
		{ "name", required_argument, NULL, 'n' },
		{ "read-only", no_argument, NULL, 'o' },
		{ "env", required_argument, NULL, 'e' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "cap-add", required_argument, NULL, 'A' },
		{ "cap-drop", required_argument, NULL, 'D' },
		{ "net", required_argument, NULL, 'N' },
		{ "volume", required_argument, NULL, 'v' },
		{ "driver", required_argument, NULL, 'V' },
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
	bool remove = false, read_only = false, host_network = false, detach = false;
	const char *env[RUN_MAX_ENV + 2] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
	size_t env_count = 1;
	struct runtime_mount mounts[RUNTIME_MAX_MOUNTS];
	size_t mount_count = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	uint64_t cap_add = 0, cap_drop = 0;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+de:w:u:v:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'd':
		case 'X':
			detach = true;
			break;
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
		case 'V':
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
	if (detach && (remove || log_file)) {
		fprintf(stderr, "bramble run: --detach does not go with %s: nothing stays to %s\n",
		        remove ? "--rm" : "--log-file",
		        remove ? "remove the container when it exits" : "write the log");
		return 2;
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
	cleanup_free char *state = xasprintf(RUN_STATE_DIR "/%s", name);
	cleanup_free char *mountpoint = xasprintf("%s/rootfs", state);
	cleanup_free char *upper = xasprintf("%s/upper", state);
	cleanup_free char *work = xasprintf("%s/work", state);
	cleanup_free char *namespaces = xasprintf("%s/ns", state);
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
	/* A --rm container's writes are thrown away: they stay in memory, in a tmpfs the
	 * container mounts (in its own mount namespace) on a shared empty directory, where its
	 * root is assembled too: nothing is made on disk. */
	bool upper_in_memory = remove && !read_only;
	cleanup_free char *in_memory = xasprintf(RUN_STATE_DIR "/.rm");
	cleanup_free char *in_memory_root = xasprintf("%s/rootfs", in_memory);
	if (upper_in_memory) {
		if ((r = file_mkdir_p(in_memory, 0700, &err)) < 0)
			goto out;
	} else if ((r = file_mkdir_p(mountpoint, 0700, &err)) < 0 || (r = file_mkdir_p(upper, 0755, &err)) < 0 ||
	           (r = file_mkdir_p(work, 0700, &err)) < 0) {
		goto out;
	}
	struct cgroup_setup setup = {
		.parent = cgroup_parent, .name = name, .limits = &limits, .procs = { .count = 0 }
	};
	cgroup_setup_run(&setup);
	/* No image, no sandbox when the cgroups could not be made. */
	r = setup.r;
	if (r >= 0 && image_reference) {
		cleanup_free char *store_dir = xasprintf("%s/images", data_dir);
		if ((r = images_open(&images, store_dir, 0, NULL, NULL, &err)) >= 0 &&
		    (r = images_resolve(&images, image_reference, &image, &err)) >= 0)
			r = apply_image(&image, argv + optind, env, &workdir, user_given, &uid, &gid, &layers,
			                &layer_count, &command, &environment, &err);
	}
	/* A foreground run is never adopted: its namespaces need no pinning. */
	struct sandbox_spec sandbox_spec = { name, host_network, detach ? namespaces : NULL };
	if (r >= 0)
		r = driver->sandbox_create(&sandbox_spec, &sandbox, &err);
	cgroups = setup.cgroups;
	pod = setup.pod;
	group = setup.group;
	procs = setup.procs;
	if (setup.r < 0)
		err = setup.err;
	if (r < 0)
		goto out;
	struct container_spec spec = {
		.name = name,
		.layers = layers,
		.layer_count = layer_count,
		.upper_dir = read_only         ? NULL
		             : upper_in_memory ? in_memory
		                               : upper,
		.work_dir = work,
		.read_only_root = read_only,
		.upper_in_memory = upper_in_memory,
		.rootfs_mountpoint = upper_in_memory ? in_memory_root : mountpoint,
		.argv = command,
		.env = environment,
		.cwd = workdir,
		.uid = uid,
		.gid = gid,
		.capabilities_add = cap_add,
		.capabilities_drop = cap_drop,
		.mounts = mounts,
		.mount_count = mount_count,
		.stdout_fd = detach ? -1 : STDOUT_FILENO,
		.stderr_fd = detach ? -1 : STDERR_FILENO,
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
	if (detach) {
		if ((r = driver->start(container, &err)) < 0) {
			driver->signal(container, SIGKILL);
			int status;
			driver->wait(container, &status);
			exit_code = 127;
			goto out;
		}
		if ((r = save_detached(state, driver, cgroup_parent, host_network, environment, container, &err)) < 0) {
			driver->signal(container, SIGKILL);
			int status;
			driver->wait(container, &status);
			goto out;
		}
		/* Handles go; the container, its pinned namespaces and cgroups stay. */
		driver->remove(container);
		driver->sandbox_release(sandbox);
		container = NULL;
		sandbox = NULL;
		cgroups_group_free(pod);
		pod = NULL;
		printf("%s\n", name);
		exit_code = 0;
		goto out;
	}
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
	/* Only a memory limit can be exceeded (and the usage read costs a start five files). */
	struct cgroups_usage used;
	if (limits.memory_limit_bytes && driver->stats(container, &used, &err) == 0 && used.oom_kills > 0)
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

/* --- bramble container: detached containers, reached from later processes ---------------- */

struct detached {
	char *state; /* RUN_STATE_DIR/<name> */
	const struct runtime_ops *driver;
	struct cgroups *cgroups;
	struct cgroups_group *pod, *group;
	struct runtime_sandbox *sandbox;     /* NULL when its namespaces are gone */
	struct runtime_container *container; /* NULL when its process has exited */
	char **env;
	pid_t pid; /* as recorded */
};

static void detached_close(struct detached *d)
{
	if (d->driver) {
		d->driver->remove(d->container);
		d->driver->sandbox_release(d->sandbox);
	}
	for (char **p = d->env; p && *p; p++)
		free(*p);
	free(d->env);
	cgroups_group_free(d->group);
	cgroups_group_free(d->pod);
	cgroups_close(d->cgroups);
	free(d->state);
	memset(d, 0, sizeof(*d));
}

/* Adopts the detached container name; d->container is NULL when its process has exited. */
static int detached_open(const char *name, struct detached *d, struct error *err)
{
	memset(d, 0, sizeof(*d));
	if (!*name || strchr(name, '/') || name[0] == '.' || strlen(name) > CGROUPS_NAME_MAX)
		return error_set(err, EINVAL, "%s: not a container name", name);
	d->state = xasprintf(RUN_STATE_DIR "/%s", name);
	cleanup_free char *path = xasprintf("%s/run.json", d->state);
	cleanup_free char *text = NULL;
	int r = file_read(path, RUN_FILE_MAX, &text, NULL, err);
	if (r == -ENOENT)
		return error_set(err, ENOENT, "no detached container %s (see bramble container ls)", name);
	if (r < 0)
		return r;
	cJSON *run = cJSON_Parse(text);
	const cJSON *driver = cJSON_GetObjectItemCaseSensitive(run, "driver");
	const cJSON *parent = cJSON_GetObjectItemCaseSensitive(run, "cgroupParent");
	const cJSON *host_network = cJSON_GetObjectItemCaseSensitive(run, "hostNetwork");
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(run, "env");
	const cJSON *runtime = cJSON_GetObjectItemCaseSensitive(run, "runtime");
	if (!cJSON_IsString(driver) || !runtime_by_name(driver->valuestring) || !cJSON_IsString(parent) ||
	    !cJSON_IsBool(host_network) || !cJSON_IsArray(env) || !cJSON_IsString(runtime)) {
		cJSON_Delete(run);
		return error_set(err, EINVAL, "%s: not a detached container's state", path);
	}
	d->driver = runtime_by_name(driver->valuestring);
	d->env = xcalloc((size_t)cJSON_GetArraySize(env) + 1, sizeof(*d->env));
	size_t n = 0;
	const cJSON *variable;
	cJSON_ArrayForEach(variable, env)
	{
		if (cJSON_IsString(variable))
			d->env[n++] = xstrdup(variable->valuestring);
	}
	/* The pid, for ls: the runtime's state is otherwise opaque here. */
	cJSON *runtime_state = cJSON_Parse(runtime->valuestring);
	const cJSON *pid = cJSON_GetObjectItemCaseSensitive(runtime_state, "pid");
	d->pid = cJSON_IsNumber(pid) ? (pid_t)pid->valuedouble : 0;
	cJSON_Delete(runtime_state);
	if ((r = cgroups_open(parent->valuestring, &d->cgroups, err)) < 0 ||
	    (r = cgroups_pod_open(d->cgroups, name, &d->pod, err)) < 0 ||
	    (r = cgroups_container_open(d->pod, "main", &d->group, err)) < 0) {
		cJSON_Delete(run);
		return r;
	}
	cleanup_free char *namespaces = xasprintf("%s/ns", d->state);
	struct sandbox_spec spec = { name, cJSON_IsTrue(host_network), namespaces };
	r = d->driver->sandbox_adopt(&spec, &d->sandbox, err);
	if (r == 0) {
		r = d->driver->adopt(d->sandbox, runtime->valuestring, d->group, &d->container, err);
		if (r == -ESRCH)
			r = 0; /* exited: the container stays NULL */
	} else if (r == -ENOENT) {
		r = 0; /* namespaces gone with the process (a reboot): nothing runs */
	}
	cJSON_Delete(run);
	return r;
}

static int signal_from_name(const char *name)
{
	static const struct {
		const char *name;
		int number;
	} signals[] = { { "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT },
		        { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
		        { "TERM", SIGTERM }, { "STOP", SIGSTOP }, { "CONT", SIGCONT } };
	if (strncmp(name, "SIG", 3) == 0)
		name += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (strcmp(signals[i].name, name) == 0)
			return signals[i].number;
	char *end;
	long number = strtol(name, &end, 10);
	return *end == '\0' && number > 0 && number < NSIG ? (int)number : -EINVAL;
}

static void container_usage(FILE *out)
{
	fputs("usage: bramble container ls\n"
	      "       bramble container exec [-e K=V]... [-w DIR] NAME COMMAND [ARG...]\n"
	      "       bramble container kill [-s SIGNAL] NAME\n"
	      "       bramble container rm [-f] NAME\n"
	      "\n"
	      "Containers started with bramble run --detach, reached from this process by adopting\n"
	      "them (as the agent adopts its pods' containers after a restart).\n"
	      "  ls     name, pid and whether each still runs (an exit status is not known)\n"
	      "  exec   run a command in the container (its namespaces, root, cgroup and\n"
	      "         confinement, its environment with -e added); exits with the command's code\n"
	      "  kill   send a signal (default KILL)\n"
	      "  rm     remove an exited container: its cgroups, namespaces and files (-f: kill it\n"
	      "         first)\n",
	      out);
}

static int container_ls(void)
{
	DIR *dir = opendir(RUN_STATE_DIR);
	if (!dir && errno != ENOENT) {
		fprintf(stderr, "bramble container: opendir %s: %s\n", RUN_STATE_DIR, strerror(errno));
		return 1;
	}
	printf("%-32s %-8s %s\n", "NAME", "PID", "STATUS");
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		cleanup_free char *path = xasprintf(RUN_STATE_DIR "/%s/run.json", e->d_name);
		if (access(path, F_OK) < 0)
			continue; /* a foreground run */
		struct detached d;
		struct error err = { 0 };
		if (detached_open(e->d_name, &d, &err) < 0)
			printf("%-32s %-8s unknown: %s\n", e->d_name, "-", err.message);
		else
			printf("%-32s %-8d %s\n", e->d_name, (int)d.pid, d.container ? "running" : "exited");
		detached_close(&d);
	}
	if (dir)
		closedir(dir);
	return 0;
}

/* The stored environment with each -e replacing a variable of its name. */
static const char **merged_env(char **stored, const char *const *given, size_t given_count)
{
	size_t n = 0;
	while (stored && stored[n])
		n++;
	const char **env = xcalloc(n + given_count + 1, sizeof(*env));
	memcpy(env, stored, n * sizeof(*env));
	for (size_t i = 0; i < given_count; i++) {
		size_t key = strcspn(given[i], "=") + 1, j;
		for (j = 0; j < n && strncmp(env[j], given[i], key) != 0; j++)
			;
		env[j == n ? n++ : j] = given[i];
	}
	return env;
}

static int container_exec(struct detached *d, const char *name, char **argv, const char *const *given,
                          size_t given_count, const char *workdir)
{
	if (!d->container) {
		fprintf(stderr, "bramble container exec: container %s is not running\n", name);
		return 125;
	}
	cleanup_free const char **env = merged_env(d->env, given, given_count);
	struct exec_spec spec = { (const char *const *)argv, env, workdir, STDOUT_FILENO, STDERR_FILENO };
	struct error err = { 0 };
	pid_t pid;
	if (d->driver->exec(d->container, &spec, &pid, &err) < 0) {
		fprintf(stderr, "bramble container exec: %s\n", err.message);
		return 127;
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int container_rm(struct detached *d, const char *name, bool force)
{
	struct error err = { 0 };
	if (d->container && !force) {
		fprintf(stderr, "bramble container rm: container %s is running: kill it first, or rm -f\n", name);
		return 1;
	}
	if (d->container) {
		d->driver->signal(d->container, SIGKILL);
		int status;
		d->driver->wait(d->container, &status); /* -ECHILD: not ours to reap */
	}
	int r = cgroups_remove(d->pod, CGROUPS_REMOVE_KILL, &err);
	if (r < 0) {
		fprintf(stderr, "bramble container rm: %s\n", err.message);
		return 1;
	}
	d->driver->sandbox_destroy(d->sandbox); /* unpins the namespaces */
	d->sandbox = NULL;
	if (file_remove_tree(d->state) < 0) {
		fprintf(stderr, "bramble container rm: removing %s: %s\n", d->state, strerror(errno));
		return 1;
	}
	return 0;
}

int container_main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		container_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *command = argv[1];
	if (strcmp(command, "ls") == 0)
		return container_ls();
	if (strcmp(command, "exec") != 0 && strcmp(command, "kill") != 0 && strcmp(command, "rm") != 0) {
		fprintf(stderr, "bramble container: unknown command %s\n", command);
		container_usage(stderr);
		return 2;
	}
	const char *given[RUN_MAX_ENV];
	size_t given_count = 0;
	const char *workdir = NULL;
	int signo = SIGKILL;
	bool force = false;
	int opt;
	optind = 1;
	while ((opt = getopt(argc - 1, argv + 1, "+e:w:s:f")) != -1) {
		bool known = strcmp(command, "exec") == 0   ? opt == 'e' || opt == 'w'
		             : strcmp(command, "kill") == 0 ? opt == 's'
		                                            : opt == 'f';
		if (!known) {
			container_usage(stderr);
			return 2;
		}
		if (opt == 'e' && (!strchr(optarg, '=') || given_count == RUN_MAX_ENV)) {
			fprintf(stderr, "bramble container exec: -e %s: expected NAME=value (at most %d)\n", optarg,
			        RUN_MAX_ENV);
			return 2;
		}
		if (opt == 'e')
			given[given_count++] = optarg;
		else if (opt == 'w')
			workdir = optarg;
		else if (opt == 'f')
			force = true;
		else if ((signo = signal_from_name(optarg)) < 0) {
			fprintf(stderr, "bramble container kill: unknown signal %s\n", optarg);
			return 2;
		}
	}
	argc -= 1 + optind;
	argv += 1 + optind;
	if (argc < 1 || (strcmp(command, "exec") == 0 ? argc < 2 : argc != 1)) {
		container_usage(stderr);
		return 2;
	}
	const char *name = argv[0];
	struct detached d;
	struct error err = { 0 };
	int r = detached_open(name, &d, &err), code = 0;
	if (r < 0) {
		fprintf(stderr, "bramble container %s: %s\n", command, err.message);
		code = strcmp(command, "exec") == 0 ? 125 : 1;
	} else if (strcmp(command, "exec") == 0) {
		code = container_exec(&d, name, argv + 1, given, given_count, workdir);
	} else if (strcmp(command, "kill") == 0) {
		if (!d.container) {
			fprintf(stderr, "bramble container kill: container %s is not running\n", name);
			code = 1;
		} else if ((r = d.driver->signal(d.container, signo)) < 0) {
			fprintf(stderr, "bramble container kill: %s: %s\n", name, strerror(-r));
			code = 1;
		}
	} else {
		code = container_rm(&d, name, force);
	}
	detached_close(&d);
	return code;
}
