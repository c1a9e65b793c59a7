/* `bramble taint`: kubectl's taint arguments (KEY[=VALUE]:EFFECT to add, KEY[:EFFECT]- to
 * remove) and how it merges them into a Node's taints, as pure functions. */
#ifndef BRAMBLE_TOOLS_TAINT_H
#define BRAMBLE_TOOLS_TAINT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct error;

#define TAINT_MAX 64
#define TAINT_TEXT_MAX 320

struct taint {
	char key[TAINT_TEXT_MAX];
	char value[TAINT_TEXT_MAX];
	char effect[32]; /* "" in a removal: every effect */
};

struct taint_changes {
	size_t add_count, remove_count;
	struct taint add[TAINT_MAX];
	struct taint remove[TAINT_MAX];
};

/* True for a taint argument (it has ':' or '=', or ends with '-'). */
bool taint_is_spec(const char *arg);

/* kubectl's parseTaints: effects NoSchedule, PreferNoSchedule, NoExecute; keys and values
 * with label syntax; an added taint needs its effect; one key and effect added twice is
 * refused. */
int taint_parse(int count, char **args, struct taint_changes *ret_changes, struct error *err);

enum taint_outcome { TAINT_TAINTED, TAINT_UNTAINTED, TAINT_MODIFIED };

/* kubectl's reorganizeTaints on a node's spec.taints: the new list in *ret_taints (an
 * array) and what kubectl would report. Without overwrite, adding a key and effect the node
 * already has is refused; removing a taint the node does not have is an error (the
 * others still apply: *ret_taints is set even then). */
int taint_apply(const char *node_name, const cJSON *taints, const struct taint_changes *changes, bool overwrite,
                cJSON **ret_taints, enum taint_outcome *ret_outcome, struct error *err);

#endif
