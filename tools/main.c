/* The `bramble` multi-call binary: the first argument names the verb (like k3s or
 * busybox). The agent daemon is one verb; the others are the command-line tools. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "tools/verbs.h"

struct verb {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
};

static const struct verb verbs[] = {
	{ "agent", agent_main, "run this board's agent (and control plane, on a server)" },
	{ "init", init_main, "create a new cluster with this board as its server" },
	{ "image", image_main, "push images to the cluster, list and remove them; import on this board" },
	{ "token", token_main, "join tokens for new boards: create, ls, rm" },
	{ "run", run_main, "run one container in the foreground (or detached)" },
	{ "container", container_main, "exec in, kill and remove detached containers" },
	{ "get", get_main, "list objects or show one, as tables, JSON, YAML or names; -w to watch" },
	{ "describe", describe_main, "show objects in detail, with their events" },
	{ "apply", apply_main, "create or update objects from manifests (-f FILE|DIR|-)" },
	{ "create", create_main,
	  "create objects from manifests, or a namespace, configmap, secret, deployment, service" },
	{ "delete", delete_main, "delete objects by name, selector or manifest" },
	{ "edit", edit_main, "edit an object in $EDITOR" },
	{ "patch", patch_main, "change an object with a JSON merge patch" },
	{ "label", label_main, "add, change or remove labels" },
	{ "annotate", annotate_main, "add, change or remove annotations" },
	{ "scale", scale_main, "set the replicas of Deployments and ReplicaSets" },
	{ "rollout", rollout_main, "a Deployment's rollout: status, history, undo, restart, pause, resume" },
	{ "cordon", cordon_main, "mark nodes unschedulable" },
	{ "uncordon", uncordon_main, "mark nodes schedulable again" },
	{ "drain", drain_main, "cordon a node and delete its pods" },
	{ "taint", taint_main, "add or remove taints of nodes" },
	{ "hollow-nodes", hollow_main, "simulated Nodes for scale tests (like kubemark)" },
	{ "logs", logs_main, "print (or follow, -f) the output of a pod's container" },
	{ "top", top_main, "show the cpu and memory in use by nodes or pods" },
	{ "version", version_main, "print the client's and the server's version" },
};

static void usage(FILE *out)
{
	fputs("usage: bramble [--config FILE] VERB [ARGS...]\n\nverbs:\n", out);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(out, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
	fputs("\n--config FILE is the client configuration (as kubectl's --kubeconfig; default\n"
	      "$BRAMBLE_CONFIG, then ~/.config/bramble/config); it may also follow the verb.\n"
	      "bramble VERB --help describes a verb.\n",
	      out);
}

int main(int argc, char **argv)
{
	/* Global options before the verb, as kubectl takes them: --config FILE. */
	while (argc >= 2 && strncmp(argv[1], "--config", 8) == 0) {
		const char *file = argv[1][8] == '=' ? argv[1] + 9 : argv[1][8] == '\0' && argc >= 3 ? argv[2] : NULL;
		if (!file || !*file) {
			fprintf(stderr, "bramble: --config needs a FILE\n");
			return 2;
		}
		setenv("BRAMBLE_CONFIG", file, 1);
		int used = argv[1][8] == '=' ? 1 : 2;
		argv[used] = argv[0];
		argv += used;
		argc -= used;
	}
	if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return version_main(1, argv + 1);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[1], verbs[i].name) == 0)
			return verbs[i].main(argc - 1, argv + 1);
	fprintf(stderr, "bramble: unknown verb '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
