#include "agent/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/proxy_backend.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"
#include "platform/netlink.h"

struct proxy {
	const struct proxy_backend_ops *ops;
	void *state;
	struct proxy_settings settings;
	uint16_t node_port_min, node_port_max;
	struct proxy_entry **entries;
	size_t count;
	bool stopped;
	bool deferred; /* proxy_defer: changes kept until proxy_commit */
};

static void entry_free(struct proxy_entry *entry)
{
	if (!entry)
		return;
	for (size_t i = 0; i < entry->service.port_count; i++)
		free(entry->endpoints[i]);
	free(entry->endpoints);
	free(entry->ports);
	free(entry);
}

static struct proxy_entry *entry_copy(const struct proxy_service *service)
{
	struct proxy_entry *entry = xcalloc(1, sizeof(*entry));
	entry->service = *service;
	entry->ports = xcalloc(service->port_count, sizeof(*entry->ports));
	entry->endpoints = xcalloc(service->port_count, sizeof(*entry->endpoints));
	for (size_t i = 0; i < service->port_count; i++) {
		entry->ports[i] = service->ports[i];
		size_t n = service->ports[i].endpoint_count;
		entry->endpoints[i] = xcalloc(n ? n : 1, sizeof(struct proxy_endpoint));
		if (n)
			memcpy(entry->endpoints[i], service->ports[i].endpoints, n * sizeof(struct proxy_endpoint));
		entry->ports[i].endpoints = entry->endpoints[i];
	}
	entry->service.ports = entry->ports;
	if (!entry->service.affinity_timeout_seconds)
		entry->service.affinity_timeout_seconds = PROXY_DEFAULT_AFFINITY_SECONDS;
	return entry;
}

static const char *protocol_name(uint8_t protocol)
{
	return protocol == IPPROTO_TCP ? "TCP" : protocol == IPPROTO_UDP ? "UDP" : "?";
}

static int find(const struct proxy *proxy, const char *namespace, const char *name)
{
	for (size_t i = 0; i < proxy->count; i++)
		if (strcmp(proxy->entries[i]->service.namespace, namespace) == 0 &&
		    strcmp(proxy->entries[i]->service.name, name) == 0)
			return (int)i;
	return -1;
}

