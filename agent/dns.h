/* Cluster DNS: answers for Services on the pod network, forwards everything else.
 *
 * State: the service table (fed by the caller: namespace, name, ClusterIP, named ports),
 * the upstream resolvers read once from the board's resolv.conf, and, when serving, a UDP
 * socket and a TCP listener on config.address:port, the open TCP clients and the queries
 * forwarded upstream and not yet answered. Everything runs on the event loop; nothing
 * blocks.
 *
 *   dns_new -> dns_set_service / dns_remove_service (any time) -> dns_free
 *
 * Answers (authoritative, TTL config.ttl) inside the cluster domain:
 *   <svc>.<ns>.svc.<domain>              A  -> ClusterIP (other types: no data)
 *   _<port>._<proto>.<svc>.<ns>.svc.<domain>  SRV -> 0 100 <port> <svc>.<ns>.svc.<domain>
 *   <ns>.svc.<domain>, svc.<domain>, <domain>: no data; any other name: NXDOMAIN.
 * Short forms arrive already expanded by the pod's resolver through the search path that
 * dns_resolv_conf writes. Other names go to the first upstream, then the next after
 * FORWARD_TIMEOUT_MS; SERVFAIL when none answers.
 *
 * Bad input: a message that is not a query, is truncated, loops through compression
 * pointers or is longer than it says gets FORMERR when its header could be read, and is
 * dropped otherwise. Bounds: DNS_MAX_SERVICES, DNS_MAX_TCP_CLIENTS, DNS_MAX_PENDING
 * forwarded queries.
 */
#ifndef BRAMBLE_AGENT_DNS_H
#define BRAMBLE_AGENT_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct error;
struct loop;
struct dns;

#define DNS_MAX_SERVICES 4096
#define DNS_MAX_TCP_CLIENTS 64
#define DNS_MAX_PENDING 1024
#define DNS_MAX_UPSTREAMS 3
#define DNS_MESSAGE_MAX 65535

struct dns_config {
	struct in_addr address;  /* where to listen (the bridge's gateway address) */
	uint16_t port;           /* 0: 53 */
	const char *domain;      /* NULL: "cluster.local" */
	const char *resolv_conf; /* the board's; NULL: /etc/resolv.conf */
	uint32_t ttl;            /* 0: 5 seconds */
	struct loop *loop;       /* NULL: no sockets, dns_answer only (tests, fuzzing) */
};

struct dns_port {
	char name[64];
	uint8_t protocol; /* IPPROTO_TCP, IPPROTO_UDP */
	uint16_t port;
};

int dns_new(const struct dns_config *config, struct dns **ret_dns, struct error *err);
void dns_free(struct dns *dns);

int dns_set_service(struct dns *dns, const char *namespace, const char *name, struct in_addr cluster_ip,
                    const struct dns_port *ports, size_t port_count, struct error *err);
void dns_remove_service(struct dns *dns, const char *namespace, const char *name);

/* How many upstream resolvers were read. */
size_t dns_upstream_count(const struct dns *dns);

enum dns_action {
	DNS_DROP,    /* not worth an answer */
	DNS_REPLY,   /* *reply holds the answer */
	DNS_FORWARD, /* not ours: ask upstream */
};

/* Answers one query (the whole message, without TCP's length prefix). reply has room for
 * reply_max bytes (at least 512); a UDP answer longer than udp_limit is truncated (TC). */
enum dns_action dns_answer(struct dns *dns, const uint8_t *query, size_t length, uint8_t *reply, size_t reply_max,
                           size_t udp_limit, size_t *ret_reply_length);

enum dns_policy { DNS_POLICY_CLUSTER_FIRST, DNS_POLICY_DEFAULT };

/* A pod's resolv.conf. ClusterFirst: the cluster DNS, search <ns>.svc.<domain> svc.<domain>
 * <domain> (then the board's own search domains), options ndots:5. Default: the board's
 * resolv.conf as it is. */
int dns_resolv_conf(enum dns_policy policy, struct in_addr nameserver, const char *namespace, const char *domain,
                    const char *host_resolv_conf, char **ret_text, struct error *err);

/* A pod's spec.dnsConfig merged into resolv.conf text as the kubelet merges it: its
 * nameservers after base's (no repeats, 3 at most), its searches after base's (no repeats,
 * DNS_MAX_SEARCHES at most), its options replacing base's of the same name. base NULL:
 * dnsConfig alone (dnsPolicy None). Lines of base other than nameserver, search, domain and
 * options are dropped. */
#define DNS_MAX_NAMESERVERS 3
#define DNS_MAX_SEARCHES 32
char *dns_merge_config(const char *base, const cJSON *dns_config);

#endif
