/* The board's share of the cluster network.
 *
 * State:
 *   link        its own CoAP/DTLS link to the control plane (the node's identity), beside
 *               the kubelet's, with three watches: Nodes, Services, Endpoints (each a GET
 *               of the list, then Observe from its revision; resumed from the last revision
 *               seen after a reconnect); the objects are kept as received (cJSON objects
 *               keyed "namespace/name")
 *   pod network nothing until this Node has spec.podCIDR, then (setup_network): the IPAM
 *               state (<data-dir>/network/pod-addresses), the bridge with masquerade
 *               (podnet), cluster DNS on the bridge's address, the proxy
 *   dirty       Services whose proxy rules and DNS records are to be rebuilt: changed
 *               Services and Endpoints mark their key, a zero-delay timer applies them all
 *               in one proxy batch
 *
 *   WAITING (no pod CIDR: pods of the pod network wait, hostNetwork pods run)
 *     --(own Node shows spec.podCIDR)--> setup_network --> READY
 *   READY: Node changes -> routes to the other boards' pod CIDRs via their InternalIP;
 *          Service/Endpoints changes -> proxy + DNS; pods attach and release
 *     --(network_free: clean shutdown)--> proxy rules and DNS removed; bridge, routes and
 *        masquerade removed once no pod veth is left
 *
 * The last view of the cluster (other boards' pod CIDRs and addresses, Services, Endpoints)
 * is kept in <data-dir>/network/cluster-view.json, written VIEW_SAVE_MS after a change that
 * alters it (a Node's heartbeat does not: only name, podCIDR and addresses are kept) and at
 * a clean stop. A board that starts without a control plane (a reboot in the field) routes
 * to the other boards and serves Services from it until the lists come in and replace it.
 *
 * A restart adopts what the kernel holds: the bridge and pod veths stay (podnet_setup is
 * idempotent, an attached pod is not attached again), the proxy's table keeps serving
 * (proxy_defer) until both Services and Endpoints have been listed, then is replaced in one
 * batch; pod addresses come back from the IPAM file, and those of pods deleted meanwhile are
 * released when the kubelet has listed its pods.
 *
 * A Service the proxy refuses (an address outside this board's service CIDR, a NodePort
 * outside its range: boards configured unlike the control plane) is logged once per change
 * and left out; the others are served.
 */
#include "agent/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/config.h"
#include "agent/dns.h"
#include "agent/ipam.h"
#include "agent/podnet.h"
#include "agent/proxy.h"
#include "core/object.h"
#include "drivers/runtime.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"
#include "platform/netlink.h"
#include "platform/nftables.h"

#include <linux/netfilter.h>

#define NETWORK_PATH_MAX 512
#define NETWORK_RETRY_MS 5000
#define NETWORK_MAX_PEERS 1024
#define PROXY_TABLE "bramble_proxy"
#define PODNET_TABLE "bramble_podnet"
#define SERVICE_LINK "bramble-svc"
#define VIEW_FILE "cluster-view.json"
#define VIEW_SAVE_MS 10000
#define VIEW_MAX_SIZE (16 * 1024 * 1024)

enum watched { WATCH_NODES, WATCH_SERVICES, WATCH_ENDPOINTS, WATCH_COUNT };
static const char *const watch_paths[WATCH_COUNT] = { "/api/v1/nodes", "/api/v1/services", "/api/v1/endpoints" };

struct watch {
	struct network *network;
	enum watched which;
	struct link_observation *observation;
	char revision[24];
	bool listed;
	bool fetching; /* a GET in flight */
	bool missed;   /* notifications arrived during it */
	cJSON *items;  /* key -> object */
	struct loop_timer *retry;
};

struct network {
	struct loop *loop;
	const struct config *config;
	struct link *link;
	struct watch watches[WATCH_COUNT];

	char pod_cidr[32];
	bool cidr_unconfirmed; /* taken from the IPAM file, not yet seen on the Node */
	struct ipam *ipam;
	struct podnet *podnet;
	struct dns *dns;
	struct proxy *proxy;
	bool proxy_committed;
	struct loop_timer *setup_timer;

	cJSON *dirty; /* service keys -> true */
	struct loop_timer *apply_timer;
	char **listed_uids; /* pods the kubelet listed before the IPAM was open */
	size_t listed_count;
	bool listed_pending;
	struct in_addr cluster, service;
	uint8_t cluster_prefix, service_prefix;
	bool view_loaded;              /* items came from the saved view; not yet listed */
	char *view_saved;              /* the view as last written (or read) */
	struct loop_timer *view_timer; /* a change to write */
};

static void start_watch(struct network *n, enum watched which);
static void setup_network(struct network *n);

bool network_ready(const struct network *n)
{
	return n && n->podnet;
}

static char *key_of(const cJSON *object)
{
	const char *ns = object_namespace(object);
	return xasprintf("%s/%s", ns ? ns : "", object_name(object) ? object_name(object) : "");
}

/* --- Services and Endpoints -> proxy and DNS ----------------------------------------------- */

static void mark_dirty(struct network *n, const char *key);

static uint8_t protocol_number(const cJSON *port)
{
	const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(port, "protocol"));
	if (!p || strcmp(p, "TCP") == 0)
		return IPPROTO_TCP;
	return strcmp(p, "UDP") == 0 ? IPPROTO_UDP : 0;
}

