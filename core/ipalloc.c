/* See ipalloc.h. */
#include "core/ipalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/memory.h"

/* Services and ports read per admission at most; a cluster of boards has far fewer. */
#define IPALLOC_MAX_TAKEN 65536

struct settings {
	uint32_t cluster, service; /* host order */
	unsigned cluster_prefix, service_prefix, node_mask;
	unsigned port_min, port_max;
};

static uint32_t mask_of(unsigned prefix)
{
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

static void text_of(uint32_t address, char out[INET_ADDRSTRLEN])
{
	struct in_addr a = { htonl(address) };
	inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

int ipalloc_parse_cidr(const char *text, uint32_t *ret_network, unsigned *ret_prefix, struct error *err)
{
	char address[INET_ADDRSTRLEN];
	const char *slash = text ? strchr(text, '/') : NULL;
	if (!slash || (size_t)(slash - text) >= sizeof(address))
		return error_set(err, EINVAL, "'%s' is not a CIDR: write 10.42.0.0/16", text ? text : "");
	memcpy(address, text, (size_t)(slash - text));
	address[slash - text] = '\0';
	char *end;
	unsigned long prefix = strtoul(slash + 1, &end, 10);
	struct in_addr a;
	if (inet_pton(AF_INET, address, &a) != 1 || end == slash + 1 || *end || prefix > 32)
		return error_set(err, EINVAL, "'%s' is not an IPv4 CIDR: write 10.42.0.0/16", text);
	uint32_t network = ntohl(a.s_addr);
	if (network & ~mask_of((unsigned)prefix))
		return error_set(err, EINVAL, "'%s' has host bits set: the network is %s/%lu", text,
		                 inet_ntop(AF_INET, &(struct in_addr){ htonl(network & mask_of((unsigned)prefix)) },
		                           address, sizeof(address)),
		                 prefix);
	*ret_network = network;
	*ret_prefix = (unsigned)prefix;
	return 0;
}

bool ipalloc_cidrs_overlap(uint32_t a, unsigned a_prefix, uint32_t b, unsigned b_prefix)
{
	uint32_t mask = mask_of(a_prefix < b_prefix ? a_prefix : b_prefix);
	return (a & mask) == (b & mask);
}

static int load_settings(const struct ipalloc_config *config, struct settings *s, struct error *err)
{
	const char *cluster = config && config->cluster_cidr && config->cluster_cidr[0] ? config->cluster_cidr
	                                                                                : IPALLOC_DEFAULT_CLUSTER_CIDR;
	const char *service = config && config->service_cidr && config->service_cidr[0] ? config->service_cidr
	                                                                                : IPALLOC_DEFAULT_SERVICE_CIDR;
	s->node_mask = config && config->node_cidr_mask ? config->node_cidr_mask : IPALLOC_DEFAULT_NODE_MASK;
	s->port_min = config && config->node_port_min ? config->node_port_min : IPALLOC_DEFAULT_NODE_PORT_MIN;
	s->port_max = config && config->node_port_max ? config->node_port_max : IPALLOC_DEFAULT_NODE_PORT_MAX;
	if (ipalloc_parse_cidr(cluster, &s->cluster, &s->cluster_prefix, err) < 0)
		return error_prefix(err, "cluster-cidr");
	if (ipalloc_parse_cidr(service, &s->service, &s->service_prefix, err) < 0)
		return error_prefix(err, "service-cidr");
	if (s->cluster_prefix < 8 || s->cluster_prefix > 28)
		return error_set(err, EINVAL, "cluster-cidr %s: the prefix must be /8 to /28", cluster);
	if (s->service_prefix < 12 || s->service_prefix > 30)
		return error_set(err, EINVAL, "service-cidr %s: the prefix must be /12 to /30", service);
	if (ipalloc_cidrs_overlap(s->cluster, s->cluster_prefix, s->service, s->service_prefix))
		return error_set(err, EINVAL,
		                 "service-cidr %s overlaps cluster-cidr %s: pod and Service addresses "
		                 "must not mix",
		                 service, cluster);
	if (s->node_mask < s->cluster_prefix || s->node_mask > 29)
		return error_set(err, EINVAL, "node-cidr-mask /%u must lie between the cluster-cidr's /%u and /29",
		                 s->node_mask, s->cluster_prefix);
	if (s->port_min < 1 || s->port_max > 65535 || s->port_min > s->port_max)
		return error_set(err, EINVAL, "node-port-range %u-%u is empty or outside 1-65535", s->port_min,
		                 s->port_max);
	return 0;
}

int ipalloc_check_config(const struct ipalloc_config *config, struct error *err)
{
	struct settings s;
	return load_settings(config, &s, err);
}

/* --- node CIDRs ---------------------------------------------------------------------------- */

int ipalloc_node_cidr(const struct ipalloc_config *config, const char *const *taken, size_t count,
                      char ret_cidr[IPALLOC_CIDR_TEXT], struct error *err)
{
	struct settings s;
	int r = load_settings(config, &s, err);
	if (r < 0)
		return r;
	uint32_t *networks = xcalloc(count ? count : 1, sizeof(*networks));
	unsigned *prefixes = xcalloc(count ? count : 1, sizeof(*prefixes));
	size_t n = 0;
	for (size_t i = 0; i < count; i++)
		if (taken[i] && ipalloc_parse_cidr(taken[i], &networks[n], &prefixes[n], NULL) == 0)
			n++;
	uint64_t blocks = 1ull << (s.node_mask - s.cluster_prefix);
	r = -ENOSPC;
	for (uint64_t b = 0; b < blocks && r < 0; b++) {
		uint32_t block = s.cluster + (uint32_t)(b << (32 - s.node_mask));
		bool free_block = true;
		for (size_t i = 0; i < n && free_block; i++)
			free_block = !ipalloc_cidrs_overlap(block, s.node_mask, networks[i], prefixes[i]);
		if (free_block) {
			char text[INET_ADDRSTRLEN];
			text_of(block, text);
			snprintf(ret_cidr, IPALLOC_CIDR_TEXT, "%s/%u", text, s.node_mask);
			r = 0;
		}
	}
	free(networks);
	free(prefixes);
	if (r < 0) {
		char text[INET_ADDRSTRLEN];
		text_of(s.cluster, text);
		return error_set(err, ENOSPC,
		                 "no pod CIDR left: all %llu /%u blocks of the cluster CIDR %s/%u are taken",
		                 (unsigned long long)blocks, s.node_mask, text, s.cluster_prefix);
	}
	return 0;
}

/* --- what other objects hold ------------------------------------------------------------- */

struct taken {
	const char *namespace, *name; /* the object being admitted: not counted */
	uint32_t *values;
	size_t count, capacity;
	bool addresses; /* collect ClusterIPs (else nodePorts) */
	char **texts;   /* node CIDRs (for nodes) */
	size_t text_count;
};

static void taken_add(struct taken *t, uint32_t value)
{
	if (t->count >= IPALLOC_MAX_TAKEN)
		return;
	if (t->count == t->capacity) {
		t->capacity = t->capacity ? t->capacity * 2 : 64;
		t->values = xrealloc(t->values, t->capacity * sizeof(*t->values));
	}
	t->values[t->count++] = value;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool taken_has(const struct taken *t, uint32_t value)
{
	return t->count > 0 && bsearch(&value, t->values, t->count, sizeof(uint32_t), compare_u32) != NULL;
}

static bool is_self(const struct taken *t, const cJSON *object)
{
	const char *ns = object_namespace(object), *name = object_name(object);
	return name && t->name && strcmp(name, t->name) == 0 &&
	       strcmp(ns ? ns : "", t->namespace ? t->namespace : "") == 0;
}

static int collect_service(const char *text, size_t length, void *data)
{
	struct taken *t = data;
	cJSON *service = cJSON_ParseWithLength(text, length);
	if (!service)
		return 0;
	if (!is_self(t, service)) {
		const cJSON *spec = cJSON_GetObjectItemCaseSensitive(service, "spec");
		if (t->addresses) {
			const char *ip = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "clusterIP"));
			struct in_addr a;
			if (ip && inet_pton(AF_INET, ip, &a) == 1)
				taken_add(t, ntohl(a.s_addr));
		} else {
			const cJSON *port;
			cJSON_ArrayForEach(port, cJSON_GetObjectItemCaseSensitive(spec, "ports"))
			{
				const cJSON *np = cJSON_GetObjectItemCaseSensitive(port, "nodePort");
				if (cJSON_IsNumber(np) && np->valuedouble > 0 && np->valuedouble <= 65535)
					taken_add(t, (uint32_t)np->valuedouble);
			}
		}
	}
	cJSON_Delete(service);
	return 0;
}

static int read_taken(struct store *store, struct taken *t, struct error *err)
{
	int r = store_list(store, "services", NULL, NULL, 0, collect_service, t, NULL, err);
	if (r < 0)
		return error_prefix(err, "reading the Services' addresses");
	if (t->count)
		qsort(t->values, t->count, sizeof(uint32_t), compare_u32);
	return 0;
}

static uint32_t hash_of(const char *a, const char *b, unsigned salt)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = a ? a : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = b ? b : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return (h ^ salt) * 16777619u;
}

