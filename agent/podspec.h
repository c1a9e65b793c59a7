/* From a Kubernetes pod spec to what the runtime driver takes: command, environment, user,
 * capabilities, cgroup limits, volumes and mounts. Pure translation (volumes excepted, which
 * are written to disk): every rule is Kubernetes', every error names the field
 * ("spec.containers[0].env[2].valueFrom.configMapKeyRef: configmap \"web\" has no key \"port\"").
 */
#ifndef BRAMBLE_AGENT_PODSPEC_H
#define BRAMBLE_AGENT_PODSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct cgroups_limits;
struct error;
struct images_image;
struct runtime_mount;

/* NULL-terminated string arrays; podspec_strv_free frees one. */
void podspec_strv_free(char **strv);

/* Kubernetes' rule: command replaces the image's Entrypoint (and drops its Cmd); args
 * replace the Cmd. An empty result is an error. */
int podspec_command(const cJSON *container, const struct images_image *image, const char *where, char ***ret_argv,
                    struct error *err);

/* The environment: the image's Env, a default PATH when it has none, HOSTNAME, then envFrom
 * (configMapRef / secretRef with prefix) and env (value; valueFrom configMapKeyRef,
 * secretKeyRef, fieldRef: metadata.name/namespace/uid, spec.nodeName,
 * spec.serviceAccountName, status.podIP/hostIP; resourceFieldRef limits), later ones winning.
 * config: {"configmaps": {name: object}, "secrets": {name: object}} (may be NULL). */
int podspec_env(const cJSON *pod, const cJSON *container, const struct images_image *image, const cJSON *config,
                const char *pod_ip, const char *host_ip, const char *where, char ***ret_env, struct error *err);

/* runAsUser / runAsGroup from the container's securityContext, then the pod's, then the
 * image's numeric User. */
int podspec_user(const cJSON *pod, const cJSON *container, const struct images_image *image, const char *where,
                 uid_t *ret_uid, gid_t *ret_gid, struct error *err);

/* securityContext.capabilities add/drop ("NET_ADMIN", "ALL" in drop) as CAP_* bit masks;
 * readOnlyRootFilesystem; privileged is refused. */
int podspec_security(const cJSON *container, const char *where, uint64_t *ret_add, uint64_t *ret_drop,
                     bool *ret_read_only_root, struct error *err);

/* resources.requests.cpu -> shares/weight, limits.cpu -> quota, limits.memory. */
int podspec_limits(const cJSON *container, const char *where, struct cgroups_limits *ret_limits, struct error *err);

/* The pod's ConfigMaps and Secrets, as names: {"configmaps": [..], "secrets": [..]}, from
 * volumes, env and envFrom of every container (optional references marked in "optional"). */
cJSON *podspec_config_refs(const cJSON *pod);

/* Makes each volume's directory under dir/<volume name>: emptyDir (empty), configMap and
 * secret (one file per key, items/defaultMode honoured, replaced atomically when written
 * again), hostPath (checked against its type; DirectoryOrCreate made). Others are refused. */
int podspec_volumes_write(const cJSON *pod, const cJSON *config, const char *dir, struct error *err);

/* The container's volumeMounts as runtime mounts (sources under volumes_dir or hostPath).
 * Strings in *ret_mounts are owned by the returned array: free with podspec_mounts_free. */
int podspec_mounts(const cJSON *pod, const cJSON *container, const char *volumes_dir, const char *where,
                   struct runtime_mount **ret_mounts, size_t *ret_count, struct error *err);
void podspec_mounts_free(struct runtime_mount *mounts, size_t count);

#endif