static int int_of(const cJSON *object, const char *key)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(object, key);
	return cJSON_IsNumber(n) ? (int)n->valuedouble : 0;
}

static const char *string_of(const cJSON *object, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, key));
}

static bool same_port_name(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The ready endpoints of a Service port: every address of every subset that has a port of
 * the same name and protocol. */
static size_t endpoints_of(const cJSON *endpoints, const cJSON *service_port, struct proxy_endpoint *out, size_t max)
{
	size_t count = 0;
	const cJSON *subset;
	cJSON_ArrayForEach(subset, cJSON_GetObjectItemCaseSensitive(endpoints, "subsets"))
	{
		const cJSON *port, *match = NULL;
		cJSON_ArrayForEach(port, cJSON_GetObjectItemCaseSensitive(subset, "ports"))
		{
			if (same_port_name(string_of(port, "name"), string_of(service_port, "name")) &&
			    protocol_number(port) == protocol_number(service_port))
				match = port;
		}
		int number = match ? int_of(match, "port") : 0;
		if (number <= 0 || number > 65535)
			continue;
		const cJSON *address;
		cJSON_ArrayForEach(address, cJSON_GetObjectItemCaseSensitive(subset, "addresses"))
		{
			struct in_addr a;
			const char *ip = string_of(address, "ip");
			if (count < max && ip && inet_pton(AF_INET, ip, &a) == 1)
				out[count++] = (struct proxy_endpoint){ a, (uint16_t)number };
		}
	}
	return count;
}

static void service_gone(struct network *n, const char *ns, const char *name)
{
	struct error err;
	if (proxy_remove_service(n->proxy, ns, name, &err) < 0)
		log_warnx("proxy: %s", err.message);
	dns_remove_service(n->dns, ns, name);
}

static void apply_service(struct network *n, const char *key)
{
	char ns[PROXY_NAME_MAX], name[PROXY_NAME_MAX];
	const char *slash = strchr(key, '/');
	if (!slash || (size_t)(slash - key) >= sizeof(ns) || strlen(slash + 1) >= sizeof(name))
		return;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	snprintf(name, sizeof(name), "%s", slash + 1);
	const cJSON *service = cJSON_GetObjectItemCaseSensitive(n->watches[WATCH_SERVICES].items, key);
	const cJSON *endpoints = cJSON_GetObjectItemCaseSensitive(n->watches[WATCH_ENDPOINTS].items, key);
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(service, "spec");
	const char *ip = string_of(spec, "clusterIP");
	struct in_addr cluster_ip;
	if (!service || !ip || inet_pton(AF_INET, ip, &cluster_ip) != 1) {
		service_gone(n, ns, name); /* gone, or headless */
		return;
	}
	const char *type = string_of(spec, "type");
	bool node_port = type && strcmp(type, "NodePort") == 0;
	struct proxy_service_port ports[PROXY_MAX_PORTS];
	struct dns_port dns_ports[PROXY_MAX_PORTS];
	struct proxy_endpoint *pool = xcalloc(PROXY_MAX_PORTS * PROXY_MAX_ENDPOINTS, sizeof(*pool));
	size_t count = 0, dns_count = 0;
	const cJSON *port;
	cJSON_ArrayForEach(port, cJSON_GetObjectItemCaseSensitive(spec, "ports"))
	{
		uint8_t protocol = protocol_number(port);
		int number = int_of(port, "port");
		if (count >= PROXY_MAX_PORTS || !protocol || number <= 0 || number > 65535)
			continue; /* SCTP is not served */
		struct proxy_service_port *p = &ports[count];
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", string_of(port, "name") ? string_of(port, "name") : "");
		p->protocol = protocol;
		p->port = (uint16_t)number;
		int np = node_port ? int_of(port, "nodePort") : 0;
		p->node_port = np > 0 && np <= 65535 ? (uint16_t)np : 0;
		struct proxy_endpoint *mine = pool + count * PROXY_MAX_ENDPOINTS;
		p->endpoints = mine;
		p->endpoint_count = endpoints_of(endpoints, port, mine, PROXY_MAX_ENDPOINTS);
		if (p->name[0]) {
			struct dns_port *d = &dns_ports[dns_count++];
			snprintf(d->name, sizeof(d->name), "%s", p->name);
			d->protocol = protocol;
			d->port = p->port;
		}
		count++;
	}
	struct error err = { 0 };
	if (count == 0) {
		service_gone(n, ns, name);
	} else {
		struct proxy_service s = { .cluster_ip = cluster_ip, .ports = ports, .port_count = count };
		snprintf(s.namespace, sizeof(s.namespace), "%s", ns);
		snprintf(s.name, sizeof(s.name), "%s", name);
		const char *affinity = string_of(spec, "sessionAffinity");
		s.affinity_client_ip = affinity && strcmp(affinity, "ClientIP") == 0;
		const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(
		                cJSON_GetObjectItemCaseSensitive(spec, "sessionAffinityConfig"), "clientIP"),
		        "timeoutSeconds");
		if (cJSON_IsNumber(timeout) && timeout->valuedouble > 0)
			s.affinity_timeout_seconds = (uint32_t)timeout->valuedouble;
		if (proxy_set_service(n->proxy, &s, &err) < 0) {
			log_warnx("proxy: %s: left out", err.message);
			proxy_remove_service(n->proxy, ns, name, NULL);
		}
		if (dns_set_service(n->dns, ns, name, cluster_ip, dns_ports, dns_count, &err) < 0)
			log_warnx("dns: service %s: %s", key, err.message);
	}
	free(pool);
}

