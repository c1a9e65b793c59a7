/* The Endpoints controller: for each Service with a selector, an Endpoints object of the
 * same name listing the pods it selects, as Kubernetes' EndpointController writes it.
 *
 * Queued: a Service that changed; every Service of a pod's namespace whose selector matches
 * the pod before or after a change that matters (labels, IP, readiness, phase, deletion);
 * a Service whose Endpoints someone else changed or deleted.
 *
 * sync(namespace/name):
 *   Service gone         its Endpoints are deleted
 *   no selector          nothing: such Endpoints are the user's to write
 *   else                 pods selected, with status.podIP, not terminated, not being deleted
 *                        (unless publishNotReadyAddresses) each give an address {ip,
 *                        nodeName, targetRef, hostname when spec.subdomain is the Service};
 *                        Ready ones (or all, with publishNotReadyAddresses) in addresses,
 *                        the others in notReadyAddresses. Ports: each Service port's
 *                        targetPort, a number as it is, a name looked up in the pod's
 *                        container ports (a pod without it is left out of that port).
 *                        Pods with the same ports share a subset; addresses sorted by IP.
 * The Endpoints are written only when their subsets or labels differ from what is stored.
 */
#include "core/controller.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/object.h"
#include "core/store.h"
#include "platform/error.h"
#include "platform/memory.h"

static bool selector_matches(const cJSON *selector, const cJSON *labels)
{
	if (cJSON_GetArraySize(selector) == 0)
		return false;
	const cJSON *item;
	cJSON_ArrayForEach(item, selector)
	{
		const char *have = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, item->string));
		if (!cJSON_IsString(item) || !have || strcmp(have, item->valuestring) != 0)
			return false;
	}
	return true;
}

static const cJSON *selector_of(const cJSON *service)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(service, "spec"), "selector");
}

static void enqueue_selecting(struct controllers *c, const struct pod *pod)
{
	map_each(e, &c->objects[CACHED_SERVICES])
	{
		const cJSON *service = e->value;
		const char *ns = object_namespace(service);
		if (ns && strcmp(ns, pod->namespace) == 0 && selector_matches(selector_of(service), pod->labels))
			controller_enqueue(c, CONTROLLER_ENDPOINTS, e->key);
	}
}

static bool strings_differ(const char *a, const char *b)
{
	return !a != !b || (a && strcmp(a, b) != 0);
}

static void on_pod(struct controllers *c, const struct pod *old, const struct pod *new)
{
	if (old && new &&cJSON_Compare(old->labels, new->labels, true) && !strings_differ(old->pod_ip, new->pod_ip) &&
	    old->ready == new->ready && old->phase == new->phase && old->deleting == new->deleting &&
	    !strings_differ(old->node_name, new->node_name))
		return;
	if (old)
		enqueue_selecting(c, old);
	if (new)
		enqueue_selecting(c, new);
}

static void on_object(struct controllers *c, enum cached_kind which, const cJSON *old, const cJSON *new)
{
	if (which != CACHED_SERVICES)
		return;
	cleanup_free char *key = controller_key(new ? new : old);
	controller_enqueue(c, CONTROLLER_ENDPOINTS, key);
}

static void on_other(struct controllers *c, const struct store_change *change, const cJSON *object)
{
	(void)object;
	if (strcmp(change->resource, "endpoints") != 0)
		return;
	cleanup_free char *key = xasprintf("%s/%s", change->namespace, change->name);
	const cJSON *service = controller_cached(c, CACHED_SERVICES, key);
	if (service && cJSON_GetArraySize(selector_of(service)) > 0)
		controller_enqueue(c, CONTROLLER_ENDPOINTS, key);
}

/* --- building the subsets ---------------------------------------------------------------- */

struct member {
	const struct pod *pod;
	cJSON *ports; /* the endpoint ports this pod serves */
	char *ports_text;
	bool ready;
};

static int compare_ip(const char *a, const char *b)
{
	struct in6_addr x, y;
	int fa = strchr(a, ':') ? AF_INET6 : AF_INET, fb = strchr(b, ':') ? AF_INET6 : AF_INET;
	if (fa == fb && inet_pton(fa, a, &x) == 1 && inet_pton(fb, b, &y) == 1)
		return memcmp(&x, &y, fa == AF_INET ? 4 : 16);
	return strcmp(a, b);
}