/* --- Services ------------------------------------------------------------------------------- */

static cJSON *spec_of(const cJSON *object)
{
	return cJSON_GetObjectItemCaseSensitive(object, "spec");
}

static void set_string(cJSON *object, const char *key, const char *value)
{
	cJSON *item = cJSON_CreateString(value);
	if (cJSON_GetObjectItemCaseSensitive(object, key))
		cJSON_ReplaceItemInObjectCaseSensitive(object, key, item);
	else
		cJSON_AddItemToObject(object, key, item);
}

static void set_list_of_one(cJSON *object, const char *key, const char *value)
{
	cJSON *list = cJSON_CreateArray();
	cJSON_AddItemToArray(list, cJSON_CreateString(value));
	if (cJSON_GetObjectItemCaseSensitive(object, key))
		cJSON_ReplaceItemInObjectCaseSensitive(object, key, list);
	else
		cJSON_AddItemToObject(object, key, list);
}

static int admit_cluster_ip(struct store *store, const struct settings *s, const cJSON *old, cJSON *service,
                            struct error *err)
{
	cJSON *spec = spec_of(service);
	const char *requested = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "clusterIP"));
	const char *first =
	        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(spec, "clusterIPs"), 0));
	if (requested && !requested[0])
		requested = NULL;
	if (first && first[0] && requested && strcmp(first, requested) != 0)
		return error_set_field(err, EINVAL, "spec.clusterIPs[0]",
		                       "Invalid value: \"%s\": must match `clusterIP` (%s)", first, requested);
	if (!requested && first && first[0])
		requested = first;
	const char *kept =
	        old ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec_of(old), "clusterIP")) : NULL;
	if (kept && kept[0]) {
		if (requested && strcmp(requested, kept) != 0)
			return error_set_field(err, EINVAL, "spec.clusterIP",
			                       "Invalid value: \"%s\": field is immutable", requested);
		char copy[INET_ADDRSTRLEN + 8];
		snprintf(copy, sizeof(copy), "%s", kept);
		set_string(spec, "clusterIP", copy);
		set_list_of_one(spec, "clusterIPs", copy);
		return 0;
	}
	char text[INET_ADDRSTRLEN];
	if (requested && strcmp(requested, "None") == 0) {
		set_string(spec, "clusterIP", "None");
		set_list_of_one(spec, "clusterIPs", "None");
		return 0;
	}
	uint32_t size = 1u << (32 - s->service_prefix);
	char range[INET_ADDRSTRLEN];
	text_of(s->service, range);
	struct taken t = { .namespace = object_namespace(service), .name = object_name(service), .addresses = true };
	int r = read_taken(store, &t, err);
	if (r < 0)
		goto out;
	uint32_t chosen = 0;
	if (requested) {
		struct in_addr a;
		snprintf(text, sizeof(text), "%.15s", requested);
		uint32_t offset = 0;
		if (inet_pton(AF_INET, requested, &a) == 1)
			offset = ntohl(a.s_addr) - s->service;
		if (inet_pton(AF_INET, requested, &a) != 1 || ntohl(a.s_addr) < s->service || offset == 0 ||
		    offset >= size - 1) {
			r = error_set_field(
			        err, EINVAL, "spec.clusterIP",
			        "Invalid value: \"%s\": provided IP is not in the valid range. The range of "
			        "valid IPs is %s/%u",
			        requested, range, s->service_prefix);
			goto out;
		}
		if (taken_has(&t, ntohl(a.s_addr))) {
			r = error_set_field(err, EINVAL, "spec.clusterIP",
			                    "Invalid value: \"%s\": provided IP is already allocated", requested);
			goto out;
		}
		chosen = ntohl(a.s_addr);
	} else {
		/* offsets 2 .. size-2: not the network, the first (kept for `kubernetes`), the broadcast */
		uint32_t usable = size - 3;
		uint32_t start = hash_of(object_namespace(service), object_name(service), 0) % usable;
		r = -ENOSPC;
		for (uint32_t i = 0; i < usable && r < 0; i++) {
			uint32_t candidate = s->service + 2 + (start + i) % usable;
			if (!taken_has(&t, candidate)) {
				chosen = candidate;
				r = 0;
			}
		}
		if (r < 0) {
			r = error_set_field(err, ENOSPC, "spec.clusterIP",
			                    "Internal error: no ClusterIP left in the service CIDR %s/%u (%u taken)",
			                    range, s->service_prefix, usable);
			goto out;
		}
	}
	text_of(chosen, text);
	set_string(spec, "clusterIP", text);
	set_list_of_one(spec, "clusterIPs", text);