static void apply_due(struct loop *loop, void *data)
{
	(void)loop;
	struct network *n = data;
	n->apply_timer = NULL;
	if (!n->proxy ||
	    (!n->view_loaded && (!n->watches[WATCH_SERVICES].listed || !n->watches[WATCH_ENDPOINTS].listed)))
		return; /* kept dirty: applied once both lists (or the saved view) are in */
	const cJSON *item;
	cJSON_ArrayForEach(item, n->dirty) apply_service(n, item->string);
	cJSON_Delete(n->dirty);
	n->dirty = cJSON_CreateObject();
	struct error err = { 0 };
	if (proxy_commit(n->proxy, &err) < 0) {
		log_errorx("proxy: %s", err.message);
		return;
	}
	if (!n->proxy_committed)
		log_info("proxy (%s): serving %zu services", proxy_mode(n->proxy), proxy_service_count(n->proxy));
	n->proxy_committed = true;
}

static void mark_dirty(struct network *n, const char *key)
{
	if (!cJSON_GetObjectItemCaseSensitive(n->dirty, key))
		cJSON_AddTrueToObject(n->dirty, key);
	if (!n->apply_timer)
		n->apply_timer = loop_add_timer(n->loop, 0, apply_due, n);
}

/* --- Nodes -> this board's pod CIDR, routes to the others ---------------------------------- */

/* A peer's address on the LAN: its first IPv4 InternalIP outside the cluster's ranges. */
static bool node_address(const struct network *n, const cJSON *node, struct in_addr *ret)
{
	const cJSON *address;
	cJSON_ArrayForEach(address, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(node, "status"),
	                                                             "addresses"))
	{
		const char *type = string_of(address, "type"), *text = string_of(address, "address");
		struct in_addr a;
		if (!type || strcmp(type, "InternalIP") != 0 || !text || inet_pton(AF_INET, text, &a) != 1)
			continue;
		if (netlink_cidr_contains(n->cluster, n->cluster_prefix, a) ||
		    netlink_cidr_contains(n->service, n->service_prefix, a))
			continue;
		*ret = a;
		return true;
	}
	return false;
}

static void sync_routes(struct network *n)
{
	if (!n->podnet)
		return;
	struct podnet_peer *peers = xcalloc(NETWORK_MAX_PEERS, sizeof(*peers));
	size_t count = 0;
	const cJSON *node;
	cJSON_ArrayForEach(node, n->watches[WATCH_NODES].items)
	{
		const char *name = object_name(node), *cidr = object_string_at(node, "spec.podCIDR");
		struct podnet_peer peer;
		if (!name || strcmp(name, n->config->node_name) == 0 || !cidr || count >= NETWORK_MAX_PEERS ||
		    netlink_parse_cidr(cidr, false, &peer.network, &peer.prefix_length, NULL) < 0 ||
		    !node_address(n, node, &peer.node_address))
			continue;
		peers[count++] = peer;
	}
	struct error err = { 0 };
	if (podnet_sync_routes(n->podnet, peers, count, &err) < 0)
		log_warnx("routes to the other boards' pods: %s", err.message);
	else
		log_debug("routes: %zu boards", count);
	free(peers);
}

static void reset_network(struct network *n)
{
	struct error err = { 0 };
	if (n->proxy && proxy_shutdown(n->proxy, &err) < 0)
		log_warnx("proxy: %s", err.message);
	proxy_free(n->proxy);
	n->proxy = NULL;
	n->proxy_committed = false;
	dns_free(n->dns);
	n->dns = NULL;
	if (n->podnet && podnet_teardown(n->podnet, &err) < 0)
		log_warnx("pod network: %s", err.message);
	podnet_free(n->podnet);
	n->podnet = NULL;
	ipam_free(n->ipam);
	n->ipam = NULL;
	if (n->setup_timer)
		loop_cancel_timer(n->loop, n->setup_timer);
	n->setup_timer = NULL;
}

static void own_node_seen(struct network *n, const cJSON *node)
{
	const char *cidr = object_string_at(node, "spec.podCIDR");
	if (!cidr || !cidr[0])
		return;
	if (n->pod_cidr[0] && strcmp(n->pod_cidr, cidr) != 0) {
		if (!n->cidr_unconfirmed) {
			log_errorx("node %s: pod CIDR changed from %s to %s: restart the agent", n->config->node_name,
			           n->pod_cidr, cidr);
			return;
		}
		/* the node was given another block since the last run (deleted and registered
		 * again): the old one goes */
		log_warnx("node %s: pod CIDR is now %s, not %s as in the last run: pods running with the old "
		          "addresses keep them until they restart",
		          n->config->node_name, cidr, n->pod_cidr);
		reset_network(n);
		n->pod_cidr[0] = '\0';
	}
	n->cidr_unconfirmed = false;
	if (!n->pod_cidr[0]) {
		snprintf(n->pod_cidr, sizeof(n->pod_cidr), "%s", cidr);
		setup_network(n);
	}
}

