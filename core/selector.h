/* Label and field selectors, as Kubernetes writes them in list and watch queries, and the
 * LabelSelector objects of workload specs (matchLabels + matchExpressions).
 *
 *   labelSelector:  app=web,tier!=db,env in (prod,staging),!canary,track
 *   fieldSelector:  spec.nodeName=pi-1,status.phase!=Succeeded
 */
#ifndef BRAMBLE_CORE_SELECTOR_H
#define BRAMBLE_CORE_SELECTOR_H

#include <stdbool.h>

#include <cjson/cJSON.h>

struct error;
struct selector;

#define SELECTOR_MAX_TERMS 32

/* The query forms. An empty string parses to a selector that matches everything.
 * Errors name the offending term and what was expected. */
int selector_parse_labels(const char *text, struct selector **ret_selector, struct error *err);
/* Fields supported: metadata.name, metadata.namespace, spec.nodeName, status.phase,
 * spec.schedulerName, involvedObject.name, involvedObject.kind, type, reason; anything else
 * is refused with the list of supported fields. Operators =, ==, !=. */
int selector_parse_fields(const char *text, struct selector **ret_selector, struct error *err);

/* A LabelSelector object ({"matchLabels": {...}, "matchExpressions": [...]}); errors are
 * reported against field_path ("spec.selector"). */
int selector_from_json(const cJSON *selector, const char *field_path, struct selector **ret_selector,
                       struct error *err);

/* Label selectors look at object.metadata.labels, field selectors at the named fields. */
bool selector_matches(const struct selector *selector, const cJSON *object);
bool selector_matches_labels(const struct selector *selector, const cJSON *labels);
bool selector_is_empty(const struct selector *selector);
/* The one value a selector requires key to have (key=value, or key in (value)); NULL when
 * it allows several or says nothing of key. For indexes: spec.nodeName=pi-1. */
const char *selector_required_value(const struct selector *selector, const char *key);

void selector_free(struct selector *selector);

#endif
