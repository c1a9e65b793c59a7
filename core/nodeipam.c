/* The node-IPAM controller: gives every Node a pod CIDR out of the cluster CIDR, as
 * Kubernetes' range allocator does (core/ipalloc.c picks the block).
 *
 * Queued: a Node that appears (or every Node is seen at start-up); when a Node goes away,
 * every Node again, so one that found the cluster CIDR full gets the freed block.
 *
 * sync(name):
 *   Node gone, or it has spec.podCIDR    nothing
 *   a block is free                      spec.podCIDR and spec.podCIDRs written
 *   none is free                         a Warning Event CIDRNotAvailable on the Node naming
 *                                        the cluster CIDR, and a log line; the Node runs
 *                                        hostNetwork pods only until a block frees up
 * The taken blocks are read from the store (uncommitted writes included), so two Nodes
 * registered in one batch never get the same block.
 */
#include "core/controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ipalloc.h"
#include "core/object.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

static void on_node(struct controllers *c, const struct node *old, const struct node *new)
{
	if (new && !old) {
		controller_enqueue(c, CONTROLLER_NODE_IPAM, new->name);
	} else if (old && !new) {
		map_each(e, &c->nodes)
		{
			if (strcmp(e->key, old->name) != 0)
				controller_enqueue(c, CONTROLLER_NODE_IPAM, e->key);
		}
	}
}

struct taken_cidrs {
	char **cidrs;
	size_t count;
};

static int collect_cidr(const char *text, size_t length, void *data)
{
	struct taken_cidrs *t = data;
	cJSON *node = cJSON_ParseWithLength(text, length);
	const char *cidr = node ? object_string_at(node, "spec.podCIDR") : NULL;
	if (cidr && cidr[0]) {
		t->cidrs = xrealloc(t->cidrs, (t->count + 1) * sizeof(*t->cidrs));
		t->cidrs[t->count++] = xstrdup(cidr);
	}
	cJSON_Delete(node);
	return 0;
}

static int sync_node(struct controllers *c, const char *name, struct error *err)
{
	cJSON *node = controller_get(c, "nodes", "", name);
	if (!node)
		return 0;
	const char *have = object_string_at(node, "spec.podCIDR");
	if (have && have[0]) {
		cJSON_Delete(node);
		return 0;
	}
	struct taken_cidrs taken = { 0 };
	int r = store_list(c->store, "nodes", NULL, NULL, 0, collect_cidr, &taken, NULL, err);
	char cidr[IPALLOC_CIDR_TEXT];
	if (r >= 0) {
		struct error pick = { 0 };
		r = ipalloc_node_cidr(&c->options.network, (const char *const *)taken.cidrs, taken.count, cidr, &pick);
		if (r == -ENOSPC) {
			log_warnx("node %s: %s", name, pick.message);
			controller_event(c, node, "Warning", "CIDRNotAvailable", "Node %s has no pod CIDR: %s", name,
			                 pick.message);
			r = 0;
		} else if (r < 0) {
			r = error_set(err, -r, "node %s: %s", name, pick.message);
		} else {
			cJSON *updated = cJSON_Duplicate(node, 1);
			cJSON *spec = controller_child(updated, "spec");
			controller_set_string(spec, "podCIDR", cidr);
			cJSON *list = cJSON_CreateArray();
			cJSON_AddItemToArray(list, cJSON_CreateString(cidr));
			cJSON_DeleteItemFromObjectCaseSensitive(spec, "podCIDRs");
			cJSON_AddItemToObject(spec, "podCIDRs", list);
			r = controller_update(c, "nodes", node, updated, err);
			cJSON_Delete(updated);
			if (r > 0)
				log_info("node %s: pod CIDR %s", name, cidr);
		}
	}
	for (size_t i = 0; i < taken.count; i++)
		free(taken.cidrs[i]);
	free(taken.cidrs);
	cJSON_Delete(node);
	return r;
}

const struct controller_ops node_ipam_controller = {
	.name = "node-ipam",
	.on_node = on_node,
	.sync = sync_node,
};