/* --- the saved view of the cluster ---------------------------------------------------------- */

static const char *const view_sections[WATCH_COUNT] = { "nodes", "services", "endpoints" };

/* What routing needs of a Node: its name, pod CIDR and addresses (not its heartbeats). */
static cJSON *node_for_view(const cJSON *node)
{
	cJSON *kept = cJSON_CreateObject();
	cJSON_AddStringToObject(cJSON_AddObjectToObject(kept, "metadata"), "name", object_name(node));
	const char *cidr = object_string_at(node, "spec.podCIDR");
	if (cidr)
		cJSON_AddStringToObject(cJSON_AddObjectToObject(kept, "spec"), "podCIDR", cidr);
	const cJSON *addresses =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(node, "status"), "addresses");
	if (addresses)
		cJSON_AddItemToObject(cJSON_AddObjectToObject(kept, "status"), "addresses",
		                      cJSON_Duplicate(addresses, 1));
	return kept;
}

static void save_view(struct network *n)
{
	cJSON *view = cJSON_CreateObject();
	for (int i = 0; i < WATCH_COUNT; i++) {
		cJSON *section = cJSON_AddObjectToObject(view, view_sections[i]);
		const cJSON *item;
		cJSON_ArrayForEach(item, n->watches[i].items)
		{
			cJSON_AddItemToObject(section, item->string,
			                      i == WATCH_NODES ? node_for_view(item) : cJSON_Duplicate(item, 1));
		}
	}
	char *text = cJSON_PrintUnformatted(view);
	cJSON_Delete(view);
	if (n->view_saved && strcmp(n->view_saved, text) == 0) {
		free(text); /* nothing routing or the proxy use changed: nothing written */
		return;
	}
	struct error err = { 0 };
	cleanup_free char *dir = xasprintf("%s/network", n->config->data_dir);
	cleanup_free char *path = xasprintf("%s/" VIEW_FILE, dir);
	if (file_mkdir_p(dir, 0700, &err) < 0 || file_write_atomic(path, text, strlen(text), 0600, &err) < 0) {
		log_warnx("network: cannot keep the cluster's view for a start without a control plane: %s",
		          err.message);
		free(text);
		return;
	}
	free(n->view_saved);
	n->view_saved = text;
}

static void save_view_due(struct loop *loop, void *data)
{
	(void)loop;
	struct network *n = data;
	n->view_timer = NULL;
	save_view(n);
}

static void view_changed(struct network *n)
{
	if (!n->view_timer)
		n->view_timer = loop_add_timer(n->loop, VIEW_SAVE_MS, save_view_due, n);
}

/* At start: the view the last run saved, as the watches' items until they list. */
static void load_view(struct network *n)
{
	cleanup_free char *path = xasprintf("%s/network/" VIEW_FILE, n->config->data_dir);
	char *text = NULL;
	struct error err = { 0 };
	if (file_read(path, VIEW_MAX_SIZE, &text, NULL, &err) < 0) {
		if (err.code != ENOENT)
			log_warnx("network: the saved view of the cluster: %s", err.message);
		return;
	}
	cJSON *view = cJSON_Parse(text);
	if (!cJSON_IsObject(view)) {
		log_warnx("network: %s is not JSON: ignored (the lists come from the control plane)", path);
		cJSON_Delete(view);
		free(text);
		return;
	}
	size_t counts[WATCH_COUNT] = { 0 };
	for (int i = 0; i < WATCH_COUNT; i++) {
		const cJSON *item;
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(view, view_sections[i]))
		{
			if (!cJSON_IsObject(item) || !item->string)
				continue;
			cJSON_AddItemToObject(n->watches[i].items, item->string, cJSON_Duplicate(item, 1));
			counts[i]++;
		}
	}
	cJSON_Delete(view);
	n->view_saved = text;
	n->view_loaded = true;
	log_info("network: last view of the cluster: %zu nodes, %zu services, %zu endpoints (until the control "
	         "plane lists them)",
	         counts[WATCH_NODES], counts[WATCH_SERVICES], counts[WATCH_ENDPOINTS]);
}

/* --- watches ------------------------------------------------------------------------------ */

static void item_changed(struct network *n, enum watched which, const char *key, const cJSON *object)
{
	switch (which) {
	case WATCH_NODES:
		if (object && object_name(object) && strcmp(object_name(object), n->config->node_name) == 0)
			own_node_seen(n, object);
		break;
	case WATCH_SERVICES:
	case WATCH_ENDPOINTS:
		mark_dirty(n, key);
		break;
	case WATCH_COUNT:
		break;
	}
}

static void put_item(struct watch *w, const cJSON *object)
{
	cleanup_free char *key = key_of(object);
	cJSON *copy = cJSON_Duplicate(object, 1);
	if (cJSON_GetObjectItemCaseSensitive(w->items, key))
		cJSON_ReplaceItemInObjectCaseSensitive(w->items, key, copy);
	else
		cJSON_AddItemToObject(w->items, key, copy);
	item_changed(w->network, w->which, key, copy);
}

