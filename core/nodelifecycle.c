/* The node lifecycle controller: Kubernetes' NodeLifecycleController and taint manager, with
 * defaults for boards that fail often in small clusters.
 *
 * Each node's last heartbeat is kept in memory (struct node.heartbeat_ms, monotonic): set
 * when the node is first seen (or the control plane starts) and by every heartbeat the API
 * server reports (controllers_node_heartbeat: a Node status write or its Lease renewed).
 * One pass over all nodes ("monitor") runs when a node changes and when something is due:
 *
 *   reachable, Ready=True     no lifecycle taints
 *   reachable, Ready=False    node.kubernetes.io/not-ready: NoSchedule at once, NoExecute
 *                             through the rate limiter
 *   no heartbeat for the      its conditions become Unknown (NodeStatusUnknown, "Kubelet
 *   grace period              stopped posting node status."); node.kubernetes.io/unreachable:
 *                             NoSchedule at once, NoExecute through the rate limiter
 *   reachable, Ready=Unknown  left as it is (its kubelet will post a status)
 *
 * The rate limiter is a token bucket (eviction_rate nodes per second, burst 1) for NoExecute
 * taints. When at least unhealthy_percent of the nodes are not Ready the cluster is taken as
 * disrupted (most likely the control plane is the one cut off): no NoExecute taint is added
 * and the lifecycle ones are removed, so nothing is evicted.
 *
 * Evictions (the taint manager): a pod on a node with NoExecute taints is deleted at the
 * earliest of, per taint, the time it was added (or the pod created, if later) plus: 0 when
 * it does not tolerate the taint, eviction_delay_ms for the lifecycle taints it does not
 * tolerate (Kubernetes' DefaultTolerationSeconds, shortened), the smallest tolerationSeconds
 * of the tolerations that match, or never when a matching toleration has none.
 *
 * The pass is queued again for the earliest of: a reachable node's grace running out, a
 * planned eviction, the next token. With no nodes there is nothing to wait for, no timer.
 */
#include "core/controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

#define MONITOR "monitor"
#define UNREACHABLE "node.kubernetes.io/unreachable"
#define NOT_READY "node.kubernetes.io/not-ready"

static bool has_no_execute(const cJSON *taints)
{
	const cJSON *taint;
	cJSON_ArrayForEach(taint, taints)
	{
		const char *effect = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(taint, "effect"));
		if (effect && strcmp(effect, "NoExecute") == 0)
			return true;
	}
	return false;
}

static void on_node(struct controllers *c, const struct node *old, const struct node *new)
{
	(void)old;
	(void)new;
	controller_enqueue(c, CONTROLLER_NODE_LIFECYCLE, MONITOR);
}

static void on_pod(struct controllers *c, const struct pod *old, const struct pod *new)
{
	if (!new || !new->node_name || (old && old->node_name))
		return;
	const struct node *node = map_get(&c->nodes, new->node_name);
	if (node && has_no_execute(node->taints))
		controller_enqueue(c, CONTROLLER_NODE_LIFECYCLE, MONITOR);
}

/* --- taints ----------------------------------------------------------------------------------- */

static const char *taint_string(const cJSON *taint, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(taint, name));
}

static bool is_taint(const cJSON *taint, const char *key, const char *effect)
{
	const char *k = taint_string(taint, "key"), *e = taint_string(taint, "effect");
	return k && e && strcmp(k, key) == 0 && strcmp(e, effect) == 0;
}

static bool lifecycle_taint(const cJSON *taint)
{
	const char *k = taint_string(taint, "key");
	return k && (strcmp(k, UNREACHABLE) == 0 || strcmp(k, NOT_READY) == 0);
}

static const cJSON *find_taint(const cJSON *taints, const char *key, const char *effect)
{
	const cJSON *taint;
	cJSON_ArrayForEach(taint, taints)
	{
		if (is_taint(taint, key, effect))
			return taint;
	}
	return NULL;
}

struct wanted {
	bool unreachable[2]; /* [0] NoSchedule, [1] NoExecute */
	bool not_ready[2];
};