static int validate(const struct proxy *proxy, const struct proxy_service *service, struct error *err)
{
	const char *ns = service->namespace, *name = service->name;
	if (!ns[0] || !name[0] || !memchr(ns, '\0', PROXY_NAME_MAX) || !memchr(name, '\0', PROXY_NAME_MAX))
		return error_set(err, EINVAL, "service: namespace and name must be 1 to %d characters",
		                 PROXY_NAME_MAX - 1);
	char ip[INET_ADDRSTRLEN], cidr[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &service->cluster_ip, ip, sizeof(ip));
	inet_ntop(AF_INET, &proxy->settings.service_network, cidr, sizeof(cidr));
	uint32_t host_bits = ntohl(service->cluster_ip.s_addr) & (0xffffffffu >> proxy->settings.service_prefix);
	if (!netlink_cidr_contains(proxy->settings.service_network, proxy->settings.service_prefix,
	                           service->cluster_ip) ||
	    host_bits == 0 || host_bits == (0xffffffffu >> proxy->settings.service_prefix))
		return error_set_field(err, EINVAL, "spec.clusterIP",
		                       "service %s/%s: %s is not in the service CIDR %s/%u", ns, name, ip, cidr,
		                       proxy->settings.service_prefix);
	if (service->port_count == 0 || service->port_count > PROXY_MAX_PORTS)
		return error_set_field(err, EINVAL, "spec.ports", "service %s/%s: 1 to %d ports, not %zu", ns, name,
		                       PROXY_MAX_PORTS, service->port_count);
	int self = find(proxy, ns, name);
	if (proxy->count >= PROXY_MAX_SERVICES && self < 0)
		return error_set(err, ENOSPC, "service %s/%s: the proxy holds at most %d services", ns, name,
		                 PROXY_MAX_SERVICES);
	for (size_t i = 0; i < proxy->count; i++)
		if ((int)i != self && proxy->entries[i]->service.cluster_ip.s_addr == service->cluster_ip.s_addr)
			return error_set_field(err, EEXIST, "spec.clusterIP",
			                       "service %s/%s: %s is already the ClusterIP of %s/%s", ns, name, ip,
			                       proxy->entries[i]->service.namespace, proxy->entries[i]->service.name);
	for (size_t p = 0; p < service->port_count; p++) {
		const struct proxy_service_port *port = &service->ports[p];
		char field[64];
		snprintf(field, sizeof(field), "spec.ports[%zu]", p);
		if (port->protocol != IPPROTO_TCP && port->protocol != IPPROTO_UDP)
			return error_set_field(err, EINVAL, field, "service %s/%s: protocol must be TCP or UDP", ns,
			                       name);
		if (port->port == 0)
			return error_set_field(err, EINVAL, field, "service %s/%s: port 0", ns, name);
		if (!memchr(port->name, '\0', sizeof(port->name)))
			return error_set_field(err, EINVAL, field, "service %s/%s: port name too long", ns, name);
		for (size_t q = 0; q < p; q++)
			if (service->ports[q].port == port->port && service->ports[q].protocol == port->protocol)
				return error_set_field(err, EINVAL, field, "service %s/%s: port %u/%s given twice", ns,
				                       name, port->port, protocol_name(port->protocol));
		if (port->endpoint_count > PROXY_MAX_ENDPOINTS)
			return error_set_field(err, E2BIG, field, "service %s/%s: at most %d endpoints per port", ns,
			                       name, PROXY_MAX_ENDPOINTS);
		for (size_t e = 0; e < port->endpoint_count; e++)
			if (port->endpoints[e].port == 0 || port->endpoints[e].address.s_addr == INADDR_ANY)
				return error_set_field(err, EINVAL, field,
				                       "service %s/%s: endpoint %zu has no address or port", ns, name,
				                       e);
		if (!port->node_port)
			continue;
		snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", p);
		if (port->node_port < proxy->node_port_min || port->node_port > proxy->node_port_max)
			return error_set_field(err, EINVAL, field, "service %s/%s: NodePort %u is outside %u-%u", ns,
			                       name, port->node_port, proxy->node_port_min, proxy->node_port_max);
		for (size_t q = 0; q < p; q++)
			if (service->ports[q].node_port == port->node_port &&
			    service->ports[q].protocol == port->protocol)
				return error_set_field(err, EEXIST, field, "service %s/%s: NodePort %u given twice", ns,
				                       name, port->node_port);
		for (size_t i = 0; i < proxy->count; i++) {
			if ((int)i == self)
				continue;
			const struct proxy_service *other = &proxy->entries[i]->service;
			for (size_t q = 0; q < other->port_count; q++)
				if (other->ports[q].node_port == port->node_port &&
				    other->ports[q].protocol == port->protocol)
					return error_set_field(err, EEXIST, field,
					                       "service %s/%s: NodePort %u/%s is taken by %s/%s", ns,
					                       name, port->node_port, protocol_name(port->protocol),
					                       other->namespace, other->name);
		}
	}
	return 0;
}

static int apply(struct proxy *proxy, struct proxy_entry **entries, size_t count, struct error *err)
{
	if (proxy->deferred)
		return 0;
	return proxy->ops->apply(proxy->state, (const struct proxy_entry *const *)entries, count, err);
}

int proxy_set_service(struct proxy *proxy, const struct proxy_service *service, struct error *err)
{
	int r = validate(proxy, service, err);
	if (r < 0)
		return r;
	struct proxy_entry *entry = entry_copy(service);
	int self = find(proxy, service->namespace, service->name);
	/* the candidate table: the old one with this service put in */
	size_t count = proxy->count + (self < 0 ? 1 : 0);
	struct proxy_entry **entries = xcalloc(count, sizeof(*entries));
	if (proxy->count)
		memcpy(entries, proxy->entries, proxy->count * sizeof(*entries));
	entries[self < 0 ? proxy->count : (size_t)self] = entry;
	r = apply(proxy, entries, count, err);
	if (r < 0) {
		entry_free(entry);
		free(entries);
		return error_prefix(err, "service %s/%s", service->namespace, service->name);
	}
	if (self >= 0)
		entry_free(proxy->entries[self]);
	free(proxy->entries);
	proxy->entries = entries;
	proxy->count = count;
	return 0;
}

int proxy_remove_service(struct proxy *proxy, const char *namespace, const char *name, struct error *err)
{
	int self = find(proxy, namespace, name);
	if (self < 0)
		return 0;
	struct proxy_entry **entries = xcalloc(proxy->count, sizeof(*entries));
	size_t count = 0;
	for (size_t i = 0; i < proxy->count; i++)
		if ((int)i != self)
			entries[count++] = proxy->entries[i];
	int r = apply(proxy, entries, count, err);
	if (r < 0) {
		free(entries);
		return error_prefix(err, "remove service %s/%s", namespace, name);
	}
	entry_free(proxy->entries[self]);
	free(proxy->entries);
	proxy->entries = entries;
	proxy->count = count;
	return 0;
}