static void remove_item(struct watch *w, const char *key)
{
	cleanup_free char *copy = xstrdup(key);
	cJSON_DeleteItemFromObjectCaseSensitive(w->items, copy);
	item_changed(w->network, w->which, copy, NULL);
}

static void remember_revision(struct watch *w, const char *rv)
{
	if (rv && rv[0])
		snprintf(w->revision, sizeof(w->revision), "%s", rv);
}

static void apply_list(struct watch *w, const cJSON *list)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
	/* what is not in the list is gone */
	cJSON *present = cJSON_CreateObject();
	const cJSON *item;
	cJSON_ArrayForEach(item, items)
	{
		cleanup_free char *key = key_of(item);
		cJSON_AddTrueToObject(present, key);
	}
	for (cJSON *old = w->items ? w->items->child : NULL, *next; old; old = next) {
		next = old->next;
		if (!cJSON_GetObjectItemCaseSensitive(present, old->string))
			remove_item(w, old->string);
	}
	cJSON_Delete(present);
	cJSON_ArrayForEach(item, items) put_item(w, item);
	remember_revision(w, object_string_at(list, "metadata.resourceVersion"));
	w->listed = true;
}

static void apply_events(struct watch *w, const cJSON *doc)
{
	const cJSON *event;
	cJSON_ArrayForEach(event, cJSON_GetObjectItemCaseSensitive(doc, "events"))
	{
		const char *type = string_of(event, "type");
		const cJSON *object = cJSON_GetObjectItemCaseSensitive(event, "object");
		if (!type || !cJSON_IsObject(object))
			continue;
		if (strcmp(type, "DELETED") == 0) {
			cleanup_free char *key = key_of(object);
			remove_item(w, key);
		} else {
			put_item(w, object);
		}
		remember_revision(w, object_string_at(object, "metadata.resourceVersion"));
	}
	remember_revision(w, string_of(doc, "resourceVersion"));
}

/* A watch goes: catch up by plain GETs (the list first, then the events since the last
 * revision seen), then Observe from there. Big answers come block-wise only to GETs: an
 * Observe whose first answer spanned blocks would be restarted by every notification that
 * arrived meanwhile. A notification too big for a datagram ("truncated") is fetched the same
 * way; notifications that arrive during a fetch are covered by fetching again after it. */
static void fetch(struct watch *w);

static void retry_due(struct loop *loop, void *data)
{
	(void)loop;
	struct watch *w = data;
	w->retry = NULL;
	start_watch(w->network, w->which);
}

static void retry_soon(struct watch *w, uint64_t delay_ms)
{
	if (w->observation) {
		link_observe_cancel(w->network->link, w->observation);
		w->observation = NULL;
	}
	w->fetching = false;
	if (!w->retry)
		w->retry = loop_add_timer(w->network->loop, delay_ms, retry_due, w);
}

static void after_change(struct watch *w)
{
	struct network *n = w->network;
	view_changed(n);
	if (w->which == WATCH_NODES)
		sync_routes(n);
	else if (!n->apply_timer)
		n->apply_timer = loop_add_timer(n->loop, 0, apply_due, n); /* also a list with nothing in it */
}

static void on_notified(int code, const char *body, size_t length, const struct error *err, void *data)
{
	struct watch *w = data;
	if (code != 205) {
		w->observation = NULL;
		if (code == 0)
			return; /* the link is down: watched again when it is up */
		log_info("%s watch refused (%d: %s): listing again", watch_paths[w->which], code,
		         err ? err->message : "");
		w->revision[0] = '\0';
		retry_soon(w, 1000);
		return;
	}
	if (w->fetching) {
		w->missed = true;
		return;
	}
	cJSON *doc = cJSON_ParseWithLength(body, length);
	if (!doc) {
		log_warnx("%s watch: a notification that is not JSON", watch_paths[w->which]);
		return;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "truncated"))) {
		fetch(w);
	} else {
		apply_events(w, doc);
		after_change(w);
	}
	cJSON_Delete(doc);
}

static void observe(struct watch *w)
{
	struct network *n = w->network;
	if (w->observation || !link_is_up(n->link))
		return;
	char path[NETWORK_PATH_MAX];
	snprintf(path, sizeof(path), "%s?resourceVersion=%s", watch_paths[w->which], w->revision);
	struct error err;
	if (link_observe(n->link, path, on_notified, w, &w->observation, &err) < 0) {
		log_warnx("cannot watch %s: %s", watch_paths[w->which], err.message);
		retry_soon(w, 1000);
	}
}

static void on_fetched(const struct client_response *response, const struct error *err, void *data)
{
	struct watch *w = data;
	w->fetching = false;
	if (!response) {
		log_debug("%s: %s", watch_paths[w->which], err->message);
		return; /* the link is down: fetched again when it is up */
	}
	if (response->code != 205) {
		log_info("%s: %d %s: listing again", watch_paths[w->which], response->code, response->message);
		w->revision[0] = '\0';
		retry_soon(w, 1000);
		return;
	}
	cJSON *doc = cJSON_ParseWithLength(response->body, response->length);
	if (!doc) {
		log_warnx("%s: an answer that is not JSON", watch_paths[w->which]);
		retry_soon(w, 1000);
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(doc, "items"))
		apply_list(w, doc);
	else
		apply_events(w, doc);
	cJSON_Delete(doc);
	after_change(w);
	if (w->missed) {
		w->missed = false;
		fetch(w);
		return;
	}
	observe(w);
}

