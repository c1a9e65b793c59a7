#include "agent/podnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"
#include "platform/netlink.h"
#include "platform/nftables.h"

#define DEFAULT_TABLE "bramble_podnet"
#define VETH_PREFIX "bv"

struct podnet {
	struct netlink *netlink;
	char bridge[16];
	char table[64];
	struct in_addr network, gateway, cluster;
	uint8_t prefix, cluster_prefix;
	unsigned mtu;
	bool masquerade;
};

void podnet_host_veth_name(const char *pod_key, char name[PODNET_VETH_NAME_MAX])
{
	uint32_t hash = 2166136261u; /* FNV-1a */
	for (const char *p = pod_key; *p; p++)
		hash = (hash ^ (uint8_t)*p) * 16777619u;
	snprintf(name, PODNET_VETH_NAME_MAX, VETH_PREFIX "%08x", hash);
}

struct in_addr podnet_gateway(const struct podnet *podnet)
{
	return podnet->gateway;
}

static int apply_masquerade(struct podnet *podnet, struct error *err)
{
	struct netlink *netfilter = NULL;
	int r = netlink_open_netfilter(-1, &netfilter, err);
	if (r < 0)
		return r;
	struct netlink_message batch = { 0 };
	nft_batch_begin(&batch);
	nft_table_flush_out(&batch, NFPROTO_IPV4, podnet->table);
	if (podnet->masquerade) {
		nft_table_add(&batch, NFPROTO_IPV4, podnet->table);
		nft_chain_add(&batch, NFPROTO_IPV4, podnet->table, "postrouting", NF_INET_POST_ROUTING,
		              NFT_PRIORITY_SRCNAT, "nat");
		struct nft_rule rule;
		nft_rule_begin(&rule, &batch, NFPROTO_IPV4, podnet->table, "postrouting");
		nft_match_ip_saddr_in(&rule, podnet->network, podnet->prefix, false);
		nft_match_ip_daddr_in(&rule, podnet->cluster, podnet->cluster_prefix, true);
		nft_expr_counter(&rule);
		nft_expr_masquerade(&rule);
		nft_rule_end(&rule);
	}
	nft_batch_end(&batch);
	r = netlink_send_batch(netfilter, &batch, err, "program pod masquerade (nftables)");
	netlink_message_free(&batch);
	netlink_close(netfilter);
	return r;
}

int podnet_setup(const struct podnet_config *config, struct podnet **ret_podnet, struct error *err)
{
	struct podnet *podnet = xcalloc(1, sizeof(*podnet));
	int r;
	snprintf(podnet->bridge, sizeof(podnet->bridge), "%s", config->bridge ? config->bridge : "");
	snprintf(podnet->table, sizeof(podnet->table), "%s", config->table ? config->table : DEFAULT_TABLE);
	podnet->mtu = config->mtu ? config->mtu : 1500;
	podnet->masquerade = config->masquerade;
	r = netlink_parse_cidr(config->pod_cidr, false, &podnet->network, &podnet->prefix, err);
	if (r < 0) {
		error_prefix(err, "pod CIDR");
		goto fail;
	}
	if (podnet->prefix > 30) {
		r = error_set(err, EINVAL, "pod CIDR %s: too small for a gateway and pods", config->pod_cidr);
		goto fail;
	}
	r = netlink_parse_cidr(config->cluster_cidr, false, &podnet->cluster, &podnet->cluster_prefix, err);
	if (r < 0) {
		error_prefix(err, "cluster CIDR");
		goto fail;
	}
	if (podnet->cluster_prefix > podnet->prefix ||
	    !netlink_cidr_contains(podnet->cluster, podnet->cluster_prefix, podnet->network)) {
		r = error_set(err, EINVAL, "pod CIDR %s is not inside the cluster CIDR %s", config->pod_cidr,
		              config->cluster_cidr);
		goto fail;
	}
	podnet->gateway.s_addr = htonl(ntohl(podnet->network.s_addr) + 1);

	r = netlink_open(-1, &podnet->netlink, err);
	if (r < 0)
		goto fail;
	r = netlink_bridge_add(podnet->netlink, podnet->bridge, err);
	if (r == -EEXIST) { /* adopt it, after an agent restart */
		struct netlink_link link;
		r = netlink_link_get(podnet->netlink, podnet->bridge, &link, err);
		if (r == 0 && strcmp(link.kind, "bridge") != 0)
			r = error_set(err, EEXIST, "%s exists and is not a bridge (%s)", podnet->bridge,
			              link.kind[0] ? link.kind : "no kind");
	}
	if (r < 0)
		goto fail;
	if ((r = netlink_link_set_mtu(podnet->netlink, podnet->bridge, podnet->mtu, err)) < 0 ||
	    (r = netlink_address_add(podnet->netlink, podnet->bridge, podnet->gateway, podnet->prefix, err)) < 0 ||
	    (r = netlink_link_set_up(podnet->netlink, podnet->bridge, true, err)) < 0 ||
	    (r = netlink_enable_ipv4_forwarding(err)) < 0)
		goto fail;
	r = apply_masquerade(podnet, err);
	if (r < 0)
		goto fail;
	*ret_podnet = podnet;
	return 0;
fail:
	podnet_free(podnet);
	return r;
}

