/* The scheduling algorithm (see scheduler.h), after kube-scheduler's default profile.
 *
 * Snapshot. Nodes and bound pods are parsed once, when they are added, into plain structs:
 * labels and taints as small arrays, quantities as integers (millicores, bytes, counts).
 * Each node keeps the sum of what its pods request, the list of those pods and, for
 * scoring, the "non-zero" sums (a container without requests counts as 100m and 200Mi, as
 * Kubernetes scores it). Pods are also indexed by their controller owner's uid (spreading)
 * and, when they carry required anti-affinity, listed apart (the symmetric check). A pod
 * may name a node not (or no longer) known: that node is kept as a placeholder holding the
 * accounting, never offered to pods, so a Node that comes back finds its pods counted.
 *
 *   add_node/update_node -> struct node (known)     remove_node -> placeholder or freed
 *   add_pod/assume       -> struct bound_pod, node sums += requests
 *   remove_pod           -> node sums -= requests (placeholder freed when empty)
 *
 * A decision (scheduler_schedule). The pending pod is parsed once (requests, tolerations,
 * node selector and affinity, pod affinity terms); terms over other pods are turned into
 * sets of topology values (zone "a", hostname "pi-3") before looking at any node. Then
 * every known node goes through the filters in kube-scheduler's order; the first filter that
 * fails names the node's reasons:
 *
 *   NodeUnschedulable  node(s) were unschedulable     (unless node.kubernetes.io/unschedulable
 *                                                     :NoSchedule is tolerated)
 *   NodeNotReady       node(s) were not ready         (Ready condition not True, unless
 *                                                     node.kubernetes.io/not-ready is tolerated)
 *   TaintToleration    node(s) had untolerated taint {key: value}   (NoSchedule, NoExecute)
 *   NodeAffinity       node(s) didn't match Pod's node affinity/selector
 *   NodePorts          node(s) didn't have free ports for the requested pod ports
 *   NodeResourcesFit   Too many pods, Insufficient cpu, Insufficient memory, Insufficient <name>
 *                      (every resource short is a reason, as Kubernetes reports them)
 *   InterPodAffinity   node(s) didn't satisfy existing pods anti-affinity rules,
 *                      node(s) didn't match pod affinity rules,
 *                      node(s) didn't match pod anti-affinity rules
 *
 * Feasible nodes are scored 0..100 per plugin and summed with kube-scheduler's weights:
 * NodeResourcesLeastAllocated x1 (cpu and memory), spreading of one owner's pods x2 (node
 * count 1/3, zone count 2/3, as SelectorSpread), NodeAffinity preferred terms x2,
 * InterPodAffinity preferred terms x2, TaintToleration PreferNoSchedule x3 (fewer is
 * better). The highest total wins; ties go to the tie at index hash(namespace/name) mod
 * ties: deterministic for a given snapshot and pod, yet different pods spread over equal
 * nodes.
 *
 * When no node is feasible the message is Kubernetes' FitError text: "0/N nodes are
 * available: " then "<count> <reason>" per distinct reason, sorted as strings (so by count
 * first, as Go's sort.Strings does), joined by ", ", ending with ".".
 *
 * Like kube-scheduler with its default (adaptive) percentageOfNodesToScore, a large cluster
 * is not searched whole for every pod: from 100 nodes on, the search stops once it has
 * found max(100, n * max(5, 50 - n/125) / 100) feasible nodes (420 of 1,000), and the next
 * pod's search starts where this one stopped, so that every node gets its turn. Smaller
 * clusters, and pods that fit nowhere (whose message counts every node), see all nodes.
 */
#include "core/scheduler.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/memory.h"

#define MAX_SCORE 100
#define WEIGHT_LEAST_ALLOCATED 1
#define WEIGHT_SPREAD 2
#define WEIGHT_NODE_AFFINITY 2
#define WEIGHT_POD_AFFINITY 2
#define WEIGHT_TAINT 3
#define DEFAULT_CPU_REQUEST 100              /* millicores, for scoring only */
#define DEFAULT_MEMORY_REQUEST (200LL << 20) /* bytes, for scoring only */
#define DEFAULT_POD_CAPACITY 110             /* a Node without allocatable.pods */
#define HOSTNAME_LABEL "kubernetes.io/hostname"
#define ZONE_LABEL "topology.kubernetes.io/zone"
#define ZONE_LABEL_BETA "failure-domain.beta.kubernetes.io/zone"

/* ---- small containers ---- */

struct hash_link {
	struct hash_link *next;
	const char *key;
	uint32_t hash;
};

struct hash {
	struct hash_link **buckets;
	size_t bucket_count, count;
};