static bool wanted(const struct wanted *w, const cJSON *taint)
{
	static const char *const effects[] = { "NoSchedule", "NoExecute" };
	for (int e = 0; e < 2; e++) {
		if (is_taint(taint, UNREACHABLE, effects[e]))
			return w->unreachable[e];
		if (is_taint(taint, NOT_READY, effects[e]))
			return w->not_ready[e];
	}
	return true;
}

/* The node's taints with the lifecycle ones as wanted; NULL when nothing changes. */
static cJSON *retaint(const cJSON *taints, const struct wanted *w, const char *now)
{
	cJSON *out = cJSON_CreateArray();
	bool changed = false;
	const cJSON *taint;
	cJSON_ArrayForEach(taint, taints)
	{
		if (lifecycle_taint(taint) && !wanted(w, taint))
			changed = true;
		else
			cJSON_AddItemToArray(out, cJSON_Duplicate(taint, 1));
	}
	static const char *const effects[] = { "NoSchedule", "NoExecute" };
	for (int e = 0; e < 2; e++) {
		const char *keys[2] = { w->unreachable[e] ? UNREACHABLE : NULL, w->not_ready[e] ? NOT_READY : NULL };
		for (int k = 0; k < 2; k++) {
			if (!keys[k] || find_taint(taints, keys[k], effects[e]))
				continue;
			cJSON *t = cJSON_CreateObject();
			cJSON_AddStringToObject(t, "key", keys[k]);
			cJSON_AddStringToObject(t, "effect", effects[e]);
			cJSON_AddStringToObject(t, "timeAdded", now);
			cJSON_AddItemToArray(out, t);
			changed = true;
		}
	}
	if (!changed) {
		cJSON_Delete(out);
		return NULL;
	}
	return out;
}

/* --- evictions ------------------------------------------------------------------------------------ */

#define NEVER INT64_MAX

/* When the pod must go from a node with these taints (wall-clock ms), or NEVER. */
static int64_t eviction_time(const struct controllers *c, const struct pod *pod, const cJSON *taints)
{
	int64_t when = NEVER;
	const cJSON *taint;
	cJSON_ArrayForEach(taint, taints)
	{
		const char *effect = taint_string(taint, "effect");
		if (!effect || strcmp(effect, "NoExecute") != 0)
			continue;
		int64_t base = controller_parse_time(taint_string(taint, "timeAdded"));
		if (pod->created_ms > base)
			base = pod->created_ms;
		int64_t seconds_ms = NEVER;
		bool tolerated = false;
		const cJSON *toleration;
		cJSON_ArrayForEach(toleration, pod->tolerations)
		{
			if (!controller_tolerates(toleration, taint))
				continue;
			tolerated = true;
			const cJSON *seconds = cJSON_GetObjectItemCaseSensitive(toleration, "tolerationSeconds");
			if (cJSON_IsNumber(seconds)) {
				int64_t ms = seconds->valuedouble > 0 ? (int64_t)seconds->valuedouble * 1000 : 0;
				if (ms < seconds_ms)
					seconds_ms = ms;
			}
		}
		if (!tolerated)
			seconds_ms = lifecycle_taint(taint) ? (int64_t)c->options.eviction_delay_ms : 0;
		if (seconds_ms != NEVER && base + seconds_ms < when)
			when = base + seconds_ms;
	}
	return when;
}