out:
	free(t.values);
	return r;
}

static const char *protocol_of(const cJSON *port)
{
	const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(port, "protocol"));
	return p ? p : "TCP";
}

static int number_of(const cJSON *port, const char *key)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(port, key);
	return cJSON_IsNumber(n) ? (int)n->valuedouble : 0;
}

/* The nodePort the stored Service gave this port (same port number and protocol). */
static int old_node_port(const cJSON *old, const cJSON *port)
{
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec_of(old), "type"));
	if (!old || !type || strcmp(type, "NodePort") != 0)
		return 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(spec_of(old), "ports"))
	{
		if (number_of(item, "port") == number_of(port, "port") &&
		    strcmp(protocol_of(item), protocol_of(port)) == 0)
			return number_of(item, "nodePort");
	}
	return 0;
}

static void set_number(cJSON *object, const char *key, double value)
{
	cJSON *item = cJSON_CreateNumber(value);
	if (cJSON_GetObjectItemCaseSensitive(object, key))
		cJSON_ReplaceItemInObjectCaseSensitive(object, key, item);
	else
		cJSON_AddItemToObject(object, key, item);
}

void ipalloc_prepare_update(const char *kind, const cJSON *old, cJSON *service)
{
	if (strcmp(kind, "Service") != 0 || !old)
		return;
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec_of(service), "type"));
	if (type && strcmp(type, "NodePort") == 0)
		return;
	const cJSON *port;
	cJSON_ArrayForEach(port, cJSON_GetObjectItemCaseSensitive(spec_of(service), "ports"))
	{
		int kept = old_node_port(old, port);
		if (kept && number_of(port, "nodePort") == kept)
			cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)port, "nodePort");
	}
}