static uint32_t hash_string(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct hash_link *hash_find(const struct hash *h, const char *key)
{
	if (!h->bucket_count)
		return NULL;
	uint32_t hv = hash_string(key);
	for (struct hash_link *l = h->buckets[hv & (h->bucket_count - 1)]; l; l = l->next)
		if (l->hash == hv && strcmp(l->key, key) == 0)
			return l;
	return NULL;
}

static void hash_insert(struct hash *h, struct hash_link *link)
{
	if (h->count + 1 > h->bucket_count) {
		size_t n = h->bucket_count ? h->bucket_count * 2 : 64;
		struct hash_link **buckets = xcalloc(n, sizeof(*buckets));
		for (size_t i = 0; i < h->bucket_count; i++) {
			for (struct hash_link *l = h->buckets[i], *next; l; l = next) {
				next = l->next;
				l->next = buckets[l->hash & (n - 1)];
				buckets[l->hash & (n - 1)] = l;
			}
		}
		free(h->buckets);
		h->buckets = buckets;
		h->bucket_count = n;
	}
	link->hash = hash_string(link->key);
	struct hash_link **head = &h->buckets[link->hash & (h->bucket_count - 1)];
	link->next = *head;
	*head = link;
	h->count++;
}

static void hash_remove(struct hash *h, struct hash_link *link)
{
	for (struct hash_link **p = &h->buckets[link->hash & (h->bucket_count - 1)]; *p; p = &(*p)->next) {
		if (*p == link) {
			*p = link->next;
			h->count--;
			return;
		}
	}
}

/* ---- parsed facts ---- */

struct label {
	const char *key, *value;
};

enum effect { EFFECT_ANY, EFFECT_NO_SCHEDULE, EFFECT_PREFER_NO_SCHEDULE, EFFECT_NO_EXECUTE };

struct taint {
	const char *key, *value;
	enum effect effect;
};

struct toleration {
	const char *key, *value; /* key NULL: empty */
	bool exists;
	enum effect effect; /* EFFECT_ANY: every effect */
};

struct resource {
	const char *name;
	int64_t amount;
};

enum protocol { PROTOCOL_TCP, PROTOCOL_UDP, PROTOCOL_SCTP };

struct host_port {
	int32_t port;
	enum protocol protocol;
	const char *host_ip; /* NULL for every address */
};

enum operator{ OP_IN, OP_NOT_IN, OP_EXISTS, OP_DOES_NOT_EXIST, OP_GT, OP_LT };

/* One selector requirement; `value` when there is a single value (nodeSelector,
 * matchLabels), else `values` (a JSON array of strings), `number` for Gt/Lt. */
struct requirement {
	const char *key;
	enum operator op;
	const char *value;
	const cJSON *values;
	int64_t number;
};

struct range {
	uint16_t first, count;
};

struct node_term {
	struct range labels, fields;
	int32_t weight;
};

struct pod_term {
	struct range selector;
	bool matches_nothing; /* no labelSelector: selects no pod */
	bool all_namespaces;  /* namespaceSelector: {} */
	const char *topology_key;
	const cJSON *namespaces; /* NULL: the owning pod's namespace */
	int32_t weight;
};

enum term_list { REQUIRED_AFFINITY, REQUIRED_ANTI, PREFERRED_AFFINITY, PREFERRED_ANTI, TERM_LISTS };

struct affinity {
	struct requirement requirements[SCHEDULER_MAX_REQUIREMENTS];
	unsigned requirement_count;
	struct range node_selector; /* spec.nodeSelector */
	bool has_required_node;
	struct node_term required_node[SCHEDULER_MAX_TERMS];
	unsigned required_node_count;
	struct node_term preferred_node[SCHEDULER_MAX_TERMS];
	unsigned preferred_node_count;
	struct pod_term pod_terms[TERM_LISTS][SCHEDULER_MAX_TERMS];
	unsigned pod_term_count[TERM_LISTS];
};

/* The pending pod, parsed once per decision; strings point into its JSON. */
struct pod_facts {
	const char *namespace, *name, *owner_uid;
	struct label labels[SCHEDULER_MAX_LABELS];
	unsigned label_count;
	int64_t cpu, memory, nonzero_cpu, nonzero_memory;
	struct resource extended[SCHEDULER_MAX_EXTENDED];
	unsigned extended_count;
	struct host_port ports[SCHEDULER_MAX_HOST_PORTS];
	unsigned port_count;
	struct toleration tolerations[SCHEDULER_MAX_TOLERATIONS];
	unsigned toleration_count;
	struct affinity affinity;
};

/* A bound pod's required anti-affinity, kept for the symmetric check (trimmed copies). */
struct anti_affinity {
	cJSON *json; /* owns the strings */
	struct requirement *requirements;
	struct pod_term *terms;
	unsigned term_count;
};

struct node;
struct owner;

struct bound_pod {
	struct hash_link link; /* key: "namespace/name" */
	char *key;
	char *namespace;
	char *owner_uid;
	cJSON *labels_json;
	struct label *labels;
	unsigned label_count;
	int64_t cpu, memory, nonzero_cpu, nonzero_memory;
	struct resource *extended; /* names owned */
	unsigned extended_count;
	struct host_port *ports; /* host_ip owned */
	unsigned port_count;
	struct anti_affinity *anti;
	struct node *node;
	struct bound_pod *node_prev, *node_next;
	struct owner *owner;
	struct bound_pod *owner_prev, *owner_next;
	size_t index;      /* in s->pods */
	size_t anti_index; /* in s->anti_pods when anti */
};

/* Pods of one owner per node, kept as pods come and go, so that spreading costs each
 * decision a pass over the nodes the owner uses, not over its thousands of pods. */
struct owner_count {
	struct node *node;
	int32_t count;
};

struct owner {
	struct hash_link link;
	char *uid;
	char *namespace; /* of its first pod: only pods of this namespace are counted */
	struct bound_pod *pods;
	struct owner_count *counts;
	size_t count_count, count_capacity;
};

static void owner_count_add(struct owner *o, struct node *node, int32_t delta)
{
	for (size_t i = 0; i < o->count_count; i++) {
		if (o->counts[i].node != node)
			continue;
		o->counts[i].count += delta;
		if (o->counts[i].count <= 0)
			o->counts[i] = o->counts[--o->count_count];
		return;
	}
	if (delta <= 0)
		return;
	if (o->count_count == o->count_capacity) {
		o->count_capacity = o->count_capacity ? 2 * o->count_capacity : 8;
		o->counts = xrealloc(o->counts, o->count_capacity * sizeof(*o->counts));
	}
	o->counts[o->count_count++] = (struct owner_count){ node, delta };
}

struct node {
	struct hash_link link;
	char *name;
	bool known;   /* a Node object was added; else a placeholder holding pods */
	size_t index; /* in s->nodes when known */
	cJSON *json;  /* owns label, taint and resource strings */
	struct label *labels;
	unsigned label_count;
	struct taint *taints;
	unsigned taint_count;
	bool has_prefer_no_schedule;
	int64_t cpu, memory, pods;
	struct resource *extended;
	unsigned extended_count;
	bool unschedulable, ready;
	int zone; /* index in s->zones, -1 without a zone label */
	/* what bound pods request */
	int64_t requested_cpu, requested_memory, requested_pods, nonzero_cpu, nonzero_memory;
	int64_t *requested_extended; /* parallel to extended */
	struct bound_pod *bound;
	/* per decision */
	uint32_t epoch;
	int32_t owner_count;
};

struct scored {
	struct node *node;
	int64_t least, spread, node_affinity, pod_affinity, taints, total;
};

struct topology_entry {
	const char *key, *value;
	uint32_t hash;
	int64_t count;
};

/* (topology key, value) -> count, open addressing; strings belong to nodes. */
struct topology_set {
	struct topology_entry *entries;
	size_t capacity, count;
};

enum reason_kind {
	REASON_UNSCHEDULABLE,
	REASON_NOT_READY,
	REASON_TAINT,
	REASON_NODE_AFFINITY,
	REASON_PORTS,
	REASON_TOO_MANY_PODS,
	REASON_INSUFFICIENT,
	REASON_EXISTING_ANTI,
	REASON_POD_AFFINITY,
	REASON_POD_ANTI,
};

struct reason {
	enum reason_kind kind;
	const char *a, *b;
	unsigned count;
};

#define REASONS_PER_NODE (3 + SCHEDULER_MAX_EXTENDED)

struct scheduler {
	struct hash node_index, pod_index, owner_index;
	struct node **nodes; /* known nodes, in order of arrival */
	size_t node_count, node_capacity;
	struct bound_pod **pods;
	size_t pod_count, pod_capacity;
	struct bound_pod **anti_pods;
	size_t anti_count, anti_capacity;
	char **zones;
	size_t zone_count;
	uint32_t epoch;
	struct pod_facts *pod; /* scratch for the pending pod */
	struct scored *scored;
	int64_t *zone_counts;
	size_t scored_capacity, zone_capacity;
	struct reason *reasons;
	size_t reason_count, reason_capacity;
	size_t next_start; /* where the next search begins (kube-scheduler's nextStartNodeIndex) */
};

/* ---- quantities ---- */

int scheduler_parse_quantity(const char *text, int scale, int64_t *ret_value)
{
	static const struct {
		const char *suffix;
		int exponent10, exponent2;
	} suffixes[] = {
		{ "", 0, 0 },    { "n", -9, 0 },  { "u", -6, 0 },  { "m", -3, 0 },  { "k", 3, 0 },   { "M", 6, 0 },
		{ "G", 9, 0 },   { "T", 12, 0 },  { "P", 15, 0 },  { "E", 18, 0 },  { "Ki", 0, 10 }, { "Mi", 0, 20 },
		{ "Gi", 0, 30 }, { "Ti", 0, 40 }, { "Pi", 0, 50 }, { "Ei", 0, 60 },
	};
	if (!text)
		return -EINVAL;
	const char *s = text;
	if (*s == '+')
		s++;
	int64_t mantissa = 0;
	int exponent10 = scale, exponent2 = 0, digits = 0, significant = 0;
	bool dot = false;
	for (; (*s >= '0' && *s <= '9') || *s == '.'; s++) {
		if (*s == '.') {
			if (dot)
				return -EINVAL;
			dot = true;
			continue;
		}
		digits++;
		if (mantissa == 0 && *s == '0') {
			if (dot)
				exponent10--;
			continue;
		}
		if (significant >= 18) {
			/* beyond int64's precision: the digit only matters for rounding up */
			if (!dot)
				exponent10++;
			if (*s != '0' && mantissa % 10 != 9)
				mantissa++; /* a crude but upward rounding of the tail */
			continue;
		}
		mantissa = mantissa * 10 + (*s - '0');
		significant++;
		if (dot)
			exponent10--;
	}
	if (digits == 0)
		return -EINVAL;
	/* "E" alone is exa; "e3", "E-2" are exponents */
	if ((*s == 'e' || *s == 'E') && s[1] && (s[1] == '+' || s[1] == '-' || (s[1] >= '0' && s[1] <= '9'))) {
		char *end;
		errno = 0;
		long e = strtol(s + 1, &end, 10);
		if (end == s + 1 || *end || errno || e > 1000 || e < -1000 ||
		    (s[1] != '+' && s[1] != '-' && (s[1] < '0' || s[1] > '9')))
			return -EINVAL;
		exponent10 += (int)e;
	} else {
		size_t i;
		for (i = 0; i < ARRAY_SIZE(suffixes); i++)
			if (strcmp(s, suffixes[i].suffix) == 0)
				break;
		if (i == ARRAY_SIZE(suffixes))
			return -EINVAL;
		exponent10 += suffixes[i].exponent10;
		exponent2 = suffixes[i].exponent2;
	}
	if (mantissa == 0) {
		*ret_value = 0;
		return 0;
	}
	/* value = mantissa * 10^exponent10 * 2^exponent2, rounded up to an integer */
	for (; exponent2 > 0; exponent2--) {
		if (mantissa > INT64_MAX / 2)
			return -ERANGE;
		mantissa *= 2;
	}
	for (; exponent10 > 0; exponent10--) {
		if (mantissa > INT64_MAX / 10)
			return -ERANGE;
		mantissa *= 10;
	}
	for (; exponent10 < 0; exponent10++) {
		mantissa = mantissa / 10 + (mantissa % 10 != 0);
		if (mantissa == 1) /* everything left rounds up to 1 */
			break;
	}
	*ret_value = mantissa;
	return 0;
}

/* A quantity as JSON: a string, or a number as Kubernetes also accepts. */
static int parse_quantity_json(const cJSON *value, int scale, int64_t *ret_value)
{
	if (cJSON_IsString(value))
		return scheduler_parse_quantity(value->valuestring, scale, ret_value);
	if (cJSON_IsNumber(value)) {
		char text[40];
		snprintf(text, sizeof(text), "%.15g", value->valuedouble);
		return scheduler_parse_quantity(text, scale, ret_value);
	}
	return -EINVAL;
}

/* cpu in millicores, everything else in whole units (bytes, counts). */
static int resource_scale(const char *name)
{
	return strcmp(name, "cpu") == 0 ? 3 : 0;
}

/* ---- JSON helpers ---- */

static const cJSON *child(const cJSON *object, const char *name)
{
	return object ? cJSON_GetObjectItemCaseSensitive(object, name) : NULL;
}

static const char *string_of(const cJSON *object, const char *name)
{
	const cJSON *v = child(object, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool is_set_string(const char *s)
{
	return s && *s;
}

static int parse_labels(const cJSON *labels, struct label *out, unsigned max, unsigned *ret_count, const char *field,
                        struct error *err)
{
	unsigned n = 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, labels)
	{
		if (!cJSON_IsString(item) || !item->string)
			return error_set_field(err, EINVAL, field, "label values must be strings");
		if (n == max)
			return error_set_field(err, EINVAL, field, "more than %u labels", max);
		out[n].key = item->string;
		out[n].value = item->valuestring;
		n++;
	}
	*ret_count = n;
	return 0;
}

static const char *label_value(const struct label *labels, unsigned count, const char *key)
{
	for (unsigned i = 0; i < count; i++)
		if (strcmp(labels[i].key, key) == 0)
			return labels[i].value;
	return NULL;
}

/* A node's label; the hostname label falls back to the node's name, which is what the
 * agent sets it to, so a hand-written Node still has a hostname topology. */
static const char *node_label(const struct node *node, const char *key)
{
	const char *v = label_value(node->labels, node->label_count, key);
	if (!v && strcmp(key, HOSTNAME_LABEL) == 0)
		return node->name;
	return v;
}

static enum effect effect_of(const char *s, bool *ok)
{
	*ok = true;
	if (!s || !*s)
		return EFFECT_ANY;
	if (strcmp(s, "NoSchedule") == 0)
		return EFFECT_NO_SCHEDULE;
	if (strcmp(s, "PreferNoSchedule") == 0)
		return EFFECT_PREFER_NO_SCHEDULE;
	if (strcmp(s, "NoExecute") == 0)
		return EFFECT_NO_EXECUTE;
	*ok = false;
	return EFFECT_ANY;
}

/* ---- pod parsing ---- */

static int add_resource(struct resource *list, unsigned *count, const char *name, int64_t amount, bool take_max,
                        const char *field, struct error *err)
{
	for (unsigned i = 0; i < *count; i++) {
		if (strcmp(list[i].name, name) == 0) {
			if (take_max)
				list[i].amount = list[i].amount > amount ? list[i].amount : amount;
			else
				list[i].amount += amount;
			return 0;
		}
	}
	if (*count == SCHEDULER_MAX_EXTENDED)
		return error_set_field(err, EINVAL, field, "more than %d extended resources", SCHEDULER_MAX_EXTENDED);
	list[*count].name = name;
	list[*count].amount = amount;
	(*count)++;
	return 0;
}

struct requests {
	int64_t cpu, memory, nonzero_cpu, nonzero_memory;
	struct resource extended[SCHEDULER_MAX_EXTENDED];
	unsigned extended_count;
};

/* One container's requests; a resource with a limit but no request requests its limit,
 * as the API's defaulting does in Kubernetes. */
static int container_requests(const cJSON *container, const char *field, struct requests *r, struct error *err)
{
	memset(r, 0, sizeof(*r));
	const cJSON *resources = child(container, "resources");
	const cJSON *lists[2] = { child(resources, "limits"), child(resources, "requests") };
	for (int l = 0; l < 2; l++) {
		const cJSON *item;
		cJSON_ArrayForEach(item, lists[l])
		{
			if (!item->string)
				continue;
			int64_t amount;
			if (parse_quantity_json(item, resource_scale(item->string), &amount) < 0)
				return error_set_field(err, EINVAL, field, "resources.%s.%s: invalid quantity",
				                       l ? "requests" : "limits", item->string);
			if (strcmp(item->string, "cpu") == 0)
				r->cpu = amount;
			else if (strcmp(item->string, "memory") == 0)
				r->memory = amount;
			else {
				/* a request replaces the limit read first */
				bool found = false;
				for (unsigned i = 0; i < r->extended_count; i++) {
					if (strcmp(r->extended[i].name, item->string) == 0) {
						r->extended[i].amount = amount;
						found = true;
					}
				}
				if (!found) {
					int e = add_resource(r->extended, &r->extended_count, item->string, amount,
					                     false, field, err);
					if (e < 0)
						return e;
				}
			}
		}
	}
	r->nonzero_cpu = r->cpu ? r->cpu : DEFAULT_CPU_REQUEST;
	r->nonzero_memory = r->memory ? r->memory : DEFAULT_MEMORY_REQUEST;
	return 0;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Kubernetes' effective requests: the sum over containers, raised to any init container's
 * own request (init containers run one at a time, before the others), plus the overhead. */
static int pod_requests(const cJSON *spec, struct requests *total, struct error *err)
{
	memset(total, 0, sizeof(*total));
	struct requests r;
	char field[64];
	const cJSON *container;
	int i = 0;
	cJSON_ArrayForEach(container, child(spec, "containers"))
	{
		snprintf(field, sizeof(field), "spec.containers[%d]", i++);
		int e = container_requests(container, field, &r, err);
		if (e < 0)
			return e;
		total->cpu += r.cpu;
		total->memory += r.memory;
		total->nonzero_cpu += r.nonzero_cpu;
		total->nonzero_memory += r.nonzero_memory;
		for (unsigned k = 0; k < r.extended_count; k++) {
			e = add_resource(total->extended, &total->extended_count, r.extended[k].name,
			                 r.extended[k].amount, false, field, err);
			if (e < 0)
				return e;
		}
	}
	i = 0;
	cJSON_ArrayForEach(container, child(spec, "initContainers"))
	{
		snprintf(field, sizeof(field), "spec.initContainers[%d]", i++);
		int e = container_requests(container, field, &r, err);
		if (e < 0)
			return e;
		total->cpu = max64(total->cpu, r.cpu);
		total->memory = max64(total->memory, r.memory);
		total->nonzero_cpu = max64(total->nonzero_cpu, r.nonzero_cpu);
		total->nonzero_memory = max64(total->nonzero_memory, r.nonzero_memory);
		for (unsigned k = 0; k < r.extended_count; k++) {
			e = add_resource(total->extended, &total->extended_count, r.extended[k].name,
			                 r.extended[k].amount, true, field, err);
			if (e < 0)
				return e;
		}
	}
	const cJSON *item;
	cJSON_ArrayForEach(item, child(spec, "overhead"))
	{
		int64_t amount;
		if (!item->string || parse_quantity_json(item, resource_scale(item->string), &amount) < 0)
			return error_set_field(err, EINVAL, "spec.overhead", "invalid quantity");
		if (strcmp(item->string, "cpu") == 0) {
			total->cpu += amount;
			total->nonzero_cpu += amount;
		} else if (strcmp(item->string, "memory") == 0) {
			total->memory += amount;
			total->nonzero_memory += amount;
		} else {
			int e = add_resource(total->extended, &total->extended_count, item->string, amount, false,
			                     "spec.overhead", err);
			if (e < 0)
				return e;
		}
	}
	return 0;
}

static int pod_host_ports(const cJSON *spec, struct host_port *out, unsigned *ret_count, struct error *err)
{
	unsigned n = 0;
	const cJSON *container, *port;
	cJSON_ArrayForEach(container, child(spec, "containers")){
		cJSON_ArrayForEach(port, child(container, "ports")){ const cJSON *host_port = child(port, "hostPort");
	if (!cJSON_IsNumber(host_port) || host_port->valueint <= 0)
		continue;
	if (n == SCHEDULER_MAX_HOST_PORTS)
		return error_set_field(err, EINVAL, "spec.containers", "more than %d hostPorts",
		                       SCHEDULER_MAX_HOST_PORTS);
	const char *protocol = string_of(port, "protocol");
	out[n].port = host_port->valueint;
	out[n].protocol = !protocol || strcmp(protocol, "TCP") == 0 ? PROTOCOL_TCP
	                  : strcmp(protocol, "UDP") == 0            ? PROTOCOL_UDP
	                                                            : PROTOCOL_SCTP;
	const char *ip = string_of(port, "hostIP");
	out[n].host_ip = ip && *ip && strcmp(ip, "0.0.0.0") != 0 && strcmp(ip, "::") != 0 ? ip : NULL;
	n++;
}
}
*ret_count = n;
return 0;
}

static int pod_tolerations(const cJSON *spec, struct toleration *out, unsigned *ret_count, struct error *err)
{
	unsigned n = 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, child(spec, "tolerations"))
	{
		char field[64];
		snprintf(field, sizeof(field), "spec.tolerations[%u]", n);
		if (n == SCHEDULER_MAX_TOLERATIONS)
			return error_set_field(err, EINVAL, "spec.tolerations", "more than %d tolerations",
			                       SCHEDULER_MAX_TOLERATIONS);
		const char *op = string_of(item, "operator");
		struct toleration *t = &out[n];
		t->key = is_set_string(string_of(item, "key")) ? string_of(item, "key") : NULL;
		t->value = string_of(item, "value");
		if (!t->value)
			t->value = "";
		if (!op || !*op || strcmp(op, "Equal") == 0)
			t->exists = false;
		else if (strcmp(op, "Exists") == 0)
			t->exists = true;
		else
			return error_set_field(err, EINVAL, field,
			                       "Unsupported value: \"%s\": supported values: \"Equal\", \"Exists\"",
			                       op);
		bool ok;
		t->effect = effect_of(string_of(item, "effect"), &ok);
		if (!ok)
			return error_set_field(err, EINVAL, field,
			                       "Unsupported value: \"%s\": supported values: "
			                       "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
			                       string_of(item, "effect"));
		n++;
	}
	*ret_count = n;
	return 0;
}

static int add_requirement(struct affinity *a, const struct requirement *r, const char *field, struct error *err)
{
	if (a->requirement_count == SCHEDULER_MAX_REQUIREMENTS)
		return error_set_field(err, EINVAL, field, "more than %d selector requirements in the pod",
		                       SCHEDULER_MAX_REQUIREMENTS);
	a->requirements[a->requirement_count++] = *r;
	return 0;
}

/* matchExpressions (node or label selector): Gt/Lt only for nodes. */
static int parse_expressions(struct affinity *a, const cJSON *expressions, bool for_nodes, const char *field,
                             struct range *ret_range, struct error *err)
{
	ret_range->first = (uint16_t)a->requirement_count;
	const cJSON *item;
	unsigned i = 0;
	cJSON_ArrayForEach(item, expressions)
	{
		char at[160];
		snprintf(at, sizeof(at), "%s[%u]", field, i++);
		struct requirement r = { 0 };
		r.key = string_of(item, "key");
		const char *op = string_of(item, "operator");
		r.values = child(item, "values");
		if (!r.key)
			return error_set_field(err, EINVAL, at, "key: Required value");
		unsigned value_count = (unsigned)cJSON_GetArraySize(r.values);
		const cJSON *v;
		cJSON_ArrayForEach(v, r.values)
		{
			if (!cJSON_IsString(v))
				return error_set_field(err, EINVAL, at, "values must be strings");
		}
		if (op && strcmp(op, "In") == 0)
			r.op = OP_IN;
		else if (op && strcmp(op, "NotIn") == 0)
			r.op = OP_NOT_IN;
		else if (op && strcmp(op, "Exists") == 0)
			r.op = OP_EXISTS;
		else if (op && strcmp(op, "DoesNotExist") == 0)
			r.op = OP_DOES_NOT_EXIST;
		else if (op && for_nodes && strcmp(op, "Gt") == 0)
			r.op = OP_GT;
		else if (op && for_nodes && strcmp(op, "Lt") == 0)
			r.op = OP_LT;
		else
			return error_set_field(err, EINVAL, at, "operator: Unsupported value: \"%s\"", op ? op : "");
		if ((r.op == OP_IN || r.op == OP_NOT_IN) && value_count == 0)
			return error_set_field(err, EINVAL, at,
			                       "values: Required value: must be non-empty for In and NotIn");
		if ((r.op == OP_EXISTS || r.op == OP_DOES_NOT_EXIST) && value_count)
			return error_set_field(err, EINVAL, at, "values: must be empty for Exists and DoesNotExist");
		if (r.op == OP_GT || r.op == OP_LT) {
			char *end;
			const char *text = value_count == 1 ? cJSON_GetArrayItem(r.values, 0)->valuestring : "";
			errno = 0;
			r.number = strtoll(text, &end, 10);
			if (value_count != 1 || !*text || *end || errno)
				return error_set_field(err, EINVAL, at,
				                       "values: must be a single integer for Gt and Lt");
		}
		int e = add_requirement(a, &r, at, err);
		if (e < 0)
			return e;
	}
	ret_range->count = (uint16_t)(a->requirement_count - ret_range->first);
	return 0;
}

/* A map of key: value (nodeSelector, matchLabels) as In requirements. */
static int parse_equalities(struct affinity *a, const cJSON *map, const char *field, struct range *ret_range,
                            struct error *err)
{
	ret_range->first = (uint16_t)a->requirement_count;
	const cJSON *item;
	cJSON_ArrayForEach(item, map)
	{
		if (!cJSON_IsString(item) || !item->string)
			return error_set_field(err, EINVAL, field, "values must be strings");
		struct requirement r = { .key = item->string, .op = OP_IN, .value = item->valuestring };
		int e = add_requirement(a, &r, field, err);
		if (e < 0)
			return e;
	}
	ret_range->count = (uint16_t)(a->requirement_count - ret_range->first);
	return 0;
}

static int parse_node_term(struct affinity *a, const cJSON *term, const char *field, struct node_term *out,
                           struct error *err)
{
	char at[160];
	snprintf(at, sizeof(at), "%s.matchExpressions", field);
	int e = parse_expressions(a, child(term, "matchExpressions"), true, at, &out->labels, err);
	if (e < 0)
		return e;
	snprintf(at, sizeof(at), "%s.matchFields", field);
	e = parse_expressions(a, child(term, "matchFields"), true, at, &out->fields, err);
	if (e < 0)
		return e;
	for (unsigned i = 0; i < out->fields.count; i++) {
		const struct requirement *r = &a->requirements[out->fields.first + i];
		if (strcmp(r->key, "metadata.name") != 0 || (r->op != OP_IN && r->op != OP_NOT_IN))
			return error_set_field(err, EINVAL, at,
			                       "only metadata.name with In or NotIn is supported in matchFields");
	}
	return 0;
}

static int parse_pod_term(struct affinity *a, const cJSON *term, const char *field, struct pod_term *out,
                          struct error *err)
{
	char at[160];
	memset(out, 0, sizeof(*out));
	out->topology_key = string_of(term, "topologyKey");
	if (!is_set_string(out->topology_key)) {
		snprintf(at, sizeof(at), "%s.topologyKey", field);
		return error_set_field(err, EINVAL, at, "Required value: can not be empty");
	}
	const cJSON *selector = child(term, "labelSelector");
	if (!selector || cJSON_IsNull(selector)) {
		out->matches_nothing = true;
	} else {
		snprintf(at, sizeof(at), "%s.labelSelector.matchLabels", field);
		struct range labels, expressions;
		int e = parse_equalities(a, child(selector, "matchLabels"), at, &labels, err);
		if (e < 0)
			return e;
		snprintf(at, sizeof(at), "%s.labelSelector.matchExpressions", field);
		e = parse_expressions(a, child(selector, "matchExpressions"), false, at, &expressions, err);
		if (e < 0)
			return e;
		out->selector.first = labels.first;
		out->selector.count = (uint16_t)(labels.count + expressions.count);
	}
	const cJSON *namespaces = child(term, "namespaces");
	if (cJSON_GetArraySize(namespaces) > 0)
		out->namespaces = namespaces;
	const cJSON *namespace_selector = child(term, "namespaceSelector");
	if (namespace_selector && !cJSON_IsNull(namespace_selector)) {
		/* Namespace labels are not in the snapshot; {} (every namespace) is all we honour. */
		if (cJSON_GetArraySize(child(namespace_selector, "matchLabels")) ||
		    cJSON_GetArraySize(child(namespace_selector, "matchExpressions"))) {
			snprintf(at, sizeof(at), "%s.namespaceSelector", field);
			return error_set_field(err, EINVAL, at, "only an empty namespaceSelector ({}) is supported");
		}
		out->all_namespaces = true;
	}
	return 0;
}

static int parse_pod_terms(struct affinity *a, const cJSON *list, bool weighted, const char *field,
                           enum term_list which, struct error *err)
{
	const cJSON *item;
	unsigned i = 0;
	cJSON_ArrayForEach(item, list)
	{
		char at[160];
		snprintf(at, sizeof(at), "%s[%u]", field, i);
		if (i == SCHEDULER_MAX_TERMS)
			return error_set_field(err, EINVAL, field, "more than %d terms", SCHEDULER_MAX_TERMS);
		struct pod_term *t = &a->pod_terms[which][i];
		const cJSON *term = item;
		if (weighted) {
			snprintf(at, sizeof(at), "%s[%u].podAffinityTerm", field, i);
			term = child(item, "podAffinityTerm");
		}
		int e = parse_pod_term(a, term, at, t, err);
		if (e < 0)
			return e;
		if (weighted) {
			const cJSON *weight = child(item, "weight");
			t->weight = cJSON_IsNumber(weight) ? weight->valueint : 0;
		}
		i++;
	}
	a->pod_term_count[which] = i;
	return 0;
}

static int parse_affinity(const cJSON *spec, struct affinity *a, struct error *err)
{
	a->requirement_count = 0;
	a->has_required_node = false;
	a->required_node_count = a->preferred_node_count = 0;
	memset(a->pod_term_count, 0, sizeof(a->pod_term_count));
	int e = parse_equalities(a, child(spec, "nodeSelector"), "spec.nodeSelector", &a->node_selector, err);
	if (e < 0)
		return e;
	const cJSON *affinity = child(spec, "affinity");
	if (!affinity)
		return 0;
	const cJSON *node_affinity = child(affinity, "nodeAffinity");
	const cJSON *required = child(node_affinity, "requiredDuringSchedulingIgnoredDuringExecution");
	if (required && !cJSON_IsNull(required)) {
		a->has_required_node = true;
		const cJSON *term;
		cJSON_ArrayForEach(term, child(required, "nodeSelectorTerms"))
		{
			char at[160];
			snprintf(at, sizeof(at),
			         "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
			         "nodeSelectorTerms[%u]",
			         a->required_node_count);
			if (a->required_node_count == SCHEDULER_MAX_TERMS)
				return error_set_field(err, EINVAL, at, "more than %d terms", SCHEDULER_MAX_TERMS);
			e = parse_node_term(a, term, at, &a->required_node[a->required_node_count++], err);
			if (e < 0)
				return e;
		}
	}
	const cJSON *item;
	cJSON_ArrayForEach(item, child(node_affinity, "preferredDuringSchedulingIgnoredDuringExecution"))
	{
		char at[160];
		snprintf(at, sizeof(at),
		         "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[%u]",
		         a->preferred_node_count);
		if (a->preferred_node_count == SCHEDULER_MAX_TERMS)
			return error_set_field(err, EINVAL, at, "more than %d terms", SCHEDULER_MAX_TERMS);
		struct node_term *t = &a->preferred_node[a->preferred_node_count++];
		e = parse_node_term(a, child(item, "preference"), at, t, err);
		if (e < 0)
			return e;
		const cJSON *weight = child(item, "weight");
		t->weight = cJSON_IsNumber(weight) ? weight->valueint : 0;
	}
	static const struct {
		const char *group, *list;
		bool weighted;
		enum term_list which;
	} lists[] = {
		{ "podAffinity", "requiredDuringSchedulingIgnoredDuringExecution", false, REQUIRED_AFFINITY },
		{ "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", false, REQUIRED_ANTI },
		{ "podAffinity", "preferredDuringSchedulingIgnoredDuringExecution", true, PREFERRED_AFFINITY },
		{ "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", true, PREFERRED_ANTI },
	};
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		char at[160];
		snprintf(at, sizeof(at), "spec.affinity.%s.%s", lists[i].group, lists[i].list);
		e = parse_pod_terms(a, child(child(affinity, lists[i].group), lists[i].list), lists[i].weighted, at,
		                    lists[i].which, err);
		if (e < 0)
			return e;
	}
	return 0;
}

static const char *controller_uid(const cJSON *metadata)
{
	const cJSON *reference;
	cJSON_ArrayForEach(reference, child(metadata, "ownerReferences"))
	{
		if (cJSON_IsTrue(child(reference, "controller")) && is_set_string(string_of(reference, "uid")))
			return string_of(reference, "uid");
	}
	return NULL;
}

static int parse_pod(const cJSON *pod, struct pod_facts *p, struct error *err)
{
	const cJSON *metadata = child(pod, "metadata");
	const cJSON *spec = child(pod, "spec");
	p->name = string_of(metadata, "name");
	if (!p->name)
		return error_set_field(err, EINVAL, "metadata.name", "Required value");
	p->namespace = string_of(metadata, "namespace");
	if (!is_set_string(p->namespace))
		p->namespace = "default";
	p->owner_uid = controller_uid(metadata);
	int e = parse_labels(child(metadata, "labels"), p->labels, SCHEDULER_MAX_LABELS, &p->label_count,
	                     "metadata.labels", err);
	if (e < 0)
		return e;
	struct requests r;
	e = pod_requests(spec, &r, err);
	if (e < 0)
		return e;
	p->cpu = r.cpu;
	p->memory = r.memory;
	p->nonzero_cpu = r.nonzero_cpu;
	p->nonzero_memory = r.nonzero_memory;
	memcpy(p->extended, r.extended, sizeof(r.extended[0]) * r.extended_count);
	p->extended_count = r.extended_count;
	e = pod_host_ports(spec, p->ports, &p->port_count, err);
	if (e < 0)
		return e;
	e = pod_tolerations(spec, p->tolerations, &p->toleration_count, err);
	if (e < 0)
		return e;
	return parse_affinity(spec, &p->affinity, err);
}

/* ---- matching ---- */

static bool values_contain(const struct requirement *r, const char *value)
{
	if (r->value)
		return strcmp(r->value, value) == 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, r->values)
	{
		if (strcmp(v->valuestring, value) == 0)
			return true;
	}
	return false;
}