static int evict_from(struct controllers *c, const struct node *node, const cJSON *taints, int64_t now,
                      int64_t *next_wall, struct error *err)
{
	struct map *pods = map_get(&c->pods_by_node, node->name);
	if (!pods || !has_no_execute(taints))
		return 0;
	int writes = 0;
	map_each(e, pods)
	{
		struct pod *pod = e->value;
		if (!pod_active(pod))
			continue;
		int64_t when = eviction_time(c, pod, taints);
		if (when == NEVER)
			continue;
		if (when > now) {
			if (when < *next_wall)
				*next_wall = when;
			continue;
		}
		int r = controller_delete(c, "pods", pod->namespace, pod->name, pod->uid, PROPAGATE_BACKGROUND, err);
		if (r < 0)
			return r;
		if (r > 0) {
			writes += r;
			log_info("node lifecycle: evicting pod %s from node %s", pod->key, node->name);
			cJSON *ref = cJSON_CreateObject();
			cJSON_AddStringToObject(ref, "apiVersion", "v1");
			cJSON_AddStringToObject(ref, "kind", "Pod");
			cJSON *metadata = cJSON_AddObjectToObject(ref, "metadata");
			cJSON_AddStringToObject(metadata, "name", pod->name);
			cJSON_AddStringToObject(metadata, "namespace", pod->namespace);
			cJSON_AddStringToObject(metadata, "uid", pod->uid);
			controller_event(c, ref, "Normal", "TaintManagerEviction", "Marking for deletion Pod %s",
			                 pod->key);
			cJSON_Delete(ref);
		}
	}
	return writes;
}

/* --- the pass ---------------------------------------------------------------------------------- */

/* Conditions Unknown, as Kubernetes marks a node whose kubelet went quiet. */
static void mark_unknown(cJSON *node, const char *now)
{
	cJSON *status = controller_child(node, "status");
	cJSON *conditions = cJSON_GetObjectItemCaseSensitive(status, "conditions");
	if (!controller_condition(status, "Ready"))
		controller_set_condition(status, "Ready", "Unknown", "NodeStatusNeverUpdated",
		                         "Kubelet never posted node status.", now, false, false);
	cJSON *condition;
	cJSON_ArrayForEach(condition, conditions)
	{
		const char *type = taint_string(condition, "type");
		const char *value = taint_string(condition, "status");
		if (!type || (value && strcmp(value, "Unknown") == 0))
			continue;
		controller_set_string(condition, "status", "Unknown");
		controller_set_string(condition, "reason", "NodeStatusUnknown");
		controller_set_string(condition, "message", "Kubelet stopped posting node status.");
		controller_set_string(condition, "lastTransitionTime", now);
	}
}

static void refill(struct controllers *c, uint64_t now)
{
	double elapsed = (double)(now - c->eviction_tokens_ms) / 1000.0;
	c->eviction_tokens_ms = now;
	c->eviction_tokens += elapsed * c->options.eviction_rate;
	if (c->eviction_tokens > 1)
		c->eviction_tokens = 1;
}