int proxy_new(const struct proxy_config *config, struct proxy **ret_proxy, struct error *err)
{
	struct proxy *proxy = xcalloc(1, sizeof(*proxy));
	struct proxy_settings *s = &proxy->settings;
	int r;
	snprintf(s->table, sizeof(s->table), "%s", config->table ? config->table : "bramble_proxy");
	snprintf(s->service_link, sizeof(s->service_link), "%s",
	         config->service_link ? config->service_link : "bramble-svc");
	s->loop = config->loop;
	proxy->node_port_min = config->node_port_min ? config->node_port_min : 30000;
	proxy->node_port_max = config->node_port_max ? config->node_port_max : 32767;
	if (proxy->node_port_min > proxy->node_port_max) {
		r = error_set(err, EINVAL, "NodePort range %u-%u is empty", proxy->node_port_min, proxy->node_port_max);
		goto fail;
	}
	r = netlink_parse_cidr(config->service_cidr, false, &s->service_network, &s->service_prefix, err);
	if (r < 0) {
		error_prefix(err, "service CIDR");
		goto fail;
	}
	if (s->service_prefix < 8 || s->service_prefix > 30) {
		r = error_set(err, EINVAL, "service CIDR %s: the prefix must be /8 to /30", config->service_cidr);
		goto fail;
	}
	r = netlink_parse_cidr(config->pod_cidr, false, &s->pod_network, &s->pod_prefix, err);
	if (r < 0) {
		error_prefix(err, "pod CIDR");
		goto fail;
	}
	if (netlink_cidr_overlaps(s->service_network, s->service_prefix, s->pod_network, s->pod_prefix)) {
		r = error_set(err, EINVAL, "the service CIDR %s overlaps the pod CIDR %s", config->service_cidr,
		              config->pod_cidr);
		goto fail;
	}
	const char *mode = config->mode ? config->mode : "auto";
	bool try_nft = strcmp(mode, "auto") == 0 || strcmp(mode, "nftables") == 0;
	bool try_user = strcmp(mode, "auto") == 0 || strcmp(mode, "userspace") == 0;
	if (!try_nft && !try_user) {
		r = error_set(err, EINVAL, "proxy mode '%s': choose nftables, userspace or auto", mode);
		goto fail;
	}
	r = -EINVAL;
	if (try_nft) {
		struct error nft_err = { 0 };
		r = proxy_nft_ops.start(s, &proxy->state, &nft_err);
		if (r == 0) {
			proxy->ops = &proxy_nft_ops;
		} else if (!try_user) {
			r = error_set(err, -r, "%s", nft_err.message);
			goto fail;
		} else {
			log_warnx("proxy: nftables is not usable (%s): using the userspace proxy", nft_err.message);
		}
	}
	if (!proxy->ops) {
		if (!s->loop) {
			r = error_set(err, EINVAL, "the userspace proxy needs an event loop");
			goto fail;
		}
		r = proxy_userspace_ops.start(s, &proxy->state, err);
		if (r < 0)
			goto fail;
		proxy->ops = &proxy_userspace_ops;
	}
	*ret_proxy = proxy;
	return 0;
fail:
	free(proxy);
	return r;
}

void proxy_defer(struct proxy *proxy)
{
	proxy->deferred = true;
}

int proxy_commit(struct proxy *proxy, struct error *err)
{
	proxy->deferred = false;
	return apply(proxy, proxy->entries, proxy->count, err);
}

int proxy_shutdown(struct proxy *proxy, struct error *err)
{
	if (proxy->stopped)
		return 0;
	proxy->stopped = true;
	return proxy->ops->stop(proxy->state, err);
}

void proxy_free(struct proxy *proxy)
{
	if (!proxy)
		return;
	if (proxy->ops)
		proxy->ops->free(proxy->state);
	for (size_t i = 0; i < proxy->count; i++)
		entry_free(proxy->entries[i]);
	free(proxy->entries);
	free(proxy);
}

const char *proxy_mode(const struct proxy *proxy)
{
	return proxy->ops->name;
}

size_t proxy_service_count(const struct proxy *proxy)
{
	return proxy->count;
}
