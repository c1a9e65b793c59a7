/* Kubernetes-shaped objects: the kinds Bramble serves, their JSON, defaults and validation.
 *
 * Objects are cJSON trees while a request is processed and JSON text at rest. A manifest
 * written for Kubernetes applies unchanged for the kinds listed here; a field Bramble does
 * not support is rejected with its path named, never silently dropped.
 *
 * The order of work on a write (see core/apiserver.c):
 *   object_parse -> object_apply_defaults -> object_validate -> store_apply
 */
#ifndef BRAMBLE_CORE_OBJECT_H
#define BRAMBLE_CORE_OBJECT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct error;
struct schema; /* private to object.c */

#define OBJECT_MAX_DEPTH 32 /* nesting deeper than this is refused by object_parse */

struct kind {
	const char *name;        /* "Deployment" */
	const char *group;       /* "" for the core group, "apps", "batch", "autoscaling" */
	const char *version;     /* "v1", "v2" */
	const char *api_version; /* "v1", "apps/v1", "autoscaling/v2" */
	const char *resource;    /* "deployments": the URL segment */
	const char *list_kind;   /* "DeploymentList" */
	bool namespaced;
	bool has_status; /* a /status subresource exists; status in main-resource writes is ignored */
	const struct schema *schema;
};

/* By the apiVersion and kind of a manifest; NULL when Bramble does not serve it. */
const struct kind *kind_lookup(const char *api_version, const char *kind_name);
/* By URL segments: group "" for /api/v1; NULL when unknown. */
const struct kind *kind_by_resource(const char *group, const char *version, const char *resource);
size_t kind_count(void);
const struct kind *kind_at(size_t index);

/* Parses JSON text (not NUL-terminated necessarily). Refuses invalid JSON (with the byte
 * offset), a top level that is not an object, and nesting deeper than OBJECT_MAX_DEPTH. */
int object_parse(const char *text, size_t length, cJSON **ret_object, struct error *err);

/* Kubernetes' defaults for the kind, applied in place (restartPolicy, dnsPolicy,
 * imagePullPolicy, protocol, strategy, replicas, probe periods ...). Never fails: values
 * of the wrong type are left for object_validate to report. */
void object_apply_defaults(const struct kind *kind, cJSON *object);

/* Checks a whole object as it would be stored: apiVersion/kind equal to `kind`; metadata
 * (name and namespace syntax and length, labels and annotations syntax, no unknown
 * fields); spec and status against the kind's schema: unknown fields, wrong types,
 * missing required fields, values out of range or not in an enum, and the kind's own rules
 * (a Deployment's selector must match its template labels, ...). The first problem found is
 * reported with error_set_field(): err->field = "spec.containers[0].image", err->message =
 * "spec.containers[0].image: Required value". Returns 0 or -EINVAL. */
int object_validate(const struct kind *kind, const cJSON *object, struct error *err);

/* The rules of an update beyond object_validate: the fields Kubernetes keeps immutable for
 * the kinds the controllers handle (spec.selector of Deployments, ReplicaSets, DaemonSets
 * and Jobs; a Job's template and completionMode). -EINVAL with the field named. */
int object_validate_update(const struct kind *kind, const cJSON *old, const cJSON *new, struct error *err);

/* Metadata accessors; NULL when absent or not a string. */
const char *object_name(const cJSON *object);
const char *object_namespace(const cJSON *object);
const char *object_string_at(const cJSON *object, const char *dotted_path); /* "spec.nodeName" */
cJSON *object_metadata(cJSON *object); /* creates an empty metadata object when missing */

/* RFC 7386 JSON merge patch, applied to target in place; the patch must be an object. */
int object_merge_patch(cJSON *target, const cJSON *patch, struct error *err);

/* True when the two objects' spec subtrees are equal (generation is bumped otherwise). */
bool object_spec_equal(const cJSON *a, const cJSON *b);

/* Label syntax (keys also serve annotations): NULL when valid, else why not, in
 * Kubernetes' words. Shared with core/selector.c. */
const char *object_label_key_problem(const char *key);
const char *object_label_value_problem(const char *value);

/* A random (version 4) UUID for metadata.uid, 36 characters and a NUL. */
void object_new_uid(char out[37]);

/* A v1 Event as Kubernetes' components write them: stored in namespace, named
 * "<involved name>.<8 random hex digits>", count 1, created, first and last seen at now
 * (RFC 3339). involvedObject carries what is not NULL of api_version, kind,
 * object_namespace, name, uid and field_path; source.host is left out when NULL. */
struct object_event {
	const char *namespace;
	const char *api_version, *kind, *object_namespace, *name, *uid, *field_path;
	const char *type, *reason, *message;
	const char *component, *host;
	const char *now;
};
cJSON *object_event_new(const struct object_event *event);
/* Five characters of Kubernetes' generateName alphabet ("bcdfghjklmnpqrstvwxz2456789"),
 * as in pod names like web-7c5dd-x2kqz. */
void object_random_suffix(char out[6]);

/* DNS-1123 checks, shared with the rest of core. */
bool object_valid_dns_label(const char *s);     /* [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 63 */
bool object_valid_dns_subdomain(const char *s); /* labels joined by '.', <= 253 */

#endif
