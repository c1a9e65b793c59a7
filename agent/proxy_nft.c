/* The nftables dataplane of the Service proxy.
 *
 * Every change rebuilds the whole table and replaces it in one batch (add table; delete
 * table; add table and its contents): the kernel switches from the old rule set to the new
 * one at once or, when it refuses the batch, keeps the old. The table, family ip:
 *
 *   chain prerouting  { type nat hook prerouting priority dstnat; jump services }
 *   chain output      { type nat hook output priority dstnat; jump services }
 *   chain postrouting { type nat hook postrouting priority srcnat;
 *                       meta mark & 0x4000 != 0 masquerade            (NodePort traffic)
 *                       ct status dnat ip saddr POD ip daddr POD masquerade }  (pod -> own bridge)
 *   chain services    { ip daddr CIP meta l4proto P th dport X goto svc-N-p  ...
 *                       fib daddr type local meta l4proto P th dport NP goto np-N-p ... }
 *   chain np-N-p      { meta mark set mark | 0x4000; goto svc-N-p }
 *   chain svc-N-p     { [ip saddr @aff-N-p-e goto ep-N-p-e ...]
 *                       numgen random mod K vmap @map-N-p  |  drop when no endpoint is ready }
 *   chain ep-N-p-e    { [update @aff-N-p-e { ip saddr }] dnat to ADDR:PORT }
 *
 * Why masquerade: a NodePort connection forwarded to a pod on another board must come back
 * through this board to be un-NATed; a pod reaching a Service whose endpoint sits on the
 * same bridge would otherwise get the answer straight from the endpoint's address.
 * Not done (cannot be checked here): conntrack entries of UDP flows to an endpoint that
 * went away are not flushed, they expire (30 s idle); NodePorts on 127.0.0.1 need
 * route_localnet and are not served.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/proxy_backend.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "platform/netlink.h"
#include "platform/nftables.h"

#define NODE_PORT_MARK 0x4000u
#define NAME_MAX_LENGTH 200

struct nft_state {
	struct proxy_settings settings;
	struct netlink *netfilter;
};

static void base_chains(struct netlink_message *batch, const struct proxy_settings *s)
{
	const char *t = s->table;
	nft_chain_add(batch, NFPROTO_IPV4, t, "services", NFT_CHAIN_REGULAR, 0, NULL);
	nft_chain_add(batch, NFPROTO_IPV4, t, "prerouting", NF_INET_PRE_ROUTING, NFT_PRIORITY_DSTNAT, "nat");
	nft_chain_add(batch, NFPROTO_IPV4, t, "output", NF_INET_LOCAL_OUT, NFT_PRIORITY_DSTNAT, "nat");
	nft_chain_add(batch, NFPROTO_IPV4, t, "postrouting", NF_INET_POST_ROUTING, NFT_PRIORITY_SRCNAT, "nat");
	struct nft_rule rule;
	nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, "prerouting");
	nft_expr_verdict(&rule, NFT_JUMP, "services");
	nft_rule_end(&rule);
	nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, "output");
	nft_expr_verdict(&rule, NFT_JUMP, "services");
	nft_rule_end(&rule);

	nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, "postrouting");
	nft_match_mark(&rule, NODE_PORT_MARK);
	nft_expr_masquerade(&rule);
	nft_rule_end(&rule);
	nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, "postrouting");
	nft_match_ct_status(&rule, IPS_DST_NAT);
	nft_match_ip_saddr_in(&rule, s->pod_network, s->pod_prefix, false);
	nft_match_ip_daddr_in(&rule, s->pod_network, s->pod_prefix, false);
	nft_expr_masquerade(&rule);
	nft_rule_end(&rule);
}

static void service_port(struct netlink_message *batch, const struct proxy_settings *s, const struct proxy_entry *entry,
                         size_t service_index, size_t port_index, uint32_t *set_id)
{
	const char *t = s->table;
	const struct proxy_service *service = &entry->service;
	const struct proxy_service_port *port = &entry->ports[port_index];
	char chain[NAME_MAX_LENGTH], np_chain[NAME_MAX_LENGTH], map[NAME_MAX_LENGTH];
	/* names carry the service for someone reading `nft list table` */
	snprintf(chain, sizeof(chain), "svc-%zu-%zu-%s/%s:%u", service_index, port_index, service->namespace,
	         service->name, port->port);
	snprintf(np_chain, sizeof(np_chain), "np-%zu-%zu", service_index, port_index);
	snprintf(map, sizeof(map), "map-%zu-%zu", service_index, port_index);
	nft_chain_add(batch, NFPROTO_IPV4, t, chain, NFT_CHAIN_REGULAR, 0, NULL);

	size_t n = port->endpoint_count;
	char(*endpoint_chains)[NAME_MAX_LENGTH] = xcalloc(n ? n : 1, sizeof(*endpoint_chains));
	char(*affinity_sets)[NAME_MAX_LENGTH] = xcalloc(n ? n : 1, sizeof(*affinity_sets));
	uint32_t *affinity_ids = xcalloc(n ? n : 1, sizeof(uint32_t));
	struct nft_rule rule;
	for (size_t e = 0; e < n; e++) {
		const struct proxy_endpoint *endpoint = &port->endpoints[e];
		char address[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &endpoint->address, address, sizeof(address));
		snprintf(endpoint_chains[e], NAME_MAX_LENGTH, "ep-%zu-%zu-%zu-%s:%u", service_index, port_index, e,
		         address, endpoint->port);
		nft_chain_add(batch, NFPROTO_IPV4, t, endpoint_chains[e], NFT_CHAIN_REGULAR, 0, NULL);
		if (service->affinity_client_ip) {
			snprintf(affinity_sets[e], NAME_MAX_LENGTH, "aff-%zu-%zu-%zu", service_index, port_index, e);
			affinity_ids[e] = ++*set_id;
			nft_address_set_add(batch, NFPROTO_IPV4, t, affinity_sets[e], affinity_ids[e]);
		}
		nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, endpoint_chains[e]);
		if (service->affinity_client_ip) {
			nft_expr_payload(&rule, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
			nft_expr_dynset_update(&rule, NFT_REG_1, affinity_sets[e], affinity_ids[e],
			                       (uint64_t)service->affinity_timeout_seconds * 1000);
		}
		uint16_t target_port = htons(endpoint->port);
		nft_expr_immediate(&rule, NFT_REG_1, &endpoint->address.s_addr, 4);
		nft_expr_immediate(&rule, NFT_REG_2, &target_port, 2);
		nft_expr_dnat(&rule, NFT_REG_1, NFT_REG_2);
		nft_rule_end(&rule);
	}
	/* the service chain: affinity first, then a random endpoint */
	for (size_t e = 0; e < n && service->affinity_client_ip; e++) {
		nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, chain);
		nft_expr_payload(&rule, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
		nft_expr_lookup(&rule, NFT_REG_1, affinity_sets[e], affinity_ids[e], false);
		nft_expr_verdict(&rule, NFT_GOTO, endpoint_chains[e]);
		nft_rule_end(&rule);
	}
	if (n == 0) {
		nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, chain);
		nft_expr_verdict(&rule, NF_DROP, NULL);
		nft_rule_end(&rule);
	} else {
		uint32_t *keys = xcalloc(n, sizeof(uint32_t));
		const char **chains = xcalloc(n, sizeof(char *));
		for (size_t e = 0; e < n; e++) {
			keys[e] = (uint32_t)e;
			chains[e] = endpoint_chains[e];
		}
		uint32_t map_id = ++*set_id;
		nft_verdict_map_add(batch, NFPROTO_IPV4, t, map, map_id, keys, chains, n);
		nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, chain);
		nft_expr_numgen_random(&rule, NFT_REG_1, (uint32_t)n);
		nft_expr_lookup(&rule, NFT_REG_1, map, map_id, true);
		nft_rule_end(&rule);
		free(keys);
		free(chains);
	}

	/* the ClusterIP match */
	nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, "services");
	nft_match_ip_daddr_in(&rule, service->cluster_ip, 32, false);
	nft_match_l4proto(&rule, port->protocol);
	nft_match_dport(&rule, port->port);
	nft_expr_verdict(&rule, NFT_GOTO, chain);
	nft_rule_end(&rule);

	if (port->node_port) {
		nft_chain_add(batch, NFPROTO_IPV4, t, np_chain, NFT_CHAIN_REGULAR, 0, NULL);
		nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, np_chain);
		uint32_t keep = ~NODE_PORT_MARK, set = NODE_PORT_MARK;
		nft_expr_meta_load(&rule, NFT_REG_1, NFT_META_MARK);
		nft_expr_bitwise(&rule, NFT_REG_1, NFT_REG_1, &keep, &set, 4);
		nft_expr_meta_store(&rule, NFT_REG_1, NFT_META_MARK);
		nft_expr_verdict(&rule, NFT_GOTO, chain);
		nft_rule_end(&rule);

		nft_rule_begin(&rule, batch, NFPROTO_IPV4, t, "services");
		uint32_t local = RTN_LOCAL;
		nft_expr_fib_daddr_type(&rule, NFT_REG_1);
		nft_expr_cmp(&rule, NFT_REG_1, NFT_CMP_EQ, &local, 4);
		nft_match_l4proto(&rule, port->protocol);
		nft_match_dport(&rule, port->node_port);
		nft_expr_verdict(&rule, NFT_GOTO, np_chain);
		nft_rule_end(&rule);
	}
	free(endpoint_chains);
	free(affinity_sets);
	free(affinity_ids);
}