/* A GET of the list (no revision yet) or of the events since the revision. */
static void fetch(struct watch *w)
{
	struct network *n = w->network;
	char path[NETWORK_PATH_MAX];
	if (w->revision[0])
		snprintf(path, sizeof(path), "%s?watch=1&resourceVersion=%s", watch_paths[w->which], w->revision);
	else
		snprintf(path, sizeof(path), "%s", watch_paths[w->which]);
	struct error err;
	if (link_request(n->link, CLIENT_GET, path, NULL, 0, on_fetched, w, &err) < 0) {
		log_debug("%s: %s", watch_paths[w->which], err.message);
		return;
	}
	w->fetching = true;
	w->missed = false;
}

static void start_watch(struct network *n, enum watched which)
{
	struct watch *w = &n->watches[which];
	if (w->observation || w->fetching || !link_is_up(n->link))
		return;
	fetch(w);
}

static void on_link_state(struct link *link, bool up, void *data)
{
	(void)link;
	struct network *n = data;
	for (int i = 0; i < WATCH_COUNT; i++) {
		if (!up) {
			n->watches[i].observation = NULL; /* ended with the link */
			n->watches[i].fetching = false;
		} else {
			start_watch(n, (enum watched)i);
		}
	}
}

/* --- the pod network ------------------------------------------------------------------------ */

static void setup_due(struct loop *loop, void *data)
{
	(void)loop;
	struct network *n = data;
	n->setup_timer = NULL;
	setup_network(n);
}

/* The dataplane of the other proxy mode may be left from an earlier run. */
static void remove_other_dataplane(struct network *n)
{
	if (strcmp(proxy_mode(n->proxy), "nftables") == 0) {
		struct netlink *nl = NULL;
		if (netlink_open(-1, &nl, NULL) == 0)
			netlink_link_delete(nl, SERVICE_LINK, NULL);
		netlink_close(nl);
		return;
	}
	struct netlink *netfilter = NULL;
	if (netlink_open_netfilter(-1, &netfilter, NULL) == 0) {
		struct netlink_message batch = { 0 };
		nft_batch_begin(&batch);
		nft_table_flush_out(&batch, NFPROTO_IPV4, PROXY_TABLE);
		nft_batch_end(&batch);
		netlink_send_batch(netfilter, &batch, NULL, "remove the nftables proxy table");
		netlink_message_free(&batch);
	}
	netlink_close(netfilter);
}

static void setup_network(struct network *n)
{
	const struct config *config = n->config;
	struct error err = { 0 };
	int r = 0;
	if (!n->ipam) {
		cleanup_free char *dir = xasprintf("%s/network", config->data_dir);
		cleanup_free char *path = xasprintf("%s/pod-addresses", dir);
		if ((r = file_mkdir_p(dir, 0700, &err)) < 0 || (r = ipam_open(path, n->pod_cidr, &n->ipam, &err)) < 0)
			goto fail;
	}
	if (!n->podnet) {
		struct podnet_config pc = {
			.bridge = config->bridge,
			.pod_cidr = n->pod_cidr,
			.cluster_cidr = config->cluster_cidr,
			.table = PODNET_TABLE,
			.masquerade = true,
		};
		if ((r = podnet_setup(&pc, &n->podnet, &err)) < 0)
			goto fail;
	}
	if (!n->dns) {
		struct dns_config dc = {
			.address = podnet_gateway(n->podnet),
			.domain = config->cluster_domain,
			.loop = n->loop,
		};
		if ((r = dns_new(&dc, &n->dns, &err)) < 0) {
			error_prefix(&err, "cluster DNS");
			goto fail;
		}
	}
	if (!n->proxy) {
		struct proxy_config xc = {
			.mode = config->proxy_mode,
			.table = PROXY_TABLE,
			.service_cidr = config->service_cidr,
			.pod_cidr = n->pod_cidr,
			.node_port_min = (uint16_t)config->node_port_min,
			.node_port_max = (uint16_t)config->node_port_max,
			.service_link = SERVICE_LINK,
			.loop = n->loop,
		};
		if ((r = proxy_new(&xc, &n->proxy, &err)) < 0) {
			error_prefix(&err, "service proxy");
			goto fail;
		}
		proxy_defer(n->proxy);
		remove_other_dataplane(n);
	}
	char gateway[INET_ADDRSTRLEN];
	struct in_addr g = podnet_gateway(n->podnet);
	inet_ntop(AF_INET, &g, gateway, sizeof(gateway));
	log_info("pod network: %s on %s (%zu of %zu addresses in use), cluster DNS on %s:53, proxy %s", n->pod_cidr,
	         config->bridge, ipam_allocated_count(n->ipam), ipam_capacity(n->ipam), gateway, proxy_mode(n->proxy));
	if (n->listed_pending)
		network_pods_listed(n, (const char *const *)n->listed_uids, n->listed_count);
	sync_routes(n);
	/* what arrived while waiting */
	const cJSON *item;
	cJSON_ArrayForEach(item, n->watches[WATCH_SERVICES].items) mark_dirty(n, item->string);
	if (!n->apply_timer)
		n->apply_timer = loop_add_timer(n->loop, 0, apply_due, n);
	return;
fail:
	log_errorx("pod network %s: %s (trying again in %d s)", n->pod_cidr, err.message, NETWORK_RETRY_MS / 1000);
	if (!n->setup_timer)
		n->setup_timer = loop_add_timer(n->loop, NETWORK_RETRY_MS, setup_due, n);
}

