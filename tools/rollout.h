/* Deployments' rollouts as kubectl sees them, for `bramble rollout` and `describe`.
 *
 * A Deployment's revisions are the ReplicaSets it controls (an ownerReference with
 * controller: true and the Deployment's uid), numbered by their
 * deployment.kubernetes.io/revision annotation; the one whose pod template equals the
 * Deployment's (the pod-template-hash label aside) is the new one, the others are old.
 * What these functions decide follows kubectl's code (polymorphichelpers: history,
 * rollback, status viewer, object restarter, pauser/resumer).
 */
#ifndef BRAMBLE_TOOLS_ROLLOUT_H
#define BRAMBLE_TOOLS_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct client;
struct error;

#define ROLLOUT_REVISION_ANNOTATION "deployment.kubernetes.io/revision"
#define ROLLOUT_CHANGE_CAUSE_ANNOTATION "kubernetes.io/change-cause"
#define ROLLOUT_RESTARTED_AT_ANNOTATION "kubectl.kubernetes.io/restartedAt"
#define ROLLOUT_HASH_LABEL "pod-template-hash"
#define ROLLOUT_MESSAGE_MAX 256

/* Appends the ReplicaSets the Deployment controls to the array ret_items. */
int rollout_replicasets(struct client *client, const cJSON *deployment, cJSON *ret_items, struct error *err);

/* The revision annotation's number; 0 when absent or not a number. */
long long rollout_revision(const cJSON *object);

/* Pod templates equal but for the pod-template-hash label (kubectl's EqualIgnoreHash). */
bool rollout_template_equal(const cJSON *a, const cJSON *b);

/* The ReplicaSet of replicasets whose template is the Deployment's (the oldest when
 * several), or NULL. */
const cJSON *rollout_new_replicaset(const cJSON *deployment, const cJSON *replicasets);

/* kubectl rollout status's verdict: 0 with the message ("Waiting for ...",
 * "deployment \"web\" successfully rolled out") and *ret_done; -EINVAL when it cannot
 * succeed (progress deadline exceeded, another revision than the one asked for). */
int rollout_status(const cJSON *deployment, long long revision, char *message, size_t size, bool *ret_done,
                   struct error *err);

/* kubectl rollout undo's choice: the ReplicaSet of to_revision (0: the one before the
 * newest). -ENOENT with kubectl's message when there is none. */
int rollout_find_revision(const cJSON *deployment, const cJSON *replicasets, long long to_revision,
                          const cJSON **ret_replicaset, struct error *err);

/* The Deployment rolled back to the ReplicaSet's template (its pod-template-hash label
 * dropped) and annotations (kubectl's rules: the Deployment keeps its own
 * last-applied-configuration and revision bookkeeping, takes the others from the
 * ReplicaSet). */
cJSON *rollout_undo(const cJSON *deployment, const cJSON *replicaset);

#endif