static bool requirement_matches(const struct requirement *r, const char *value)
{
	switch (r->op) {
	case OP_IN:
		return value && values_contain(r, value);
	case OP_NOT_IN:
		return !value || !values_contain(r, value);
	case OP_EXISTS:
		return value != NULL;
	case OP_DOES_NOT_EXIST:
		return value == NULL;
	case OP_GT:
	case OP_LT: {
		if (!value || !*value)
			return false;
		char *end;
		errno = 0;
		long long n = strtoll(value, &end, 10);
		if (*end || errno)
			return false;
		return r->op == OP_GT ? n > r->number : n < r->number;
	}
	}
	return false;
}

static bool labels_match(const struct requirement *requirements, struct range range, const struct label *labels,
                         unsigned label_count)
{
	for (unsigned i = 0; i < range.count; i++) {
		const struct requirement *r = &requirements[range.first + i];
		if (!requirement_matches(r, label_value(labels, label_count, r->key)))
			return false;
	}
	return true;
}

static bool node_labels_match(const struct requirement *requirements, struct range range, const struct node *node)
{
	for (unsigned i = 0; i < range.count; i++) {
		const struct requirement *r = &requirements[range.first + i];
		if (!requirement_matches(r, node_label(node, r->key)))
			return false;
	}
	return true;
}

