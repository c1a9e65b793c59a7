/* `bramble describe`: kubectl's describe sections, shared with `rollout history`. */
#ifndef BRAMBLE_TOOLS_DESCRIBE_H
#define BRAMBLE_TOOLS_DESCRIBE_H

#include <cjson/cJSON.h>

struct buffer;

/* kubectl's "Pod Template:" section (labels, containers, volumes ...). */
void describe_pod_template(const cJSON *template, struct buffer *out);

/* What describe writes for one object, given what it fetched besides: events (an array,
 * or NULL: no Events section), related (pods of a ReplicaSet or on a Node, ReplicaSets of
 * a Deployment, Endpoints of a Service; may be NULL). */
void describe_object(const char *kind, const cJSON *object, const cJSON *events, const cJSON *related,
                     struct buffer *out);

#endif