/* --- pods ------------------------------------------------------------------------------------ */

static enum dns_policy policy_of(const cJSON *pod, bool host_network, bool *ret_none)
{
	const char *policy = object_string_at(pod, "spec.dnsPolicy");
	*ret_none = policy && strcmp(policy, "None") == 0;
	if (policy && strcmp(policy, "Default") == 0)
		return DNS_POLICY_DEFAULT;
	if (host_network && !(policy && strcmp(policy, "ClusterFirstWithHostNet") == 0))
		return DNS_POLICY_DEFAULT; /* ClusterFirst on the host network means Default, as in Kubernetes */
	return DNS_POLICY_CLUSTER_FIRST;
}

static int write_resolv_conf(struct network *n, const cJSON *pod, bool host_network, const char *pod_dir,
                             struct network_attachment *a, struct error *err)
{
	bool none;
	enum dns_policy policy = policy_of(pod, host_network, &none);
	const cJSON *dns_config =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "dnsConfig");
	char *text = NULL;
	int r = 0;
	if (none) {
		text = dns_merge_config(NULL, dns_config); /* dnsConfig alone */
	} else {
		if (!network_ready(n))
			policy = DNS_POLICY_DEFAULT;
		const char *ns = object_namespace(pod) ? object_namespace(pod) : "default";
		struct in_addr gateway = n && n->podnet ? podnet_gateway(n->podnet) : (struct in_addr){ 0 };
		const char *domain = n ? n->config->cluster_domain : NULL;
		r = dns_resolv_conf(policy, gateway, ns, domain, NULL, &text, err);
		if (r == -ENOENT && policy == DNS_POLICY_CLUSTER_FIRST)
			r = dns_resolv_conf(policy, gateway, ns, domain, "/dev/null", &text, err);
		if (r == -ENOENT && policy == DNS_POLICY_DEFAULT) {
			text = xstrdup("# the board has no /etc/resolv.conf\n");
			r = 0;
		}
		if (r < 0)
			return error_prefix(err, "resolv.conf");
		if (dns_config) { /* merged in, as the kubelet does */
			char *merged = dns_merge_config(text, dns_config);
			free(text);
			text = merged;
		}
	}
	char *path = xasprintf("%s/resolv.conf", pod_dir);
	r = file_write_atomic(path, text, strlen(text), 0644, err);
	free(text);
	if (r < 0) {
		free(path);
		return r;
	}
	free(a->resolv_conf);
	a->resolv_conf = path;
	return 0;
}

int network_pod_setup(struct network *n, const cJSON *pod, int netns_fd, const char *pod_dir,
                      struct network_attachment *a, struct error *err)
{
	bool host_network = cJSON_IsTrue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "hostNetwork"));
	if (!n)
		return 0;
	const char *uid = object_string_at(pod, "metadata.uid");
	if (!host_network && netns_fd >= 0 && !a->pod_ip[0]) {
		if (!network_ready(n))
			return error_set(err, EAGAIN,
			                 "waiting for node %s's pod CIDR (spec.podCIDR) from the control plane",
			                 n->config->node_name);
		if (!uid)
			return error_set(err, EINVAL, "the pod has no metadata.uid");
		struct in_addr address;
		int r = ipam_allocate(n->ipam, uid, &address, err);
		if (r == -ENOSPC)
			return error_set(err, ENOSPC, "no pod address left in %s (%zu pods hold one)", n->pod_cidr,
			                 ipam_allocated_count(n->ipam));
		if (r < 0)
			return r;
		/* adopted after an agent restart: already attached, left alone */
		if (!podnet_attached(n->podnet, uid) && (r = podnet_attach(n->podnet, uid, netns_fd, address, err)) < 0)
			return r;
		inet_ntop(AF_INET, &address, a->pod_ip, sizeof(a->pod_ip));
	}
	if (!a->resolv_conf)
		return write_resolv_conf(n, pod, host_network, pod_dir, a, err);
	return 0;
}

void network_pod_release(struct network *n, const char *uid)
{
	if (!n || !uid || !n->podnet)
		return;
	struct error err;
	if (podnet_detach(n->podnet, uid, &err) < 0)
		log_warnx("%s", err.message);
	if (ipam_release(n->ipam, uid, &err) < 0)
		log_warnx("%s", err.message);
}

void network_pods_listed(struct network *n, const char *const *uids, size_t count)
{
	if (!n)
		return;
	if (n->ipam) {
		struct error err;
		if (ipam_reconcile(n->ipam, uids, count, &err) < 0)
			log_warnx("%s", err.message);
		n->listed_pending = false;
	} else {
		n->listed_pending = true;
	}
	if ((const char *const *)n->listed_uids == uids)
		return;
	for (size_t i = 0; i < n->listed_count; i++)
		free(n->listed_uids[i]);
	free(n->listed_uids);
	n->listed_uids = NULL;
	n->listed_count = 0;
	if (n->listed_pending) {
		n->listed_uids = xcalloc(count ? count : 1, sizeof(char *));
		for (size_t i = 0; i < count; i++)
			n->listed_uids[i] = xstrdup(uids[i]);
		n->listed_count = count;
	}
}