static int admit_node_ports(struct store *store, const struct settings *s, const cJSON *old, cJSON *service,
                            struct error *err)
{
	cJSON *spec = spec_of(service);
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "type"));
	if (!type || strcmp(type, "NodePort") != 0)
		return 0;
	cJSON *ports = cJSON_GetObjectItemCaseSensitive(spec, "ports");
	int count = cJSON_GetArraySize(ports);
	struct taken t = { .namespace = object_namespace(service), .name = object_name(service) };
	int r = read_taken(store, &t, err);
	if (r < 0)
		goto out;
	/* first the ports asked for or kept, then new ones around them */
	int *chosen = xcalloc((size_t)(count ? count : 1), sizeof(int));
	for (int i = 0; i < count && r == 0; i++) {
		cJSON *port = cJSON_GetArrayItem(ports, i);
		int wanted = number_of(port, "nodePort");
		int kept = old_node_port(old, port);
		char field[64];
		snprintf(field, sizeof(field), "spec.ports[%d].nodePort", i);
		if (wanted == 0)
			wanted = kept;
		if (wanted == 0)
			continue;
		if (wanted != kept && (wanted < (int)s->port_min || wanted > (int)s->port_max))
			r = error_set_field(err, EINVAL, field,
			                    "Invalid value: %d: provided port is not in the valid range. The range of "
			                    "valid ports is %u-%u",
			                    wanted, s->port_min, s->port_max);
		else if (taken_has(&t, (uint32_t)wanted))
			r = error_set_field(err, EINVAL, field, "Invalid value: %d: provided port is already allocated",
			                    wanted);
		for (int j = 0; j < i && r == 0; j++)
			if (chosen[j] == wanted &&
			    strcmp(protocol_of(cJSON_GetArrayItem(ports, j)), protocol_of(port)) == 0)
				r = error_set_field(err, EINVAL, field, "Duplicate value: %d", wanted);
		chosen[i] = wanted;
	}
	uint32_t range = s->port_max - s->port_min + 1;
	for (int i = 0; i < count && r == 0; i++) {
		if (chosen[i])
			continue;
		uint32_t start = hash_of(object_namespace(service), object_name(service), (unsigned)i + 1) % range;
		r = -ENOSPC;
		for (uint32_t k = 0; k < range && r < 0; k++) {
			int candidate = (int)(s->port_min + (start + k) % range);
			bool used = taken_has(&t, (uint32_t)candidate);
			for (int j = 0; j < count && !used; j++)
				used = chosen[j] == candidate;
			if (!used) {
				chosen[i] = candidate;
				r = 0;
			}
		}
		if (r < 0)
			r = error_set_field(err, ENOSPC, "spec.ports", "no NodePort left in %u-%u", s->port_min,
			                    s->port_max);
	}
	for (int i = 0; i < count && r == 0; i++)
		set_number(cJSON_GetArrayItem(ports, i), "nodePort", chosen[i]);
	free(chosen);
