#include "platform/nftables.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "platform/error.h"
#include "platform/memory.h"

static void begin(struct netlink_message *batch, uint16_t type, uint16_t flags, uint8_t family)
{
	netlink_message_begin(batch, (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | type), flags);
	struct nfgenmsg *nfg = netlink_message_reserve(batch, sizeof(*nfg));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
}

void nft_batch_begin(struct netlink_message *batch)
{
	netlink_message_begin(batch, NFNL_MSG_BATCH_BEGIN, 0);
	struct nfgenmsg *nfg = netlink_message_reserve(batch, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
}

void nft_batch_end(struct netlink_message *batch)
{
	netlink_message_begin(batch, NFNL_MSG_BATCH_END, 0);
	struct nfgenmsg *nfg = netlink_message_reserve(batch, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
}

void nft_table_add(struct netlink_message *batch, uint8_t family, const char *table)
{
	begin(batch, NFT_MSG_NEWTABLE, NLM_F_CREATE, family);
	netlink_put_string(batch, NFTA_TABLE_NAME, table);
}

void nft_table_delete(struct netlink_message *batch, uint8_t family, const char *table)
{
	begin(batch, NFT_MSG_DELTABLE, 0, family);
	netlink_put_string(batch, NFTA_TABLE_NAME, table);
}

void nft_table_flush_out(struct netlink_message *batch, uint8_t family, const char *table)
{
	nft_table_add(batch, family, table);
	nft_table_delete(batch, family, table);
}

void nft_chain_add(struct netlink_message *batch, uint8_t family, const char *table, const char *chain, int hook,
                   int priority, const char *type)
{
	begin(batch, NFT_MSG_NEWCHAIN, NLM_F_CREATE, family);
	netlink_put_string(batch, NFTA_CHAIN_TABLE, table);
	netlink_put_string(batch, NFTA_CHAIN_NAME, chain);
	if (hook != NFT_CHAIN_REGULAR) {
		size_t nest = netlink_nest_begin(batch, NFTA_CHAIN_HOOK);
		netlink_put_be32(batch, NFTA_HOOK_HOOKNUM, (uint32_t)hook);
		netlink_put_be32(batch, NFTA_HOOK_PRIORITY, (uint32_t)priority);
		netlink_nest_end(batch, nest);
		netlink_put_be32(batch, NFTA_CHAIN_POLICY, NF_ACCEPT);
		netlink_put_string(batch, NFTA_CHAIN_TYPE, type);
	}
}

static void put_data_value(struct netlink_message *batch, uint16_t type, const void *data, size_t length)
{
	size_t nest = netlink_nest_begin(batch, type);
	netlink_put(batch, NFTA_DATA_VALUE, data, length);
	netlink_nest_end(batch, nest);
}

static void put_verdict(struct netlink_message *batch, uint16_t type, int verdict, const char *chain)
{
	size_t data = netlink_nest_begin(batch, type);
	size_t nest = netlink_nest_begin(batch, NFTA_DATA_VERDICT);
	netlink_put_be32(batch, NFTA_VERDICT_CODE, (uint32_t)verdict);
	if (chain)
		netlink_put_string(batch, NFTA_VERDICT_CHAIN, chain);
	netlink_nest_end(batch, nest);
	netlink_nest_end(batch, data);
}

void nft_verdict_map_add(struct netlink_message *batch, uint8_t family, const char *table, const char *set,
                         uint32_t set_id, const uint32_t *keys, const char *const *chains, size_t count)
{
	begin(batch, NFT_MSG_NEWSET, NLM_F_CREATE, family);
	netlink_put_string(batch, NFTA_SET_TABLE, table);
	netlink_put_string(batch, NFTA_SET_NAME, set);
	netlink_put_be32(batch, NFTA_SET_FLAGS, NFT_SET_MAP);
	netlink_put_be32(batch, NFTA_SET_KEY_LEN, sizeof(uint32_t));
	netlink_put_be32(batch, NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
	netlink_put_be32(batch, NFTA_SET_ID, set_id);
	if (count == 0)
		return;
	begin(batch, NFT_MSG_NEWSETELEM, NLM_F_CREATE, family);
	netlink_put_string(batch, NFTA_SET_ELEM_LIST_TABLE, table);
	netlink_put_string(batch, NFTA_SET_ELEM_LIST_SET, set);
	netlink_put_be32(batch, NFTA_SET_ELEM_LIST_SET_ID, set_id);
	size_t elements = netlink_nest_begin(batch, NFTA_SET_ELEM_LIST_ELEMENTS);
	for (size_t i = 0; i < count; i++) {
		size_t element = netlink_nest_begin(batch, NFTA_LIST_ELEM);
		put_data_value(batch, NFTA_SET_ELEM_KEY, &keys[i], sizeof(keys[i]));
		put_verdict(batch, NFTA_SET_ELEM_DATA, NFT_GOTO, chains[i]);
		netlink_nest_end(batch, element);
	}
	netlink_nest_end(batch, elements);
}

void nft_address_set_add(struct netlink_message *batch, uint8_t family, const char *table, const char *set,
                         uint32_t set_id)
{
	begin(batch, NFT_MSG_NEWSET, NLM_F_CREATE, family);
	netlink_put_string(batch, NFTA_SET_TABLE, table);
	netlink_put_string(batch, NFTA_SET_NAME, set);
	netlink_put_be32(batch, NFTA_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL);
	netlink_put_be32(batch, NFTA_SET_KEY_LEN, sizeof(struct in_addr));
	netlink_put_be32(batch, NFTA_SET_ID, set_id);
	/* a bound on the clients remembered per endpoint */
	size_t desc = netlink_nest_begin(batch, NFTA_SET_DESC);
	netlink_put_be32(batch, NFTA_SET_DESC_SIZE, 65536);
	netlink_nest_end(batch, desc);
}

void nft_rule_begin(struct nft_rule *rule, struct netlink_message *batch, uint8_t family, const char *table,
                    const char *chain)
{
	begin(batch, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, family);
	netlink_put_string(batch, NFTA_RULE_TABLE, table);
	netlink_put_string(batch, NFTA_RULE_CHAIN, chain);
	rule->batch = batch;
	rule->expressions_nest = netlink_nest_begin(batch, NFTA_RULE_EXPRESSIONS);
}

void nft_rule_end(struct nft_rule *rule)
{
	netlink_nest_end(rule->batch, rule->expressions_nest);
}

/* One expression: its name, then its attributes inside NFTA_EXPR_DATA. */
static size_t expr_begin(struct nft_rule *rule, const char *name, size_t *ret_data)
{
	size_t element = netlink_nest_begin(rule->batch, NFTA_LIST_ELEM);
	netlink_put_string(rule->batch, NFTA_EXPR_NAME, name);
	*ret_data = netlink_nest_begin(rule->batch, NFTA_EXPR_DATA);
	return element;
}

static void expr_end(struct nft_rule *rule, size_t element, size_t data)
{
	netlink_nest_end(rule->batch, data);
	netlink_nest_end(rule->batch, element);
}

void nft_expr_payload(struct nft_rule *rule, uint32_t dreg, uint32_t base, uint32_t offset, uint32_t length)
{
	size_t data, e = expr_begin(rule, "payload", &data);
	netlink_put_be32(rule->batch, NFTA_PAYLOAD_DREG, dreg);
	netlink_put_be32(rule->batch, NFTA_PAYLOAD_BASE, base);
	netlink_put_be32(rule->batch, NFTA_PAYLOAD_OFFSET, offset);
	netlink_put_be32(rule->batch, NFTA_PAYLOAD_LEN, length);
	expr_end(rule, e, data);
}

void nft_expr_meta_load(struct nft_rule *rule, uint32_t dreg, uint32_t key)
{
	size_t data, e = expr_begin(rule, "meta", &data);
	netlink_put_be32(rule->batch, NFTA_META_KEY, key);
	netlink_put_be32(rule->batch, NFTA_META_DREG, dreg);
	expr_end(rule, e, data);
}

void nft_expr_meta_store(struct nft_rule *rule, uint32_t sreg, uint32_t key)
{
	size_t data, e = expr_begin(rule, "meta", &data);
	netlink_put_be32(rule->batch, NFTA_META_KEY, key);
	netlink_put_be32(rule->batch, NFTA_META_SREG, sreg);
	expr_end(rule, e, data);
}

void nft_expr_ct_load(struct nft_rule *rule, uint32_t dreg, uint32_t key)
{
	size_t data, e = expr_begin(rule, "ct", &data);
	netlink_put_be32(rule->batch, NFTA_CT_KEY, key);
	netlink_put_be32(rule->batch, NFTA_CT_DREG, dreg);
	expr_end(rule, e, data);
}

void nft_expr_fib_daddr_type(struct nft_rule *rule, uint32_t dreg)
{
	size_t data, e = expr_begin(rule, "fib", &data);
	netlink_put_be32(rule->batch, NFTA_FIB_DREG, dreg);
	netlink_put_be32(rule->batch, NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	netlink_put_be32(rule->batch, NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
	expr_end(rule, e, data);
}

void nft_expr_numgen_random(struct nft_rule *rule, uint32_t dreg, uint32_t modulus)
{
	size_t data, e = expr_begin(rule, "numgen", &data);
	netlink_put_be32(rule->batch, NFTA_NG_DREG, dreg);
	netlink_put_be32(rule->batch, NFTA_NG_MODULUS, modulus);
	netlink_put_be32(rule->batch, NFTA_NG_TYPE, NFT_NG_RANDOM);
	expr_end(rule, e, data);
}

void nft_expr_immediate(struct nft_rule *rule, uint32_t dreg, const void *value, size_t length)
{
	size_t data, e = expr_begin(rule, "immediate", &data);
	netlink_put_be32(rule->batch, NFTA_IMMEDIATE_DREG, dreg);
	put_data_value(rule->batch, NFTA_IMMEDIATE_DATA, value, length);
	expr_end(rule, e, data);
}

void nft_expr_cmp(struct nft_rule *rule, uint32_t sreg, uint32_t op, const void *value, size_t length)
{
	size_t data, e = expr_begin(rule, "cmp", &data);
	netlink_put_be32(rule->batch, NFTA_CMP_SREG, sreg);
	netlink_put_be32(rule->batch, NFTA_CMP_OP, op);
	put_data_value(rule->batch, NFTA_CMP_DATA, value, length);
	expr_end(rule, e, data);
}

void nft_expr_bitwise(struct nft_rule *rule, uint32_t sreg, uint32_t dreg, const void *mask, const void *xor_value,
                      size_t length)
{
	size_t data, e = expr_begin(rule, "bitwise", &data);
	netlink_put_be32(rule->batch, NFTA_BITWISE_SREG, sreg);
	netlink_put_be32(rule->batch, NFTA_BITWISE_DREG, dreg);
	netlink_put_be32(rule->batch, NFTA_BITWISE_LEN, (uint32_t)length);
	put_data_value(rule->batch, NFTA_BITWISE_MASK, mask, length);
	put_data_value(rule->batch, NFTA_BITWISE_XOR, xor_value, length);
	expr_end(rule, e, data);
}

void nft_expr_lookup(struct nft_rule *rule, uint32_t sreg, const char *set, uint32_t set_id, bool verdict_map)
{
	size_t data, e = expr_begin(rule, "lookup", &data);
	netlink_put_string(rule->batch, NFTA_LOOKUP_SET, set);
	netlink_put_be32(rule->batch, NFTA_LOOKUP_SET_ID, set_id);
	netlink_put_be32(rule->batch, NFTA_LOOKUP_SREG, sreg);
	if (verdict_map)
		netlink_put_be32(rule->batch, NFTA_LOOKUP_DREG, NFT_REG_VERDICT);
	expr_end(rule, e, data);
}

void nft_expr_dynset_update(struct nft_rule *rule, uint32_t sreg, const char *set, uint32_t set_id, uint64_t timeout_ms)
{
	size_t data, e = expr_begin(rule, "dynset", &data);
	netlink_put_string(rule->batch, NFTA_DYNSET_SET_NAME, set);
	netlink_put_be32(rule->batch, NFTA_DYNSET_SET_ID, set_id);
	netlink_put_be32(rule->batch, NFTA_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	netlink_put_be32(rule->batch, NFTA_DYNSET_SREG_KEY, sreg);
	uint64_t timeout = htobe64(timeout_ms);
	netlink_put(rule->batch, NFTA_DYNSET_TIMEOUT, &timeout, sizeof(timeout));
	expr_end(rule, e, data);
}

void nft_expr_verdict(struct nft_rule *rule, int verdict, const char *chain)
{
	size_t data, e = expr_begin(rule, "immediate", &data);
	netlink_put_be32(rule->batch, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	put_verdict(rule->batch, NFTA_IMMEDIATE_DATA, verdict, chain);
	expr_end(rule, e, data);
}

void nft_expr_dnat(struct nft_rule *rule, uint32_t address_reg, uint32_t port_reg)
{
	size_t data, e = expr_begin(rule, "nat", &data);
	netlink_put_be32(rule->batch, NFTA_NAT_TYPE, NFT_NAT_DNAT);
	netlink_put_be32(rule->batch, NFTA_NAT_FAMILY, NFPROTO_IPV4);
	netlink_put_be32(rule->batch, NFTA_NAT_REG_ADDR_MIN, address_reg);
	netlink_put_be32(rule->batch, NFTA_NAT_REG_PROTO_MIN, port_reg);
	expr_end(rule, e, data);
}

void nft_expr_masquerade(struct nft_rule *rule)
{
	size_t data, e = expr_begin(rule, "masq", &data);
	expr_end(rule, e, data);
}

void nft_expr_counter(struct nft_rule *rule)
{
	size_t data, e = expr_begin(rule, "counter", &data);
	expr_end(rule, e, data);
}

/* --- matches ---------------------------------------------------------------------------- */

static void match_address(struct nft_rule *rule, uint32_t offset, struct in_addr network, uint8_t prefix, bool negate)
{
	nft_expr_payload(rule, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, offset, 4);
	if (prefix < 32) {
		uint32_t mask = htonl(prefix ? 0xffffffffu << (32 - prefix) : 0), zero = 0;
		nft_expr_bitwise(rule, NFT_REG_1, NFT_REG_1, &mask, &zero, 4);
	}
	nft_expr_cmp(rule, NFT_REG_1, negate ? NFT_CMP_NEQ : NFT_CMP_EQ, &network.s_addr, 4);
}

void nft_match_ip_saddr_in(struct nft_rule *rule, struct in_addr network, uint8_t prefix, bool negate)
{
	match_address(rule, 12, network, prefix, negate);
}

void nft_match_ip_daddr_in(struct nft_rule *rule, struct in_addr network, uint8_t prefix, bool negate)
{
	match_address(rule, 16, network, prefix, negate);
}

void nft_match_l4proto(struct nft_rule *rule, uint8_t protocol)
{
	nft_expr_meta_load(rule, NFT_REG_1, NFT_META_L4PROTO);
	nft_expr_cmp(rule, NFT_REG_1, NFT_CMP_EQ, &protocol, 1);
}

void nft_match_dport(struct nft_rule *rule, uint16_t port)
{
	uint16_t value = htons(port);
	nft_expr_payload(rule, NFT_REG_1, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	nft_expr_cmp(rule, NFT_REG_1, NFT_CMP_EQ, &value, 2);
}

void nft_match_oifname(struct nft_rule *rule, const char *name, bool negate)
{
	char value[IFNAMSIZ] = { 0 };
	strncpy(value, name, sizeof(value) - 1);
	nft_expr_meta_load(rule, NFT_REG_1, NFT_META_OIFNAME);
	nft_expr_cmp(rule, NFT_REG_1, negate ? NFT_CMP_NEQ : NFT_CMP_EQ, value, sizeof(value));
}

void nft_match_mark(struct nft_rule *rule, uint32_t mask)
{
	uint32_t zero = 0;
	nft_expr_meta_load(rule, NFT_REG_1, NFT_META_MARK);
	nft_expr_bitwise(rule, NFT_REG_1, NFT_REG_1, &mask, &zero, 4);
	nft_expr_cmp(rule, NFT_REG_1, NFT_CMP_NEQ, &zero, 4);
}

void nft_match_ct_status(struct nft_rule *rule, uint32_t status_bit)
{
	uint32_t zero = 0;
	nft_expr_ct_load(rule, NFT_REG_1, NFT_CT_STATUS);
	nft_expr_bitwise(rule, NFT_REG_1, NFT_REG_1, &status_bit, &zero, 4);
	nft_expr_cmp(rule, NFT_REG_1, NFT_CMP_NEQ, &zero, 4);
}

int nft_table_exists(struct netlink *netlink, uint8_t family, const char *table, struct error *err)
{
	struct netlink_message request = { 0 };
	begin(&request, NFT_MSG_GETTABLE, 0, family);
	netlink_put_string(&request, NFTA_TABLE_NAME, table);
	char what[128];
	snprintf(what, sizeof(what), "look up nftables table %s", table);
	int r = netlink_request(netlink, &request, NULL, NULL, err, what);
	netlink_message_free(&request);
	return r;
}