static int compare_members(const void *pa, const void *pb)
{
	const struct member *a = pa, *b = pb;
	int r = strcmp(a->ports_text, b->ports_text);
	if (r)
		return r;
	r = compare_ip(a->pod->pod_ip, b->pod->pod_ip);
	return r ? r : strcmp(a->pod->uid, b->pod->uid);
}

/* The endpoint ports of the pod for the service's ports; NULL when a port cannot be found
 * for any of them (the pod is then left out). */
static cJSON *ports_for(const cJSON *service_ports, const struct pod *pod)
{
	cJSON *out = cJSON_CreateArray();
	const cJSON *port;
	cJSON_ArrayForEach(port, service_ports)
	{
		const char *protocol = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(port, "protocol"));
		if (!protocol)
			protocol = "TCP";
		const cJSON *target = cJSON_GetObjectItemCaseSensitive(port, "targetPort");
		int number = 0;
		if (cJSON_IsNumber(target)) {
			number = (int)target->valuedouble;
		} else if (cJSON_IsString(target)) {
			for (int i = 0; i < pod->port_count; i++)
				if (pod->ports[i].name && strcmp(pod->ports[i].name, target->valuestring) == 0 &&
				    strcmp(pod->ports[i].protocol, protocol) == 0)
					number = pod->ports[i].port;
		} else {
			number = (int)controller_int_at(port, "port", 0);
		}
		if (number <= 0 || number > 65535)
			continue;
		cJSON *p = cJSON_CreateObject();
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(port, "name"));
		if (name && *name)
			cJSON_AddStringToObject(p, "name", name);
		cJSON_AddNumberToObject(p, "port", number);
		cJSON_AddStringToObject(p, "protocol", protocol);
		const char *app = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(port, "appProtocol"));
		if (app)
			cJSON_AddStringToObject(p, "appProtocol", app);
		cJSON_AddItemToArray(out, p);
	}
	if (cJSON_GetArraySize(service_ports) > 0 && cJSON_GetArraySize(out) == 0) {
		cJSON_Delete(out);
		return NULL;
	}
	return out;
}

static cJSON *address_of(const struct pod *pod, const char *service_name)
{
	cJSON *a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "ip", pod->pod_ip);
	if (pod->hostname && pod->subdomain && strcmp(pod->subdomain, service_name) == 0)
		cJSON_AddStringToObject(a, "hostname", pod->hostname);
	if (pod->node_name)
		cJSON_AddStringToObject(a, "nodeName", pod->node_name);
	cJSON *ref = cJSON_AddObjectToObject(a, "targetRef");
	cJSON_AddStringToObject(ref, "kind", "Pod");
	cJSON_AddStringToObject(ref, "namespace", pod->namespace);
	cJSON_AddStringToObject(ref, "name", pod->name);
	cJSON_AddStringToObject(ref, "uid", pod->uid);
	return a;
}