/* A nodeSelectorTerm; one with no requirement at all selects nothing, as in Kubernetes. */
static bool node_term_matches(const struct affinity *a, const struct node_term *t, const struct node *node)
{
	if (t->labels.count == 0 && t->fields.count == 0)
		return false;
	if (!node_labels_match(a->requirements, t->labels, node))
		return false;
	for (unsigned i = 0; i < t->fields.count; i++)
		if (!requirement_matches(&a->requirements[t->fields.first + i], node->name))
			return false;
	return true;
}

static bool node_affinity_matches(const struct affinity *a, const struct node *node)
{
	if (!node_labels_match(a->requirements, a->node_selector, node))
		return false;
	if (!a->has_required_node)
		return true;
	for (unsigned i = 0; i < a->required_node_count; i++)
		if (node_term_matches(a, &a->required_node[i], node))
			return true;
	return false;
}

static bool namespace_listed(const struct pod_term *t, const char *owner_namespace, const char *namespace)
{
	if (t->all_namespaces)
		return true;
	if (!t->namespaces)
		return strcmp(owner_namespace, namespace) == 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, t->namespaces)
	{
		if (cJSON_IsString(v) && strcmp(v->valuestring, namespace) == 0)
			return true;
	}
	return false;
}

/* Whether a pod (namespace, labels) is selected by a term owned by a pod in owner_namespace. */
static bool pod_term_selects(const struct requirement *requirements, const struct pod_term *t,
                             const char *owner_namespace, const char *namespace, const struct label *labels,
                             unsigned label_count)
{
	return !t->matches_nothing && namespace_listed(t, owner_namespace, namespace) &&
	       labels_match(requirements, t->selector, labels, label_count);
}

