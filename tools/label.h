/* `bramble label` and `bramble annotate`: kubectl's KEY=VALUE and KEY- arguments and its
 * --overwrite rules, as pure functions the verbs (and tests) use. */
#ifndef BRAMBLE_TOOLS_LABEL_H
#define BRAMBLE_TOOLS_LABEL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct error;

#define LABEL_MAX_CHANGES 64

struct label_change {
	const char *key;   /* points into the argument, or into a copy kept by the caller */
	const char *value; /* NULL: remove the key */
	char buffer[320];  /* the key, cut out of "key=value" or "key-" */
};

struct label_changes {
	size_t count;
	struct label_change items[LABEL_MAX_CHANGES];
};

/* True for a change argument ("k=v", "k-"), false for a resource argument. */
bool label_is_change(const char *arg);

/* Parses and checks the change arguments (label keys and values with Kubernetes' syntax;
 * annotation values anything). A key both set and removed is refused. */
int label_parse(int count, char **args, bool annotations, struct label_changes *ret_changes, struct error *err);

/* What to write into the map (metadata.labels or .annotations) of an object: a merge patch
 * of the map ({key: value} to set, {key: null} to remove) in *ret_patch, NULL when nothing
 * changes. A key that already has another value is refused unless overwrite (kubectl's
 * message). *ret_removed_only: every change that changes something is a removal;
 * missing: the first key asked to be removed that the map does not have (or NULL). */
int label_compute(const cJSON *map, const struct label_changes *changes, bool overwrite, bool annotations,
                  cJSON **ret_patch, bool *ret_removed_only, const char **ret_missing, struct error *err);

#endif