out:
	free(t.values);
	return r;
}

/* --- Nodes ---------------------------------------------------------------------------------- */

struct node_search {
	const char *name;
	uint32_t network;
	unsigned prefix;
	char holder[254];
};

static int find_overlapping_node(const char *text, size_t length, void *data)
{
	struct node_search *search = data;
	cJSON *node = cJSON_ParseWithLength(text, length);
	if (!node)
		return 0;
	const char *name = object_name(node);
	const char *cidr = object_string_at(node, "spec.podCIDR");
	uint32_t network;
	unsigned prefix;
	int r = 0;
	if (name && strcmp(name, search->name) != 0 && cidr && ipalloc_parse_cidr(cidr, &network, &prefix, NULL) == 0 &&
	    ipalloc_cidrs_overlap(network, prefix, search->network, search->prefix)) {
		snprintf(search->holder, sizeof(search->holder), "%s", name);
		r = -1;
	}
	cJSON_Delete(node);
	return r;
}

static int admit_node(struct store *store, const cJSON *old, cJSON *node, struct error *err)
{
	cJSON *spec = spec_of(node);
	const char *kept = old ? object_string_at(old, "spec.podCIDR") : NULL;
	const char *cidr = object_string_at(node, "spec.podCIDR");
	if (kept && kept[0]) {
		if (cidr && cidr[0] && strcmp(cidr, kept) != 0)
			return error_set_field(err, EINVAL, "spec.podCIDR",
			                       "Forbidden: node updates may not change podCIDR except from \"\" to "
			                       "valid");
		if (!cJSON_IsObject(spec)) {
			spec = cJSON_CreateObject();
			cJSON_DeleteItemFromObjectCaseSensitive(node, "spec");
			cJSON_AddItemToObject(node, "spec", spec);
		}
		char copy[IPALLOC_CIDR_TEXT + 8];
		snprintf(copy, sizeof(copy), "%s", kept);
		set_string(spec, "podCIDR", copy);
		set_list_of_one(spec, "podCIDRs", copy);
		return 0;
	}
	if (!cidr || !cidr[0])
		return 0;
	struct node_search search = { .name = object_name(node) ? object_name(node) : "" };
	struct error parse = { 0 };
	int r = ipalloc_parse_cidr(cidr, &search.network, &search.prefix, &parse);
	if (r < 0)
		return error_set_field(err, EINVAL, "spec.podCIDR", "Invalid value: \"%s\": %s", cidr, parse.message);
	r = store_list(store, "nodes", NULL, NULL, 0, find_overlapping_node, &search, NULL, err);
	if (r < 0 && !search.holder[0])
		return r;
	if (search.holder[0])
		return error_set_field(err, EINVAL, "spec.podCIDR",
		                       "Invalid value: \"%s\": overlaps the pod CIDR of node %s", cidr, search.holder);
	char copy[IPALLOC_CIDR_TEXT + 8];
	snprintf(copy, sizeof(copy), "%s", cidr);
	set_list_of_one(spec, "podCIDRs", copy);
	return 0;
}

int ipalloc_admit(struct store *store, const struct ipalloc_config *config, const char *kind, const cJSON *old,
                  cJSON *object, struct error *err)
{
	if (strcmp(kind, "Node") == 0)
		return admit_node(store, old, object, err);
	if (strcmp(kind, "Service") != 0 || !cJSON_IsObject(spec_of(object)))
		return 0;
	struct settings s;
	int r = load_settings(config, &s, err);
	if (r < 0)
		return r;
	if ((r = admit_cluster_ip(store, &s, old, object, err)) < 0)
		return r;
	return admit_node_ports(store, &s, old, object, err);
}