static bool tolerates(const struct toleration *t, const char *key, const char *value, enum effect effect)
{
	if (t->effect != EFFECT_ANY && t->effect != effect)
		return false;
	if (!t->key)
		return t->exists; /* an empty key with Exists tolerates everything */
	if (strcmp(t->key, key) != 0)
		return false;
	return t->exists || strcmp(t->value, value ? value : "") == 0;
}

static bool tolerated(const struct pod_facts *p, const char *key, const char *value, enum effect effect)
{
	for (unsigned i = 0; i < p->toleration_count; i++)
		if (tolerates(&p->tolerations[i], key, value, effect))
			return true;
	return false;
}

static bool ports_conflict(const struct host_port *a, const struct host_port *b)
{
	if (a->port != b->port || a->protocol != b->protocol)
		return false;
	return !a->host_ip || !b->host_ip || strcmp(a->host_ip, b->host_ip) == 0;
}

/* ---- topology sets ---- */

static uint32_t topology_hash(const char *key, const char *value)
{
	return hash_string(key) * 31u + hash_string(value);
}

static struct topology_entry *topology_slot(struct topology_set *set, const char *key, const char *value, uint32_t hash)
{
	size_t mask = set->capacity - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct topology_entry *e = &set->entries[i];
		if (!e->key || (e->hash == hash && strcmp(e->key, key) == 0 && strcmp(e->value, value) == 0))
			return e;
	}
}

static void topology_add(struct topology_set *set, const char *key, const char *value, int64_t count)
{
	if ((set->count + 1) * 2 > set->capacity) {
		struct topology_set grown = { xcalloc(set->capacity ? set->capacity * 2 : 16,
			                              sizeof(struct topology_entry)),
			                      set->capacity ? set->capacity * 2 : 16, set->count };
		for (size_t i = 0; i < set->capacity; i++)
			if (set->entries[i].key)
				*topology_slot(&grown, set->entries[i].key, set->entries[i].value,
				               set->entries[i].hash) = set->entries[i];
		free(set->entries);
		*set = grown;
	}
	uint32_t hash = topology_hash(key, value);
	struct topology_entry *e = topology_slot(set, key, value, hash);
	if (!e->key) {
		*e = (struct topology_entry){ key, value, hash, 0 };
		set->count++;
	}
	e->count += count;
}

/* The count for (key, value), 0 when absent; *ret_found tells whether present. */
static int64_t topology_get(const struct topology_set *set, const char *key, const char *value, bool *ret_found)
{
	*ret_found = false;
	if (!set->count || !value)
		return 0;
	const struct topology_entry *e =
	        topology_slot((struct topology_set *)set, key, value, topology_hash(key, value));
	if (!e->key)
		return 0;
	*ret_found = true;
	return e->count;
}

static void topology_free(struct topology_set *set)
{
	free(set->entries);
	set->entries = NULL;
	set->capacity = set->count = 0;
}

/* ---- the snapshot ---- */

struct scheduler *scheduler_new(void)
{
	struct scheduler *s = xcalloc(1, sizeof(*s));
	s->pod = xcalloc(1, sizeof(*s->pod));
	return s;
}

static void node_forget_facts(struct node *node)
{
	cJSON_Delete(node->json);
	free(node->labels);
	free(node->taints);
	free(node->extended);
	free(node->requested_extended);
	node->json = NULL;
	node->labels = NULL;
	node->taints = NULL;
	node->extended = NULL;
	node->requested_extended = NULL;
	node->label_count = node->taint_count = node->extended_count = 0;
	node->has_prefer_no_schedule = false;
	node->cpu = node->memory = node->pods = 0;
}

static void node_account(struct node *node, const struct bound_pod *pod, int sign)
{
	node->requested_cpu += sign * pod->cpu;
	node->requested_memory += sign * pod->memory;
	node->nonzero_cpu += sign * pod->nonzero_cpu;
	node->nonzero_memory += sign * pod->nonzero_memory;
	node->requested_pods += sign;
	for (unsigned i = 0; i < pod->extended_count; i++)
		for (unsigned k = 0; k < node->extended_count; k++)
			if (strcmp(node->extended[k].name, pod->extended[i].name) == 0)
				node->requested_extended[k] += sign * pod->extended[i].amount;
}

static void node_recount(struct node *node)
{
	node->requested_cpu = node->requested_memory = node->requested_pods = 0;
	node->nonzero_cpu = node->nonzero_memory = 0;
	for (unsigned k = 0; k < node->extended_count; k++)
		node->requested_extended[k] = 0;
	for (struct bound_pod *p = node->bound; p; p = p->node_next)
		node_account(node, p, 1);
}

static void node_free(struct node *node)
{
	free(node->name);
	free(node);
}

static struct node *node_placeholder(struct scheduler *s, const char *name)
{
	struct node *node = (struct node *)hash_find(&s->node_index, name);
	if (node)
		return node;
	node = xcalloc(1, sizeof(*node));
	node->name = xstrdup(name);
	node->link.key = node->name;
	node->zone = -1;
	hash_insert(&s->node_index, &node->link);
	return node;
}

/* Drops a node that has neither a Node object nor pods. */
static void node_release_if_unused(struct scheduler *s, struct node *node)
{
	if (node->known || node->bound)
		return;
	hash_remove(&s->node_index, &node->link);
	node_free(node);
}

static int intern_zone(struct scheduler *s, const char *zone)
{
	for (size_t i = 0; i < s->zone_count; i++)
		if (strcmp(s->zones[i], zone) == 0)
			return (int)i;
	s->zones = xrealloc(s->zones, (s->zone_count + 1) * sizeof(*s->zones));
	s->zones[s->zone_count] = xstrdup(zone);
	return (int)s->zone_count++;
}

static bool node_ready(const cJSON *status)
{
	const cJSON *condition;
	cJSON_ArrayForEach(condition, child(status, "conditions"))
	{
		const char *type = string_of(condition, "type");
		if (type && strcmp(type, "Ready") == 0) {
			const char *value = string_of(condition, "status");
			return value && strcmp(value, "True") == 0;
		}
	}
	return false;
}

/* Reads a Node's facts into node (all or nothing). */
static int node_read(struct scheduler *s, struct node *node, const cJSON *json, struct error *err)
{
	const cJSON *metadata = child(json, "metadata");
	const cJSON *spec = child(json, "spec");
	const cJSON *status = child(json, "status");
	const cJSON *allocatable = child(status, "allocatable");
	if (!allocatable)
		allocatable = child(status, "capacity");
	cJSON *owned = cJSON_CreateObject();
	if (!owned)
		abort();
	const cJSON *parts[] = { child(metadata, "labels"), child(spec, "taints"), allocatable };
	const char *names[] = { "labels", "taints", "allocatable" };
	cJSON *copies[3] = { NULL, NULL, NULL };
	for (int i = 0; i < 3; i++) {
		if (parts[i]) {
			copies[i] = cJSON_Duplicate(parts[i], true);
			if (!copies[i])
				abort();
			cJSON_AddItemToObject(owned, names[i], copies[i]);
		}
	}
	int e = 0;
	struct label *labels = xcalloc(SCHEDULER_MAX_LABELS, sizeof(*labels));
	struct taint *taints = xcalloc(SCHEDULER_MAX_TAINTS, sizeof(*taints));
	struct resource *extended = xcalloc(SCHEDULER_MAX_EXTENDED, sizeof(*extended));
	unsigned label_count = 0, taint_count = 0, extended_count = 0;
	int64_t cpu = 0, memory = 0, pods = DEFAULT_POD_CAPACITY;
	bool prefer = false;
	e = parse_labels(copies[0], labels, SCHEDULER_MAX_LABELS, &label_count, "metadata.labels", err);
	if (e < 0)
		goto fail;
	const cJSON *item;
	cJSON_ArrayForEach(item, copies[1])
	{
		if (taint_count == SCHEDULER_MAX_TAINTS) {
			e = error_set_field(err, EINVAL, "spec.taints", "more than %d taints", SCHEDULER_MAX_TAINTS);
			goto fail;
		}
		bool ok;
		struct taint *t = &taints[taint_count];
		t->key = string_of(item, "key");
		t->value = string_of(item, "value");
		if (!t->value)
			t->value = "";
		t->effect = effect_of(string_of(item, "effect"), &ok);
		if (!t->key || !ok || t->effect == EFFECT_ANY) {
			e = error_set_field(err, EINVAL, "spec.taints", "taint %u: needs a key and an effect",
			                    taint_count);
			goto fail;
		}
		prefer |= t->effect == EFFECT_PREFER_NO_SCHEDULE;
		taint_count++;
	}
	cJSON_ArrayForEach(item, copies[2])
	{
		int64_t amount;
		if (!item->string || parse_quantity_json(item, resource_scale(item->string), &amount) < 0) {
			e = error_set_field(err, EINVAL, "status.allocatable", "%s: invalid quantity",
			                    item->string ? item->string : "");
			goto fail;
		}
		if (strcmp(item->string, "cpu") == 0)
			cpu = amount;
		else if (strcmp(item->string, "memory") == 0)
			memory = amount;
		else if (strcmp(item->string, "pods") == 0)
			pods = amount;
		else if ((e = add_resource(extended, &extended_count, item->string, amount, false, "status.allocatable",
		                           err)) < 0)
			goto fail;
	}
	node_forget_facts(node);
	/* parsed into the bounds, kept at their size: a thousand boards on a 1 GB board */
	labels = xrealloc(labels, (label_count + 1) * sizeof(*labels));
	taints = xrealloc(taints, (taint_count + 1) * sizeof(*taints));
	extended = xrealloc(extended, (extended_count + 1) * sizeof(*extended));
	node->json = owned;
	node->labels = labels;
	node->label_count = label_count;
	node->taints = taints;
	node->taint_count = taint_count;
	node->extended = extended;
	node->extended_count = extended_count;
	node->requested_extended = xcalloc(extended_count + 1, sizeof(int64_t));
	node->cpu = cpu;
	node->memory = memory;
	node->pods = pods;
	node->has_prefer_no_schedule = prefer;
	node->unschedulable = cJSON_IsTrue(child(spec, "unschedulable"));
	node->ready = node_ready(status);
	const char *zone = label_value(labels, label_count, ZONE_LABEL);
	if (!zone)
		zone = label_value(labels, label_count, ZONE_LABEL_BETA);
	node->zone = zone ? intern_zone(s, zone) : -1;
	node_recount(node);
	return 0;
fail:
	cJSON_Delete(owned);
	free(labels);
	free(taints);
	free(extended);
	return e;
}

