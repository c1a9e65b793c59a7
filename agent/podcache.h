/* The agent's local cache of what the control plane told it to run: the pods bound to this
 * node (as last seen from the API, without their status), the ConfigMaps and Secrets they
 * use (Secrets encrypted) and the last revision the pod watch reached. After a reboot with
 * no control plane reachable, the kubelet starts the cached pods; when the link returns it
 * resumes its watch from the cached revision. See the design comment in podcache.c.
 */
#ifndef BRAMBLE_AGENT_PODCACHE_H
#define BRAMBLE_AGENT_PODCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct error;
struct podcache;

#define PODCACHE_REVISION_MAX 24
#define PODCACHE_MAX_PODS 1000 /* rows read back at boot (max-pods is at most 1000) */
#define PODCACHE_BODY_MAX (1024 * 1024)

struct podcache_options {
	const char *path; /* <data-dir>/podcache.db */
	/* Secret input of the key that encrypts Secrets (the node's credential key): HKDF-SHA256
	 * turns it into the AES-256-GCM key. */
	const void *key_material;
	size_t key_material_length;
	const char *node_name; /* bound into the key (HKDF info) */
};

int podcache_open(const struct podcache_options *options, struct podcache **ret_cache, struct error *err);
/* Commits an open batch and closes; NULL is fine. */
void podcache_close(struct podcache *cache);

/* Changes are grouped: begin, any number of puts and deletes, commit. A put or delete
 * outside a batch commits at once. A batch that changed nothing writes nothing. */
int podcache_begin(struct podcache *cache, struct error *err);
/* revision: the watch's revision to remember with the batch's changes (NULL or "": leave
 * it); written only when the batch changed something else or `always` is set. */
int podcache_commit(struct podcache *cache, const char *revision, bool always, struct error *err);

/* A pod as the API has it: stored without resourceVersion, managedFields and status (its
 * phase is kept), and only when that differs from what is stored. 1 when written. */
int podcache_pod_put(struct podcache *cache, const cJSON *pod, struct error *err);
/* Forgets the pod, and the ConfigMaps and Secrets no other cached pod uses. */
int podcache_pod_delete(struct podcache *cache, const char *uid, struct error *err);

/* A ConfigMap (secret false) or Secret a cached pod uses; a Secret is encrypted before it
 * reaches the file. Written only when it differs. 1 when written. */
int podcache_config_put(struct podcache *cache, bool secret, const cJSON *object, struct error *err);

/* Everything cached: *ret_pods an array of pod objects, *ret_revision the remembered
 * revision ("" when none). A Secret that does not decrypt (the credential changed) is
 * left out with a warning, as if missing. */
int podcache_load(struct podcache *cache, cJSON **ret_pods, char ret_revision[PODCACHE_REVISION_MAX],
                  struct error *err);
/* The ConfigMaps and Secrets the pod refers to that are cached, as the kubelet hands them
 * to pod_new: {"configmaps": {name: object}, "secrets": {name: object}}. */
cJSON *podcache_pod_config(struct podcache *cache, const cJSON *pod);

/* Transactions committed since open (tests: nothing is written at idle). */
uint64_t podcache_commits(const struct podcache *cache);

#endif