void podnet_free(struct podnet *podnet)
{
	if (!podnet)
		return;
	netlink_close(podnet->netlink);
	free(podnet);
}

int podnet_attach(struct podnet *podnet, const char *pod_key, int pod_netns_fd, struct in_addr address,
                  struct error *err)
{
	char host[PODNET_VETH_NAME_MAX], text[INET_ADDRSTRLEN];
	podnet_host_veth_name(pod_key, host);
	inet_ntop(AF_INET, &address, text, sizeof(text));
	if (!netlink_cidr_contains(podnet->network, podnet->prefix, address) ||
	    address.s_addr == podnet->gateway.s_addr || address.s_addr == podnet->network.s_addr)
		return error_set(err, EINVAL, "pod %s: address %s is not a pod address of this board", pod_key, text);

	/* a half-made attachment from before a crash goes first (its peer with it) */
	int r = netlink_link_delete(podnet->netlink, host, NULL);
	if (r < 0 && r != -ENODEV)
		return error_set(err, -r, "pod %s: remove the old %s", pod_key, host);

	struct netlink *inside = NULL;
	r = netlink_veth_add(podnet->netlink, host, "eth0", pod_netns_fd, err);
	if (r < 0)
		goto fail;
	r = netlink_open(pod_netns_fd, &inside, err);
	if (r < 0)
		goto fail;
	struct netlink_route default_route = { .gateway = podnet->gateway, .onlink = false };
	strcpy(default_route.device, "eth0");
	if ((r = netlink_link_set_mtu(podnet->netlink, host, podnet->mtu, err)) < 0 ||
	    (r = netlink_link_set_master(podnet->netlink, host, podnet->bridge, err)) < 0 ||
	    (r = netlink_bridge_port_set_hairpin(podnet->netlink, host, true, err)) < 0 ||
	    (r = netlink_link_set_up(podnet->netlink, host, true, err)) < 0 ||
	    (r = netlink_link_set_mtu(inside, "eth0", podnet->mtu, err)) < 0 ||
	    (r = netlink_link_set_up(inside, "lo", true, err)) < 0 ||
	    (r = netlink_address_add(inside, "eth0", address, podnet->prefix, err)) < 0 ||
	    (r = netlink_link_set_up(inside, "eth0", true, err)) < 0 ||
	    (r = netlink_route_replace(inside, &default_route, err)) < 0)
		goto fail;
	netlink_close(inside);
	return 0;
fail:
	netlink_close(inside);
	netlink_link_delete(podnet->netlink, host, NULL);
	return error_prefix(err, "attach pod %s (%s) to %s", pod_key, text, podnet->bridge);
}

bool podnet_attached(struct podnet *podnet, const char *pod_key)
{
	char host[PODNET_VETH_NAME_MAX];
	podnet_host_veth_name(pod_key, host);
	struct netlink_link link, bridge;
	return netlink_link_get(podnet->netlink, host, &link, NULL) == 0 &&
	       netlink_link_get(podnet->netlink, podnet->bridge, &bridge, NULL) == 0 && link.master == bridge.index &&
	       (link.flags & IFF_UP);
}

size_t podnet_attached_count(struct podnet *podnet)
{
	struct netlink_link *links = NULL, bridge;
	size_t count = 0, attached = 0;
	if (netlink_link_get(podnet->netlink, podnet->bridge, &bridge, NULL) < 0 ||
	    netlink_link_list(podnet->netlink, &links, &count, NULL) < 0)
		return 0;
	for (size_t i = 0; i < count; i++)
		if (links[i].master == bridge.index && strncmp(links[i].name, VETH_PREFIX, 2) == 0)
			attached++;
	free(links);
	return attached;
}