static int node_put(struct scheduler *s, const cJSON *json, bool must_be_new, struct error *err)
{
	const char *name = string_of(child(json, "metadata"), "name");
	if (!is_set_string(name) || strlen(name) > SCHEDULER_NAME_MAX)
		return error_set_field(err, EINVAL, "metadata.name", "Required value: a node name");
	struct node *node = (struct node *)hash_find(&s->node_index, name);
	if (node && node->known && must_be_new)
		return error_set(err, EEXIST, "node %s is already known", name);
	bool created = !node;
	if (!node)
		node = node_placeholder(s, name);
	int e = node_read(s, node, json, err);
	if (e < 0) {
		if (created)
			node_release_if_unused(s, node);
		return error_prefix(err, "node %s: ", name), e;
	}
	if (!node->known) {
		node->known = true;
		if (s->node_count == s->node_capacity) {
			s->node_capacity = s->node_capacity ? s->node_capacity * 2 : 16;
			s->nodes = xrealloc(s->nodes, s->node_capacity * sizeof(*s->nodes));
		}
		node->index = s->node_count;
		s->nodes[s->node_count++] = node;
	}
	return 0;
}

int scheduler_add_node(struct scheduler *s, const cJSON *node, struct error *err)
{
	return node_put(s, node, true, err);
}

int scheduler_update_node(struct scheduler *s, const cJSON *node, struct error *err)
{
	return node_put(s, node, false, err);
}

int scheduler_remove_node(struct scheduler *s, const char *name)
{
	struct node *node = name ? (struct node *)hash_find(&s->node_index, name) : NULL;
	if (!node || !node->known)
		return -ENOENT;
	/* keep the nodes array dense: the last node takes the removed one's place */
	s->nodes[node->index] = s->nodes[--s->node_count];
	s->nodes[node->index]->index = node->index;
	node_forget_facts(node);
	node->known = false;
	node_recount(node);
	node_release_if_unused(s, node);
	return 0;
}

unsigned scheduler_node_count(const struct scheduler *s)
{
	return (unsigned)s->node_count;
}

unsigned scheduler_pod_count(const struct scheduler *s)
{
	return (unsigned)s->pod_count;
}

static void bound_pod_free(struct bound_pod *p)
{
	free(p->key);
	free(p->namespace);
	free(p->owner_uid);
	cJSON_Delete(p->labels_json);
	free(p->labels);
	for (unsigned i = 0; i < p->extended_count; i++)
		free((char *)p->extended[i].name);
	free(p->extended);
	for (unsigned i = 0; i < p->port_count; i++)
		free((char *)p->ports[i].host_ip);
	free(p->ports);
	if (p->anti) {
		cJSON_Delete(p->anti->json);
		free(p->anti->requirements);
		free(p->anti->terms);
		free(p->anti);
	}
	free(p);
}

static void pod_unlink(struct scheduler *s, struct bound_pod *p)
{
	hash_remove(&s->pod_index, &p->link);
	s->pods[p->index] = s->pods[--s->pod_count];
	s->pods[p->index]->index = p->index;
	if (p->anti) {
		s->anti_pods[p->anti_index] = s->anti_pods[--s->anti_count];
		s->anti_pods[p->anti_index]->anti_index = p->anti_index;
	}
	struct node *node = p->node;
	node_account(node, p, -1);
	if (p->node_prev)
		p->node_prev->node_next = p->node_next;
	else
		node->bound = p->node_next;
	if (p->node_next)
		p->node_next->node_prev = p->node_prev;
	if (p->owner) {
		struct owner *o = p->owner;
		if (strcmp(o->namespace, p->namespace) == 0)
			owner_count_add(o, node, -1);
		if (p->owner_prev)
			p->owner_prev->owner_next = p->owner_next;
		else
			o->pods = p->owner_next;
		if (p->owner_next)
			p->owner_next->owner_prev = p->owner_prev;
		if (!o->pods) {
			hash_remove(&s->owner_index, &o->link);
			free(o->uid);
			free(o->namespace);
			free(o->counts);
			free(o);
		}
	}
	node_release_if_unused(s, node);
}

static void grow(void **array, size_t *capacity, size_t count, size_t size)
{
	if (count < *capacity)
		return;
	*capacity = *capacity ? *capacity * 2 : 64;
	*array = xrealloc(*array, *capacity * size);
}

/* Keeps what later decisions need of a pod bound to node_name (scratch parse in s->pod). */
static int pod_bind(struct scheduler *s, const cJSON *json, const char *node_name, struct error *err)
{
	struct pod_facts *f = s->pod;
	int e = parse_pod(json, f, err);
	if (e < 0)
		return e;
	if (!is_set_string(node_name) || strlen(node_name) > SCHEDULER_NAME_MAX)
		return error_set_field(err, EINVAL, "spec.nodeName", "Required value: the pod is not bound");
	char *key = xasprintf("%s/%s", f->namespace, f->name);
	struct bound_pod *old = (struct bound_pod *)hash_find(&s->pod_index, key);
	if (old) {
		pod_unlink(s, old);
		bound_pod_free(old);
	}
	struct bound_pod *p = xcalloc(1, sizeof(*p));
	p->key = key;
	p->link.key = key;
	p->namespace = xstrdup(f->namespace);
	p->owner_uid = f->owner_uid ? xstrdup(f->owner_uid) : NULL;
	const cJSON *labels = child(child(json, "metadata"), "labels");
	if (f->label_count) {
		p->labels_json = cJSON_Duplicate(labels, true);
		if (!p->labels_json)
			abort();
		p->labels = xcalloc(f->label_count, sizeof(*p->labels));
		parse_labels(p->labels_json, p->labels, f->label_count, &p->label_count, "metadata.labels", NULL);
	}
	p->cpu = f->cpu;
	p->memory = f->memory;
	p->nonzero_cpu = f->nonzero_cpu;
	p->nonzero_memory = f->nonzero_memory;
	if (f->extended_count) {
		p->extended = xcalloc(f->extended_count, sizeof(*p->extended));
		for (unsigned i = 0; i < f->extended_count; i++)
			p->extended[i] = (struct resource){ xstrdup(f->extended[i].name), f->extended[i].amount };
		p->extended_count = f->extended_count;
	}
	if (f->port_count) {
		p->ports = xcalloc(f->port_count, sizeof(*p->ports));
		for (unsigned i = 0; i < f->port_count; i++) {
			p->ports[i] = f->ports[i];
			p->ports[i].host_ip = f->ports[i].host_ip ? xstrdup(f->ports[i].host_ip) : NULL;
		}
		p->port_count = f->port_count;
	}
	unsigned anti_terms = f->affinity.pod_term_count[REQUIRED_ANTI];
	if (anti_terms) {
		/* re-parse from a private copy so the terms' strings outlive the caller's JSON */
		struct anti_affinity *a = xcalloc(1, sizeof(*a));
		a->json = cJSON_Duplicate(child(json, "spec"), true);
		if (!a->json)
			abort();
		e = parse_affinity(a->json, &f->affinity, err);
		if (e < 0)
			abort(); /* parsed once already: cannot fail on an identical copy */
		a->requirements = xcalloc(f->affinity.requirement_count + 1, sizeof(*a->requirements));
		memcpy(a->requirements, f->affinity.requirements,
		       f->affinity.requirement_count * sizeof(*a->requirements));
		a->terms = xcalloc(anti_terms, sizeof(*a->terms));
		memcpy(a->terms, f->affinity.pod_terms[REQUIRED_ANTI], anti_terms * sizeof(*a->terms));
		a->term_count = anti_terms;
		p->anti = a;
		grow((void **)&s->anti_pods, &s->anti_capacity, s->anti_count, sizeof(*s->anti_pods));
		p->anti_index = s->anti_count;
		s->anti_pods[s->anti_count++] = p;
	}
	hash_insert(&s->pod_index, &p->link);
	grow((void **)&s->pods, &s->pod_capacity, s->pod_count, sizeof(*s->pods));
	p->index = s->pod_count;
	s->pods[s->pod_count++] = p;
	struct node *node = node_placeholder(s, node_name);
	p->node = node;
	p->node_next = node->bound;
	if (node->bound)
		node->bound->node_prev = p;
	node->bound = p;
	node_account(node, p, 1);
	if (p->owner_uid) {
		struct owner *o = (struct owner *)hash_find(&s->owner_index, p->owner_uid);
		if (!o) {
			o = xcalloc(1, sizeof(*o));
			o->uid = xstrdup(p->owner_uid);
			o->namespace = xstrdup(p->namespace);
			o->link.key = o->uid;
			hash_insert(&s->owner_index, &o->link);
		}
		if (strcmp(o->namespace, p->namespace) == 0)
			owner_count_add(o, node, 1);
		p->owner = o;
		p->owner_next = o->pods;
		if (o->pods)
			o->pods->owner_prev = p;
		o->pods = p;
	}
	return 0;
}