static int nft_apply(void *data, const struct proxy_entry *const *entries, size_t count, struct error *err)
{
	struct nft_state *state = data;
	struct netlink_message batch = { 0 };
	uint32_t set_id = 0;
	nft_batch_begin(&batch);
	nft_table_flush_out(&batch, NFPROTO_IPV4, state->settings.table);
	nft_table_add(&batch, NFPROTO_IPV4, state->settings.table);
	/* regular chains first: base chains jump to "services" */
	base_chains(&batch, &state->settings);
	for (size_t i = 0; i < count; i++)
		for (size_t p = 0; p < entries[i]->service.port_count; p++)
			service_port(&batch, &state->settings, entries[i], i, p, &set_id);
	nft_batch_end(&batch);
	int r = netlink_send_batch(state->netfilter, &batch, err, "program the service rules (nftables)");
	netlink_message_free(&batch);
	return r;
}

static int nft_start(const struct proxy_settings *settings, void **ret_state, struct error *err)
{
	struct nft_state *state = xcalloc(1, sizeof(*state));
	state->settings = *settings;
	int r = netlink_open_netfilter(-1, &state->netfilter, err);
	/* Proves nf_tables (with NAT) works here on a probe table made and deleted in one batch,
	 * leaving the table of an earlier run as it is: its rules keep serving until the first
	 * apply replaces them. */
	if (r == 0) {
		struct proxy_settings probe = *settings;
		snprintf(probe.table, sizeof(probe.table), "%.50s_probe", settings->table);
		struct netlink_message batch = { 0 };
		nft_batch_begin(&batch);
		nft_table_flush_out(&batch, NFPROTO_IPV4, probe.table);
		nft_table_add(&batch, NFPROTO_IPV4, probe.table);
		base_chains(&batch, &probe);
		nft_table_delete(&batch, NFPROTO_IPV4, probe.table);
		nft_batch_end(&batch);
		r = netlink_send_batch(state->netfilter, &batch, err, "probe nftables");
		netlink_message_free(&batch);
	}
	if (r < 0) {
		netlink_close(state->netfilter);
		free(state);
		return r;
	}
	*ret_state = state;
	return 0;
}

static int nft_stop(void *data, struct error *err)
{
	struct nft_state *state = data;
	struct netlink_message batch = { 0 };
	nft_batch_begin(&batch);
	nft_table_flush_out(&batch, NFPROTO_IPV4, state->settings.table);
	nft_batch_end(&batch);
	int r = netlink_send_batch(state->netfilter, &batch, err, "remove the service rules (nftables)");
	netlink_message_free(&batch);
	return r;
}

static void nft_free(void *data)
{
	struct nft_state *state = data;
	if (!state)
		return;
	netlink_close(state->netfilter);
	free(state);
}

const struct proxy_backend_ops proxy_nft_ops = {
	.name = "nftables",
	.start = nft_start,
	.apply = nft_apply,
	.stop = nft_stop,
	.free = nft_free,
};