int podnet_detach(struct podnet *podnet, const char *pod_key, struct error *err)
{
	char host[PODNET_VETH_NAME_MAX];
	podnet_host_veth_name(pod_key, host);
	int r = netlink_link_delete(podnet->netlink, host, err);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return error_prefix(err, "detach pod %s", pod_key);
	return 0;
}

static bool same_route(const struct netlink_route *route, const struct podnet_peer *peer)
{
	return route->destination.s_addr == peer->network.s_addr && route->prefix_length == peer->prefix_length &&
	       route->gateway.s_addr == peer->node_address.s_addr;
}

int podnet_sync_routes(struct podnet *podnet, const struct podnet_peer *peers, size_t count, struct error *err)
{
	/* validate the whole set first: a bad entry changes nothing */
	for (size_t i = 0; i < count; i++) {
		char network[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &peers[i].network, network, sizeof(network));
		if (peers[i].prefix_length > 32 || peers[i].node_address.s_addr == INADDR_ANY)
			return error_set(err, EINVAL, "peer route %s/%u: bad prefix or node address", network,
			                 peers[i].prefix_length);
		if (netlink_cidr_overlaps(peers[i].network, peers[i].prefix_length, podnet->network, podnet->prefix))
			return error_set(err, EINVAL, "peer pod CIDR %s/%u overlaps this board's pod CIDR", network,
			                 peers[i].prefix_length);
		for (size_t j = 0; j < i; j++)
			if (netlink_cidr_overlaps(peers[i].network, peers[i].prefix_length, peers[j].network,
			                          peers[j].prefix_length))
				return error_set(err, EINVAL, "peer pod CIDR %s/%u overlaps another peer's", network,
				                 peers[i].prefix_length);
	}
	struct netlink_route *routes = NULL;
	size_t existing = 0;
	int r = netlink_route_list(podnet->netlink, NETLINK_ROUTE_PROTOCOL_BRAMBLE, &routes, &existing, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < count && r == 0; i++) {
		bool present = false;
		for (size_t j = 0; j < existing && !present; j++)
			present = same_route(&routes[j], &peers[i]);
		if (present)
			continue;
		struct netlink_route route = { .destination = peers[i].network,
			                       .prefix_length = peers[i].prefix_length,
			                       .gateway = peers[i].node_address,
			                       .protocol = NETLINK_ROUTE_PROTOCOL_BRAMBLE };
		r = netlink_route_replace(podnet->netlink, &route, err);
	}
	for (size_t j = 0; j < existing && r == 0; j++) {
		bool wanted = false;
		for (size_t i = 0; i < count && !wanted; i++)
			wanted = routes[j].destination.s_addr == peers[i].network.s_addr &&
			         routes[j].prefix_length == peers[i].prefix_length;
		if (wanted)
			continue;
		struct netlink_route stale = routes[j];
		r = netlink_route_delete(podnet->netlink, &stale, err);
		if (r == -ESRCH)
			r = 0;
	}
	free(routes);
	return r;
}

int podnet_teardown(struct podnet *podnet, struct error *err)
{
	int result = 0, r;
	struct error local = { 0 };
	r = podnet_sync_routes(podnet, NULL, 0, &local);
	if (r < 0 && result == 0)
		result = error_set(err, -r, "%s", local.message);

	struct netlink_link *links = NULL, bridge;
	size_t count = 0;
	if (netlink_link_get(podnet->netlink, podnet->bridge, &bridge, NULL) == 0 &&
	    netlink_link_list(podnet->netlink, &links, &count, &local) == 0) {
		for (size_t i = 0; i < count; i++) {
			if (links[i].master != bridge.index || strncmp(links[i].name, VETH_PREFIX, 2) != 0)
				continue;
			r = netlink_link_delete(podnet->netlink, links[i].name, &local);
			if (r < 0 && r != -ENODEV && result == 0)
				result = error_set(err, -r, "%s", local.message);
		}
		free(links);
	}
	r = netlink_link_delete(podnet->netlink, podnet->bridge, &local);
	if (r < 0 && r != -ENODEV && result == 0)
		result = error_set(err, -r, "%s", local.message);

	podnet->masquerade = false;
	r = apply_masquerade(podnet, &local); /* an empty batch that deletes the table */
	if (r < 0 && result == 0)
		result = error_set(err, -r, "%s", local.message);
	return result;
}