void network_pods_listed_json(struct network *n, const cJSON *items)
{
	if (!n)
		return;
	size_t count = (size_t)cJSON_GetArraySize(items), i = 0;
	const char **uids = xcalloc(count ? count : 1, sizeof(*uids));
	const cJSON *item;
	cJSON_ArrayForEach(item, items)
	{
		const char *uid = object_string_at(item, "metadata.uid");
		if (uid)
			uids[i++] = uid;
	}
	network_pods_listed(n, uids, i);
	free(uids);
}

void network_add_mounts(const struct network_attachment *a, struct runtime_mount **mounts, size_t *count)
{
	if (!a || !a->resolv_conf)
		return;
	for (size_t i = 0; i < *count; i++)
		if (strcmp((*mounts)[i].target, "/etc/resolv.conf") == 0)
			return;
	*mounts = xrealloc(*mounts, (*count + 1) * sizeof(**mounts));
	(*mounts)[*count] = (struct runtime_mount){ .source = xstrdup(a->resolv_conf),
		                                    .target = xstrdup("/etc/resolv.conf"),
		                                    .read_only = true };
	(*count)++;
}

void network_attachment_clear(struct network_attachment *a)
{
	free(a->resolv_conf);
	memset(a, 0, sizeof(*a));
}

/* --- life ------------------------------------------------------------------------------------ */

int network_new(const struct network_options *options, struct network **ret_network, struct error *err)
{
	const struct config *config = options->config;
	struct network *n = xcalloc(1, sizeof(*n));
	n->loop = options->loop;
	n->config = config;
	n->dirty = cJSON_CreateObject();
	int r;
	if ((r = netlink_parse_cidr(config->cluster_cidr, false, &n->cluster, &n->cluster_prefix, err)) < 0 ||
	    (r = netlink_parse_cidr(config->service_cidr, false, &n->service, &n->service_prefix, err)) < 0)
		goto fail;
	for (int i = 0; i < WATCH_COUNT; i++)
		n->watches[i] = (struct watch){ .network = n, .which = (enum watched)i, .items = cJSON_CreateObject() };
	struct link_options link_options = { .identity = options->identity, .key = options->key };
	memcpy(link_options.servers, options->servers, sizeof(link_options.servers));
	if ((r = link_new(n->loop, &link_options, &n->link, err)) < 0)
		goto fail;
	link_set_state_hook(n->link, on_link_state, n);
	load_view(n);
	/* The pod CIDR this node had when the agent last ran: pods start again without waiting
	 * for the control plane (edge autonomy); the Node's spec.podCIDR confirms it later. */
	char *state = xasprintf("%s/network/pod-addresses", config->data_dir);
	bool stored = ipam_stored_cidr(state, n->pod_cidr, sizeof(n->pod_cidr)) == 0;
	free(state);
	if (stored) {
		n->cidr_unconfirmed = true;
		setup_network(n);
	} else {
		log_info("network: waiting for node %s's pod CIDR (cluster %s, services %s)", config->node_name,
		         config->cluster_cidr, config->service_cidr);
	}
	*ret_network = n;
	return 0;
fail:
	network_free(n);
	return r;
}

void network_free(struct network *n)
{
	if (!n)
		return;
	if (n->view_timer) {
		loop_cancel_timer(n->loop, n->view_timer);
		save_view(n); /* a change not yet written */
	}
	free(n->view_saved);
	struct error err = { 0 };
	if (n->proxy && proxy_shutdown(n->proxy, &err) < 0)
		log_warnx("proxy: %s", err.message);
	proxy_free(n->proxy);
	dns_free(n->dns);
	if (n->podnet) {
		/* the pods' namespaces are released by now; their veths go with them, shortly */
		for (int i = 0; i < 40 && podnet_attached_count(n->podnet) > 0; i++)
			usleep(50 * 1000);
		size_t left = podnet_attached_count(n->podnet);
		if (left == 0 && podnet_teardown(n->podnet, &err) < 0)
			log_warnx("pod network: %s", err.message);
		else if (left > 0)
			log_info("pod network: %zu pods still attached: bridge %s and routes kept", left,
			         n->config->bridge);
		podnet_free(n->podnet);
	}
	ipam_free(n->ipam);
	for (int i = 0; i < WATCH_COUNT; i++) {
		if (n->watches[i].retry)
			loop_cancel_timer(n->loop, n->watches[i].retry);
		cJSON_Delete(n->watches[i].items);
	}
	if (n->apply_timer)
		loop_cancel_timer(n->loop, n->apply_timer);
	if (n->setup_timer)
		loop_cancel_timer(n->loop, n->setup_timer);
	link_free(n->link);
	for (size_t i = 0; i < n->listed_count; i++)
		free(n->listed_uids[i]);
	free(n->listed_uids);
	cJSON_Delete(n->dirty);
	free(n);
}