static int node_pass(struct controllers *c, const struct node *node, bool disrupted, uint64_t *next_mono,
                     int64_t *next_wall, struct error *err)
{
	uint64_t now = controller_monotonic_ms(c);
	int64_t wall = controller_now_ms(c);
	char now_text[32];
	controller_now_rfc3339(c, now_text);
	bool unreachable = now - node->heartbeat_ms >= c->options.node_grace_ms;
	if (!unreachable && node->heartbeat_ms + c->options.node_grace_ms < *next_mono)
		*next_mono = node->heartbeat_ms + c->options.node_grace_ms;
	struct wanted w = { { false, false }, { false, false } };
	if (unreachable) {
		w.unreachable[0] = w.unreachable[1] = true;
	} else if (node->ready == NODE_READY_FALSE) {
		w.not_ready[0] = w.not_ready[1] = true;
	} else if (node->ready == NODE_READY_UNKNOWN) {
		w.unreachable[0] = find_taint(node->taints, UNREACHABLE, "NoSchedule") != NULL;
		w.unreachable[1] = find_taint(node->taints, UNREACHABLE, "NoExecute") != NULL;
		w.not_ready[0] = find_taint(node->taints, NOT_READY, "NoSchedule") != NULL;
		w.not_ready[1] = find_taint(node->taints, NOT_READY, "NoExecute") != NULL;
	}
	/* NoExecute: never while disrupted; a new one only with a token. */
	bool *no_execute = w.unreachable[1] ? &w.unreachable[1] : w.not_ready[1] ? &w.not_ready[1] : NULL;
	if (no_execute && disrupted) {
		*no_execute = false;
	} else if (no_execute && !find_taint(node->taints, w.unreachable[1] ? UNREACHABLE : NOT_READY, "NoExecute")) {
		if (c->eviction_tokens >= 1) {
			c->eviction_tokens -= 1;
		} else {
			*no_execute = false;
			uint64_t at = now + (uint64_t)((1 - c->eviction_tokens) / c->options.eviction_rate * 1000) + 1;
			if (at < *next_mono)
				*next_mono = at;
		}
	}
	cJSON *taints = retaint(node->taints, &w, now_text);
	bool mark = unreachable && node->ready != NODE_READY_UNKNOWN;
	int writes = 0;
	if (taints || mark) {
		cJSON *stored = controller_get(c, "nodes", "", node->name);
		if (stored) {
			cJSON *updated = cJSON_Duplicate(stored, 1);
			if (mark) {
				mark_unknown(updated, now_text);
				log_info("node lifecycle: node %s has sent no heartbeat for %llu ms: Ready=Unknown",
				         node->name, (unsigned long long)(now - node->heartbeat_ms));
				controller_event(c, stored, "Normal", "NodeNotReady",
				                 "Node %s status is now: NodeNotReady", node->name);
			}
			if (taints) {
				cJSON *spec = controller_child(updated, "spec");
				cJSON_DeleteItemFromObjectCaseSensitive(spec, "taints");
				if (cJSON_GetArraySize(taints) > 0)
					cJSON_AddItemToObject(spec, "taints", cJSON_Duplicate(taints, 1));
			}
			int r = controller_update(c, "nodes", stored, updated, err);
			cJSON_Delete(updated);
			cJSON_Delete(stored);
			if (r < 0 && r != -ESTALE && r != -ENOENT) {
				cJSON_Delete(taints);
				return r;
			}
			writes += r > 0 ? r : 0;
		}
	}
	int r = evict_from(c, node, taints ? taints : node->taints, wall, next_wall, err);
	cJSON_Delete(taints);
	return r < 0 ? r : writes + r;
}

static int lifecycle_sync(struct controllers *c, const char *key, struct error *err)
{
	(void)key;
	uint64_t now = controller_monotonic_ms(c);
	size_t total = c->nodes.count, not_ready = 0;
	map_each(e, &c->nodes)
	{
		const struct node *node = e->value;
		if (now - node->heartbeat_ms >= c->options.node_grace_ms || node->ready != NODE_READY_TRUE)
			not_ready++;
	}
	bool disrupted = total > 0 && not_ready * 100 >= (size_t)c->options.unhealthy_percent * total;
	if (disrupted != c->disrupted) {
		if (disrupted)
			log_warnx("node lifecycle: %zu of %zu nodes are not ready: evicting nothing (the control plane "
			          "may "
			          "be the one cut off)",
			          not_ready, total);
		else
			log_info("node lifecycle: %zu of %zu nodes are not ready: evictions resume", not_ready, total);
		c->disrupted = disrupted;
	}
	refill(c, now);
	uint64_t next_mono = UINT64_MAX;
	int64_t next_wall = INT64_MAX;
	int writes = 0;
	map_each(e, &c->nodes)
	{
		int r = node_pass(c, e->value, disrupted, &next_mono, &next_wall, err);
		if (r < 0)
			return r;
		writes += r;
	}
	if (next_wall != INT64_MAX) {
		int64_t delay = next_wall - controller_now_ms(c);
		uint64_t at = now + (uint64_t)(delay > 0 ? delay : 0);
		if (at < next_mono)
			next_mono = at;
	}
	if (next_mono != UINT64_MAX)
		controller_enqueue_after(c, CONTROLLER_NODE_LIFECYCLE, MONITOR, next_mono > now ? next_mono - now : 0);
	return writes;
}

const struct controller_ops node_lifecycle_controller = {
	.name = "node lifecycle",
	.on_pod = on_pod,
	.on_node = on_node,
	.sync = lifecycle_sync,
};