static bool pod_terminal(const cJSON *pod)
{
	const char *phase = string_of(child(pod, "status"), "phase");
	return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

int scheduler_remove_pod(struct scheduler *s, const cJSON *pod)
{
	const cJSON *metadata = child(pod, "metadata");
	const char *name = string_of(metadata, "name");
	const char *namespace = string_of(metadata, "namespace");
	if (!name)
		return -ENOENT;
	char *key = xasprintf("%s/%s", is_set_string(namespace) ? namespace : "default", name);
	struct bound_pod *p = (struct bound_pod *)hash_find(&s->pod_index, key);
	free(key);
	if (!p)
		return -ENOENT;
	pod_unlink(s, p);
	bound_pod_free(p);
	return 0;
}

int scheduler_add_pod(struct scheduler *s, const cJSON *pod, struct error *err)
{
	if (pod_terminal(pod)) {
		scheduler_remove_pod(s, pod);
		return 0;
	}
	return pod_bind(s, pod, string_of(child(pod, "spec"), "nodeName"), err);
}

int scheduler_assume(struct scheduler *s, const cJSON *pod, const char *node_name, struct error *err)
{
	return pod_bind(s, pod, node_name, err);
}

void scheduler_free(struct scheduler *s)
{
	if (!s)
		return;
	while (s->pod_count) {
		struct bound_pod *p = s->pods[s->pod_count - 1];
		pod_unlink(s, p);
		bound_pod_free(p);
	}
	while (s->node_count)
		scheduler_remove_node(s, s->nodes[s->node_count - 1]->name);
	for (size_t i = 0; i < s->zone_count; i++)
		free(s->zones[i]);
	free(s->zones);
	free(s->nodes);
	free(s->pods);
	free(s->anti_pods);
	free(s->node_index.buckets);
	free(s->pod_index.buckets);
	free(s->owner_index.buckets);
	free(s->pod);
	free(s->scored);
	free(s->zone_counts);
	free(s->reasons);
	free(s);
}

/* ---- a decision ---- */

/* What the pod's terms over other pods come to, computed before looking at nodes. */
struct pod_context {
	struct topology_set required[SCHEDULER_MAX_TERMS];   /* affinity: where matching pods are */
	bool required_satisfied_anywhere;                    /* no pod matches and the pod matches its own terms */
	struct topology_set anti[SCHEDULER_MAX_TERMS];       /* anti-affinity: where matching pods are */
	struct topology_set existing_anti;                   /* where bound pods' anti-affinity forbids it */
	const char *existing_anti_keys[SCHEDULER_MAX_TERMS]; /* the topology keys in existing_anti */
	unsigned existing_anti_key_count;
	struct topology_set preferred; /* (key, value) -> summed weights */
	const char *preferred_keys[2 * SCHEDULER_MAX_TERMS];
	unsigned preferred_key_count;
	bool has_pod_affinity;
};

/* Adds a topology key to a short list of distinct keys. The pod's own terms always fit;
 * bound pods' anti-affinity keys past SCHEDULER_MAX_TERMS distinct ones are not checked. */
static void note_key(const char **keys, unsigned *count, unsigned max, const char *key)
{
	for (unsigned k = 0; k < *count; k++)
		if (strcmp(keys[k], key) == 0)
			return;
	if (*count < max)
		keys[(*count)++] = key;
}

static const char *pod_node_topology(const struct bound_pod *p, const char *key)
{
	return p->node->known ? node_label(p->node, key) : NULL;
}

static void context_build(struct scheduler *s, const struct pod_facts *f, struct pod_context *c)
{
	memset(c, 0, sizeof(*c));
	const struct affinity *a = &f->affinity;
	for (size_t i = 0; i < s->anti_count; i++) {
		const struct bound_pod *p = s->anti_pods[i];
		for (unsigned t = 0; t < p->anti->term_count; t++) {
			const struct pod_term *term = &p->anti->terms[t];
			if (!pod_term_selects(p->anti->requirements, term, p->namespace, f->namespace, f->labels,
			                      f->label_count))
				continue;
			const char *value = pod_node_topology(p, term->topology_key);
			if (!value)
				continue;
			topology_add(&c->existing_anti, term->topology_key, value, 1);
			note_key(c->existing_anti_keys, &c->existing_anti_key_count, SCHEDULER_MAX_TERMS,
			         term->topology_key);
		}
	}
	unsigned lists_used = 0;
	for (int l = 0; l < TERM_LISTS; l++)
		lists_used += a->pod_term_count[l];
	c->has_pod_affinity = s->anti_count > 0 || lists_used > 0;
	if (!lists_used)
		return;
	bool any_match = false;
	for (size_t i = 0; i < s->pod_count; i++) {
		const struct bound_pod *p = s->pods[i];
		for (int l = 0; l < TERM_LISTS; l++) {
			for (unsigned t = 0; t < a->pod_term_count[l]; t++) {
				const struct pod_term *term = &a->pod_terms[l][t];
				if (!pod_term_selects(a->requirements, term, f->namespace, p->namespace, p->labels,
				                      p->label_count))
					continue;
				const char *value = pod_node_topology(p, term->topology_key);
				if (!value)
					continue;
				if (l == REQUIRED_AFFINITY)
					any_match = true; /* as kube-scheduler: only pods in a topology count */
				switch (l) {
				case REQUIRED_AFFINITY:
					topology_add(&c->required[t], term->topology_key, value, 1);
					break;
				case REQUIRED_ANTI:
					topology_add(&c->anti[t], term->topology_key, value, 1);
					break;
				case PREFERRED_AFFINITY:
					topology_add(&c->preferred, term->topology_key, value, term->weight);
					break;
				case PREFERRED_ANTI:
					topology_add(&c->preferred, term->topology_key, value, -term->weight);
					break;
				}
			}
		}
	}
	/* The first pod of a group that wants to be with its own kind can go anywhere. */
	if (!any_match && a->pod_term_count[REQUIRED_AFFINITY]) {
		bool self = true;
		for (unsigned t = 0; t < a->pod_term_count[REQUIRED_AFFINITY]; t++)
			self &= pod_term_selects(a->requirements, &a->pod_terms[REQUIRED_AFFINITY][t], f->namespace,
			                         f->namespace, f->labels, f->label_count);
		c->required_satisfied_anywhere = self;
	}
	for (int l = PREFERRED_AFFINITY; l <= PREFERRED_ANTI; l++) {
		for (unsigned t = 0; t < a->pod_term_count[l]; t++) {
			note_key(c->preferred_keys, &c->preferred_key_count, 2 * SCHEDULER_MAX_TERMS,
			         a->pod_terms[l][t].topology_key);
		}
	}
}

static void context_free(struct pod_context *c)
{
	for (int t = 0; t < SCHEDULER_MAX_TERMS; t++) {
		topology_free(&c->required[t]);
		topology_free(&c->anti[t]);
	}
	topology_free(&c->existing_anti);
	topology_free(&c->preferred);
}

static unsigned filter_node(const struct pod_facts *f, const struct pod_context *c, const struct node *node,
                            struct reason *out)
{
	if (node->unschedulable && !tolerated(f, "node.kubernetes.io/unschedulable", "", EFFECT_NO_SCHEDULE)) {
		out[0] = (struct reason){ REASON_UNSCHEDULABLE, NULL, NULL, 0 };
		return 1;
	}
	if (!node->ready && !tolerated(f, "node.kubernetes.io/not-ready", "", EFFECT_NO_SCHEDULE)) {
		out[0] = (struct reason){ REASON_NOT_READY, NULL, NULL, 0 };
		return 1;
	}
	for (unsigned i = 0; i < node->taint_count; i++) {
		const struct taint *t = &node->taints[i];
		if (t->effect == EFFECT_PREFER_NO_SCHEDULE || tolerated(f, t->key, t->value, t->effect))
			continue;
		out[0] = (struct reason){ REASON_TAINT, t->key, t->value, 0 };
		return 1;
	}
	if (!node_affinity_matches(&f->affinity, node)) {
		out[0] = (struct reason){ REASON_NODE_AFFINITY, NULL, NULL, 0 };
		return 1;
	}
	for (unsigned i = 0; i < f->port_count; i++) {
		for (const struct bound_pod *p = node->bound; p; p = p->node_next) {
			for (unsigned k = 0; k < p->port_count; k++) {
				if (ports_conflict(&f->ports[i], &p->ports[k])) {
					out[0] = (struct reason){ REASON_PORTS, NULL, NULL, 0 };
					return 1;
				}
			}
		}
	}
	unsigned n = 0;
	if (node->requested_pods + 1 > node->pods)
		out[n++] = (struct reason){ REASON_TOO_MANY_PODS, NULL, NULL, 0 };
	if (f->cpu > 0 && f->cpu > node->cpu - node->requested_cpu)
		out[n++] = (struct reason){ REASON_INSUFFICIENT, "cpu", NULL, 0 };
	if (f->memory > 0 && f->memory > node->memory - node->requested_memory)
		out[n++] = (struct reason){ REASON_INSUFFICIENT, "memory", NULL, 0 };
	for (unsigned i = 0; i < f->extended_count; i++) {
		int64_t allocatable = 0, requested = 0;
		if (f->extended[i].amount == 0)
			continue;
		for (unsigned k = 0; k < node->extended_count; k++) {
			if (strcmp(node->extended[k].name, f->extended[i].name) == 0) {
				allocatable = node->extended[k].amount;
				requested = node->requested_extended[k];
				break;
			}
		}
		if (f->extended[i].amount > allocatable - requested)
			out[n++] = (struct reason){ REASON_INSUFFICIENT, f->extended[i].name, NULL, 0 };
	}
	if (n)
		return n;
	if (!c->has_pod_affinity)
		return 0;
	bool found;
	for (unsigned k = 0; k < c->existing_anti_key_count; k++) {
		const char *key = c->existing_anti_keys[k];
		topology_get(&c->existing_anti, key, node_label(node, key), &found);
		if (found) {
			out[0] = (struct reason){ REASON_EXISTING_ANTI, NULL, NULL, 0 };
			return 1;
		}
	}
	const struct affinity *a = &f->affinity;
	if (!c->required_satisfied_anywhere) {
		for (unsigned t = 0; t < a->pod_term_count[REQUIRED_AFFINITY]; t++) {
			const char *key = a->pod_terms[REQUIRED_AFFINITY][t].topology_key;
			topology_get(&c->required[t], key, node_label(node, key), &found);
			if (!found) {
				out[0] = (struct reason){ REASON_POD_AFFINITY, NULL, NULL, 0 };
				return 1;
			}
		}
	} else {
		/* still, a node without the topology label cannot host the group */
		for (unsigned t = 0; t < a->pod_term_count[REQUIRED_AFFINITY]; t++) {
			if (!node_label(node, a->pod_terms[REQUIRED_AFFINITY][t].topology_key)) {
				out[0] = (struct reason){ REASON_POD_AFFINITY, NULL, NULL, 0 };
				return 1;
			}
		}
	}
	for (unsigned t = 0; t < a->pod_term_count[REQUIRED_ANTI]; t++) {
		const char *key = a->pod_terms[REQUIRED_ANTI][t].topology_key;
		topology_get(&c->anti[t], key, node_label(node, key), &found);
		if (found) {
			out[0] = (struct reason){ REASON_POD_ANTI, NULL, NULL, 0 };
			return 1;
		}
	}
	return 0;
}

static void tally(struct scheduler *s, const struct reason *r)
{
	for (size_t i = 0; i < s->reason_count; i++) {
		struct reason *t = &s->reasons[i];
		if (t->kind == r->kind && (t->a == r->a || (t->a && r->a && strcmp(t->a, r->a) == 0)) &&
		    (t->b == r->b || (t->b && r->b && strcmp(t->b, r->b) == 0))) {
			t->count++;
			return;
		}
	}
	grow((void **)&s->reasons, &s->reason_capacity, s->reason_count, sizeof(*s->reasons));
	s->reasons[s->reason_count] = *r;
	s->reasons[s->reason_count++].count = 1;
}

static char *reason_text(const struct reason *r)
{
	switch (r->kind) {
	case REASON_UNSCHEDULABLE:
		return xasprintf("%u node(s) were unschedulable", r->count);
	case REASON_NOT_READY:
		return xasprintf("%u node(s) were not ready", r->count);
	case REASON_TAINT:
		return xasprintf("%u node(s) had untolerated taint {%s: %s}", r->count, r->a, r->b);
	case REASON_NODE_AFFINITY:
		return xasprintf("%u node(s) didn't match Pod's node affinity/selector", r->count);
	case REASON_PORTS:
		return xasprintf("%u node(s) didn't have free ports for the requested pod ports", r->count);
	case REASON_TOO_MANY_PODS:
		return xasprintf("%u Too many pods", r->count);
	case REASON_INSUFFICIENT:
		return xasprintf("%u Insufficient %s", r->count, r->a);
	case REASON_EXISTING_ANTI:
		return xasprintf("%u node(s) didn't satisfy existing pods anti-affinity rules", r->count);
	case REASON_POD_AFFINITY:
		return xasprintf("%u node(s) didn't match pod affinity rules", r->count);
	case REASON_POD_ANTI:
		return xasprintf("%u node(s) didn't match pod anti-affinity rules", r->count);
	}
	return xstrdup("");
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void write_message(struct scheduler *s, struct scheduler_result *result)
{
	struct buffer b = BUFFER_INIT;
	if (s->node_count == 0) {
		buffer_printf(&b, "0/0 nodes are available: no nodes available to schedule pods.");
	} else {
		buffer_printf(&b, "0/%zu nodes are available:", s->node_count);
		char **texts = xcalloc(s->reason_count + 1, sizeof(*texts));
		for (size_t i = 0; i < s->reason_count; i++)
			texts[i] = reason_text(&s->reasons[i]);
		qsort(texts, s->reason_count, sizeof(*texts), compare_strings);
		for (size_t i = 0; i < s->reason_count; i++) {
			buffer_printf(&b, "%s%s", i ? ", " : " ", texts[i]);
			free(texts[i]);
		}
		free(texts);
		buffer_append_string(&b, ".");
	}
	if (b.length >= sizeof(result->message)) {
		memcpy(result->message, b.data, sizeof(result->message) - 4);
		strcpy(result->message + sizeof(result->message) - 4, "...");
	} else {
		memcpy(result->message, b.data, b.length + 1);
	}
	buffer_free(&b);
}

static int64_t least_allocated(int64_t allocatable, int64_t requested)
{
	if (allocatable <= 0 || requested > allocatable)
		return 0;
	if (allocatable > INT64_MAX / MAX_SCORE)
		return (allocatable - requested) / (allocatable / MAX_SCORE);
	return (allocatable - requested) * MAX_SCORE / allocatable;
}

static bool term_weighs(const struct affinity *a, const struct node_term *t, const struct node *node)
{
	return node_term_matches(a, t, node);
}

/* Raw scores for a feasible node; normalised across nodes afterwards. */
static void score_node(struct scheduler *s, const struct pod_facts *f, const struct pod_context *c, struct scored *out)
{
	const struct node *node = out->node;
	out->least = (least_allocated(node->cpu, node->nonzero_cpu + f->nonzero_cpu) +
	              least_allocated(node->memory, node->nonzero_memory + f->nonzero_memory)) /
	             2;
	out->spread = node->epoch == s->epoch ? node->owner_count : 0;
	out->node_affinity = 0;
	for (unsigned i = 0; i < f->affinity.preferred_node_count; i++)
		if (term_weighs(&f->affinity, &f->affinity.preferred_node[i], node))
			out->node_affinity += f->affinity.preferred_node[i].weight;
	out->pod_affinity = 0;
	for (unsigned k = 0; k < c->preferred_key_count; k++) {
		bool found;
		out->pod_affinity += topology_get(&c->preferred, c->preferred_keys[k],
		                                  node_label(node, c->preferred_keys[k]), &found);
	}
	out->taints = 0;
	for (unsigned i = 0; i < node->taint_count; i++) {
		const struct taint *t = &node->taints[i];
		if (t->effect == EFFECT_PREFER_NO_SCHEDULE &&
		    !tolerated(f, t->key, t->value, EFFECT_PREFER_NO_SCHEDULE))
			out->taints++;
	}
}

/* Counts the owner's pods per node (node->owner_count, stamped with the epoch) and zone. */
static void count_owner(struct scheduler *s, const struct pod_facts *f)
{
	if (s->zone_capacity < s->zone_count + 1) {
		s->zone_capacity = s->zone_count + 16;
		s->zone_counts = xrealloc(s->zone_counts, s->zone_capacity * sizeof(*s->zone_counts));
	}
	memset(s->zone_counts, 0, (s->zone_count + 1) * sizeof(*s->zone_counts));
	const struct owner *o = f->owner_uid ? (const struct owner *)hash_find(&s->owner_index, f->owner_uid) : NULL;
	if (o && strcmp(o->namespace, f->namespace) == 0) {
		for (size_t i = 0; i < o->count_count; i++) {
			struct node *node = o->counts[i].node;
			node->epoch = s->epoch;
			node->owner_count = o->counts[i].count;
			if (node->known && node->zone >= 0)
				s->zone_counts[node->zone] += o->counts[i].count;
		}
		return;
	}
	for (const struct bound_pod *p = o ? o->pods : NULL; p; p = p->owner_next) {
		/* SelectorSpread counts the owner's pods of the same namespace only */
		if (strcmp(p->namespace, f->namespace) != 0)
			continue;
		struct node *node = p->node;
		if (node->epoch != s->epoch) {
			node->epoch = s->epoch;
			node->owner_count = 0;
		}
		node->owner_count++;
		if (node->known && node->zone >= 0)
			s->zone_counts[node->zone]++;
	}
}

/* Turns raw scores into 0..100 per plugin and the weighted total. Divisions are kept out of
 * the per-node loop where a plugin is constant or can be worked out per zone. */
static void normalise(struct scheduler *s, size_t n, bool have_owner)
{
	int64_t max_spread = 0, max_zone = 0, max_node_affinity = 0, max_taints = 0;
	int64_t min_pod = INT64_MAX, max_pod = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		const struct scored *c = &s->scored[i];
		max_spread = max64(max_spread, c->spread);
		if (c->node->zone >= 0)
			max_zone = max64(max_zone, s->zone_counts[c->node->zone]);
		max_node_affinity = max64(max_node_affinity, c->node_affinity);
		max_taints = max64(max_taints, c->taints);
		min_pod = c->pod_affinity < min_pod ? c->pod_affinity : min_pod;
		max_pod = max64(max_pod, c->pod_affinity);
	}
	/* zone counts become zone scores: fewer of the owner's pods in the zone, higher */
	for (size_t z = 0; z < s->zone_count; z++)
		s->zone_counts[z] = max_zone > 0 ? MAX_SCORE * (max_zone - s->zone_counts[z]) / max_zone : MAX_SCORE;
	bool plain = max_node_affinity == 0 && max_pod == min_pod && max_taints == 0;
	for (size_t i = 0; i < n; i++) {
		struct scored *c = &s->scored[i];
		int64_t spread = MAX_SCORE;
		if (have_owner) {
			if (max_spread > 0 && c->spread > 0)
				spread = MAX_SCORE * (max_spread - c->spread) / max_spread;
			/* SelectorSpread: a zone weighs 2/3; a node outside every zone keeps its own score */
			if (c->node->zone >= 0)
				spread = (spread + 2 * s->zone_counts[c->node->zone]) / 3;
		}
		c->total = WEIGHT_LEAST_ALLOCATED * c->least + WEIGHT_SPREAD * spread;
		if (plain)
			continue; /* the other plugins give every node the same score */
		int64_t node_affinity = max_node_affinity > 0 ? c->node_affinity * MAX_SCORE / max_node_affinity : 0;
		int64_t pod_affinity =
		        max_pod > min_pod ? (c->pod_affinity - min_pod) * MAX_SCORE / (max_pod - min_pod) : 0;
		int64_t taints = max_taints > 0 ? MAX_SCORE - c->taints * MAX_SCORE / max_taints : MAX_SCORE;
		c->total += WEIGHT_NODE_AFFINITY * node_affinity + WEIGHT_POD_AFFINITY * pod_affinity +
		            WEIGHT_TAINT * taints;
	}
}

#define MIN_FEASIBLE_TO_FIND 100

/* How many feasible nodes are enough among n (kube-scheduler's numFeasibleNodesToFind). */
static size_t feasible_to_find(size_t n)
{
	if (n < MIN_FEASIBLE_TO_FIND)
		return n;
	size_t percentage = n / 125 >= 45 ? 5 : 50 - n / 125;
	size_t wanted = n * percentage / 100;
	return wanted < MIN_FEASIBLE_TO_FIND ? MIN_FEASIBLE_TO_FIND : wanted;
}

int scheduler_schedule(struct scheduler *s, const cJSON *pod, struct scheduler_result *ret_result, struct error *err)
{
	struct pod_facts *f = s->pod;
	int e = parse_pod(pod, f, err);
	if (e < 0)
		return e;
	struct scheduler_result *result = ret_result;
	memset(result, 0, sizeof(*result));
	result->nodes = (unsigned)s->node_count;
	if (s->scored_capacity < s->node_count) {
		s->scored_capacity = s->node_count;
		s->scored = xrealloc(s->scored, s->scored_capacity * sizeof(*s->scored));
	}
	struct pod_context *c = xmalloc(sizeof(*c));
	context_build(s, f, c);
	s->epoch++;
	count_owner(s, f);
	s->reason_count = 0;
	size_t feasible = 0;
	struct reason reasons[REASONS_PER_NODE];
	size_t wanted = feasible_to_find(s->node_count), examined = 0;
	if (s->next_start >= s->node_count)
		s->next_start = 0;
	for (; examined < s->node_count && feasible < wanted; examined++) {
		struct node *node = s->nodes[(s->next_start + examined) % s->node_count];
		unsigned n = filter_node(f, c, node, reasons);
		if (n) {
			for (unsigned k = 0; k < n; k++)
				tally(s, &reasons[k]);
			continue;
		}
		s->scored[feasible].node = node;
		score_node(s, f, c, &s->scored[feasible]);
		feasible++;
	}
	if (s->node_count)
		s->next_start = (s->next_start + examined) % s->node_count;
	result->feasible = (unsigned)feasible;
	if (!feasible) {
		write_message(s, result);
		context_free(c);
		free(c);
		return 0;
	}
	normalise(s, feasible, f->owner_uid != NULL);
	int64_t best = INT64_MIN;
	size_t ties = 0;
	for (size_t i = 0; i < feasible; i++) {
		if (s->scored[i].total > best) {
			best = s->scored[i].total;
			ties = 0;
		}
		if (s->scored[i].total == best)
			s->scored[ties++] = s->scored[i]; /* ties collect at the front, in node order */
	}
	uint32_t h = hash_string(f->namespace) * 31u + hash_string(f->name);
	const struct node *chosen = s->scored[h % ties].node;
	result->scheduled = true;
	snprintf(result->node_name, sizeof(result->node_name), "%s", chosen->name);
	context_free(c);
	free(c);
	return 0;
}
