/* nf_tables over netlink: the few objects and expressions Bramble's rule sets use.
 *
 * A caller builds one batch (nft_batch_begin ... nft_batch_end) of tables, chains, maps and
 * rules, then sends it with netlink_send_batch() on a NETLINK_NETFILTER socket: the kernel
 * applies all of it or none. Replacing a table atomically is "add table; delete table; add
 * table; add its contents" in one batch (nft_table_replace).
 *
 * This is the subset of what libnftnl encodes (its Debian source is not on the mirror the
 * dependencies are built from): IPv4 payload/meta/ct/fib matches, numgen, verdict maps,
 * dynamic sets with timeouts, DNAT, masquerade. Registers are the 16-byte NFT_REG_1..4.
 */
#ifndef BRAMBLE_PLATFORM_NFTABLES_H
#define BRAMBLE_PLATFORM_NFTABLES_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform/netlink.h"

struct error;

/* Hooks for base chains (NF_INET_*), or NFT_CHAIN_REGULAR for a chain only jumped to. */
#define NFT_CHAIN_REGULAR (-1)
/* Chain priorities as nft names them (NF_IP_PRI_NAT_DST / _SRC). */
#define NFT_PRIORITY_DSTNAT (-100)
#define NFT_PRIORITY_SRCNAT 100

void nft_batch_begin(struct netlink_message *batch);
void nft_batch_end(struct netlink_message *batch);

void nft_table_add(struct netlink_message *batch, uint8_t family, const char *table);
void nft_table_delete(struct netlink_message *batch, uint8_t family, const char *table);
/* Adds the table (if missing) then deletes it: a replace or a removal that cannot fail
 * because the table is absent. */
void nft_table_flush_out(struct netlink_message *batch, uint8_t family, const char *table);
/* type: "nat" or "filter"; hook NFT_CHAIN_REGULAR for a regular chain. */
void nft_chain_add(struct netlink_message *batch, uint8_t family, const char *table, const char *chain, int hook,
                   int priority, const char *type);

/* A map from a 32-bit integer (host order, as numgen leaves it) to goto <chain>. */
void nft_verdict_map_add(struct netlink_message *batch, uint8_t family, const char *table, const char *set,
                         uint32_t set_id, const uint32_t *keys, const char *const *chains, size_t count);
/* A set of IPv4 addresses whose entries expire (session affinity). */
void nft_address_set_add(struct netlink_message *batch, uint8_t family, const char *table, const char *set,
                         uint32_t set_id);

/* A rule under construction: nft_rule_begin, expressions, nft_rule_end. */
struct nft_rule {
	struct netlink_message *batch;
	size_t rule_nest;
	size_t expressions_nest;
};

void nft_rule_begin(struct nft_rule *rule, struct netlink_message *batch, uint8_t family, const char *table,
                    const char *chain);
void nft_rule_end(struct nft_rule *rule);

/* Loads: */
void nft_expr_payload(struct nft_rule *rule, uint32_t dreg, uint32_t base, uint32_t offset, uint32_t length);
void nft_expr_meta_load(struct nft_rule *rule, uint32_t dreg, uint32_t key);
void nft_expr_meta_store(struct nft_rule *rule, uint32_t sreg, uint32_t key);
void nft_expr_ct_load(struct nft_rule *rule, uint32_t dreg, uint32_t key);
void nft_expr_fib_daddr_type(struct nft_rule *rule, uint32_t dreg);
void nft_expr_numgen_random(struct nft_rule *rule, uint32_t dreg, uint32_t modulus);
void nft_expr_immediate(struct nft_rule *rule, uint32_t dreg, const void *data, size_t length);
/* Compare and mask: */
void nft_expr_cmp(struct nft_rule *rule, uint32_t sreg, uint32_t op, const void *data, size_t length);
void nft_expr_bitwise(struct nft_rule *rule, uint32_t sreg, uint32_t dreg, const void *mask, const void *xor_value,
                      size_t length);
/* Set lookups: dreg NFT_REG_VERDICT for a verdict map; match_only for "key in set". */
void nft_expr_lookup(struct nft_rule *rule, uint32_t sreg, const char *set, uint32_t set_id, bool verdict_map);
void nft_expr_dynset_update(struct nft_rule *rule, uint32_t sreg, const char *set, uint32_t set_id,
                            uint64_t timeout_ms);
/* Verdicts and NAT: */
void nft_expr_verdict(struct nft_rule *rule, int verdict, const char *chain);
void nft_expr_dnat(struct nft_rule *rule, uint32_t address_reg, uint32_t port_reg);
void nft_expr_masquerade(struct nft_rule *rule);
void nft_expr_counter(struct nft_rule *rule);

/* Common matches, built from the above (registers 1 and 2 are clobbered): */
void nft_match_ip_saddr_in(struct nft_rule *rule, struct in_addr network, uint8_t prefix, bool negate);
void nft_match_ip_daddr_in(struct nft_rule *rule, struct in_addr network, uint8_t prefix, bool negate);
void nft_match_l4proto(struct nft_rule *rule, uint8_t protocol);
void nft_match_dport(struct nft_rule *rule, uint16_t port);
void nft_match_oifname(struct nft_rule *rule, const char *name, bool negate);
void nft_match_mark(struct nft_rule *rule, uint32_t mask);
void nft_match_ct_status(struct nft_rule *rule, uint32_t status_bit);

/* Does the table exist? (0 yes, -ENOENT no, another error when nf_tables cannot be asked) */
int nft_table_exists(struct netlink *netlink, uint8_t family, const char *table, struct error *err);

#endif