static cJSON *subsets_for(struct controllers *c, const cJSON *service)
{
	const char *ns = object_namespace(service), *name = object_name(service);
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(service, "spec");
	const cJSON *selector = selector_of(service), *service_ports = cJSON_GetObjectItemCaseSensitive(spec, "ports");
	bool publish = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "publishNotReadyAddresses"));
	struct map *pods = map_get(&c->pods_by_namespace, ns);
	size_t room = pods ? pods->count : 0, count = 0;
	struct member *members = xcalloc(room ? room : 1, sizeof(*members));
	if (pods) {
		map_each(e, pods)
		{
			const struct pod *pod = e->value;
			if (!pod->pod_ip || !*pod->pod_ip || pod->phase == POD_SUCCEEDED || pod->phase == POD_FAILED ||
			    (pod->deleting && !publish) || !selector_matches(selector, pod->labels))
				continue;
			cJSON *ports = ports_for(service_ports, pod);
			if (!ports)
				continue;
			members[count].pod = pod;
			members[count].ports = ports;
			members[count].ports_text = cJSON_PrintUnformatted(ports);
			members[count].ready = publish || (pod->ready && !pod->deleting);
			count++;
		}
	}
	qsort(members, count, sizeof(*members), compare_members);
	cJSON *subsets = cJSON_CreateArray();
	cJSON *subset = NULL;
	for (size_t i = 0; i < count; i++) {
		if (!subset || strcmp(members[i].ports_text, members[i - 1].ports_text) != 0) {
			subset = cJSON_CreateObject();
			cJSON_AddItemToArray(subsets, subset);
			if (cJSON_GetArraySize(members[i].ports) > 0)
				cJSON_AddItemToObject(subset, "ports", cJSON_Duplicate(members[i].ports, 1));
		}
		const char *list = members[i].ready ? "addresses" : "notReadyAddresses";
		cJSON *addresses = cJSON_GetObjectItemCaseSensitive(subset, list);
		if (!addresses)
			addresses = cJSON_AddArrayToObject(subset, list);
		cJSON_AddItemToArray(addresses, address_of(members[i].pod, name));
	}
	/* Kubernetes' order inside a subset: addresses, notReadyAddresses, ports. */
	cJSON *s;
	cJSON_ArrayForEach(s, subsets)
	{
		cJSON *ports = cJSON_DetachItemFromObjectCaseSensitive(s, "ports");
		if (ports)
			cJSON_AddItemToObject(s, "ports", ports);
	}
	for (size_t i = 0; i < count; i++) {
		cJSON_Delete(members[i].ports);
		free(members[i].ports_text);
	}
	free(members);
	return subsets;
}

static cJSON *labels_for(const cJSON *service)
{
	const cJSON *labels =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(service, "metadata"), "labels");
	cJSON *out = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : cJSON_CreateObject();
	const char *cluster_ip = object_string_at(service, "spec.clusterIP");
	if (cluster_ip && strcmp(cluster_ip, "None") == 0)
		controller_set_string(out, "service.kubernetes.io/headless", "");
	return out;
}

static int endpoints_sync(struct controllers *c, const char *key, struct error *err)
{
	char ns[64];
	const char *name;
	if (!controller_split_key(key, ns, sizeof(ns), &name))
		return 0;
	cJSON *service = controller_get(c, "services", ns, name);
	cJSON *stored = controller_get(c, "endpoints", ns, name);
	int r = 0;
	if (!service) {
		if (stored)
			r = controller_force_delete(c, "endpoints", ns, name, object_string_at(stored, "metadata.uid"),
			                            err);
		goto out;
	}
	if (cJSON_GetArraySize(selector_of(service)) == 0)
		goto out;
	cJSON *subsets = subsets_for(c, service);
	cJSON *labels = labels_for(service);
	cJSON *updated;
	if (stored) {
		updated = cJSON_Duplicate(stored, 1);
	} else {
		updated = cJSON_CreateObject();
		cJSON_AddStringToObject(updated, "apiVersion", "v1");
		cJSON_AddStringToObject(updated, "kind", "Endpoints");
		cJSON *metadata = cJSON_AddObjectToObject(updated, "metadata");
		cJSON_AddStringToObject(metadata, "name", name);
		cJSON_AddStringToObject(metadata, "namespace", ns);
	}
	cJSON *metadata = object_metadata(updated);
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "labels");
	if (cJSON_GetArraySize(labels) > 0)
		cJSON_AddItemToObject(metadata, "labels", labels);
	else
		cJSON_Delete(labels);
	cJSON_DeleteItemFromObjectCaseSensitive(updated, "subsets");
	if (cJSON_GetArraySize(subsets) > 0)
		cJSON_AddItemToObject(updated, "subsets", subsets);
	else
		cJSON_Delete(subsets);
	if (stored) {
		r = controller_update(c, "endpoints", stored, updated, err);
		if (r == -ESTALE || r == -ENOENT)
			r = 0;
	} else {
		r = controller_create(c, "endpoints", updated, NULL, err);
		if (r == 0)
			r = 1;
		else if (r == -EPERM)
			r = 0; /* its namespace is going */
	}
	cJSON_Delete(updated);
out:
	cJSON_Delete(service);
	cJSON_Delete(stored);
	return r;
}

const struct controller_ops endpoints_controller = {
	.name = "endpoints",
	.on_pod = on_pod,
	.on_object = on_object,
	.on_other = on_other,
	.sync = endpoints_sync,
};
