/* Static pods: pod manifests (YAML or JSON) in the directory named by [agent] static-pods,
 * run by this board's kubelet without any control plane, as Kubernetes' kubelet runs
 * /etc/kubernetes/manifests. Each becomes a pod named <name>-<node> bound to this node,
 * with a uid derived from the node, the file and its content (the same manifest gives the
 * same pod after a restart, so its containers are adopted; an edited one is a new pod).
 * When the control plane is reachable each is shown there as a mirror pod (annotation
 * kubernetes.io/config.mirror, owned by the Node).
 */
#ifndef BRAMBLE_AGENT_STATICPODS_H
#define BRAMBLE_AGENT_STATICPODS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct error;

#define STATICPODS_MAX 100 /* pods read from the directory; more are refused with a message */
#define STATICPODS_MIRROR_ANNOTATION "kubernetes.io/config.mirror"
#define STATICPODS_HASH_ANNOTATION "kubernetes.io/config.hash"
#define STATICPODS_SOURCE_ANNOTATION "kubernetes.io/config.source"

struct staticpod {
	char *file;      /* the manifest it came from */
	cJSON *object;   /* the pod as it runs here: name, namespace, uid, nodeName, annotations */
	const char *uid; /* metadata.uid of object (also its config hash) */
};

struct staticpods {
	struct staticpod *pods;
	size_t count;
};

/* Reads every *.yaml, *.yml and *.json of dir. A manifest that is not a valid Pod is left
 * out with one warning naming the file, the document and the field; the others are kept.
 * Fails only when dir cannot be read (a missing directory is an empty set, with a warning). */
int staticpods_load(const char *dir, const char *node_name, struct staticpods *ret_pods, struct error *err);
void staticpods_free(struct staticpods *pods);

/* The mirror pod to create in the API for a static pod (no uid; owned by the Node). */
cJSON *staticpods_mirror(const cJSON *object, const char *node_name, const char *node_uid);
/* The config hash a mirror pod names, or NULL when the pod is not a mirror pod. */
const char *staticpods_mirror_hash(const cJSON *pod);

#endif
